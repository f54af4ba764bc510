//! What every login endpoint does: place the client, refuse a client over its failed-login
//! quota, decide with the engine, count and audit the outcome.

use std::net::IpAddr;

use claimgate_engine::{AuthError, AuthRequest, ErrorKind, Grant};

use crate::State;
use crate::audit::Entry;
use crate::issue::short_hash;

/// One login attempt, as an endpoint read it.
pub(crate) struct Attempt<'a> {
    pub endpoint: &'static str,
    pub token: &'a str,
    pub provider: Option<&'a str>,
    pub role: Option<&'a str>,
    pub client: IpAddr,
}

/// Why a login did not produce a grant.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The client failed too many logins lately.
    RateLimited,
    /// The engine refused the token.
    Denied(AuthError),
}

impl Refusal {
    /// Whether the token's provider has no usable keys (HTTP 503, not a refusal of the token).
    pub(crate) fn unavailable(&self) -> bool {
        matches!(self, Refusal::Denied(e) if e.kind() == ErrorKind::KeysUnavailable)
    }
}

/// The `kid` a token names, bounded and escaped, for the audit log. Only the header is decoded
/// (the engine already decoded the whole token to decide); a header over 4 KiB is not read.
fn kid_of(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Header {
        kid: Option<String>,
    }
    let header = token.split('.').next().filter(|h| h.len() <= 4096)?;
    let header: Header = serde_json::from_slice(&claimgate_jose::b64::decode(header.as_bytes()).ok()?).ok()?;
    header.kid.as_deref().map(claimgate_jose::snippet)
}

/// The token's claims for the audit line, when the provider or role asks for verbose logging.
fn claims_of(state: &State, token: &str, provider: Option<&str>, role: Option<&str>) -> Option<serde_json::Value> {
    if !state.engine.logs_claims(provider, role) {
        return None;
    }
    let limits = claimgate_jose::Limits::default();
    let (_, payload) = claimgate_jose::decode_unverified(token, &limits).ok()?;
    claimgate_jose::check_payload_json(&payload, &limits).ok().map(serde_json::Value::Object)
}

/// Decides a login. The audit line is written here for refusals; an allowed login is audited
/// by the endpoint once its token is issued (`audit_allowed`), since issuing can still fail.
pub(crate) async fn decide(state: &State, attempt: &Attempt<'_>) -> Result<Grant, Refusal> {
    if over_quota(state, attempt) {
        return Err(Refusal::RateLimited);
    }
    let mut request = AuthRequest::new(attempt.token).client_address(attempt.client);
    if let Some(provider) = attempt.provider {
        request = request.provider(provider);
    }
    if let Some(role) = attempt.role {
        request = request.role(role);
    }
    match state.engine.authenticate(request).await {
        Ok(grant) => Ok(grant),
        Err(error) => {
            // Keys that cannot be fetched are not the client's failure.
            if error.kind() != ErrorKind::KeysUnavailable {
                state.failed_logins.failed(attempt.client);
            }
            audit_refused(
                state,
                attempt,
                error.code().as_str(),
                error.provider().or(attempt.provider),
                Some(error.detail()),
                true,
            );
            Err(Refusal::Denied(error))
        }
    }
}

/// A JSON request body read as `T`, which must be a JSON object: serde reads a struct from an
/// array too (by position), which neither Vault nor Strongbox takes as a request.
pub(crate) fn json_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err("the body is not a JSON object".into());
    }
    serde_json::from_slice(body).map_err(|e| bounded(&e.to_string()))
}

/// The most characters of a parse error a client is answered with.
const PARSE_ERROR_MAX_CHARS: usize = 160;

/// A parse error's text as a client may read it: serde names what it read (an unknown field's
/// name, a string it did not expect), which is the client's text, so it is escaped (printable
/// ASCII only) and cut, as [`claimgate_jose::snippet`] does for short names.
fn bounded(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        // Counted as written: an escape is up to 10 characters.
        if out.len() >= PARSE_ERROR_MAX_CHARS {
            out.push_str("...");
            break;
        }
        match c {
            ' '..='~' => out.push(c),
            _ => out.extend(c.escape_default()),
        }
    }
    out
}

/// Whether the client is over its failed-login quota (audited when it is). Endpoints that tell
/// a client something before deciding (that a role or provider exists) ask first, so that a
/// client over its quota learns nothing more; [`decide`] asks too.
pub(crate) fn over_quota(state: &State, attempt: &Attempt<'_>) -> bool {
    let blocked = state.failed_logins.blocked(attempt.client).is_some();
    if blocked {
        audit_refused(state, attempt, "rate_limited", None, None, false);
    }
    blocked
}

/// Audits a refusal. The provider and role may be what the client wrote (an unknown name), so
/// both are cut to a short name; the claims (for verbose logging) only after the engine decided,
/// so that a request refused before any token work cannot have its claims decoded and logged.
fn audit_refused(
    state: &State,
    attempt: &Attempt<'_>,
    code: &str,
    provider: Option<&str>,
    detail: Option<&str>,
    decided: bool,
) {
    let role = attempt.role.map(crate::audit::client_name);
    let provider_name = provider.map(crate::audit::client_name);
    state.audit.record(&Entry {
        endpoint: attempt.endpoint,
        provider: provider_name.as_deref(),
        role: role.as_deref(),
        code,
        client_address: Some(attempt.client),
        kid: kid_of(attempt.token),
        token_sha256: (!attempt.token.is_empty()).then(|| short_hash(attempt.token)),
        claims: if decided { claims_of(state, attempt.token, provider, attempt.role) } else { None },
        detail,
        ..Entry::default()
    });
}

/// Audits a login that ended otherwise than by a decision: a malformed request, or a store
/// that failed after the policy allowed.
/// Refuses a login attempt before the engine decides, counting it against the client's quota:
/// what it was refused for (an unknown name, a malformed request) tells the client something,
/// so trying names cannot be done at any rate.
pub(crate) fn refuse_counted(state: &State, attempt: &Attempt<'_>, code: &str) {
    state.failed_logins.failed(attempt.client);
    audit_other(state, attempt, code);
}

/// Why a request body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Over `limits.max_body_bytes`: 413, audited as `body_too_large`.
    TooLarge,
    /// Cut off or malformed on the wire (a client that hung up, broken chunks): 400.
    Broken,
}

impl BodyError {
    /// The audit code (and Strongbox's error code).
    pub(crate) fn code(&self) -> &'static str {
        match self {
            BodyError::TooLarge => "body_too_large",
            BodyError::Broken => "bad_request",
        }
    }

    /// The answer's status.
    pub(crate) fn status(&self) -> axum::http::StatusCode {
        match self {
            BodyError::TooLarge => axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Broken => axum::http::StatusCode::BAD_REQUEST,
        }
    }

    /// The answer's message.
    pub(crate) fn message(&self) -> &'static str {
        match self {
            BodyError::TooLarge => "request body too large",
            BodyError::Broken => "the request body could not be read",
        }
    }
}

/// Reads a request body, at most `limits.max_body_bytes` of it (only once the endpoint has
/// checked what comes before the body: the quota, the method, the names in the path).
pub(crate) async fn read_body(state: &State, body: axum::body::Body) -> Result<axum::body::Bytes, BodyError> {
    axum::body::to_bytes(body, state.config.limits.max_body_bytes).await.map_err(|error| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(error) = source {
            if error.is::<http_body_util::LengthLimitError>() {
                return BodyError::TooLarge;
            }
            source = error.source();
        }
        BodyError::Broken
    })
}

pub(crate) fn audit_other(state: &State, attempt: &Attempt<'_>, code: &str) {
    audit_refused(state, attempt, code, attempt.provider, None, false);
}

/// Audits a login the policy allowed but the endpoint then refused, with the reason, for the
/// operator (the token was verified, so verbose logging shows its claims).
pub(crate) fn audit_other_because(state: &State, attempt: &Attempt<'_>, code: &str, detail: &str) {
    audit_refused(state, attempt, code, attempt.provider, Some(detail), true);
}

/// Audits an allowed login whose token was issued.
pub(crate) fn audit_allowed(
    state: &State,
    attempt: &Attempt<'_>,
    grant: &Grant,
    provider: &str,
    accessor: Option<&str>,
) {
    state.audit.record(&Entry {
        endpoint: attempt.endpoint,
        provider: Some(provider),
        role: Some(grant.role()),
        identity: Some(grant.identity()),
        code: "allow",
        client_address: Some(attempt.client),
        kid: kid_of(attempt.token),
        token_sha256: Some(short_hash(attempt.token)),
        accessor,
        claims: claims_of(state, attempt.token, Some(provider), Some(grant.role())),
        detail: None,
    });
}

/// The current token settings of `role` of `provider` (renewals read them again, as Vault's
/// JWT plugin does). `None` when the role is gone or now belongs to another provider.
pub(crate) fn role_settings(state: &State, provider: &str, role: &str) -> Option<claimgate_engine::TokenSettings> {
    state.engine.with_program(|program| {
        let code = &program.roles[program.role_index(role)? as usize];
        let owner = program.providers.get(code.provider as usize)?;
        (program.string(owner.name) == provider).then(|| code.grant.token.clone())
    })
}
