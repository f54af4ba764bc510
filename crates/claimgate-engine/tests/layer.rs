//! The tower layer and the axum extractor in a real axum service on 127.0.0.1, called by a real
//! HTTP client: no token, an invalid one, one the policy refuses, an allowed one, keys that are
//! unavailable, and the service's own mistakes.

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
    serve_app(Router::new().route("/whoami", get(whoami)).layer(AuthLayer::new(engine))).await
}

async fn serve_app(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    address
}

/// GET /whoami with an optional Authorization header: (status, WWW-Authenticate, body).
async fn get_whoami(address: SocketAddr, authorization: Option<&str>) -> (u16, Option<String>, String) {
    get_with(address, "/whoami", authorization.as_slice()).await
}

/// GET `path` with these Authorization headers: (status, WWW-Authenticate, body).
async fn get_with(address: SocketAddr, path: &str, authorizations: &[&str]) -> (u16, Option<String>, String) {
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::get(path).header("host", "localhost");
    for value in authorizations {
        request = request.header("authorization", *value);
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

    // Valid, but the policy refuses it: 403, so that the client does not fetch a new token of
    // the same workload and try again.
    let refused = signer.sign(&claims("https://idp.test", "admin"));
    let (status, challenge, body) = get_whoami(address, Some(&format!("Bearer {refused}"))).await;
    assert_eq!((status, challenge.as_deref(), body.as_str()), (403, Some("Bearer error=\"insufficient_scope\""), ""));

    // Not a credential here: 401.
    let forged = Signer::new("k").sign(&claims("https://idp.test", "svc-1"));
    let (status, challenge, _) = get_whoami(address, Some(&format!("Bearer {forged}"))).await;
    assert_eq!((status, challenge.as_deref()), (401, Some("Bearer error=\"invalid_token\"")));
    let other_issuer = signer.sign(&claims("https://other.test", "svc-1"));
    assert_eq!(get_whoami(address, Some(&format!("Bearer {other_issuer}"))).await.0, 401);

    // Two Authorization headers: a proxy in front may have read the other one.
    let allowed = signer.sign(&claims("https://idp.test", "svc-1"));
    let (status, challenge, _) =
        get_with(address, "/whoami", &[&format!("Bearer {allowed}"), &format!("Bearer {refused}")]).await;
    assert_eq!((status, challenge.as_deref()), (400, Some("Bearer error=\"invalid_request\"")));

    // Allowed, from 127.0.0.1 (inside the role's bound_cidrs, read from ConnectInfo).
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

#[tokio::test]
async fn the_services_own_mistakes_answer_500_not_401() {
    let signer = Signer::new("k");
    let engine =
        Engine::builder(policy(&format!("    jwks = \"\"\"{}\"\"\"", jwks(&[&signer])))).build().await.unwrap();
    // A role the set does not define (a typo, or removed by a reload); and a route the layer
    // does not cover, whose handler asks for the grant.
    let app = Router::new()
        .route("/whoami", get(whoami))
        .layer(AuthLayer::new(engine).role("apii"))
        .route("/uncovered", get(whoami));
    let address = serve_app(app).await;
    let token = signer.sign(&claims("https://idp.test", "svc-1"));
    let bearer = format!("Bearer {token}");
    assert_eq!(get_with(address, "/whoami", &[&bearer]).await, (500, None, String::new()));
    assert_eq!(get_with(address, "/uncovered", &[&bearer]).await.0, 500);
}

#[tokio::test]
async fn a_pinned_role_refuses_another_issuers_token_as_not_a_credential() {
    let signer = Signer::new("k");
    let engine =
        Engine::builder(policy(&format!("    jwks = \"\"\"{}\"\"\"", jwks(&[&signer])))).build().await.unwrap();
    let app = Router::new().route("/whoami", get(whoami)).layer(AuthLayer::new(engine).role("api"));
    let address = serve_app(app).await;
    let other = signer.sign(&claims("https://other.test", "svc-1"));
    let (status, challenge, _) = get_with(address, "/whoami", &[&format!("Bearer {other}")]).await;
    assert_eq!((status, challenge.as_deref()), (401, Some("Bearer error=\"invalid_token\"")));
    let allowed = signer.sign(&claims("https://idp.test", "svc-1"));
    assert_eq!(get_with(address, "/whoami", &[&format!("Bearer {allowed}")]).await.0, 200);
}

#[tokio::test]
async fn debug_output_never_shows_a_cached_token() {
    let signer = Signer::new("k");
    let engine = Engine::builder(policy(&format!("    jwks = \"\"\"{}\"\"\"", jwks(&[&signer]))))
        .verified_token_cache(100, 1 << 20)
        .build()
        .await
        .unwrap();
    let token = signer.sign(&claims("https://idp.test", "svc-1"));
    let login = claimgate_engine::AuthRequest::new(&token).client_address("127.0.0.1".parse().unwrap());
    engine.authenticate(login).await.unwrap();
    let layer = AuthLayer::new(engine.clone());
    let request = format!("{:?}", claimgate_engine::AuthRequest::new(&token).role("api"));
    assert!(request.contains("role: Some(\"api\")") && !request.contains(&token[..20]), "{request}");
    for text in [format!("{engine:?}"), format!("{layer:?}")] {
        assert!(text.contains("entries: 1"), "{text}");
        let (header, rest) = token.split_once('.').unwrap();
        let payload = rest.split_once('.').unwrap().0;
        assert!(!text.contains(header) && !text.contains(payload) && !text.contains("svc-1"), "{text}");
        // Nor the token's bytes as a list of numbers (a Vec<u8> key's Debug).
        let bytes = format!("{:?}", &token.as_bytes()[..8]);
        assert!(!text.contains(&bytes[1..bytes.len() - 1]), "{text}");
    }
}
