//! The Strongbox-style login: `POST /v1/jwt-login` with the provider (Strongbox's "jwt entry"),
//! the role and the token, answering Strongbox's token fields (docs/design/serve-protocols.md,
//! section 4). Errors are `{"error": <code>, "message": <text>}`: 400 for a malformed request,
//! 401 for any refused login, 429 for a client over its failed-login quota, 503 when the
//! provider's keys or the store are unavailable.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use crate::State;
use crate::login::{self, Attempt, Refusal};
use crate::store::TokenKind;
use crate::vault::{Issue, issue_audited};

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    crate::ops::json_reply(status, &body, "no-store")
}

/// Strongbox's error answer, `{"error": <code>, "message": <text>}` (also for the 413 and 408
/// the layers make, and a request that cannot be placed).
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    reply(status, json!({ "error": code, "message": message }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    #[serde(default)]
    tenant: Option<String>,
    provider: String,
    role: String,
    jwt: String,
}

fn time(unix: i64) -> String {
    humantime::format_rfc3339_micros(crate::rfc3339_time(unix)).to_string()
}

pub(crate) async fn login(state: Arc<State>, method: &Method, client: IpAddr, body: axum::body::Body) -> Response {
    let endpoint = "strongbox_login";
    // A client over its quota learns nothing more, not even which providers exist; and a
    // refusal counted while it is blocked would push its block further.
    let unread = Attempt { endpoint, token: "", provider: None, role: None, client };
    if login::over_quota(&state, &unread) {
        return error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many failed logins; try again later");
    }
    if method != Method::POST {
        login::refuse_counted(&state, &unread, "method_not_allowed");
        let response = error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "log in with POST");
        return crate::vault::with_allow(response, "POST");
    }
    // Only now is the body read (within max_body_bytes: 413 past it, as elsewhere).
    let body = match login::read_body(&state, body).await {
        Ok(body) => body,
        Err(e) => {
            login::audit_other(&state, &unread, e.code());
            return error(e.status(), e.code(), e.message());
        }
    };
    let parsed: LoginBody = match login::json_object(&body) {
        Ok(parsed) => parsed,
        Err(e) => {
            login::refuse_counted(&state, &unread, "bad_request");
            return error(StatusCode::BAD_REQUEST, "bad_request", &format!("the body is not a login request: {e}"));
        }
    };
    let attempt =
        Attempt { endpoint, token: &parsed.jwt, provider: Some(&parsed.provider), role: Some(&parsed.role), client };
    let tenant_known = parsed.tenant.as_ref().is_none_or(|t| state.config.account_takes(t, &parsed.provider));
    let provider_known = state.engine.with_program(|p| p.provider_index(&parsed.provider).is_some());
    if !tenant_known || !provider_known || parsed.jwt.is_empty() {
        login::refuse_counted(&state, &attempt, "bad_request");
        return error(StatusCode::BAD_REQUEST, "bad_request", "unknown tenant or provider, or no token");
    }
    let grant = match login::decide(&state, &attempt).await {
        Ok(grant) => grant,
        Err(Refusal::RateLimited) => {
            return error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many failed logins; try again later");
        }
        Err(refusal) if refusal.unavailable() => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "keys_unavailable",
                "the token's issuer cannot be verified right now",
            );
        }
        Err(Refusal::Denied(e)) => return error(StatusCode::UNAUTHORIZED, e.code().as_str(), e.message()),
    };
    match issue_audited(
        &state,
        &attempt,
        &grant,
        "strongbox",
        &parsed.provider,
        TokenKind::Strongbox,
        parsed.tenant.as_deref(),
    )
    .await
    {
        Ok((token, record)) => reply(
            StatusCode::OK,
            json!({
                "token": token,
                "expires-in": record.creation_ttl,
                "expires": time(record.expire_time),
                "accessor": record.accessor,
                "creation-time": time(record.creation_time),
                "renewal-time": time(record.creation_time),
            }),
        ),
        Err(Issue::Invalid(message)) => error(StatusCode::BAD_REQUEST, "bad_request", &message),
        Err(Issue::Store) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "the token store is unavailable; try again")
        }
    }
}
