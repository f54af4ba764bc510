//! The tower layer and the axum extractor in a real axum service on 127.0.0.1, called by a real
//! HTTP client: no token, a refused token, an allowed one, and keys that are unavailable.

mod common;

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use claimgate_engine::layer::{AuthLayer, Authenticated};
use claimgate_engine::{Engine, PolicySource};
use common::{Signer, claims, jwks};
use http_body_util::BodyExt;

async fn whoami(Authenticated(grant): Authenticated) -> String {
    grant.identity().to_string()
}

async fn serve(engine: Engine) -> SocketAddr {
    let app = Router::new().route("/whoami", get(whoami)).layer(AuthLayer::new(engine));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    address
}

/// GET /whoami with an optional Authorization header: (status, WWW-Authenticate, body).
async fn get_whoami(address: SocketAddr, authorization: Option<&str>) -> (u16, Option<String>, String) {
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::get("/whoami").header("host", "localhost");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response =
        sender.send_request(request.body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, challenge, String::from_utf8(body.to_vec()).unwrap())
}

fn policy(keys: &str) -> PolicySource {
    PolicySource::text([(
        "api.cg",
        format!(
            "provider idp {{\n  issuer = \"https://idp.test\"\n  keys {{\n{keys}\n  }}\n}}\n\nrole api {{\n  provider = idp\n  audience = \"api\"\n  require {{\n    claims.sub glob \"svc-*\"\n  }}\n  identity = \"app/\" + claims.sub\n  token {{\n    bound_cidrs = [\"127.0.0.0/8\"]\n  }}\n}}\n"
        ),
    )])
}

#[tokio::test]
async fn bearer_tokens_are_authenticated_before_the_handler_runs() {
    let signer = Signer::new("k");
    let engine =
        Engine::builder(policy(&format!("    jwks = \"\"\"{}\"\"\"", jwks(&[&signer])))).build().await.unwrap();
    let address = serve(engine.clone()).await;

    assert_eq!(get_whoami(address, None).await, (401, Some("Bearer".to_string()), String::new()));
    assert_eq!(get_whoami(address, Some("Basic dXNlcjpwYXNz")).await.0, 401);

    let refused = signer.sign(&claims("https://idp.test", "admin"));
    let (status, challenge, body) = get_whoami(address, Some(&format!("Bearer {refused}"))).await;
    assert_eq!((status, challenge.as_deref(), body.as_str()), (401, Some("Bearer error=\"invalid_token\""), ""));

    let forged = Signer::new("k").sign(&claims("https://idp.test", "svc-1"));
    assert_eq!(get_whoami(address, Some(&format!("Bearer {forged}"))).await.0, 401);

    // Allowed, from 127.0.0.1 (inside the role's bound_cidrs, read from ConnectInfo).
    let allowed = signer.sign(&claims("https://idp.test", "svc-1"));
    assert_eq!(get_whoami(address, Some(&format!("bearer {allowed}"))).await, (200, None, "app/svc-1".to_string()));
    assert_eq!(engine.metrics().allows, 1);
}

#[tokio::test]
async fn unavailable_keys_answer_503() {
    // Nothing listens on port 9: the provider has no keys.
    let engine = Engine::builder(policy("    jwks_url = \"http://127.0.0.1:9/keys\"")).build().await.unwrap();
    let address = serve(engine).await;
    let token = Signer::new("k").sign(&claims("https://idp.test", "svc-1"));
    assert_eq!(get_whoami(address, Some(&format!("Bearer {token}"))).await, (503, None, String::new()));
}
