//! The routes: each protocol's endpoints, the verification documents, and the operator's
//! `/healthz`, `/readyz` and `/metrics`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Extension, Path, State as Shared};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::json;

use crate::State;
use crate::client::client_address;

type AppState = Arc<State>;

pub(crate) fn router(state: AppState) -> Router {
    let limits = state.config.limits.clone();
    Router::new()
        // Every method reaches the login handlers, which count a wrong one against the client's
        // failed-login quota (and answer it in the protocol's error shape).
        .route("/authn-jwt/{service}/{account}/authenticate", any(conjur))
        .route("/authn-jwt/{service}/{account}/{host}/authenticate", any(conjur_host))
        .route("/v1/auth/", any(vault))
        .route("/v1/auth/{*path}", any(vault))
        .route("/v1/jwt-login", any(strongbox))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
        .layer(axum::middleware::from_fn(protocol_errors))
        .with_state(state)
}

/// The request timeout's 408 is made by a layer that knows no protocol; this gives it each
/// endpoint's error shape (Vault's `{"errors": [...]}`, Strongbox's `{"error", "message"}`,
/// Conjur's empty body), as its clients expect. (Bodies are read by the endpoints themselves,
/// within `max_body_bytes`, after the checks that come first; their 413s have the shape.)
async fn protocol_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if response.status() != StatusCode::REQUEST_TIMEOUT {
        return response;
    }
    let status = StatusCode::REQUEST_TIMEOUT;
    if path.starts_with("/v1/auth/") {
        crate::vault::error(status, "request timed out")
    } else if path == "/v1/jwt-login" {
        crate::strongbox::error(status, "timeout", "request timed out")
    } else {
        status.into_response()
    }
}

/// What a client is told when a trusted proxy's request cannot be placed.
const UNPLACED: &str = "the request came through a trusted proxy without a readable X-Forwarded-For";

/// The client's address, or the answer that ends the request: 400 for a request a trusted
/// proxy sent with an unreadable `X-Forwarded-For`; 500 when the router runs without the
/// connection's address (embedded in a server that does not provide `ConnectInfo`), since
/// `bound_cidrs` and the failed-login limit cannot be applied then.
fn client(
    state: &State,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> Result<IpAddr, StatusCode> {
    let Some(Extension(ConnectInfo(peer))) = peer else {
        tracing::error!("a request without its connection's address: serve the router with ConnectInfo<SocketAddr>");
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    };
    client_address(&state.config, peer.ip(), headers).map_err(|()| StatusCode::BAD_REQUEST)
}

async fn conjur(
    Shared(state): Shared<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    method: Method,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let Ok(Path((service, account))) = path else { return StatusCode::BAD_REQUEST.into_response() };
    let client = match client(&state, peer, &headers) {
        Ok(client) => client,
        Err(status) => return status.into_response(),
    };
    crate::conjur::authenticate(state, &method, &service, &account, None, client, &headers, body).await
}

async fn conjur_host(
    Shared(state): Shared<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    method: Method,
    path: Result<Path<(String, String, String)>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let Ok(Path((service, account, host))) = path else { return StatusCode::BAD_REQUEST.into_response() };
    let client = match client(&state, peer, &headers) {
        Ok(client) => client,
        Err(status) => return status.into_response(),
    };
    crate::conjur::authenticate(state, &method, &service, &account, Some(&host), client, &headers, body).await
}

async fn vault(
    Shared(state): Shared<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let client = match client(&state, peer, &headers) {
        Ok(client) => client,
        Err(StatusCode::BAD_REQUEST) => return crate::vault::error(StatusCode::BAD_REQUEST, UNPLACED),
        Err(status) => return crate::vault::error(status, "internal error"),
    };
    // The raw path: mounts are matched as written (Vault does not decode `%2F` in them).
    let path = uri.path().strip_prefix("/v1/auth/").unwrap_or_default().to_string();
    crate::vault::route(state, method, &path, client, &headers, body).await
}

async fn strongbox(
    Shared(state): Shared<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let client = match client(&state, peer, &headers) {
        Ok(client) => client,
        Err(status) => {
            let code = if status == StatusCode::BAD_REQUEST { "bad_request" } else { "internal_error" };
            let message = if status == StatusCode::BAD_REQUEST { UNPLACED } else { "internal error" };
            return crate::strongbox::error(status, code, message);
        }
    };
    crate::strongbox::login(state, &method, client, body).await
}

pub(crate) fn json_reply(status: StatusCode, body: &serde_json::Value, cache: &'static str) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

async fn jwks(Shared(state): Shared<AppState>) -> Response {
    // Short caching: a verifier sees a new key within a minute of its announcement, long before
    // it signs.
    json_reply(StatusCode::OK, &state.keyring.jwks(crate::unix_now()), "public, max-age=60")
}

async fn discovery(Shared(state): Shared<AppState>) -> Response {
    let issuer = state.issuer();
    let body = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["id_token"],
        "claims_supported": ["iss", "sub", "iat", "exp"],
    });
    json_reply(StatusCode::OK, &body, "public, max-age=300")
}

async fn healthz() -> Response {
    json_reply(StatusCode::OK, &json!({ "status": "ok" }), "no-store")
}

/// Ready when the policies are loaded, every provider has keys (fresh, or stale within
/// `cache_max_age`), the store answers, and a signing key signs now.
async fn readyz(Shared(state): Shared<AppState>) -> Response {
    let providers: Vec<_> = state
        .engine
        .readiness()
        .into_iter()
        .map(|(name, status)| {
            let detail = match &status {
                claimgate_engine::KeyStatus::Unavailable { error } => Some(error.clone()),
                _ => None,
            };
            json!({ "provider": name, "ready": status.has_keys(), "error": detail })
        })
        .collect();
    let keys_ready = providers.iter().all(|p| p["ready"] == true);
    let store = state.store.ping().await;
    if let Err(e) = &store {
        state.store_failed(e);
    }
    let signing = state.keyring.ready(crate::unix_now());
    let reload_error = state.reload_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let ready = keys_ready && store.is_ok() && signing;
    let body = json!({
        "ready": ready,
        "policies": {
            "loaded": true,
            "reload_error": reload_error,
        },
        "providers": providers,
        // The database's own words (its host, its user, a TLS failure) go to the log only:
        // `/readyz` answers anyone who reaches the listener.
        "store": {
            "reachable": store.is_ok(),
            "error": store.is_err().then_some("the store does not answer; the server's log says why"),
        },
        "signing_key": { "ready": signing },
    });
    json_reply(if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, &body, "no-store")
}

async fn metrics(Shared(state): Shared<AppState>) -> Response {
    let text = state.prometheus.as_ref().map(|h| h.render()).unwrap_or_default();
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

async fn not_found() -> Response {
    json_reply(StatusCode::NOT_FOUND, &json!({ "errors": ["not found"] }), "no-store")
}
