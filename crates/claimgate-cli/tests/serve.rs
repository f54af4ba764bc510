//! `claimgate serve` as users run it, with clients no one here wrote: hvac (the Python Vault
//! client), curl as Conjur's documentation writes the requests, joserfc verifying the tokens
//! the server signs, the npm `oidc-provider` as the IdP, and a PostgreSQL server shared by two
//! server processes.
//!
//! Needs python3 with `tests/clients/requirements.txt`, curl, node with
//! `npm ci --prefix crates/claimgate-engine/tests/oidc`, and PostgreSQL's server binaries
//! (`.ci/run` installs them all). Without one of them a local run skips that test with a loud
//! message; under CI (`CI=true`) it fails instead.

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Whether a prerequisite is here; under CI it must be.
fn available(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("a `claimgate serve` test cannot run under CI: {what} is missing");
    }
    eprintln!("\n*** SKIPPED: a `claimgate serve` test did not run: {what} is missing ***\n");
    false
}

fn python_has(module: &str) -> bool {
    Command::new("python3").args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success())
}

struct Signer {
    pair: Ed25519KeyPair,
    issuer: String,
}

impl Signer {
    fn new(issuer: &str) -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        Signer { pair: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(), issuer: issuer.into() }
    }

    fn jwk(&self) -> String {
        format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{}","kid":"k1"}}"#, B64.encode(self.pair.public_key().as_ref()))
    }

    fn token(&self, mut claims: Value) -> String {
        let now = unix_now();
        let object = claims.as_object_mut().unwrap();
        object.insert("iss".into(), self.issuer.clone().into());
        object.insert("iat".into(), now.into());
        object.insert("exp".into(), (now + 600).into());
        let header = B64.encode(r#"{"alg":"EdDSA","typ":"JWT","kid":"k1"}"#);
        let payload = B64.encode(claims.to_string());
        let signature = self.pair.sign(format!("{header}.{payload}").as_bytes());
        format!("{header}.{payload}.{}", B64.encode(signature.as_ref()))
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn policy(ci: &Signer) -> String {
    format!(
        r#"
provider ci {{
  issuer = "{}"
  keys {{ jwk = """{}""" }}
}}

role deploy {{
  provider = ci
  audience = "vault"
  require {{ claims.project == "app" }}
  identity = "host/jwt-apps/" + claims.project
  policies = ["ci-base", "Deployer"]
  token {{
    ttl = 15m
    max_ttl = 1h
  }}
}}

role limited {{
  provider = ci
  audience = "limited"
  identity = claims.sub
  token {{
    ttl = 10m
    num_uses = 5
  }}
}}
"#,
        ci.issuer,
        ci.jwk()
    )
}

/// A `claimgate serve` process; killed when dropped.
struct Serve {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Starts the server on the policies in `policies` with this configuration (written next to
    /// them); returns once it listens.
    fn start(dir: &Path, name: &str, config: &str) -> Serve {
        let config_path = dir.join(format!("{name}.toml"));
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_claimgate"))
            .args(["serve", "--policies"])
            .arg(dir.join("policies"))
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (found, address) = std::sync::mpsc::channel();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = log.clone();
        std::thread::spawn(move || {
            while let Some(Ok(line)) = lines.next() {
                if let Some(at) = line.find("address=") {
                    let rest = &line[at + "address=".len()..];
                    let _ = found.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let Ok(address) = address.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("the server did not start:\n{}", log.lock().unwrap());
        };
        Serve { child, base: format!("http://{address}"), log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }
}

fn setup(ci: &Signer) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/ci.cg"), policy(ci)).unwrap();
    dir
}

const CONFIG: &str = "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\naccounts = [\"myorg\"]\n";

/// curl with these arguments; (HTTP status, headers, body).
fn curl(args: &[&str]) -> (u16, String, Vec<u8>) {
    let output =
        Command::new("curl").args(["-s", "-D", "/dev/stderr", "-o", "-"]).args(args).output().expect("curl runs");
    let headers = String::from_utf8_lossy(&output.stderr).to_string();
    let status = headers.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, headers, output.stdout)
}

#[test]
fn hvac_logs_in_looks_up_renews_and_revokes() {
    if !available("python3 with hvac (tests/clients/requirements.txt)", python_has("hvac")) {
        return;
    }
    let ci = Signer::new("https://ci.example");
    let dir = setup(&ci);
    let server = Serve::start(dir.path(), "serve", &format!("{CONFIG}[vault.mounts]\njwt = \"ci\"\n"));
    let deploy = ci.token(json!({ "aud": "vault", "sub": "job", "project": "app" }));
    let limited = ci.token(json!({ "aud": "limited", "sub": "svc" }));
    let output = Command::new("python3")
        .arg(clients_dir().join("hvac_flow.py"))
        .args([&server.base, "jwt", &deploy, &limited])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("hvac: all checks passed"),
        "{stdout}\n{}\nserver:\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
}

/// Logs in at `base` (Vault, mount `ci`): (token, accessor).
fn vault_login(base: &str, jwt: &str) -> (String, String) {
    let body = json!({ "jwt": jwt }).to_string();
    let (status, _, body) = curl(&["-X", "POST", "--data", &body, &format!("{base}/v1/auth/ci/login")]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let body: Value = serde_json::from_slice(&body).unwrap();
    (body["auth"]["client_token"].as_str().unwrap().into(), body["auth"]["accessor"].as_str().unwrap().into())
}

/// `lookup-self`'s status for `token` at `base`.
fn lookup_status(base: &str, token: &str) -> u16 {
    curl(&["-H", &format!("X-Vault-Token: {token}"), &format!("{base}/v1/auth/token/lookup-self")]).0
}

/// `claimgate revoke --config FILE ARGS...`: (exit code, stdout, stderr).
fn revoke(config: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_claimgate"))
        .arg("revoke")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

/// An operator revokes a running server's tokens from the command line (the embedded store):
/// by role, by accessor, by identity; the next use of each is refused, the others keep working.
#[test]
fn an_operator_revokes_live_tokens_while_the_server_runs() {
    if !available("curl", Command::new("curl").arg("--version").output().is_ok()) {
        return;
    }
    let ci = Signer::new("https://ci.example");
    let dir = setup(&ci);
    let server = Serve::start(dir.path(), "serve", CONFIG);
    let config = dir.path().join("serve.toml");
    let deploy = || vault_login(&server.base, &ci.token(json!({ "aud": "vault", "project": "app" })));
    let limited = |sub: &str| vault_login(&server.base, &ci.token(json!({ "aud": "limited", "sub": sub })));
    let (d1, _) = deploy();
    let (d2, _) = deploy();
    let (l1, l1_accessor) = limited("svc-1");
    let (l2, _) = limited("svc-2");
    let (l3, _) = limited("svc-3");

    assert_eq!(revoke(&config, &["--role", "deploy"]), (0, "revoked 2 tokens\n".into(), String::new()));
    assert_eq!([d1.as_str(), d2.as_str()].map(|t| lookup_status(&server.base, t)), [403, 403]);
    assert_eq!(lookup_status(&server.base, &l1), 200, "another role's token keeps working");
    // Once revoked, a token is not counted again.
    assert_eq!(revoke(&config, &["--role", "deploy"]).1, "revoked 0 tokens\n");

    assert_eq!(revoke(&config, &["--accessor", &l1_accessor]).1, "revoked 1 token\n");
    assert_eq!(lookup_status(&server.base, &l1), 403);
    // Every field given must match: this identity's token, but not of this role.
    assert_eq!(revoke(&config, &["--identity", "svc-2", "--role", "deploy"]).1, "revoked 0 tokens\n");
    let (code, out, _) = revoke(&config, &["--identity", "svc-2", "--provider", "ci", "--format", "json"]);
    assert_eq!((code, serde_json::from_str::<Value>(&out).unwrap()), (0, json!({ "revoked": 1 })));
    assert_eq!([l2.as_str(), l3.as_str()].map(|t| lookup_status(&server.base, t)), [403, 200]);

    // A configuration whose data folder holds no store (a copy elsewhere): refused, not an
    // empty new store in which nothing is revoked.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("serve.toml"), CONFIG).unwrap();
    let (code, out, err) = revoke(&elsewhere.path().join("serve.toml"), &["--role", "limited"]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(err.starts_with("error: no token store at ") && err.contains("run this where the server keeps"), "{err}");
    assert!(!elsewhere.path().join("data").exists(), "nothing was created");
    assert_eq!(lookup_status(&server.base, &l3), 200);

    // Naming no token is refused, not taken as "every token".
    let (code, out, err) = revoke(&config, &[]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(err, "error: name the tokens to revoke: an accessor, a provider, a role or an identity\n");
    assert_eq!(lookup_status(&server.base, &l3), 200);
}

#[test]
fn conjur_flows_with_curl_as_documented_and_tokens_verified_by_joserfc_and_the_engine() {
    if !available("curl", Command::new("curl").arg("--version").output().is_ok())
        || !available("python3 with joserfc (tests/clients/requirements.txt)", python_has("joserfc"))
    {
        return;
    }
    let ci = Signer::new("https://ci.example");
    let dir = setup(&ci);
    let server = Serve::start(dir.path(), "serve", CONFIG);
    let jwt = ci.token(json!({ "aud": "vault", "sub": "job", "project": "app" }));
    let jwt_arg = format!("jwt={jwt}");
    // As Conjur's documentation writes it: form body, --data-urlencode, Accept-Encoding: base64,
    // the host id URL-encoded.
    let url = format!("{}/authn-jwt/ci/myorg/host%2Fjwt-apps%2Fapp/authenticate", server.base);
    let (status, headers, body) = curl(&[
        "--request",
        "POST",
        &url,
        "--header",
        "Content-Type: application/x-www-form-urlencoded",
        "--header",
        "Accept-Encoding: base64",
        "--data-urlencode",
        &jwt_arg,
    ]);
    assert_eq!(status, 200, "{headers}\n{}", server.log());
    assert!(headers.to_ascii_lowercase().contains("content-encoding: base64"), "{headers}");
    let jwks_path = dir.path().join("jwks.json");
    let (_, _, jwks) = curl(&[&format!("{}/.well-known/jwks.json", server.base)]);
    std::fs::write(&jwks_path, &jwks).unwrap();
    let token_path = dir.path().join("token.b64");
    std::fs::write(&token_path, &body).unwrap();
    let verified = Command::new("python3")
        .arg(clients_dir().join("verify_conjur.py"))
        .args([&jwks_path, &token_path])
        .arg("base64")
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stdout));
    let claims: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(claims["sub"], "host/jwt-apps/app");
    assert_eq!(claims["iss"], server.base.as_str());

    // Without base64: the JSON token; the same verification.
    let url = format!("{}/authn-jwt/ci/myorg/authenticate", server.base);
    let (status, headers, body) = curl(&["--request", "POST", &url, "--data-urlencode", &jwt_arg]);
    assert_eq!(status, 200);
    assert!(headers.to_ascii_lowercase().contains("content-type: application/json"), "{headers}");
    std::fs::write(&token_path, &body).unwrap();
    let verified = Command::new("python3")
        .arg(clients_dir().join("verify_conjur.py"))
        .args([&jwks_path, &token_path])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stdout));

    // A tampered token does not verify.
    let mut token: Value = serde_json::from_slice(&body).unwrap();
    let forged =
        B64.encode(json!({ "iat": 1, "sub": "host/admin", "exp": 9999999999i64, "iss": server.base }).to_string());
    token["payload"] = forged.clone().into();
    std::fs::write(&token_path, token.to_string()).unwrap();
    let verified = Command::new("python3")
        .arg(clients_dir().join("verify_conjur.py"))
        .args([&jwks_path, &token_path])
        .output()
        .unwrap();
    assert!(!verified.status.success(), "a forged payload must not verify");

    // claimgate's own engine verifies the issued tokens through the server's discovery.
    let token: Value = serde_json::from_slice(&body).unwrap();
    let compact = format!(
        "{}.{}.{}",
        token["protected"].as_str().unwrap(),
        token["payload"].as_str().unwrap(),
        token["signature"].as_str().unwrap()
    );
    let downstream = dir.path().join("downstream");
    std::fs::create_dir(&downstream).unwrap();
    std::fs::write(
        downstream.join("conjur.cg"),
        format!(
            "provider conjur {{\n  issuer = \"{0}\"\n  keys {{ discovery_url = \"{0}\" }}\n  algorithms = [EdDSA]\n}}\n\
             role hosts {{\n  provider = conjur\n  audience = any\n  require {{ claims.sub glob \"host/jwt-apps/*\" }}\n}}\n",
            server.base
        ),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let engine = claimgate_engine::Engine::builder(claimgate_engine::PolicySource::dir(&downstream))
            .require_keys_at_start(true)
            .build()
            .await
            .unwrap();
        let grant = engine.authenticate(claimgate_engine::AuthRequest::new(&compact)).await.unwrap();
        assert_eq!(grant.identity(), "host/jwt-apps/app");
        let forged =
            format!("{}.{forged}.{}", token["protected"].as_str().unwrap(), token["signature"].as_str().unwrap());
        let refused = engine.authenticate(claimgate_engine::AuthRequest::new(&forged)).await.unwrap_err();
        assert_eq!(refused.code(), claimgate_engine::DenyCode::SignatureInvalid);
    });

    // A host id with a header injection, an unknown account, a malformed form.
    for (path, data, expected) in [
        ("/authn-jwt/ci/myorg/host%2Fa%0D%0ASet-Cookie:%20x=y/authenticate", jwt_arg.as_str(), 400),
        ("/authn-jwt/ci/nobody/authenticate", jwt_arg.as_str(), 401),
        ("/authn-jwt/ci/myorg/authenticate", "jwt", 400),
        ("/authn-jwt/ci/myorg/authenticate", "jwt=a.b", 401),
    ] {
        let url = format!("{}{path}", server.base);
        let (status, headers, body) = curl(&["--request", "POST", &url, "--data-urlencode", data]);
        assert_eq!(status, expected, "{path}");
        assert!(!headers.to_ascii_lowercase().contains("set-cookie"), "{headers}");
        assert!(body.is_empty(), "{path}: nothing leaks");
    }
}

/// A scrape before any login shows every metric docs/serve.md lists.
#[test]
fn metrics_lists_every_documented_metric_before_its_first_event() {
    let ci = Signer::new("https://ci.example");
    let dir = setup(&ci);
    let server = Serve::start(dir.path(), "serve", CONFIG);
    let (status, headers, body) = curl(&[&format!("{}/metrics", server.base)]);
    assert_eq!(status, 200, "{headers}");
    let text = String::from_utf8(body).unwrap();
    for name in [
        "# TYPE claimgate_logins_total counter",
        "claimgate_logins_total{code=\"allow\",provider=\"ci\"} 0",
        "# TYPE claimgate_login_duration_seconds histogram",
        "claimgate_login_duration_seconds_count{provider=\"ci\"} 0",
        "claimgate_key_fetches_total{result=\"error\"} 0",
        "claimgate_kid_refetches_total{result=\"rate_limited\"} 0",
        "claimgate_verified_token_cache_hits_total 0",
        "claimgate_store_errors_total 0",
        "claimgate_policy_reloads_total{result=\"ok\"} 0",
        "claimgate_audit_write_errors_total 0",
    ] {
        assert!(text.lines().any(|l| l == name), "{name} missing:\n{text}");
    }
}

/// Slow clients are cut off, a reload by SIGHUP takes effect, and SIGTERM lets a request in
/// flight finish before the process exits.
#[test]
fn slow_clients_reload_on_sighup_and_graceful_stop() {
    let ci = Signer::new("https://ci.example");
    let dir = setup(&ci);
    let config = format!("{CONFIG}[limits]\nheader_timeout = \"1s\"\nshutdown_grace = \"10s\"\n");
    let mut server = Serve::start(dir.path(), "serve", &config);
    let address = server.base.trim_start_matches("http://").to_string();

    // A client that sends half a request head is disconnected after the header timeout.
    let mut slow = TcpStream::connect(&address).unwrap();
    slow.write_all(b"POST /v1/jwt-login HTTP/1.1\r\nHost: x\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    assert!(started.elapsed() < Duration::from_secs(8), "the slow client was cut off");

    // SIGHUP reloads: the role now wants another project.
    let jwt = ci.token(json!({ "aud": "vault", "sub": "job", "project": "app" }));
    let login = |base: &str| {
        let body = json!({ "role": "deploy", "jwt": jwt }).to_string();
        curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            &body,
            &format!("{base}/v1/auth/ci/login"),
        ])
        .0
    };
    assert_eq!(login(&server.base), 200);
    let file = dir.path().join("policies/ci.cg");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("claims.project == \"app\"", "claims.project == \"other\"")).unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while login(&server.base) != 400 {
        assert!(Instant::now() < deadline, "the reload did not take effect:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }

    // A request in flight when SIGTERM comes is answered; then the process exits cleanly.
    let mut in_flight = TcpStream::connect(&address).unwrap();
    let body = r#"{"provider":"ci","role":"deploy","jwt":"x"}"#;
    write!(
        in_flight,
        "POST /v1/jwt-login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    in_flight.write_all(&body.as_bytes()[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    in_flight.write_all(&body.as_bytes()[10..]).unwrap();
    in_flight.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    let _ = in_flight.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "the request in flight was answered: {answer:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}\n{}", server.log());
            break;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PostgreSQL server started from the distribution's binaries in a temporary folder,
/// listening on 127.0.0.1; stopped when dropped.
struct Postgres {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGQUIT: PostgreSQL's immediate shutdown (it stops its workers too).
        let _ = Command::new("kill").args(["-QUIT", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> =
        std::fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path().join("bin")).collect();
    versions.sort();
    versions.into_iter().rev().find(|bin| bin.join("postgres").exists() && bin.join("initdb").exists())
}

impl Postgres {
    /// PostgreSQL on 127.0.0.1; with `tls` (certificate PEM, key PEM), serving TLS with them.
    fn start(bin: &Path, tls: Option<(&str, &str)>) -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pgdata");
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        // PostgreSQL refuses to run as root: as root, it runs as the `postgres` system user
        // (setpriv execs, so that the child is the postmaster itself).
        let as_user = |program: PathBuf| -> Command {
            if root {
                let mut c = Command::new("setpriv");
                c.args(["--reuid", "postgres", "--regid", "postgres", "--init-groups", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            }
        };
        if root {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::create_dir(&data).unwrap();
            assert!(Command::new("chown").args(["postgres:postgres"]).arg(&data).status().unwrap().success());
        }
        let init = as_user(bin.join("initdb"))
            .args(["-A", "trust", "-U", "claimgate", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut settings = vec!["max_connections=100".to_string(), "fsync=on".to_string()];
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt;
            for (name, text) in [("server.crt", cert), ("server.key", key)] {
                let path = data.join(name);
                std::fs::write(&path, text).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
                if root {
                    assert!(Command::new("chown").args(["postgres:postgres"]).arg(&path).status().unwrap().success());
                }
            }
            settings.push("ssl=on".into());
        }
        let mut postgres = as_user(bin.join("postgres"));
        postgres.arg("-D").arg(&data).args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"]).arg(&data);
        for setting in &settings {
            postgres.args(["-c", setting]);
        }
        let child = postgres.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .output()
                .unwrap();
            if ready.status.success() {
                break;
            }
            assert!(Instant::now() < deadline, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Postgres { child, url: format!("postgres://claimgate@127.0.0.1:{port}/postgres"), _dir: dir }
    }
}

/// Two server processes on one PostgreSQL store: a token with `num_uses = 5`, presented 20
/// times at once across both, succeeds exactly 5 times; a token revoked on one node is refused
/// on the other; both publish the same signing keys.
#[test]
fn two_nodes_on_one_postgres_store_count_uses_exactly() {
    let Some(bin) = postgres_bin() else {
        available("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)", false);
        return;
    };
    if !available("curl", Command::new("curl").arg("--version").output().is_ok()) {
        return;
    }
    // The store is reached over TLS, verified against the test's CA (the certificate names
    // 127.0.0.1): the way a store off the machine must be reached.
    let (ca, cert, key) = pki();
    let postgres = Postgres::start(&bin, Some((&cert, &key)));
    let ci = Signer::new("https://ci.example");
    let dir = setup(&ci);
    std::fs::write(dir.path().join("pg-ca.pem"), &ca).unwrap();
    let config = format!("{CONFIG}store = \"{}\"\nstore_ca = \"pg-ca.pem\"\n", postgres.url);
    let a = Serve::start(dir.path(), "a", &config.replace("data_dir = \"data\"", "data_dir = \"data-a\""));
    let b = Serve::start(dir.path(), "b", &config.replace("data_dir = \"data\"", "data_dir = \"data-b\""));

    let login = |base: &str, jwt: &str| {
        let body = json!({ "jwt": jwt }).to_string();
        let (status, _, body) = curl(&["-X", "POST", "--data", &body, &format!("{base}/v1/auth/ci/login")]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let body: Value = serde_json::from_slice(&body).unwrap();
        body["auth"]["client_token"].as_str().unwrap().to_string()
    };
    let token = login(&a.base, &ci.token(json!({ "aud": "limited", "sub": "svc" })));
    let header = format!("X-Vault-Token: {token}");
    let uses: Vec<_> = (0..20)
        .map(|i| {
            let base = if i % 2 == 0 { a.base.clone() } else { b.base.clone() };
            let header = header.clone();
            std::thread::spawn(move || curl(&["-H", &header, &format!("{base}/v1/auth/token/lookup-self")]).0)
        })
        .collect();
    let statuses: Vec<u16> = uses.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 15, "{statuses:?}");

    // Revoked on one node, refused on the other.
    let token = login(&b.base, &ci.token(json!({ "aud": "vault", "sub": "job", "project": "app" })));
    let header = format!("X-Vault-Token: {token}");
    assert_eq!(curl(&["-H", &header, &format!("{}/v1/auth/token/lookup-self", a.base)]).0, 200);
    assert_eq!(curl(&["-X", "POST", "-H", &header, &format!("{}/v1/auth/token/revoke-self", a.base)]).0, 204);
    assert_eq!(curl(&["-H", &header, &format!("{}/v1/auth/token/lookup-self", b.base)]).0, 403);

    // An operator revokes an identity's tokens in the shared store: refused on both nodes.
    let (on_a, _) = vault_login(&a.base, &ci.token(json!({ "aud": "limited", "sub": "leaked" })));
    let (on_b, _) = vault_login(&b.base, &ci.token(json!({ "aud": "limited", "sub": "leaked" })));
    let (kept, _) = vault_login(&b.base, &ci.token(json!({ "aud": "limited", "sub": "fine" })));
    let (code, out, err) = revoke(&dir.path().join("a.toml"), &["--identity", "leaked"]);
    assert_eq!((code, out.as_str()), (0, "revoked 2 tokens\n"), "{err}");
    assert_eq!([&on_a, &on_b].map(|t| (lookup_status(&a.base, t), lookup_status(&b.base, t))), [(403, 403); 2]);
    assert_eq!(lookup_status(&a.base, &kept), 200);

    let keys = |base: &str| {
        let (_, _, body) = curl(&[&format!("{base}/.well-known/jwks.json")]);
        let jwks: Value = serde_json::from_slice(&body).unwrap();
        let mut kids: Vec<String> =
            jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect();
        kids.sort();
        kids
    };
    assert_eq!(keys(&a.base), keys(&b.base), "both nodes publish the same signing keys");

    // Every session of the two nodes is encrypted, as PostgreSQL itself reports.
    let sessions = Command::new("psql")
        .arg(format!("{}?sslmode=disable", postgres.url))
        .args(["-At", "-c"])
        .arg(
            "SELECT count(*), bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'claimgate'",
        )
        .output()
        .unwrap();
    let sessions = String::from_utf8_lossy(&sessions.stdout).trim().to_string();
    let (count, all_tls) = sessions.split_once('|').unwrap_or_else(|| panic!("psql: {sessions:?}"));
    assert!(count.parse::<u32>().unwrap() >= 2 && all_tls == "t", "sessions (count|all TLS): {sessions}");

    // A node that does not trust the database's certificate does not start.
    let (other_ca, _, _) = pki();
    std::fs::write(dir.path().join("other-ca.pem"), &other_ca).unwrap();
    std::fs::write(dir.path().join("c.toml"), config.replace("pg-ca.pem", "other-ca.pem")).unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_claimgate"))
        .args(["serve", "--policies"])
        .arg(dir.path().join("policies"))
        .arg("--config")
        .arg(dir.path().join("c.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("certificate"), "{stderr}");
    drop(postgres);
    // The store down: logins fail closed with 503, readiness says why.
    std::thread::sleep(Duration::from_millis(500));
    let jwt = ci.token(json!({ "aud": "vault", "sub": "job", "project": "app" }));
    let body = json!({ "jwt": jwt }).to_string();
    let (status, _, _) = curl(&["-X", "POST", "--data", &body, &format!("{}/v1/auth/ci/login", a.base)]);
    assert_eq!(status, 503);
    let (status, _, ready) = curl(&[&format!("{}/readyz", a.base)]);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&ready));
    // In a stable text: the database's own words (its address, its user) are for the log only.
    let ready: serde_json::Value = serde_json::from_slice(&ready).unwrap();
    assert_eq!(
        ready["store"],
        json!({ "reachable": false, "error": "the store does not answer; the server's log says why" })
    );
}

fn oidc_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../claimgate-engine/tests/oidc")
}

/// A CA and a certificate for 127.0.0.1, made now: (CA PEM, certificate PEM, key PEM).
fn pki() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair as CertKey, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "claimgate test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca, CertKey::generate().unwrap()).unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = CertKey::generate().unwrap();
    let cert = leaf.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// The end-to-end path with a real IdP: `oidc-provider` issues a client-credentials token, the
/// server finds its keys through discovery, the workload logs in through each endpoint. Then
/// the IdP goes down: its tokens get 503 once its keys are older than `cache_max_age`, and the
/// other provider's logins go on.
#[test]
fn oidc_provider_tokens_log_in_through_every_endpoint() {
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !available("node", node)
        || !available(
            "oidc-provider (npm ci --prefix crates/claimgate-engine/tests/oidc)",
            oidc_dir().join("node_modules/oidc-provider").is_dir(),
        )
        || !available("curl", Command::new("curl").arg("--version").output().is_ok())
    {
        return;
    }
    let ci = Signer::new("https://ci.example");
    let dir = setup(&ci);
    let (ca, cert, key) = pki();
    for (name, text) in [("ca.pem", &ca), ("op.pem", &cert), ("op.key", &key)] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let mut op = Command::new("node")
        .arg("op.mjs")
        .arg("0")
        .current_dir(oidc_dir())
        .env("TLS_CERT", dir.path().join("op.pem"))
        .env("TLS_KEY", dir.path().join("op.key"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(op.stdout.take().unwrap()).lines();
    let ready: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    let issuer = ready["issuer"].as_str().unwrap().to_string();
    std::fs::copy(dir.path().join("ca.pem"), dir.path().join("policies/ca.pem")).unwrap();
    std::fs::write(
        dir.path().join("policies/op.cg"),
        format!(
            r#"
provider op {{
  issuer = "{issuer}"
  keys {{
    discovery_url = "{issuer}"
    ca_file = "ca.pem"
    refresh = 10s
    cache_max_age = 10s
  }}
  algorithms = [RS256, ES256]
  typ = "at+jwt"
}}

role api-client {{
  provider = op
  audience = "https://api.example/rs256"
  require {{
    claims.client_id == "svc"
    claims.scope words contains "api:read"
  }}
  identity = "host/clients/" + claims.client_id
  token {{ ttl = 5m }}
}}
"#
        ),
    )
    .unwrap();
    let server = Serve::start(dir.path(), "serve", CONFIG);
    let ca_path = dir.path().join("ca.pem");
    let ca_arg = ca_path.to_str().unwrap();
    let (status, _, body) = curl(&[
        "--cacert",
        ca_arg,
        "-u",
        "svc:svc-secret",
        "-d",
        "grant_type=client_credentials",
        "-d",
        "scope=api:read",
        "-d",
        "resource=https://api.example/rs256",
        &format!("{issuer}/token"),
    ]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).unwrap();
    let token = answer["access_token"].as_str().unwrap().to_string();

    let vault = json!({ "role": "api-client", "jwt": token }).to_string();
    let (status, _, body) = curl(&["-X", "POST", "--data", &vault, &format!("{}/v1/auth/op/login", server.base)]);
    assert_eq!(status, 200, "{}\n{}", String::from_utf8_lossy(&body), server.log());
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["auth"]["lease_duration"], 300);

    let form = format!("jwt={token}");
    let url = format!("{}/authn-jwt/op/myorg/host%2Fclients%2Fsvc/authenticate", server.base);
    let (status, _, _) = curl(&["-X", "POST", "-H", "Accept-Encoding: base64", "--data-urlencode", &form, &url]);
    assert_eq!(status, 200);

    let strongbox = json!({ "provider": "op", "role": "api-client", "jwt": token }).to_string();
    let (status, _, body) = curl(&["-X", "POST", "--data", &strongbox, &format!("{}/v1/jwt-login", server.base)]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // The key source goes down: stale keys serve until cache_max_age, then 503 for this
    // provider only.
    let _ = op.kill();
    let _ = op.wait();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, _) = curl(&["-X", "POST", "--data", &vault, &format!("{}/v1/auth/op/login", server.base)]);
        if status == 503 {
            break;
        }
        assert_eq!(status, 200, "until then the cached keys serve");
        assert!(Instant::now() < deadline, "the provider never became unavailable:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    let (status, _, ready) = curl(&[&format!("{}/readyz", server.base)]);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&ready));
    let deploy = json!({ "role": "deploy", "jwt": ci.token(json!({ "aud": "vault", "project": "app" })) }).to_string();
    let (status, _, _) = curl(&["-X", "POST", "--data", &deploy, &format!("{}/v1/auth/ci/login", server.base)]);
    assert_eq!(status, 200, "the other provider is not affected");
}
