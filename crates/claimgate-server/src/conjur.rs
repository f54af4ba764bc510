//! Conjur's authn-jwt endpoint, as Conjur's documentation writes the requests
//! (docs/design/serve-protocols.md, section 1).
//!
//! `POST /authn-jwt/{service-id}/{account}[/{host-id}]/authenticate`, body
//! `jwt=<token>` form-encoded. The service id names a provider, the account must be configured,
//! a host id in the URL must equal the identity the role maps. 200 returns a flattened JWS
//! signed by the server's own key; 400 a malformed request; 401 any refused login, with no body
//! (nothing about why leaks to the client; the audit log has it); 503 when the provider's keys
//! or the server's signing key are not available.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::State;
use crate::login::{self, Attempt, Refusal};

/// Conjur's default access token lifetime (8 minutes).
const DEFAULT_TTL: i64 = 480;

/// The access token's lifetime: the role's `ttl` (Conjur's 8 minutes when unset), never past
/// the role's `max_ttl` or `explicit_max_ttl`, and never past what the signing keys outlive.
fn access_token_ttl(settings: &claimgate_engine::TokenSettings) -> i64 {
    let seconds = |t: Option<u64>| t.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
    let mut ttl = seconds(settings.ttl).unwrap_or(DEFAULT_TTL);
    for limit in [seconds(settings.max_ttl), seconds(settings.explicit_max_ttl)].into_iter().flatten() {
        ttl = ttl.min(limit);
    }
    ttl.clamp(1, crate::signing::MAX_SIGNED_TTL)
}

fn status(code: StatusCode) -> Response {
    code.into_response()
}

/// Whether the client asked for the base64 answer: `Accept-Encoding` split on `,`, one item
/// equal to `base64` ignoring case and surrounding space (exactly Conjur's test).
fn wants_base64(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case("base64"))
}

/// The `jwt` field of a form body, trimmed. `Err` (400) when it is missing or empty; as in
/// Conjur (which reads the form into a hash), the last of several `jwt` fields counts, and a
/// value of only spaces is present but malformed (401, from [`looks_like_jwt`]).
fn jwt_field(body: &[u8]) -> Result<String, ()> {
    let jwt = form_urlencoded::parse(body).filter(|(name, _)| name == "jwt").last().map(|(_, value)| value);
    jwt.filter(|j| !j.is_empty()).map(|j| j.trim().to_string()).ok_or(())
}

/// Three base64url parts (Conjur checks this before anything else reads the token).
fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=')))
}

/// A host id as it may appear in an identity and a log: printable, no control characters.
fn valid_host_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 512 && !id.chars().any(|c| c.is_control())
}

#[allow(clippy::too_many_arguments)] // the parts of one request, each taken apart by the router
pub(crate) async fn authenticate(
    state: Arc<State>,
    method: &Method,
    service_id: &str,
    account: &str,
    host_id: Option<&str>,
    client: IpAddr,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Response {
    let endpoint = "conjur_authenticate";
    let attempt = |token| Attempt { endpoint, token, provider: Some(service_id), role: None, client };
    // A client over its quota learns nothing more, not even which accounts and services exist.
    if login::over_quota(&state, &attempt("")) {
        return status(StatusCode::TOO_MANY_REQUESTS);
    }
    if method != Method::POST {
        login::refuse_counted(&state, &attempt(""), "method_not_allowed");
        return crate::vault::with_allow(status(StatusCode::METHOD_NOT_ALLOWED), "POST");
    }
    // As in Conjur: the account and the authenticator are checked before the body is read. An
    // account takes only the providers configured for it. Refusals here count against the
    // client's quota, so that names cannot be tried at any rate.
    let known_provider = state.engine.with_program(|p| p.provider_index(service_id).is_some());
    if !known_provider || !state.config.account_takes(account, service_id) {
        login::refuse_counted(&state, &attempt(""), "unknown_account_or_service");
        return status(StatusCode::UNAUTHORIZED);
    }
    if host_id.is_some_and(|id| !valid_host_id(id)) {
        login::refuse_counted(&state, &attempt(""), "bad_request");
        return status(StatusCode::BAD_REQUEST);
    }
    // Only now is the body read (within max_body_bytes: 413 past it, as elsewhere).
    let body = match login::read_body(&state, body).await {
        Ok(body) => body,
        Err(e) => {
            login::audit_other(&state, &attempt(""), e.code());
            return status(e.status());
        }
    };
    let Ok(jwt) = jwt_field(&body) else {
        login::refuse_counted(&state, &attempt(""), "bad_request");
        return status(StatusCode::BAD_REQUEST);
    };
    let attempt = attempt(&jwt);
    if !looks_like_jwt(&jwt) {
        login::refuse_counted(&state, &attempt, "token_malformed");
        return status(StatusCode::UNAUTHORIZED);
    }
    let grant = match login::decide(&state, &attempt).await {
        Ok(grant) => grant,
        Err(Refusal::RateLimited) => return status(StatusCode::TOO_MANY_REQUESTS),
        Err(refusal) if refusal.unavailable() => return status(StatusCode::SERVICE_UNAVAILABLE),
        Err(_) => return status(StatusCode::UNAUTHORIZED),
    };
    if let Some(id) = host_id
        && grant.identity() != id
    {
        state.failed_logins.failed(client);
        let detail = format!(
            "role `{}` maps the identity {:?}, but the URL names the host {:?}",
            grant.role(),
            grant.identity(),
            id
        );
        login::audit_other_because(&state, &attempt, "identity_mismatch", &detail);
        return status(StatusCode::UNAUTHORIZED);
    }
    if grant.token().num_uses > 0 {
        // A signed access token is used without coming back here, so nothing could count its
        // uses: a role that limits them is not one this endpoint can serve.
        let detail = format!(
            "role `{}` limits its tokens to {} uses, which a Conjur access token cannot count",
            grant.role(),
            grant.token().num_uses
        );
        login::audit_other_because(&state, &attempt, "token_settings_unsupported", &detail);
        return status(StatusCode::UNAUTHORIZED);
    }
    let now = crate::unix_now();
    let ttl = access_token_ttl(grant.token());
    // `aud` names the account, so a service that trusts tokens of one account (say `prod`)
    // does not take one issued for another (`dev`): one signing key serves every account.
    let payload = serde_json::json!({
        "iat": now,
        "sub": grant.identity(),
        "exp": now + ttl,
        "iss": state.issuer(),
        "aud": account,
    });
    let Some([protected, payload, signature]) = state.keyring.sign(&payload.to_string(), now) else {
        login::audit_other(&state, &attempt, "signing_key_unavailable");
        return status(StatusCode::SERVICE_UNAVAILABLE);
    };
    login::audit_allowed(&state, &attempt, &grant, service_id, None);
    let token = serde_json::json!({ "protected": protected, "payload": payload, "signature": signature }).to_string();
    let mut response = if wants_base64(headers) {
        let mut r = base64::engine::general_purpose::STANDARD.encode(token).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("base64"));
        r
    } else {
        let mut r = token.into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    };
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_live_the_roles_ttl_under_its_ceilings() {
        let settings = |ttl, max_ttl, explicit_max_ttl| claimgate_engine::TokenSettings {
            ttl,
            max_ttl,
            explicit_max_ttl,
            ..Default::default()
        };
        assert_eq!(access_token_ttl(&settings(None, None, None)), 480);
        assert_eq!(access_token_ttl(&settings(Some(60), None, None)), 60);
        assert_eq!(access_token_ttl(&settings(None, None, Some(300))), 300);
        assert_eq!(access_token_ttl(&settings(Some(900), Some(600), None)), 600);
        assert_eq!(access_token_ttl(&settings(Some(86400), None, None)), crate::signing::MAX_SIGNED_TTL);
        assert_eq!(access_token_ttl(&settings(Some(u64::MAX), None, None)), crate::signing::MAX_SIGNED_TTL);
    }

    #[test]
    fn base64_is_detected_as_conjur_does() {
        let h = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, v.parse().unwrap());
            h
        };
        assert!(wants_base64(&h("base64")));
        assert!(wants_base64(&h("gzip      ,  bASe64 ,defalte,br")));
        assert!(!wants_base64(&h("base64;q=0")));
        assert!(!wants_base64(&h("gzip")));
        assert!(!wants_base64(&HeaderMap::new()));
    }

    #[test]
    fn the_form_needs_exactly_one_nonempty_jwt() {
        assert_eq!(jwt_field(b"jwt=a.b.c"), Ok("a.b.c".into()));
        assert_eq!(jwt_field(b"jwt=a.b%2Ec&other=1"), Ok("a.b.c".into()));
        assert_eq!(jwt_field(b"jwt=%20a.b.c%0A"), Ok("a.b.c".into()));
        assert_eq!(jwt_field(b"jwt="), Err(()));
        assert_eq!(jwt_field(b"token=a.b.c"), Err(()));
        assert_eq!(jwt_field(b"jwt=a.b.c&jwt=d.e.f"), Ok("d.e.f".into()), "the last, as Conjur's hash of the form");
        assert_eq!(jwt_field(b"jwt=%20"), Ok(String::new()), "present: refused as malformed (401), not missing");
        assert!(!looks_like_jwt(""));
        assert!(looks_like_jwt("eyJ.eyJ.sig_-="));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("a.b.c+"));
    }

    #[test]
    fn host_ids_with_control_characters_are_refused() {
        assert!(valid_host_id("host/jwt-apps/myapp"));
        assert!(!valid_host_id("host/x\r\nSet-Cookie: a=b"));
        assert!(!valid_host_id(""));
    }
}
