//! The engine's handle: keys bound to providers, reloads that keep unchanged key caches and
//! re-read key files, decisions that stay right while policies reload and keys rotate under
//! load, bound_cidrs, and the error mapping.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use claimgate::decision::DenyCode;
use claimgate_engine::{AuthRequest, Engine, ErrorKind, LoadError, PolicySource};
use common::{Reply, Server, Signer, claims, indented, jwks, pki};

/// A provider `idp` (issuer https://idp.test) whose keys come from `server`'s `/jwks`, with the
/// test CA pinned, followed by `rest` (roles).
fn remote_policy(url: &str, ca_pem: &str, extra: &str, rest: &str) -> String {
    format!(
        "provider idp {{\n  issuer = \"https://idp.test\"\n  keys {{\n    jwks_url = \"{url}\"\n    ca_pem = \"\"\"\n{}\n    \"\"\"\n  }}\n{extra}}}\n\n{rest}",
        indented(ca_pem)
    )
}

/// An engine over one provider `idp` (issuer https://idp.test) whose key file holds `signer`'s
/// key, and `roles`; the directory lives as long as the engine is used.
async fn file_engine(signer: &Signer, roles: &str) -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "k.json", &jwks(&[signer]));
    let provider = "provider idp {\n  issuer = \"https://idp.test\"\n  keys {\n    jwks_file = \"k.json\"\n  }\n}\n\n";
    write(dir.path(), "p.cg", &format!("{provider}{roles}"));
    let engine = Engine::builder(PolicySource::dir(dir.path())).build().await.unwrap();
    (dir, engine)
}

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Two providers, each with a `jwks_file`, and a role each.
fn two_providers(dir: &std::path::Path, a: &Signer, b: &Signer) {
    write(dir, "a.json", &jwks(&[a]));
    write(dir, "b.json", &jwks(&[b]));
    let provider = |name: &str| {
        format!(
            "provider {name} {{\n  issuer = \"https://{name}.test\"\n  keys {{\n    jwks_file = \"{name}.json\"\n  }}\n  algorithms = [EdDSA]\n}}\n\nrole {name}-api {{\n  provider = {name}\n  audience = \"api\"\n  identity = claims.sub\n}}\n"
        )
    };
    write(dir, "policy.cg", &format!("{}\n{}", provider("a"), provider("b")));
}

#[tokio::test]
async fn a_token_verifies_only_with_its_own_providers_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Signer::new("a-key"), Signer::new("b-key"));
    two_providers(dir.path(), &a, &b);
    let engine = Engine::builder(PolicySource::dir(dir.path())).build().await.unwrap();
    let ok = engine.authenticate(AuthRequest::new(&b.sign(&claims("https://b.test", "svc")))).await.unwrap();
    assert_eq!(ok.role(), "b-api");
    // b's issuer, a's key: refused, with the named role too.
    let token = a.sign(&claims("https://b.test", "svc"));
    for request in [AuthRequest::new(&token), AuthRequest::new(&token).role("b-api")] {
        let error = engine.authenticate(request).await.unwrap_err();
        assert_eq!(error.code(), DenyCode::KeyNotFound);
        assert_eq!(error.provider(), Some("b"));
    }
    // a's token presented for b's role: refused on its issuer.
    let error = engine.authenticate(AuthRequest::new(&a.sign(&claims("https://a.test", "svc"))).role("b-api")).await;
    assert_eq!(error.unwrap_err().code(), DenyCode::IssuerMismatch);
}

#[tokio::test]
async fn a_login_bound_to_one_provider_refuses_the_tokens_of_another() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Signer::new("a-key"), Signer::new("b-key"));
    two_providers(dir.path(), &a, &b);
    let engine = Engine::builder(PolicySource::dir(dir.path())).build().await.unwrap();
    let b_token = b.sign(&claims("https://b.test", "svc"));
    let allowed = engine.authenticate(AuthRequest::new(&b_token).provider("b")).await.unwrap();
    assert_eq!(allowed.role(), "b-api");
    // Valid for its own provider, refused at a login bound to `a`, by role or automatically.
    for request in [AuthRequest::new(&b_token).provider("a"), AuthRequest::new(&b_token).provider("a").role("b-api")] {
        let refused = engine.authenticate(request).await.unwrap_err();
        assert_eq!(refused.code(), DenyCode::IssuerMismatch);
        assert_eq!(
            refused.detail(),
            "the token's issuer selects provider `b`, but this login accepts only provider `a`"
        );
    }
    // A token no provider accepts keeps its own code.
    let stranger = a.sign(&claims("https://nobody.test", "svc"));
    let refused = engine.authenticate(AuthRequest::new(&stranger).provider("a")).await.unwrap_err();
    assert_eq!(refused.code(), DenyCode::UnknownIssuer);
}

#[tokio::test]
async fn reload_rereads_key_files_and_refuses_a_broken_set() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Signer::new("a-key"), Signer::new("b-key"));
    two_providers(dir.path(), &a, &b);
    let engine = Engine::builder(PolicySource::dir(dir.path())).build().await.unwrap();
    let rotated = Signer::new("a-key-2");
    let token = rotated.sign(&claims("https://a.test", "svc"));
    assert_eq!(engine.authenticate(AuthRequest::new(&token)).await.unwrap_err().code(), DenyCode::KeyNotFound);
    write(dir.path(), "a.json", &jwks(&[&a, &rotated]));
    engine.reload().await.unwrap();
    assert!(engine.authenticate(AuthRequest::new(&token)).await.is_ok());

    // A set with an error is refused, located; the current one keeps serving.
    write(dir.path(), "broken.cg", "role x {\n  provider = nobody\n}\n");
    let error = engine.reload().await.unwrap_err();
    let LoadError::Policies { rendered, .. } = &error else { panic!("{error}") };
    assert!(rendered.contains("broken.cg:2:"), "{rendered}");
    assert!(engine.authenticate(AuthRequest::new(&token)).await.is_ok());
}

#[tokio::test]
async fn a_set_the_service_check_refuses_is_refused_at_build_and_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Signer::new("a-key"), Signer::new("b-key"));
    two_providers(dir.path(), &a, &b);
    let needs_b = |program: &claimgate_engine::Program| match program.provider_index("b") {
        Some(_) => Ok(()),
        None => Err("mount `m` names provider `b`, which the policies do not define".to_string()),
    };
    let engine = Engine::builder(PolicySource::dir(dir.path())).check_each_set(needs_b).build().await.unwrap();
    let token = b.sign(&claims("https://b.test", "svc"));
    assert!(engine.authenticate(AuthRequest::new(&token)).await.is_ok());

    // A valid set without provider `b`: the check refuses it, and `b` keeps serving.
    let text = std::fs::read_to_string(dir.path().join("policy.cg")).unwrap();
    write(dir.path(), "policy.cg", &text[..text.find("provider b {").unwrap()]);
    let error = engine.reload().await.unwrap_err();
    assert!(matches!(&error, LoadError::Refused(_)), "{error:?}");
    assert_eq!(error.to_string(), "mount `m` names provider `b`, which the policies do not define");
    assert!(engine.authenticate(AuthRequest::new(&token)).await.is_ok());
    // Without the check that set loads; with it, so does no engine built on it.
    assert!(Engine::builder(PolicySource::dir(dir.path())).build().await.is_ok());
    let error = Engine::builder(PolicySource::dir(dir.path())).check_each_set(needs_b).build().await.unwrap_err();
    assert!(matches!(error, LoadError::Refused(_)), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_that_waits_for_a_key_refetch_is_decided_on_the_set_in_force_after_it() {
    let pki = pki();
    let server = Server::start(&pki).await;
    let (old, new) = (Signer::new("old"), Signer::new("new"));
    server.set("/jwks", Reply::json(jwks(&[&old])));
    let url = server.url("/jwks");
    let policy = |condition: &str| {
        let role = format!(
            "role api {{\n  provider = idp\n  audience = any\n  require {{\n    {condition}\n  }}\n  identity = claims.sub\n}}\n"
        );
        PolicySource::text([("p.cg", remote_policy(&url, &pki.ca_pem, "", &role))])
    };
    let engine =
        Engine::builder(policy("claims.sub == \"svc\"")).kid_refetch_cooldown(Duration::ZERO).build().await.unwrap();
    // The issuer rotates to a key the cache lacks, and its answer takes a second: the login
    // waits for the refetch, and the policies reload meanwhile.
    server.set("/jwks", Reply { delay: Duration::from_secs(1), ..Reply::json(jwks(&[&old, &new])) });
    let token = new.sign(&claims("https://idp.test", "svc"));
    let login = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.authenticate(AuthRequest::new(&token)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    engine.reload_from(&policy("claims.sub == \"someone-else\"")).await.unwrap();
    let outcome = login.await.unwrap();
    assert_eq!(outcome.unwrap_err().code(), DenyCode::ClaimMismatch, "decided on the set that was replaced");
    assert_eq!(server.hits("/jwks"), 2);
}

#[tokio::test]
async fn a_token_that_expires_while_its_keys_are_refetched_is_refused() {
    let pki = pki();
    let server = Server::start(&pki).await;
    let (old, new) = (Signer::new("old"), Signer::new("new"));
    server.set("/jwks", Reply::json(jwks(&[&old])));
    let role = "role api {\n  provider = idp\n  audience = any\n  identity = claims.sub\n}\n";
    let policy = remote_policy(&server.url("/jwks"), &pki.ca_pem, "  clock_skew = 0s\n", role);
    let engine = Engine::builder(PolicySource::text([("p.cg", policy)]))
        .kid_refetch_cooldown(Duration::ZERO)
        .build()
        .await
        .unwrap();
    server.set("/jwks", Reply { delay: Duration::from_millis(2500), ..Reply::json(jwks(&[&old, &new])) });
    let now = common::now();
    let token = new.sign(&format!(r#"{{"iss":"https://idp.test","sub":"svc","iat":{now},"exp":{}}}"#, now + 1));
    let refused = engine.authenticate(AuthRequest::new(&token)).await.unwrap_err();
    assert_eq!(refused.code(), DenyCode::TokenExpired, "the clock is read again after the wait");
}

#[tokio::test]
async fn reload_keeps_the_key_cache_of_an_unchanged_source() {
    let pki = pki();
    let server = Server::start(&pki).await;
    let signer = Signer::new("k");
    server.set("/jwks", Reply::json(jwks(&[&signer])));
    let url = server.url("/jwks");
    let policy = |condition: &str| {
        let role = format!(
            "role api {{\n  provider = idp\n  audience = any\n  require {{\n    {condition}\n  }}\n  identity = claims.sub\n}}\n"
        );
        PolicySource::text([("p.cg", remote_policy(&url, &pki.ca_pem, "", &role))])
    };
    let engine = Engine::builder(policy("claims.sub == \"a\"")).build().await.unwrap();
    let token = signer.sign(&claims("https://idp.test", "b"));
    assert_eq!(engine.authenticate(AuthRequest::new(&token)).await.unwrap_err().code(), DenyCode::ClaimMismatch);
    engine.reload_from(&policy("claims.sub == \"b\"")).await.unwrap();
    assert!(engine.authenticate(AuthRequest::new(&token)).await.is_ok());
    assert_eq!(server.hits("/jwks"), 1, "the reload kept the provider's fetched keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_stay_right_while_policies_reload_and_keys_rotate() {
    let pki = pki();
    let server = Server::start(&pki).await;
    let signers: Vec<Signer> = (0..6).map(|i| Signer::new(&format!("k{i}"))).collect();
    server.set("/jwks", Reply::json(jwks(&[&signers[0]])));
    // Two versions of the policy that decide these tokens alike (they differ in another role).
    let (url, ca) = (server.url("/jwks"), pki.ca_pem.clone());
    let policy = move |extra: &str| {
        let roles = format!(
            "role api {{\n  provider = idp\n  audience = \"api\"\n  require {{\n    claims.sub glob \"svc-*\"\n  }}\n  identity = claims.sub\n}}\n\nrole other {{\n  provider = idp\n  audience = \"other\"\n  require {{\n    claims.sub == \"{extra}\"\n  }}\n}}\n"
        );
        PolicySource::text([("p.cg", remote_policy(&url, &ca, "  algorithms = [EdDSA]\n", &roles))])
    };
    let engine = Engine::builder(policy("x")).kid_refetch_cooldown(Duration::ZERO).build().await.unwrap();
    let signers = Arc::new(signers);
    let checked = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let (engine, signers, checked) = (engine.clone(), signers.clone(), checked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..150 {
                // Keys appear over time; a token is signed by a key the server already has.
                let signer = &signers[(i / 30).min(5)];
                let (sub, allowed) = if (i + worker) % 3 == 0 { ("intruder", false) } else { ("svc-1", true) };
                let token = signer.sign(&claims("https://idp.test", sub));
                let result = engine.authenticate(AuthRequest::new(&token)).await;
                match (allowed, result) {
                    (true, Ok(grant)) => assert_eq!(grant.identity(), "svc-1"),
                    (false, Err(error)) => assert_eq!(error.code(), DenyCode::NoRoleMatched, "{}", error.detail()),
                    (expected, result) => {
                        panic!("worker {worker} token {i}: expected allowed={expected}, got {result:?}")
                    }
                }
                checked.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Meanwhile: rotate keys (each new key is published before tokens use it) and reload.
    let rotator = {
        let (engine, signers, policy) = (engine.clone(), signers.clone(), policy.clone());
        let server_keys = Arc::new(server);
        let server = server_keys.clone();
        tokio::spawn(async move {
            for round in 0..20 {
                let published: Vec<&Signer> = signers.iter().collect();
                server.set("/jwks", Reply::json(jwks(&published)));
                engine.reload_from(&policy(if round % 2 == 0 { "y" } else { "x" })).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            server_keys
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    let _server = rotator.await.unwrap();
    assert_eq!(checked.load(Ordering::Relaxed), 600, "no decision lost");
}

#[tokio::test]
async fn bound_cidrs_hold_the_client_address() {
    let signer = Signer::new("k");
    let role = "role api {\n  provider = idp\n  audience = any\n  identity = claims.sub\n  token {\n    bound_cidrs = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n  }\n}\n";
    let (_dir, engine) = file_engine(&signer, role).await;
    let token = signer.sign(&claims("https://idp.test", "svc"));
    for (address, allowed) in [
        ("10.1.2.3", true),
        ("::ffff:10.9.9.9", true),
        ("2001:db8::1", true),
        ("11.0.0.1", false),
        ("2001:db9::1", false),
    ] {
        let result = engine.authenticate(AuthRequest::new(&token).client_address(address.parse().unwrap())).await;
        assert_eq!(result.is_ok(), allowed, "{address}");
        if let Err(error) = result {
            assert_eq!(error.code(), DenyCode::AddressNotAllowed);
            assert_eq!(error.kind(), ErrorKind::Forbidden);
        }
    }
    // No address known: a bound role refuses.
    let error = engine.authenticate(AuthRequest::new(&token)).await.unwrap_err();
    assert_eq!(error.code(), DenyCode::AddressNotAllowed);
}

#[tokio::test]
async fn errors_map_to_http_kinds_with_client_safe_messages() {
    let signer = Signer::new("k");
    let role = "role api {\n  provider = idp\n  audience = \"api\"\n  require {\n    claims.sub == \"svc\" message \"only the svc account\"\n  }\n}\n";
    let (_dir, engine) = file_engine(&signer, role).await;
    let other_issuer = signer.sign(&claims("https://other.test", "svc"));
    let cases = [
        (AuthRequest::new("not a token"), DenyCode::TokenMalformed, 401),
        (AuthRequest::new("x").role("nope"), DenyCode::UnknownRole, 400),
        // The role names its provider; a token of another issuer is not verified at all.
        (AuthRequest::new(&other_issuer).role("api"), DenyCode::IssuerMismatch, 401),
    ];
    for (request, code, status) in cases {
        let error = engine.authenticate(request).await.unwrap_err();
        assert_eq!((error.code(), error.kind().http_status()), (code, status));
    }
    let forbidden = signer.sign(&claims("https://idp.test", "admin"));
    let error = engine.authenticate(AuthRequest::new(&forbidden)).await.unwrap_err();
    assert_eq!((error.code(), error.kind().http_status()), (DenyCode::ClaimMismatch, 403));
    assert_eq!(error.message(), "the token may not log in here");
    assert!(error.detail().contains("only the svc account"), "{}", error.detail());
    assert!(error.detail().contains("\"admin\""), "{}", error.detail());
    let metrics = engine.metrics();
    assert_eq!(metrics.allows, 0);
    assert_eq!(metrics.denials.iter().map(|(_, n)| n).sum::<u64>(), 4);
}

#[tokio::test]
async fn the_verified_token_cache_skips_only_the_signature() {
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::new("k");
    write(dir.path(), "k.json", &jwks(&[&signer]));
    write(
        dir.path(),
        "p.cg",
        "provider idp {\n  issuer = \"https://idp.test\"\n  keys {\n    jwks_file = \"k.json\"\n  }\n}\n\nrole api {\n  provider = idp\n  audience = \"api\"\n  require {\n    claims.sub glob \"svc-*\"\n  }\n  identity = claims.sub\n}\n\nrole admin {\n  provider = idp\n  audience = \"api\"\n  require {\n    claims.sub == \"root\"\n  }\n}\n",
    );
    let engine =
        Engine::builder(PolicySource::dir(dir.path())).verified_token_cache(1000, 1 << 20).build().await.unwrap();
    let token = signer.sign(&claims("https://idp.test", "svc-1"));
    assert!(engine.authenticate(AuthRequest::new(&token)).await.is_ok());
    assert!(engine.authenticate(AuthRequest::new(&token)).await.is_ok());
    assert_eq!(engine.metrics().cache_hits, 1);
    // The role's conditions and the time claims still decide on every use.
    let error = engine.authenticate(AuthRequest::new(&token).role("admin")).await.unwrap_err();
    assert_eq!(error.code(), DenyCode::ClaimMismatch);
    let later = common::now() + 3600;
    let error = engine.authenticate(AuthRequest::new(&token).now(later)).await.unwrap_err();
    assert_eq!(error.code(), DenyCode::TokenExpired);
    assert_eq!(
        engine.authenticate(AuthRequest::new(&token).role("nope")).await.unwrap_err().code(),
        DenyCode::UnknownRole
    );
    assert_eq!(engine.metrics().cache_hits, 4);
    // A refused signature is never kept.
    let forged = Signer::new("k").sign(&claims("https://idp.test", "svc-1"));
    for _ in 0..2 {
        let error = engine.authenticate(AuthRequest::new(&forged)).await.unwrap_err();
        assert_eq!(error.code(), DenyCode::SignatureInvalid);
    }
    assert_eq!(engine.metrics().cache_hits, 4);
    // A reload (new keys from the file) drops every entry: the token is verified again, and
    // refused once its key is gone.
    write(dir.path(), "k.json", &jwks(&[&Signer::new("other")]));
    engine.reload().await.unwrap();
    let error = engine.authenticate(AuthRequest::new(&token)).await.unwrap_err();
    assert_eq!(error.code(), DenyCode::KeyNotFound);
    assert_eq!(engine.metrics().cache_hits, 4);
}

#[tokio::test]
async fn a_cached_token_is_verified_again_when_its_providers_keys_change() {
    let pki = pki();
    let server = Server::start(&pki).await;
    let (first, second) = (Signer::new("a"), Signer::new("b"));
    server.set("/jwks", Reply::json(jwks(&[&first])));
    let role = "role api {\n  provider = idp\n  audience = any\n  identity = claims.sub\n}\n";
    let text = remote_policy(&server.url("/jwks"), &pki.ca_pem, "", role);
    let engine = Engine::builder(PolicySource::text([("p.cg", text)]))
        .verified_token_cache(10, 1 << 20)
        .kid_refetch_cooldown(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let token = first.sign(&claims("https://idp.test", "svc"));
    assert!(engine.authenticate(AuthRequest::new(&token)).await.is_ok());
    // The issuer drops key `a`; a token under key `b` makes the engine fetch the new set.
    server.set("/jwks", Reply::json(jwks(&[&second])));
    assert!(engine.authenticate(AuthRequest::new(&second.sign(&claims("https://idp.test", "svc")))).await.is_ok());
    // The cached token was verified by the old set: it is verified again, and refused.
    let error = engine.authenticate(AuthRequest::new(&token)).await.unwrap_err();
    assert_eq!(error.code(), DenyCode::KeyNotFound);
    assert_eq!(engine.metrics().cache_hits, 0);
}

#[tokio::test]
async fn a_token_cached_before_a_reload_is_decided_afresh_after_it() {
    let pki = pki();
    let server = Server::start(&pki).await;
    let signer = Signer::new("k");
    server.set("/jwks", Reply::json(jwks(&[&signer])));
    let role = "role api {\n  provider = idp\n  audience = any\n  identity = claims.sub\n}\n";
    let text = remote_policy(&server.url("/jwks"), &pki.ca_pem, "", role);
    let source = PolicySource::text([("p.cg", text)]);
    let engine = Engine::builder(source.clone()).verified_token_cache(10, 1 << 20).build().await.unwrap();
    let token = signer.sign(&claims("https://idp.test", "svc"));
    assert!(engine.authenticate(AuthRequest::new(&token)).await.is_ok());
    // The same key source survives the reload (same key set); the cached entry belongs to the
    // old program: it is a miss, not a refusal.
    engine.reload_from(&source).await.unwrap();
    assert!(engine.authenticate(AuthRequest::new(&token)).await.is_ok());
    assert!(engine.authenticate(AuthRequest::new(&token)).await.is_ok());
    assert_eq!(engine.metrics().cache_hits, 1);
    assert_eq!(server.hits("/jwks"), 1);
}
