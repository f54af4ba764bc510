//! Key sources against a real HTTPS server on 127.0.0.1 (a CA made at test time, pinned with
//! `ca_pem`): fetching, discovery, rotation, the unknown-kid flood, a server that goes down, a
//! slow one, an oversized answer, a wrong issuer, the wrong CA, plain http.

mod common;

use std::time::Duration;

use claimgate::decision::DenyCode;
use claimgate_engine::{AuthRequest, Engine, ErrorKind, KeyStatus, LoadError, PolicySource};
use common::{Pki, Reply, Server, Signer, claims, indented, jwks, pki};

const ISS: &str = "https://issuer.test";

/// A policy whose provider fetches its keys from `keys` (the body of the `keys { }` block).
fn policy(keys: &str) -> PolicySource {
    let text = format!(
        r#"provider idp {{
  issuer = "{ISS}"
  keys {{
{keys}
  }}
  algorithms = [EdDSA]
}}

role api {{
  provider = idp
  audience = "api"
  identity = claims.sub
}}
"#
    );
    PolicySource::text([("idp.cg", text)])
}

fn jwks_url_keys(server: &Server, pki: &Pki, extra: &str) -> String {
    format!(
        "    jwks_url = \"{}\"\n    ca_pem = \"\"\"\n{}\n    \"\"\"\n{extra}",
        server.url("/jwks"),
        indented(&pki.ca_pem)
    )
}

async fn engine(source: PolicySource) -> Engine {
    match Engine::builder(source).kid_refetch_cooldown(Duration::from_secs(30)).build().await {
        Ok(engine) => engine,
        Err(error) => panic!("{error}"),
    }
}

async fn code(engine: &Engine, token: &str) -> Option<DenyCode> {
    engine.authenticate(AuthRequest::new(token)).await.err().map(|e| e.code())
}

#[tokio::test]
async fn keys_are_fetched_over_https_from_a_pinned_ca() {
    let pki = pki();
    let server = Server::start(&pki).await;
    let signer = Signer::new("k1");
    server.set("/jwks", Reply::json(jwks(&[&signer])));
    let engine = engine(policy(&jwks_url_keys(&server, &pki, ""))).await;
    assert!(engine.is_ready(), "{:?}", engine.readiness());
    let grant = engine.authenticate(AuthRequest::new(&signer.sign(&claims(ISS, "svc")))).await.unwrap();
    assert_eq!(grant.identity(), "svc");
    // A key of nobody's: refused like any unknown key.
    let stranger = Signer::new("k1");
    let error = engine.authenticate(AuthRequest::new(&stranger.sign(&claims(ISS, "svc")))).await.unwrap_err();
    assert_eq!(error.code(), DenyCode::SignatureInvalid);
    assert_eq!(error.kind(), ErrorKind::Unauthenticated);
    assert_eq!(error.message(), "the token is not valid");
    assert_eq!(engine.metrics().allows, 1);
}

#[tokio::test]
async fn discovery_finds_the_jwks_and_checks_the_issuer() {
    let pki = pki();
    let server = Server::start(&pki).await;
    let signer = Signer::new("d1");
    server.set("/jwks", Reply::json(jwks(&[&signer])));
    let discovery =
        |issuer: &str| Reply::json(format!(r#"{{"issuer":"{issuer}","jwks_uri":"{}"}}"#, server.url("/jwks")));
    server.set("/realm/.well-known/openid-configuration", discovery(ISS));
    let keys = format!(
        "    discovery_url = \"{}\"\n    ca_pem = \"\"\"\n{}\n    \"\"\"\n",
        server.url("/realm"),
        indented(&pki.ca_pem)
    );
    let engine = engine(policy(&keys)).await;
    assert!(engine.is_ready(), "{:?}", engine.readiness());
    assert_eq!(code(&engine, &signer.sign(&claims(ISS, "svc"))).await, None);

    // A document naming another issuer is refused: that provider has no keys.
    server.set("/realm/.well-known/openid-configuration", discovery("https://evil.test"));
    let engine = engine_without_keys(policy(&keys)).await;
    let (_, status) = &engine.readiness()[0];
    let KeyStatus::Unavailable { error } = status else { panic!("{status:?}") };
    assert!(
        error.contains("names issuer `https://evil.test`, but the provider trusts `https://issuer.test`"),
        "{error}"
    );
    assert_eq!(code(&engine, &signer.sign(&claims(ISS, "svc"))).await, Some(DenyCode::KeysUnavailable));

    // A document whose jwks_uri is plain http (to another host, or to loopback): refused before
    // any connection.
    for uri in ["http://keys.example.com/jwks", "http://127.0.0.1:9/jwks"] {
        server.set(
            "/realm/.well-known/openid-configuration",
            Reply::json(format!(r#"{{"issuer":"{ISS}","jwks_uri":"{uri}"}}"#)),
        );
        let engine = engine_without_keys(policy(&keys)).await;
        let KeyStatus::Unavailable { error } = &engine.readiness()[0].1 else { panic!() };
        assert!(
            error.contains("may not serve keys: a discovery document fetched over https names a plain http jwks_uri"),
            "{error}"
        );
    }
}

async fn engine_without_keys(source: PolicySource) -> Engine {
    let engine = engine(source).await;
    assert!(!engine.is_ready());
    engine
}

#[tokio::test]
async fn require_keys_at_start_fails_the_build_with_a_clear_error() {
    let pki = pki();
    let server = Server::start(&pki).await;
    server.set("/jwks", Reply { status: 500, ..Reply::json("") });
    let error = Engine::builder(policy(&jwks_url_keys(&server, &pki, "")))
        .require_keys_at_start(true)
        .build()
        .await
        .unwrap_err();
    assert!(matches!(error, LoadError::Keys { .. }));
    assert!(error.to_string().starts_with("provider `idp`: `https://127.0.0.1:"), "{error}");
    assert!(error.to_string().ends_with("/jwks` answered HTTP 500"), "{error}");
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_when_a_token_names_it() {
    let pki = pki();
    let server = Server::start(&pki).await;
    let (old, new) = (Signer::new("2024"), Signer::new("2025"));
    server.set("/jwks", Reply::json(jwks(&[&old])));
    let engine = engine(policy(&jwks_url_keys(&server, &pki, ""))).await;
    assert_eq!(server.hits("/jwks"), 1);
    // The issuer rotates: the new key appears, the old one goes.
    server.set("/jwks", Reply::json(jwks(&[&new])));
    assert_eq!(code(&engine, &new.sign(&claims(ISS, "svc"))).await, None);
    assert_eq!(server.hits("/jwks"), 2);
    assert_eq!(code(&engine, &old.sign(&claims(ISS, "svc"))).await, Some(DenyCode::KeyNotFound));
    assert_eq!(engine.metrics().kid_refetches, 1, "{:?}", engine.metrics());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_fetches_at_most_once_per_cooldown() {
    let pki = pki();
    let server = Server::start(&pki).await;
    let signer = Signer::new("real");
    server.set("/jwks", Reply::json(jwks(&[&signer])));
    let engine = engine(policy(&jwks_url_keys(&server, &pki, ""))).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let engine = engine.clone();
        let token = Signer::new(&format!("random-{i}")).sign(&claims(ISS, "svc"));
        tasks.push(tokio::spawn(
            async move { engine.authenticate(AuthRequest::new(&token)).await.err().map(|e| e.code()) },
        ));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), Some(DenyCode::KeyNotFound));
    }
    // The first fetch at start, then one refetch for the whole flood.
    assert_eq!(server.hits("/jwks"), 2);
    let metrics = engine.metrics();
    assert_eq!(metrics.kid_refetches, 1);
    assert!(metrics.kid_refetches_limited >= 1, "{metrics:?}");
    // The genuine key still works throughout.
    assert_eq!(code(&engine, &signer.sign(&claims(ISS, "svc"))).await, None);
}

#[tokio::test]
async fn a_server_that_goes_down_serves_stale_keys_until_cache_max_age() {
    let pki = pki();
    let mut server = Server::start(&pki).await;
    let signer = Signer::new("k");
    server.set("/jwks", Reply::json(jwks(&[&signer])));
    let keys = jwks_url_keys(&server, &pki, "    refresh = 10s\n    cache_max_age = 10s\n");
    let engine = engine(policy(&keys)).await;
    server.stop();
    // Within cache_max_age the last good keys serve.
    assert_eq!(code(&engine, &signer.sign(&claims(ISS, "svc"))).await, None);
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    // After it, that provider's tokens are refused as "keys unavailable" (503).
    let error = engine.authenticate(AuthRequest::new(&signer.sign(&claims(ISS, "svc")))).await.unwrap_err();
    assert_eq!(error.code(), DenyCode::KeysUnavailable);
    assert_eq!(error.kind().http_status(), 503);
    assert!(!engine.is_ready());
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let pki = pki();
    let server = Server::start(&pki).await;
    let signer = Signer::new("k");
    server.set("/jwks", Reply { delay: Duration::from_secs(3), ..Reply::json(jwks(&[&signer])) });
    let started = std::time::Instant::now();
    let engine = engine_without_keys(policy(&jwks_url_keys(&server, &pki, "    timeout = 1s\n"))).await;
    assert!(started.elapsed() < Duration::from_millis(2_500), "{:?}", started.elapsed());
    let KeyStatus::Unavailable { error } = &engine.readiness()[0].1 else { panic!() };
    assert!(error.ends_with("/jwks`: the request did not complete within 1s"), "{error}");
}

#[tokio::test]
async fn an_oversized_answer_is_refused_while_reading() {
    let pki = pki();
    let server = Server::start(&pki).await;
    let signers: Vec<Signer> = (0..40).map(|i| Signer::new(&format!("key-{i}"))).collect();
    server.set("/jwks", Reply::json(jwks(&signers.iter().collect::<Vec<_>>())));
    let engine = Engine::builder(policy(&jwks_url_keys(&server, &pki, "")))
        .key_limits(claimgate_jose::KeyLimits { max_bytes: 1024, max_keys: 100 })
        .build()
        .await
        .unwrap();
    let KeyStatus::Unavailable { error } = &engine.readiness()[0].1 else { panic!() };
    assert!(error.ends_with("/jwks`: the response is larger than 1024 bytes"), "{error}");
}

#[tokio::test]
async fn only_the_pinned_ca_is_trusted() {
    let (pki, other) = (pki(), pki());
    let server = Server::start(&pki).await;
    let signer = Signer::new("k");
    server.set("/jwks", Reply::json(jwks(&[&signer])));
    // Pinned to another CA: the server's certificate is refused.
    let engine = engine_without_keys(policy(&jwks_url_keys(&server, &other, ""))).await;
    let KeyStatus::Unavailable { error } = &engine.readiness()[0].1 else { panic!() };
    assert!(error.contains("cannot connect") && error.contains("certificate"), "{error}");
    // No pin: the default roots do not hold the test CA either.
    let keys = format!("    jwks_url = \"{}\"\n", server.url("/jwks"));
    let engine = engine_without_keys(policy(&keys)).await;
    let KeyStatus::Unavailable { error } = &engine.readiness()[0].1 else { panic!() };
    assert!(error.contains("certificate"), "{error}");
    assert_eq!(server.hits("/jwks"), 0);
}

#[tokio::test]
async fn plain_http_to_another_host_is_refused_at_load() {
    let error = Engine::builder(policy("    jwks_url = \"http://keys.example.com/jwks\"\n")).build().await.unwrap_err();
    let LoadError::Policies { rendered, .. } = &error else { panic!("{error}") };
    assert!(rendered.contains("keys must be fetched over https"), "{rendered}");
}

#[tokio::test]
async fn cache_control_max_age_shortens_the_refresh_within_bounds() {
    let pki = pki();
    let server = Server::start(&pki).await;
    let (first, second) = (Signer::new("a"), Signer::new("b"));
    // max-age=1 is below the 10 s floor: the next refresh comes after 10 s, not 1 s.
    server.set("/jwks", Reply { cache_control: Some("max-age=1".into()), ..Reply::json(jwks(&[&first])) });
    let engine = engine(policy(&jwks_url_keys(&server, &pki, "    refresh = 1h\n    cache_max_age = 2h\n"))).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(server.hits("/jwks"), 1);
    server.set("/jwks", Reply::json(jwks(&[&first, &second])));
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(server.hits("/jwks"), 2, "refreshed after max-age clamped to 10 s, not after 1 h");
    assert_eq!(engine.metrics().kid_refetches, 0);
    assert_eq!(code(&engine, &second.sign(&claims(ISS, "svc"))).await, None);
}

#[tokio::test]
async fn a_tool_can_fetch_one_providers_keys_once() {
    let pki = pki();
    let server = Server::start(&pki).await;
    let signer = Signer::new("k1");
    server.set("/jwks", Reply::json(jwks(&[&signer])));
    let PolicySource::Text(files) = policy(&jwks_url_keys(&server, &pki, "")) else { unreachable!() };
    let policy = claimgate::Policy::from_sources(files);
    let program = policy.compile().unwrap();
    let limits = claimgate_jose::KeyLimits::default();
    let keys = claimgate_engine::fetch_provider_keys(&program, "idp", &limits).await.unwrap().unwrap();
    assert_eq!(keys.iter().next().unwrap().kid, Some("k1"));
    assert!(claimgate_engine::fetch_provider_keys(&program, "nobody", &limits).await.is_none());
    assert_eq!(server.hits("/jwks"), 1);
}
