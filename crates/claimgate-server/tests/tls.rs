//! The HTTPS listener (rustls) with a certificate made at test time, and the refusal to serve
//! plain HTTP off loopback.

mod common;

use claimgate_server::{Config, Server};

#[tokio::test]
async fn serves_https_with_the_configured_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &ca).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ci = common::Signer::new("ci-1", "https://ci.example");
    let other = common::Signer::new("other-1", "https://other.example");
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/p.cg"), common::policy(&ci, &other)).unwrap();
    std::fs::write(dir.path().join("server.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
    let config_path = dir.path().join("serve.toml");
    std::fs::write(
        &config_path,
        "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[tls]\ncertificate = \"server.pem\"\nkey = \"server.key\"\n",
    )
    .unwrap();
    let server = Server::start(dir.path().join("policies"), Config::load(&config_path).unwrap()).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (address, task) = server
        .bind(async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .resolve("localhost", address)
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", address.port());
    let response = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let discovery: serde_json::Value =
        client.get(format!("{base}/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["issuer"], format!("https://127.0.0.1:{}", address.port()));
    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::new().get(format!("http://{address}/healthz")).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[test]
fn a_certificate_that_cannot_be_read_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.toml");
    std::fs::write(&path, "[tls]\ncertificate = \"missing.pem\"\nkey = \"missing.key\"\n").unwrap();
    let config = Config::load(&path).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let (ci, other) = (common::Signer::new("a", "https://a.example"), common::Signer::new("b", "https://b.example"));
    std::fs::write(dir.path().join("policies/p.cg"), common::policy(&ci, &other)).unwrap();
    let error = runtime.block_on(async {
        let server = Server::start(dir.path().join("policies"), config).await.unwrap();
        server.bind(std::future::pending()).await.unwrap_err().to_string()
    });
    assert!(error.starts_with(&format!("tls.certificate {}", dir.path().join("missing.pem").display())), "{error}");
}

/// A folder holding the test policies (`policies/p.cg`).
fn policy_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let (ci, other) = (common::Signer::new("a", "https://a.example"), common::Signer::new("b", "https://b.example"));
    std::fs::write(dir.path().join("policies/p.cg"), common::policy(&ci, &other)).unwrap();
    dir
}

/// Starts a server on `dir`'s policies with the configuration `text`, then `change`d through
/// its fields; the start's error as text.
async fn start_with(dir: &std::path::Path, text: &str, change: &dyn Fn(&mut Config)) -> Result<(), String> {
    let path = dir.join("serve.toml");
    std::fs::write(&path, text).unwrap();
    let mut config = Config::load(&path).unwrap();
    change(&mut config);
    Server::start(dir.join("policies"), config).await.map(|_| ()).map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_mount_or_account_naming_no_provider_is_refused_at_start() {
    let dir = policy_folder();
    let start = |text: &'static str| start_with(dir.path(), text, &|_| {});
    assert_eq!(
        start("data_dir = \"data\"\n[vault.mounts]\njwt = \"gitlab\"\n").await,
        Err("vault.mounts: mount `jwt` names provider `gitlab`, which the policies do not define".into())
    );
    // A setting written below `[accounts]` (TOML puts it in that table) whose value reads as a
    // provider name is caught here.
    assert_eq!(
        start("data_dir = \"data\"\n[accounts]\ndev = [\"ci\"]\naudit_logs = [\"stdout\"]\n").await,
        Err("accounts: account `audit_logs` names provider `stdout`, which the policies do not define".into())
    );
    assert_eq!(start("data_dir = \"data\"\n[accounts]\ndev = [\"ci\"]\nprod = [\"other\"]\n").await, Ok(()));
}

/// Settings changed through the public fields are checked at start as the file's are: a value
/// that would break the server (hyper refuses buffers under 8 KiB with a panic) is an error.
#[tokio::test]
async fn settings_changed_through_the_fields_are_checked_at_start() {
    let dir = policy_folder();
    let start = |change: &'static dyn Fn(&mut Config)| start_with(dir.path(), "data_dir = \"data\"\n", change);
    assert_eq!(
        start(&|c| c.limits.max_header_bytes = 100).await,
        Err("limits.max_header_bytes: must be at least 16384 (a batch token alone may be 8 KiB)".into())
    );
    assert_eq!(
        start(&|c| c.limits.max_connections = usize::MAX).await,
        Err("limits.max_connections: must be between 1 and 1048576".into())
    );
    assert_eq!(
        start(&|c| c.listen = "0.0.0.0:8200".parse().unwrap()).await.unwrap_err().split(':').next(),
        Some("listen")
    );
    assert_eq!(
        start(&|c| c.store_url = Some("postgres://claimgate@db.internal/x".into()))
            .await
            .unwrap_err()
            .split(':')
            .next(),
        Some("store")
    );
    assert_eq!(start(&|_| {}).await, Ok(()));
}

/// The router embedded in another axum server: with the connection's address it serves;
/// without it, logins are refused (500) rather than decided without `bound_cidrs`.
#[tokio::test]
async fn the_router_embeds_in_an_axum_server_that_provides_connect_info() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let (ci, other) =
        (common::Signer::new("ci-1", "https://ci.example"), common::Signer::new("b", "https://b.example"));
    std::fs::write(dir.path().join("policies/p.cg"), common::policy(&ci, &other)).unwrap();
    let path = dir.path().join("serve.toml");
    std::fs::write(&path, "data_dir = \"data\"\n").unwrap();
    let server = Server::start(dir.path().join("policies"), Config::load(&path).unwrap()).await.unwrap();
    let jwt = ci.token(serde_json::json!({ "aud": "vault", "sub": "job", "project": "app" }));
    for with_address in [true, false] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = server.router();
        tokio::spawn(async move {
            if with_address {
                axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
            } else {
                axum::serve(listener, router).await
            }
        });
        let status = reqwest::Client::new()
            .post(format!("http://{address}/v1/auth/ci/login"))
            .json(&serde_json::json!({ "jwt": jwt }))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, if with_address { 200 } else { 500 });
    }
}
