//! Vault's JWT login and the token endpoints a client uses afterwards, as `hvac` and the
//! `vault` CLI speak them (docs/design/serve-protocols.md, sections 2 and 3).
//!
//! Answers are `application/json` exactly (hvac reads `errors` only then) with
//! `Cache-Control: no-store`. A refused login is 400 (Vault's JWT plugin answers so), a login
//! from outside `bound_cidrs` 403, and a token that is unknown, revoked, expired or used up is
//! 403 `permission denied` on the token endpoints (never 401: hvac treats 401 as an error even
//! in `is_authenticated`).

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use claimgate_engine::{DenyCode, Grant};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::State;
use crate::issue::{self, Lifetime};
use crate::login::{self, Attempt, Refusal};
use crate::store::{TokenKind, TokenRecord};

fn reply(status: StatusCode, body: &impl Serialize) -> Response {
    let mut text = serde_json::to_vec(body).unwrap_or_default();
    text.push(b'\n');
    let mut response = (status, text).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    reply(status, &json!({ "errors": [message] }))
}

fn permission_denied() -> Response {
    error(StatusCode::FORBIDDEN, "permission denied")
}

fn unavailable() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "the token store is unavailable; try again")
}

/// Vault's answer around `data` or `auth`. Written from borrowed fields, not built as a
/// `Value` tree: a login answers thousands of times a second, and a tree costs allocations
/// per field. `()` is written `null`.
#[derive(Serialize)]
struct Envelope<'a, D> {
    request_id: String,
    lease_id: &'static str,
    renewable: bool,
    lease_duration: u8,
    data: D,
    wrap_info: (),
    warnings: Option<&'a [String]>,
    auth: Option<Auth<'a>>,
    mount_type: &'static str,
}

fn envelope<'a, D: Serialize>(
    auth: Option<Auth<'a>>,
    data: D,
    warnings: &'a [String],
    mount_type: &'static str,
) -> Envelope<'a, D> {
    Envelope {
        request_id: issue::request_id(),
        lease_id: "",
        renewable: false,
        lease_duration: 0,
        data,
        wrap_info: (),
        warnings: (!warnings.is_empty()).then_some(warnings),
        auth,
        mount_type,
    }
}

/// A token's metadata as a JSON object; of a name given twice, the last value counts.
struct Metadata<'a>(&'a [(String, String)]);

impl Serialize for Metadata<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let map: std::collections::BTreeMap<&str, &str> =
            self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        map.serialize(serializer)
    }
}

/// Vault's `auth` object of a login or a renewal.
#[derive(Serialize)]
struct Auth<'a> {
    client_token: &'a str,
    accessor: &'a str,
    policies: &'a [String],
    token_policies: &'a [String],
    metadata: Metadata<'a>,
    lease_duration: i64,
    renewable: bool,
    entity_id: &'static str,
    token_type: &'static str,
    orphan: bool,
    mfa_requirement: (),
    num_uses: i64,
}

fn auth_object<'a>(record: &'a TokenRecord, token: &'a str, ttl: i64) -> Auth<'a> {
    Auth {
        client_token: token,
        accessor: &record.accessor,
        policies: &record.policies,
        token_policies: &record.policies,
        metadata: Metadata(&record.metadata),
        lease_duration: ttl,
        renewable: record.kind != TokenKind::Batch,
        entity_id: "",
        token_type: if record.kind == TokenKind::Batch { "batch" } else { "service" },
        orphan: true,
        mfa_requirement: (),
        num_uses: record.num_uses,
    }
}

/// Everything under `/v1/auth/`: logins on the configured mounts and the token endpoints.
pub(crate) async fn route(
    state: Arc<State>,
    method: Method,
    path: &str,
    client: IpAddr,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Response {
    let post = method == Method::POST || method == Method::PUT;
    // A login path: which mounts exist shows in the answer (403, 405 or a login's own), so a
    // client over its quota gets 429 before anything else is checked or read, and every
    // refusal here counts against it.
    let login_mount = path.strip_suffix("/login");
    let attempt = Attempt { endpoint: "vault_login", token: "", provider: None, role: None, client };
    if login_mount.is_some() && login::over_quota(&state, &attempt) {
        return error(StatusCode::TOO_MANY_REQUESTS, "too many failed logins; try again later");
    }
    // A refusal before the request reaches its login or token endpoint: audited on both,
    // counted (when `counted`) on a login path; other paths answer 403 to everything, as
    // Vault does.
    let token_path = token_endpoint(path);
    let audit_early = |code: &str, counted: bool| {
        if login_mount.is_some() && counted {
            login::refuse_counted(&state, &attempt, code);
        } else if login_mount.is_some() {
            login::audit_other(&state, &attempt, code);
        } else if let Some(endpoint) = token_path {
            audit_token(&state, endpoint, client, presented_token(headers).unwrap_or_default(), None, code);
        }
    };
    let refuse = |code: &str, response: Response| {
        audit_early(code, true);
        response
    };
    // A client that asks for a wrapped answer must not get the token in the clear instead
    // (Vault Agent with `wrap_ttl` would take it so; hvac's and the CLI's `-wrap-ttl` too).
    if headers.get("x-vault-wrap-ttl").is_some_and(|v| !v.is_empty()) {
        return refuse(
            "bad_request",
            error(StatusCode::BAD_REQUEST, "response wrapping is not supported by this server"),
        );
    }
    if post && path.ends_with('/') {
        return error(StatusCode::BAD_REQUEST, "cannot write to a path ending in '/'");
    }
    // A body too large says nothing of names: audited, not counted.
    let body = match login::read_body(&state, body).await {
        Ok(body) => body,
        Err(e) => {
            audit_early(e.code(), false);
            return error(e.status(), e.message());
        }
    };
    // Vault reads a form body as it reads JSON (`curl -d role=r -d jwt=...`).
    let body = match form_as_json(headers, body) {
        Ok(body) => body,
        Err(message) => return refuse("bad_request", error(StatusCode::BAD_REQUEST, &message)),
    };
    let op = match path {
        "token/lookup-self" if post || method == Method::GET => Some(Op::Lookup),
        "token/renew-self" if post => Some(Op::Renew(body.clone())),
        "token/revoke-self" if post => Some(Op::Revoke),
        _ => None,
    };
    if let Some(op) = op {
        // A task of its own: a use, once counted, is always audited, even if the client hangs up.
        let headers = headers.clone();
        return tokio::spawn(async move { with_token(&state, client, &headers, op).await })
            .await
            .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"));
    }
    if let Some(endpoint) = token_path {
        let token = presented_token(headers).unwrap_or_default();
        audit_token(&state, endpoint, client, token, None, "method_not_allowed");
        let allow = if endpoint == "vault_lookup_self" { "GET, POST, PUT" } else { "POST, PUT" };
        return with_allow(error(StatusCode::METHOD_NOT_ALLOWED, "unsupported operation"), allow);
    }
    let Some(mount) = login_mount else {
        // Vault answers a path that is no login path with the token check, which a request
        // without a token (or with one this server issued, whose policies name nothing here)
        // fails: 403, as Vault does.
        return permission_denied();
    };
    match provider_of_mount(&state, mount) {
        Some((mount, provider)) if post => login(&state, &mount, &provider, client, &body).await,
        Some(_) => refuse(
            "method_not_allowed",
            with_allow(error(StatusCode::METHOD_NOT_ALLOWED, "unsupported operation"), "POST, PUT"),
        ),
        None => refuse("unknown_mount", permission_denied()),
    }
}

/// The body as JSON: itself, or, for a form (`application/x-www-form-urlencoded`) that does
/// not begin with `{` or `[`, its fields as a JSON object of strings, as Vault reads forms.
/// A field given twice is refused, as a JSON member given twice is.
fn form_as_json(headers: &HeaderMap, body: Bytes) -> Result<Bytes, String> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    let json_text = body.iter().find(|b| !b.is_ascii_whitespace()).is_none_or(|b| matches!(b, b'{' | b'['));
    if !is_form || json_text {
        return Ok(body);
    }
    let mut fields = serde_json::Map::new();
    for (name, value) in form_urlencoded::parse(&body) {
        let name = name.into_owned();
        if fields.contains_key(&name) {
            return Err(format!(
                "failed to parse form input: the field {:?} is given twice",
                claimgate_jose::snippet(&name)
            ));
        }
        fields.insert(name, Value::String(value.into_owned()));
    }
    Ok(Bytes::from(serde_json::to_vec(&Value::Object(fields)).unwrap_or_default()))
}

/// The provider a mount serves: the configured mapping, or, without one, each provider at its
/// own name.
fn provider_of_mount(state: &State, mount: &str) -> Option<(String, String)> {
    if state.config.mounts.is_empty() {
        let known = state.engine.with_program(|p| p.provider_index(mount).is_some());
        known.then(|| (mount.to_string(), mount.to_string()))
    } else {
        state.config.mounts.get(mount).map(|provider| (mount.to_string(), provider.clone()))
    }
}

#[derive(Deserialize)]
struct LoginBody {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    jwt: Option<String>,
}

async fn login(state: &Arc<State>, mount: &str, provider: &str, client: IpAddr, body: &[u8]) -> Response {
    let parsed: LoginBody = match login::json_object(if body.is_empty() { b"{}" } else { body }) {
        Ok(parsed) => parsed,
        Err(e) => {
            let attempt = Attempt { endpoint: "vault_login", token: "", provider: Some(provider), role: None, client };
            login::refuse_counted(state, &attempt, "bad_request");
            return error(StatusCode::BAD_REQUEST, &format!("failed to parse JSON input: {e}"));
        }
    };
    // `null` and "" both mean absent, as in Vault (hvac sends `"role": null`).
    let asked = parsed.role.filter(|r| !r.is_empty());
    let found = asked.as_deref().and_then(|name| mount_role(state, provider, name));
    let role = found.as_deref().or(asked.as_deref());
    let jwt = parsed.jwt.unwrap_or_default();
    let attempt = Attempt { endpoint: "vault_login", token: &jwt, provider: Some(provider), role, client };
    // (A client over its quota got 429 before the mount was looked up: `route`.)
    // In Vault's order: the role, then the token. A role of another provider is not one of this
    // mount's roles.
    if let Some(name) = asked.as_deref()
        && found.is_none()
    {
        login::refuse_counted(state, &attempt, "unknown_role");
        return error(StatusCode::BAD_REQUEST, &format!("role {:?} could not be found", claimgate_jose::snippet(name)));
    }
    if jwt.is_empty() {
        // Counted: a mount's existence is learned from this answer too.
        login::refuse_counted(state, &attempt, "bad_request");
        return error(StatusCode::BAD_REQUEST, "missing token");
    }
    let grant = match login::decide(state, &attempt).await {
        Ok(grant) => grant,
        Err(Refusal::RateLimited) => {
            return error(StatusCode::TOO_MANY_REQUESTS, "too many failed logins; try again later");
        }
        Err(refusal) if refusal.unavailable() => {
            return error(StatusCode::SERVICE_UNAVAILABLE, "the token's issuer cannot be verified right now");
        }
        Err(Refusal::Denied(e)) => {
            let status = match e.code() {
                DenyCode::AddressNotAllowed => return permission_denied(),
                DenyCode::UnknownRole => {
                    let name = role.unwrap_or_default();
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("role {:?} could not be found", claimgate_jose::snippet(name)),
                    );
                }
                _ => StatusCode::BAD_REQUEST,
            };
            return error(status, &format!("error validating token: {} ({})", e.message(), e.code()));
        }
    };
    match issue_audited(state, &attempt, &grant, mount, provider, TokenKind::Service, None).await {
        Ok((token, record)) => {
            let asked = grant.token().period.map_or(0, |p| i64::try_from(p).unwrap_or(i64::MAX));
            let warnings = if record.period > 0 && asked > record.period {
                vec![issue::Capped::Period { asked, max: record.period }.warning(record.period)]
            } else {
                Vec::new()
            };
            reply(
                StatusCode::OK,
                &envelope(Some(auth_object(&record, &token, record.creation_ttl)), (), &warnings, "jwt"),
            )
        }
        Err(Issue::Invalid(message)) => error(StatusCode::BAD_REQUEST, &message),
        Err(Issue::Store) => unavailable(),
    }
}

/// The role of the mount's provider that a login's `role` names, if any. Vault lowercases role
/// names (its roles are stored so, and the `role` field is read so), so `Deploy` finds `deploy`;
/// a policy's role whose name has capitals is still found by its exact name first.
fn mount_role(state: &State, provider: &str, role: &str) -> Option<String> {
    if login::role_settings(state, provider, role).is_some() {
        return Some(role.to_string());
    }
    let lower = role.to_lowercase();
    (lower != role && login::role_settings(state, provider, &lower).is_some()).then_some(lower)
}

/// Issues the token of an allowed login and writes its audit line, as one step that a client
/// hanging up cannot cut in two: it runs as a task of its own, so that every stored token has
/// its audit line even when the request is dropped half way. (A batch token, stored nowhere,
/// would not need the task, but made inline it measured 15% slower at the closed-loop peak, 54
/// against 63-69 µs of CPU a login: the hand-off changes the order in which the worker writes
/// answers, and on this VM an answer written while the client's vCPU sleeps costs a wakeup
/// through the hypervisor. benches/README.md, session 9.)
pub(crate) async fn issue_audited(
    state: &Arc<State>,
    attempt: &Attempt<'_>,
    grant: &Grant,
    mount: &str,
    provider: &str,
    kind: TokenKind,
    tenant: Option<&str>,
) -> Result<(String, TokenRecord), Issue> {
    let (state, grant) = (state.clone(), grant.clone());
    let tenant = tenant.map(str::to_string);
    let (endpoint, client) = (attempt.endpoint, attempt.client);
    let (token, role) = (attempt.token.to_string(), attempt.role.map(str::to_string));
    let (mount, provider) = (mount.to_string(), provider.to_string());
    tokio::spawn(async move {
        let attempt = Attempt { endpoint, token: &token, provider: Some(&provider), role: role.as_deref(), client };
        let issued = issue_token(&state, &grant, &mount, &provider, kind, tenant.as_deref()).await;
        match &issued {
            Ok((_, record)) => login::audit_allowed(&state, &attempt, &grant, &provider, Some(&record.accessor)),
            Err(Issue::Invalid(_)) => login::audit_other(&state, &attempt, "bad_request"),
            Err(Issue::Store) => login::audit_other(&state, &attempt, "store_unavailable"),
        }
        issued
    })
    .await
    .unwrap_or(Err(Issue::Store))
}

pub(crate) enum Issue {
    /// The role's settings cannot make a token (a `root` policy, a zero TTL).
    Invalid(String),
    /// The store did not keep the token; nothing was issued.
    Store,
}

/// Makes and stores the token of an allowed login. `kind` is `Service` for Vault (a role with
/// `token_type = "batch"` makes a batch token) or `Strongbox`. A Strongbox login's `tenant` is
/// kept in the token's metadata, so that a token issued for one tenant shows which. The token
/// exists for clients only once the store has it.
async fn issue_token(
    state: &State,
    grant: &Grant,
    mount: &str,
    provider: &str,
    kind: TokenKind,
    tenant: Option<&str>,
) -> Result<(String, TokenRecord), Issue> {
    let settings = grant.token();
    let policies = issue::sanitize_policies(grant.policies(), settings.no_default_policy).map_err(Issue::Invalid)?;
    let Lifetime { ttl, max_ttl, explicit_max_ttl, period, period_capped: _ } =
        issue::login_lifetime(settings, state.mount_ttl()).map_err(Issue::Invalid)?;
    let kind = if kind == TokenKind::Service && issue::is_batch(settings) { TokenKind::Batch } else { kind };
    // The checker refuses this pair; a compiled set from elsewhere must not slip it through,
    // since a batch token would drop the limit.
    if kind == TokenKind::Batch && settings.num_uses > 0 {
        return Err(Issue::Invalid("batch tokens cannot have a use limit".into()));
    }
    // A batch token's value is its sealed record (below): no random value or accessor for it.
    let (token, accessor) = match kind {
        TokenKind::Batch => (String::new(), String::new()),
        _ => {
            let prefix = if kind == TokenKind::Service { "hvs." } else { "sbt." };
            let (Some(token), Some(accessor)) = (issue::token_value(prefix), issue::base62(24)) else {
                return Err(Issue::Invalid("internal error".into()));
            };
            (token, accessor)
        }
    };
    // What the server knows (the role, the tenant) replaces any mapped value of that name.
    let mut metadata: Vec<(String, String)> = grant.metadata().to_vec();
    // `tenant` is the server's word only, on every token: a service reads it to tell a token
    // issued for `dev` from one issued for `prod`, so a value mapped from the token's claims
    // (a Vault role's) never stands in for it.
    metadata.retain(|(k, _)| k != "role" && k != "tenant");
    metadata.push(("role".into(), grant.role().to_string()));
    if let Some(tenant) = tenant {
        metadata.push(("tenant".into(), tenant.to_string()));
    }
    let now = crate::unix_now();
    let record = TokenRecord {
        hash: issue::token_key(&token),
        accessor,
        kind,
        provider: provider.to_string(),
        role: grant.role().to_string(),
        identity: grant.identity().to_string(),
        policies,
        metadata,
        // The login's own path: a Strongbox token's is its endpoint's, which no Vault mount
        // can take (a mount named `strongbox` makes `auth/strongbox/login`).
        path: if kind == TokenKind::Strongbox { "jwt-login".to_string() } else { format!("auth/{mount}/login") },
        display_name: format!("{}-{}", mount.replace('/', "-"), grant.identity()),
        creation_time: now,
        creation_ttl: ttl,
        expire_time: now.saturating_add(ttl),
        explicit_max_ttl,
        max_ttl,
        period,
        num_uses: settings.num_uses.min(i64::MAX as u64) as i64,
        uses_left: settings.num_uses.min(i64::MAX as u64) as i64,
        bound_cidrs: settings.bound_cidrs.iter().map(|c| c.to_string()).collect(),
        last_renewal: None,
    };
    if kind == TokenKind::Batch {
        // Vault's batch tokens are not stored: the token is its own record, sealed.
        let sealed = match state.batch.seal(&record, record.expire_time) {
            Ok(sealed) => sealed,
            Err(crate::batch::SealError::TooLarge) => {
                return Err(Issue::Invalid(
                    "the role's grant (policies, metadata, identity) is too large for a batch token; \
                     make service tokens for this role"
                        .into(),
                ));
            }
            Err(crate::batch::SealError::Random) => return Err(Issue::Store),
        };
        let hash = issue::token_hash(&sealed);
        return Ok((sealed, TokenRecord { hash, ..record }));
    }
    if let Err(e) = state.store.insert_token(&record).await {
        state.store_failed(&e);
        return Err(Issue::Store);
    }
    Ok((token, record))
}

enum Op {
    Lookup,
    Renew(Bytes),
    Revoke,
}

/// The client's token: a non-empty `X-Vault-Token`, else the first `Authorization: Bearer`
/// (Vault's order).
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get("x-vault-token").filter(|v| !v.is_empty()) {
        return value.to_str().ok();
    }
    headers.get_all(header::AUTHORIZATION).iter().find_map(|value| {
        let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
    })
}

/// A 405 with the methods the path takes, as HTTP asks.
pub(crate) fn with_allow(mut response: Response, methods: &'static str) -> Response {
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(methods));
    response
}

/// The audit log's name of a token endpoint's path.
fn token_endpoint(path: &str) -> Option<&'static str> {
    match path {
        "token/lookup-self" => Some("vault_lookup_self"),
        "token/renew-self" => Some("vault_renew_self"),
        "token/revoke-self" => Some("vault_revoke_self"),
        _ => None,
    }
}

/// One token endpoint request's audit line; `token` is empty when none was presented.
fn audit_token(
    state: &State,
    endpoint: &'static str,
    client: IpAddr,
    token: &str,
    record: Option<&TokenRecord>,
    code: &str,
) {
    state.audit.record(&crate::audit::Entry {
        endpoint,
        provider: record.map(|r| r.provider.as_str()),
        role: record.map(|r| r.role.as_str()),
        identity: record.map(|r| r.identity.as_str()),
        code,
        client_address: Some(client),
        token_sha256: (!token.is_empty()).then(|| issue::short_hash(token)),
        accessor: record.map(|r| r.accessor.as_str()).filter(|a| !a.is_empty()),
        ..Default::default()
    });
}

/// Runs a token endpoint: the token must be live and used from inside its `bound_cidrs`; the
/// request consumes one use (Vault counts every request, the last one included, which then
/// revokes the token).
async fn with_token(state: &State, client: IpAddr, headers: &HeaderMap, op: Op) -> Response {
    let endpoint = match op {
        Op::Lookup => "vault_lookup_self",
        Op::Renew(_) => "vault_renew_self",
        Op::Revoke => "vault_revoke_self",
    };
    let Some(token) = presented_token(headers) else {
        audit_token(state, endpoint, client, "", None, "missing_token");
        return permission_denied();
    };
    let now = crate::unix_now();
    // A batch token opens by itself, and one that does not open (forged, or expired) is no
    // token: batch tokens are never stored, so their uses never need the store. Any other
    // value is looked up in the store.
    let batch = token.starts_with(crate::batch::PREFIX);
    let found = if batch { Ok(state.batch.open(token, now)) } else { stored(state, token, now).await };
    // The address first, without spending a use: a client outside the token's bound_cidrs must
    // not be able to use up a token it holds (Vault checks in this order too).
    let record = match live(state, endpoint, client, token, found) {
        Ok(record) => record,
        Err(response) => return *response,
    };
    if !allowed_from(&record, client) {
        audit_token(state, endpoint, client, token, Some(&record), "address_not_allowed");
        return permission_denied();
    }
    // Then the use (batch tokens have no count to spend); a stored token may have been used
    // up or revoked between the two steps.
    let record = if batch {
        record
    } else {
        // By the key the record was found under (`stored`); the used record keeps it.
        match live(state, endpoint, client, token, state.store.use_token(&record.hash, now).await) {
            Ok(record) => record,
            Err(response) => return *response,
        }
    };
    let response = match op {
        Op::Lookup => lookup(&record, token, now),
        Op::Renew(body) => renew(state, &record, token, now, &body).await,
        Op::Revoke => {
            if record.kind == TokenKind::Batch {
                error(StatusCode::BAD_REQUEST, "batch tokens cannot be revoked")
            } else {
                match state.store.revoke_token(&record.hash, now).await {
                    Ok(_) => {
                        // Vault's 204 carries its JSON content type too.
                        let mut response = StatusCode::NO_CONTENT.into_response();
                        response
                            .headers_mut()
                            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                        response
                    }
                    Err(e) => {
                        state.store_failed(&e);
                        unavailable()
                    }
                }
            }
        }
    };
    audit_token(
        state,
        endpoint,
        client,
        token,
        Some(&record),
        match response.status() {
            status if status.is_success() => "allow",
            StatusCode::FORBIDDEN => "invalid_token",
            StatusCode::SERVICE_UNAVAILABLE => "store_unavailable",
            // The only 500: a renewal whose role is gone.
            StatusCode::INTERNAL_SERVER_ERROR => "unknown_role",
            _ => "bad_request",
        },
    );
    response
}

/// A stored token, by its key ([`issue::token_key`]). Tokens issued before keys began with the
/// issue time (claimgate 0.1 before 2026-12-03) are stored under their plain SHA-256: they are
/// looked up so as well, once the key finds nothing, so that an upgrade does not log every
/// workload out (and nodes of both versions can share a store while it rolls out). The record
/// carries the key it was found under. Harmless for tokens never issued: a second miss.
async fn stored(state: &State, token: &str, now: i64) -> Result<Option<TokenRecord>, crate::store::StoreError> {
    let hash = issue::token_hash(token);
    let key = issue::key_with_hash(token, hash);
    match state.store.get_token(&key, now).await? {
        Some(record) => Ok(Some(record)),
        None if key != hash => state.store.get_token(&hash, now).await,
        None => Ok(None),
    }
}

/// The record of a live token, or the answer that ends the request: 403 for a token that is
/// not live, 503 when the store cannot say.
fn live(
    state: &State,
    endpoint: &'static str,
    client: IpAddr,
    token: &str,
    found: Result<Option<TokenRecord>, crate::store::StoreError>,
) -> Result<TokenRecord, Box<Response>> {
    match found {
        Ok(Some(record)) => Ok(record),
        Ok(None) => {
            audit_token(state, endpoint, client, token, None, "invalid_token");
            Err(Box::new(permission_denied()))
        }
        Err(e) => {
            state.store_failed(&e);
            audit_token(state, endpoint, client, token, None, "store_unavailable");
            Err(Box::new(unavailable()))
        }
    }
}

fn allowed_from(record: &TokenRecord, client: IpAddr) -> bool {
    record.bound_cidrs.is_empty() || record.bound_cidrs.iter().any(|c| claimgate::decision::cidr_contains(c, client))
}

fn rfc3339(unix: i64) -> String {
    humantime::format_rfc3339_seconds(crate::rfc3339_time(unix)).to_string()
}

fn lookup(record: &TokenRecord, token: &str, now: i64) -> Response {
    // Vault shows the count after this request's use, and -1 on the last use.
    let num_uses = match (record.num_uses, record.uses_left) {
        (0, _) => 0,
        (_, 0) => -1,
        (_, left) => left,
    };
    let mut data = json!({
        "accessor": record.accessor,
        "creation_time": record.creation_time,
        "creation_ttl": record.creation_ttl,
        "display_name": record.display_name,
        "entity_id": "",
        "expire_time": rfc3339(record.expire_time),
        // Vault keeps neither in a batch token (its `create` copies the TTL, not these).
        "explicit_max_ttl": if record.kind == TokenKind::Batch { 0 } else { record.explicit_max_ttl },
        "id": token,
        "issue_time": rfc3339(record.creation_time),
        "meta": Metadata(&record.metadata),
        "num_uses": num_uses,
        "orphan": true,
        "path": record.path,
        "policies": record.policies,
        "renewable": record.kind != TokenKind::Batch,
        "ttl": (record.expire_time - now).max(0),
        "type": if record.kind == TokenKind::Batch { "batch" } else { "service" },
    });
    if record.period > 0 && record.kind != TokenKind::Batch {
        data["period"] = json!(record.period);
    }
    if !record.bound_cidrs.is_empty() {
        data["bound_cidrs"] = json!(record.bound_cidrs);
    }
    if let Some(renewed) = record.last_renewal {
        data["last_renewal_time"] = json!(renewed);
        data["last_renewal"] = json!(rfc3339(renewed));
    }
    reply(StatusCode::OK, &envelope(None, data, &[], "token"))
}

/// A duration as Vault reads one (`parseutil.ParseDurationSecond`): `""` is 0, a whole number
/// followed by `d` is days, and anything else is Go's `time.ParseDuration` without a sign: one or
/// more decimal numbers, each with an optional fraction and a unit (`ns`, `us`, `µs`, `ms`, `s`,
/// `m`, `h`), as in `"1h30m"` or `"1.5h"`. Computed in whole nanoseconds as Go does, then cut to
/// whole seconds.
fn go_duration(text: &str) -> Option<i64> {
    const UNITS: [(&str, u128); 7] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    if text.is_empty() {
        return Some(0);
    }
    if let Some(days) = text.strip_suffix('d') {
        return days
            .parse::<u32>()
            .ok()
            .map(|d| i64::from(d) * 86_400)
            .filter(|_| days.bytes().all(|b| b.is_ascii_digit()));
    }
    let mut rest = text;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (whole, fraction) = rest[..digits].split_once('.').unwrap_or((&rest[..digits], ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') || whole.len() > 20 {
            return None;
        }
        rest = &rest[digits..];
        // The longest unit first, so that `ms` is not read as `m`.
        let (unit, scale) =
            UNITS.iter().filter(|(unit, _)| rest.starts_with(unit)).max_by_key(|(unit, _)| unit.len())?;
        rest = &rest[unit.len()..];
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
        // Go keeps the fraction's first digits (as many as fit) and truncates.
        let fraction = &fraction[..fraction.len().min(18)];
        let part = if fraction.is_empty() {
            0
        } else {
            fraction.parse::<u128>().ok()? * scale / 10u128.pow(fraction.len() as u32)
        };
        nanos = nanos.checked_add(whole.checked_mul(*scale)?.checked_add(part)?)?;
    }
    i64::try_from(nanos / 1_000_000_000).ok()
}

/// `increment`: whole seconds, as a number or a string, or a duration string (`"1h"`, `"1h30m"`,
/// `"1.5h"`: Go's form, as Vault reads it).
fn increment(body: &[u8]) -> Result<i64, String> {
    #[derive(Deserialize)]
    struct RenewBody {
        #[serde(default)]
        increment: Option<Value>,
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(0);
    }
    let parsed: RenewBody = login::json_object(body).map_err(|e| format!("failed to parse JSON input: {e}"))?;
    let bad = || "increment: expected a number of seconds or a duration such as \"1h\"".to_string();
    match parsed.increment {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n.as_i64().filter(|n| *n >= 0).ok_or_else(bad),
        Some(Value::String(s)) => match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n),
            Ok(_) => Err(bad()),
            Err(_) => go_duration(&s).ok_or_else(bad),
        },
        Some(_) => Err(bad()),
    }
}

async fn renew(state: &State, record: &TokenRecord, token: &str, now: i64, body: &[u8]) -> Response {
    if record.kind == TokenKind::Batch {
        return error(StatusCode::BAD_REQUEST, "batch tokens cannot be renewed");
    }
    // This request spent the token's last use: Vault revokes it at once, and its renewal no
    // longer finds it.
    if record.num_uses > 0 && record.uses_left == 0 {
        return error(StatusCode::BAD_REQUEST, "token not found");
    }
    let increment = match increment(body) {
        Ok(increment) => increment,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let Some(settings) = login::role_settings(state, &record.provider, &record.role) else {
        // Vault's JWT plugin answers this with a plain error, a 500 (hvac: InternalServerError).
        let message = format!("role {:?} does not exist during renewal", record.role);
        return error(StatusCode::INTERNAL_SERVER_ERROR, &message);
    };
    let (ttl, capped) = match issue::renewal_ttl(
        &settings,
        state.mount_ttl(),
        record.explicit_max_ttl,
        record.creation_time,
        now,
        increment,
    ) {
        Ok(ttl) => ttl,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    match state.store.renew_token(&record.hash, now + ttl, now).await {
        Ok(true) => {}
        Ok(false) => return permission_denied(),
        Err(e) => {
            state.store_failed(&e);
            return unavailable();
        }
    }
    let warnings: Vec<String> = capped.map(|c| c.warning(ttl)).into_iter().collect();
    reply(StatusCode::OK, &envelope(Some(auth_object(record, token, ttl)), (), &warnings, "token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_are_seconds_or_durations() {
        assert_eq!(increment(b""), Ok(0));
        assert_eq!(increment(b" \n"), Ok(0), "no body: `vault write -f`");
        assert_eq!(increment(b"{}"), Ok(0));
        // Not an object: not read by position.
        let not_an_object = Err("failed to parse JSON input: the body is not a JSON object".to_string());
        assert_eq!(increment(b"[3600]"), not_an_object);
        assert_eq!(increment(b"null"), not_an_object);
        assert_eq!(increment(br#"{"increment": 3600}"#), Ok(3600));
        assert_eq!(increment(br#"{"increment": "3600"}"#), Ok(3600));
        assert_eq!(increment(br#"{"increment": "1h"}"#), Ok(3600));
        assert_eq!(increment(br#"{"increment": "1h30m"}"#), Ok(5400));
        assert_eq!(increment(br#"{"increment": "1.5h"}"#), Ok(5400));
        assert_eq!(increment(br#"{"increment": "90s"}"#), Ok(90));
        assert_eq!(increment(br#"{"increment": "2d"}"#), Ok(172_800));
        assert_eq!(increment(br#"{"increment": "1500ms"}"#), Ok(1));
        assert_eq!(increment(br#"{"increment": "8.2h"}"#), Ok(29_520), "exact, as Go computes it");
        assert_eq!(increment(br#"{"increment": "4.35h"}"#), Ok(15_660));
        assert_eq!(increment(br#"{"increment": ""}"#), Ok(0), "Vault reads an empty value as 0");
        for bad in [
            "1M",
            "h",
            "1.2.3s",
            "1h ",
            "1x",
            ".s",
            "1e9999h",
            "1d2h",
            "1.5d",
            "99999999999999999999h",
            &"9".repeat(400),
        ] {
            assert!(increment(format!(r#"{{"increment": "{bad}"}}"#).as_bytes()).is_err(), "{bad}");
        }
        assert!(increment(br#"{"increment": -1}"#).is_err());
        assert!(increment(br#"{"increment": "soon"}"#).is_err());
        assert!(increment(br#"{"increment": 1, "increment": 2}"#).unwrap_err().contains("duplicate field"));
    }

    #[test]
    fn the_token_comes_from_x_vault_token_or_bearer() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(presented_token(&h), Some("abc"));
        h.insert("x-vault-token", "xyz".parse().unwrap());
        assert_eq!(presented_token(&h), Some("xyz"));
        // An empty X-Vault-Token is no token: the Authorization header is read (Vault's order).
        h.insert("x-vault-token", "".parse().unwrap());
        assert_eq!(presented_token(&h), Some("abc"));
        h.remove(header::AUTHORIZATION);
        assert_eq!(presented_token(&h), None);
    }

    #[test]
    fn a_form_body_reads_as_json_of_strings() {
        let form = |body: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, "application/x-www-form-urlencoded; charset=utf-8".parse().unwrap());
            form_as_json(&h, Bytes::from_static(body.as_bytes()))
        };
        assert_eq!(form("role=deploy&jwt=a.b%2Ec").unwrap(), &br#"{"jwt":"a.b.c","role":"deploy"}"#[..]);
        assert_eq!(form(r#"{"jwt":"x"}"#).unwrap(), &br#"{"jwt":"x"}"#[..], "JSON sent as a form stays JSON");
        assert!(form("jwt=a&jwt=b").unwrap_err().contains("given twice"));
        assert_eq!(form_as_json(&HeaderMap::new(), Bytes::from_static(b"jwt=a")).unwrap(), &b"jwt=a"[..]);
    }
}
