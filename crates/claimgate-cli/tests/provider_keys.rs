//! `claimgate eval --token` verifies a token only with the keys of the provider that its issuer
//! selects: each provider's own key source (inline keys, `jwks_file`), or `--keys PROVIDER=FILE`.
//! Every pair of the bundled providers is tried through the real binary.

use assert_cmd::Command;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Signer {
    kid: String,
    pair: RsaKeyPair,
}

impl Signer {
    fn rsa(n: usize, kid: &str) -> Signer {
        let der = std::fs::read(repo().join(format!("crates/claimgate/tests/keys/rsa-{n}.der"))).unwrap();
        Signer { kid: kid.to_string(), pair: RsaKeyPair::from_der(&der).unwrap() }
    }

    fn jwks(&self) -> String {
        let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(self.pair.public());
        format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"{}","use":"sig","n":"{}","e":"{}"}}]}}"#,
            self.kid,
            B64.encode(&public.n),
            B64.encode(&public.e)
        )
    }

    fn sign(&self, payload: &str) -> String {
        self.sign_typ(payload, "JWT")
    }

    fn sign_typ(&self, payload: &str, typ: &str) -> String {
        let header = format!(r#"{{"alg":"RS256","typ":"{typ}","kid":"{}"}}"#, self.kid);
        let input = format!("{}.{}", B64.encode(header), B64.encode(payload));
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair.sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut signature).unwrap();
        format!("{input}.{}", B64.encode(&signature))
    }
}

/// The bundled providers, each with an allowing test's claims, role and time (from `claimgate
/// test --format json`, so the claims are the policies' own).
fn bundled_cases() -> Vec<(String, String, String, i64, String)> {
    // (provider, role, claims, now, typ) for one allowing test of each provider.
    let text = |file: &str| std::fs::read_to_string(repo().join("policies").join(file)).unwrap();
    let mut cases = Vec::new();
    for (file, provider) in [
        ("conjur.cg", "gitlab-internal"),
        ("entra-id.cg", "entra-id"),
        ("github-actions.cg", "github-actions"),
        ("gitlab.cg", "gitlab"),
        ("kubernetes.cg", "kubernetes"),
        ("oauth-access-token.cg", "auth-server"),
        ("okta.cg", "okta"),
    ] {
        let source = text(file);
        let policy = claimgate::Policy::from_sources([(file, source.as_str())]);
        let set = policy.set();
        let test = set
            .tests
            .iter()
            .find(|t| matches!(t.expect, claimgate::model::Expectation::Allow(_)))
            .unwrap_or_else(|| panic!("{file} has an allowing test"));
        let role = match test.role {
            claimgate::model::RoleChoice::Named(i) => set.roles[i].name.to_string(),
            claimgate::model::RoleChoice::Auto => set.roles[0].name.to_string(),
        };
        let typ = set.provider(provider).unwrap_or_else(|| panic!("{file} defines {provider}")).typ.clone();
        let typ = typ.map_or("JWT".to_string(), |t| t.to_string());
        cases.push((provider.to_string(), role, test.claims_json.to_string(), test.now, typ));
    }
    cases
}

fn eval(token: &str, role: &str, now: i64, keys: &[String]) -> std::process::Output {
    let mut command = Command::cargo_bin("claimgate").unwrap();
    command.current_dir(repo()).args(["eval", "--color", "never", "--policy", "policies", "--role", role]);
    command.args(["--now", &now.to_string(), "--token", "-"]);
    for k in keys {
        command.args(["--keys", k]);
    }
    command.write_stdin(token.to_string()).output().unwrap()
}

#[test]
fn every_pair_of_bundled_providers_is_kept_apart() {
    let dir = tempfile::tempdir().unwrap();
    let cases = bundled_cases();
    let signers: Vec<Signer> = (0..cases.len()).map(|i| Signer::rsa(i + 1, &format!("key-{i}"))).collect();
    let mut keys = Vec::new();
    for ((provider, ..), signer) in cases.iter().zip(&signers) {
        let path = dir.path().join(format!("{provider}.json"));
        std::fs::write(&path, signer.jwks()).unwrap();
        keys.push(format!("{provider}={}", path.display()));
    }
    for (i, (provider, role, claims, now, typ)) in cases.iter().enumerate() {
        let own = eval(&signers[i].sign_typ(claims, typ), role, *now, &keys);
        let stdout = String::from_utf8_lossy(&own.stdout);
        assert_eq!(own.status.code(), Some(0), "{provider}: {stdout}{}", String::from_utf8_lossy(&own.stderr));
        assert!(String::from_utf8_lossy(&own.stderr).contains(&format!("of provider `{provider}`")));
        for (j, foreign) in signers.iter().enumerate() {
            if i == j {
                continue;
            }
            let output = eval(&foreign.sign_typ(claims, typ), role, *now, &keys);
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert_eq!(output.status.code(), Some(1), "{}'s key for {provider}: {stdout}", cases[j].0);
            assert!(stdout.starts_with("deny (key_not_found)"), "{}'s key for {provider}: {stdout}", cases[j].0);
        }
    }
}

#[test]
fn each_provider_uses_its_own_key_source_without_keys() {
    // The Kubernetes provider reads `policies/keys/kubernetes-jwks.json`; a token signed by
    // another key under one of its kids is refused, as is a token for a provider whose keys
    // come from a URL (with a note on what to do).
    let cases = bundled_cases();
    let (_, role, claims, now, _) = cases.iter().find(|c| c.0 == "kubernetes").unwrap();
    let jwks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("policies/keys/kubernetes-jwks.json")).unwrap())
            .unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap();
    let output = eval(&Signer::rsa(1, kid).sign(claims), role, *now, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.starts_with("deny (key_not_found)") || stdout.starts_with("deny (signature_invalid)"), "{stdout}");
}

#[test]
fn eval_fetches_a_url_providers_keys_and_says_why_when_it_cannot() {
    // Port 9 on loopback refuses the connection: the fetch fails at once, and says so.
    let dir = tempfile::tempdir().unwrap();
    let policy = "provider idp {\n  issuer = \"https://idp.test\"\n  keys {\n    jwks_url = \"http://127.0.0.1:9/keys\"\n  }\n}\n\nrole api {\n  provider = idp\n  audience = any\n}\n";
    std::fs::write(dir.path().join("idp.cg"), policy).unwrap();
    let token = Signer::rsa(1, "k").sign(r#"{"iss":"https://idp.test","sub":"s","exp":4000000000}"#);
    let output = Command::cargo_bin("claimgate")
        .unwrap()
        .args(["eval", "--color", "never", "--now", "1700000000", "--token", "-", "--policy"])
        .arg(dir.path())
        .write_stdin(token)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("deny (keys_unavailable)"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("note: provider `idp`: `http://127.0.0.1:9/keys`: cannot connect"), "{stderr}");
    assert!(stderr.contains("(or pass --keys idp=FILE)"), "{stderr}");
}

#[test]
fn a_bare_keys_file_is_taken_only_with_one_provider() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    std::fs::write(&path, Signer::rsa(1, "k").jwks()).unwrap();
    let output = eval("a.b.c", "gitlab-deploy-production", 0, &[path.display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("say whose keys these are with --keys PROVIDER=FILE"), "{stderr}");
    let output = eval("a.b.c", "gitlab-deploy-production", 0, &[format!("gitlb={}", path.display())]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no provider is named `gitlb`"));
}
