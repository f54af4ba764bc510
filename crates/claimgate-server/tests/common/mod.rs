//! A server started in this process on 127.0.0.1 with a fresh data folder, and Ed25519 signers
//! for the tokens of its two providers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use claimgate_server::{Config, Server};
use ring::signature::{Ed25519KeyPair, KeyPair};

pub struct Signer {
    pair: Ed25519KeyPair,
    pub kid: String,
    pub issuer: String,
}

impl Signer {
    pub fn new(kid: &str, issuer: &str) -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        Signer { pair: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(), kid: kid.into(), issuer: issuer.into() }
    }

    pub fn jwk(&self) -> String {
        format!(
            r#"{{"kty":"OKP","crv":"Ed25519","x":"{}","kid":"{}","alg":"EdDSA"}}"#,
            B64.encode(self.pair.public_key().as_ref()),
            self.kid
        )
    }

    /// A token with these claims plus `iss`, `iat` and `exp` (an hour from now).
    pub fn token(&self, claims: serde_json::Value) -> String {
        let now = now();
        let mut claims = claims;
        let object = claims.as_object_mut().unwrap();
        object.entry("iss").or_insert(self.issuer.clone().into());
        object.entry("iat").or_insert(now.into());
        object.entry("exp").or_insert((now + 3600).into());
        let header = B64.encode(format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, self.kid));
        let payload = B64.encode(claims.to_string());
        let signature = self.pair.sign(format!("{header}.{payload}").as_bytes());
        format!("{header}.{payload}.{}", B64.encode(signature.as_ref()))
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The policies of the tests: provider `ci` with roles for each token setting, and provider
/// `other` with one role.
pub fn policy(ci: &Signer, other: &Signer) -> String {
    format!(
        r#"
provider ci {{
  issuer = "{ci_iss}"
  keys {{ jwk = """{ci_jwk}""" }}
}}

provider other {{
  issuer = "{other_iss}"
  keys {{ jwk = """{other_jwk}""" }}
}}

role deploy {{
  provider = ci
  audience = "vault"
  require {{ claims.project == "app" }}
  identity = "host/jwt-apps/" + claims.project
  metadata {{ project = claims.project }}
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

role batchy {{
  provider = ci
  audience = "batch"
  identity = claims.sub
  token {{
    ttl = 5m
    type = batch
  }}
}}

role fenced {{
  provider = ci
  audience = "fenced"
  identity = claims.sub
  token {{ bound_cidrs = ["10.0.0.0/8"] }}
}}

role periodic {{
  provider = ci
  audience = "periodic"
  identity = claims.sub
  token {{
    period = 1h
    explicit_max_ttl = 2h
  }}
}}

role chatty {{
  provider = ci
  audience = "chatty"
  identity = claims.sub
  verbose_logging = true
}}

role tenanted {{
  provider = ci
  audience = "tenanted"
  identity = claims.sub
  metadata {{ tenant = claims.tenant }}
}}

role other-role {{
  provider = other
  audience = any
  identity = claims.sub
}}
"#,
        ci_iss = ci.issuer,
        ci_jwk = ci.jwk(),
        other_iss = other.issuer,
        other_jwk = other.jwk(),
    )
}

pub struct Harness {
    pub base: String,
    pub address: SocketAddr,
    pub dir: tempfile::TempDir,
    pub ci: Signer,
    pub other: Signer,
    pub server: Server,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<Result<(), claimgate_server::ServeError>>>,
}

impl Harness {
    pub fn policies(&self) -> PathBuf {
        self.dir.path().join("policies")
    }

    pub fn audit(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("data/audit.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// Starts a server with `extra` added to its configuration.
pub async fn start(extra: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let ci = Signer::new("ci-1", "https://ci.example");
    let other = Signer::new("other-1", "https://other.example");
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("test.cg"), policy(&ci, &other)).unwrap();
    let config_path = dir.path().join("serve.toml");
    // One account, unless the test configures its own (`[accounts]` in `extra`).
    let accounts = if extra.contains("[accounts]") { "" } else { "accounts = [\"myorg\"]\n" };
    let text =
        format!("listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n{accounts}signing_key_rotation = \"1h\"\n{extra}\n");
    std::fs::write(&config_path, &text).unwrap();
    let config = Config::load(&config_path).unwrap();
    let server = Server::start(policies, config).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (address, task) = server
        .clone()
        .bind(async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    Harness {
        base: format!("http://{address}"),
        address,
        dir,
        ci,
        other,
        server,
        client: reqwest::Client::new(),
        stop: Some(stop),
        task: Some(task),
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}
