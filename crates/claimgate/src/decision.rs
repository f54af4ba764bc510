//! What an evaluation of a token's claims decides, and why.
//!
//! Every evaluator (the reference interpreter now, the bytecode VM later) returns the same
//! [`Evaluation`], so that they can be compared decision by decision and condition by condition.
//! A [`Denial`] carries a stable code and a message that is safe to return to the client (it
//! names the failing rule, never a key, a secret or more of the token than the value that failed);
//! the explanation (which condition, at which place in which file, and the value seen) is for
//! logs, `claimgate eval` and the playground.

use serde::Serialize;

use crate::model::TokenSettings;
use crate::source::{FileId, Span};

/// The inputs of one decision.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The role asked for, or `None` to select the first role that allows.
    pub role: Option<&'a str>,
    /// The token's claims (already checked for duplicate keys and bounded in depth).
    pub claims: &'a serde_json::Map<String, serde_json::Value>,
    /// The same claims as the JSON text they were written in, when there is one (inline tests).
    /// The VM then reads the text itself, so numbers keep their exact value (a
    /// `serde_json::Value` holds them as 64-bit floats or integers only).
    pub claims_text: Option<&'a str>,
    /// Seconds since the Unix epoch.
    pub now: i64,
    /// The token's header, when it is known: its `alg` and `typ` are then checked against the
    /// provider, as for a signed token (inline tests give one with `header = ...`).
    pub header: Option<&'a claimgate_jose::Header>,
}

/// A decision and the trace of how it was reached.
#[non_exhaustive]
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub(crate) decision: Decision,
    /// Every role tried, in order, with every check evaluated.
    pub(crate) trace: Vec<RoleTrace>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
/// Allow or deny: a login is one or the other, never both and never neither.
pub enum Decision {
    /// The token may log in, with this grant.
    Allow(Grant),
    /// The token may not log in, for this reason.
    Deny(Denial),
}

impl Decision {
    /// Whether the token may log in.
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// What a successful login grants.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Grant {
    pub(crate) role: String,
    pub(crate) identity: String,
    pub(crate) user: Option<String>,
    pub(crate) groups: Vec<String>,
    /// Mapped claims, in the order the role lists them (a JSON object when serialised).
    #[serde(serialize_with = "serialize_metadata")]
    pub(crate) metadata: Vec<(String, String)>,
    pub(crate) policies: Vec<String>,
    #[serde(serialize_with = "serialize_token")]
    pub(crate) token: TokenSettings,
}

fn serialize_metadata<S: serde::Serializer>(metadata: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(metadata.len()))?;
    for (name, value) in metadata {
        map.serialize_entry(name, value)?;
    }
    map.end()
}

impl Grant {
    /// Whether a client at `address` may use this grant: always when the role sets no
    /// `bound_cidrs`, otherwise only from inside one of them. An address that is not known
    /// (`None`) never matches a bound.
    pub fn allows_address(&self, address: Option<std::net::IpAddr>) -> bool {
        if self.token.bound_cidrs.is_empty() {
            return true;
        }
        let Some(address) = address else { return false };
        self.token.bound_cidrs.iter().any(|cidr| cidr_contains(cidr, address))
    }
}

impl Grant {
    /// This grant when a client at `address` may use it ([`Grant::allows_address`]), otherwise
    /// the `address_not_allowed` denial, which shows the address.
    pub fn for_address(self, address: Option<std::net::IpAddr>) -> Result<Grant, Box<Denial>> {
        if self.allows_address(address) {
            return Ok(self);
        }
        Err(Box::new(Denial {
            code: DenyCode::AddressNotAllowed,
            message: format!("the client's address is outside the bound_cidrs of role `{}`", self.role),
            role: Some(self.role),
            condition: None,
            actual: address.map(|a| serde_json::Value::from(a.to_string())),
        }))
    }
}

/// Whether `cidr` (`10.0.0.0/8`, `2001:db8::/32`, or a single address) holds `address`. An
/// IPv4-mapped IPv6 address (`::ffff:10.1.2.3`) is compared as the IPv4 address it carries.
pub fn cidr_contains(cidr: &str, address: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let (network, prefix) = match cidr.split_once('/') {
        Some((network, prefix)) => match prefix.parse::<u32>() {
            Ok(prefix) => (network, Some(prefix)),
            Err(_) => return false,
        },
        None => (cidr, None),
    };
    let Ok(network) = network.parse::<IpAddr>() else { return false };
    // IPv4-mapped IPv6 (`::ffff:10.1.2.3`) is the IPv4 address it carries, for the client and
    // for the network (whose prefix then counts the IPv4 bits).
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    let (network, prefix) = match network {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), prefix.map(|p| p.saturating_sub(96))),
            None => (IpAddr::V6(v6), prefix),
        },
        v4 => (v4, prefix),
    };
    match (network, address) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let prefix = prefix.unwrap_or(32);
            prefix <= 32 && (prefix == 0 || (u32::from(n) ^ u32::from(a)) >> (32 - prefix) == 0)
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let prefix = prefix.unwrap_or(128);
            prefix <= 128 && (prefix == 0 || (u128::from(n) ^ u128::from(a)) >> (128 - prefix) == 0)
        }
        _ => false,
    }
}

fn serialize_token<S: serde::Serializer>(token: &TokenSettings, s: S) -> Result<S::Ok, S::Error> {
    serde_json::json!({
        "ttl": token.ttl,
        "max_ttl": token.max_ttl,
        "explicit_max_ttl": token.explicit_max_ttl,
        "period": token.period,
        "num_uses": token.num_uses,
        "bound_cidrs": token.bound_cidrs,
        "type": token.token_type.as_str(),
        "no_default_policy": token.no_default_policy,
    })
    .serialize(s)
}

/// Why a login is refused.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Denial {
    pub(crate) code: DenyCode,
    /// The role whose check failed, when one role was tried (a named role, or the only candidate).
    pub(crate) role: Option<String>,
    /// Safe to return to the client.
    pub(crate) message: String,
    /// The check that failed, with its place in the policy.
    pub(crate) condition: Option<FailedCheck>,
    /// The value the token had there (`None` when the claim is missing).
    pub(crate) actual: Option<serde_json::Value>,
}

impl Evaluation {
    /// Allow with a grant, or deny with the reason.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// Every role tried, in order, with every check evaluated (empty unless the options asked
    /// for an explanation).
    pub fn trace(&self) -> &[RoleTrace] {
        &self.trace
    }

    /// The decision, dropping the trace.
    pub fn into_decision(self) -> Decision {
        self.decision
    }
}

impl Grant {
    /// The role logged in as.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The identity the role's `identity` built (never empty).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The user the role's `user` names, if it has one.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The groups the role's `groups` gave.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// Mapped claims, in the order the role lists them (a JSON object when serialised).
    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    /// The policies granted (empty names dropped).
    pub fn policies(&self) -> &[String] {
        &self.policies
    }

    /// The settings of the token a server issues for this login (`ttl`, `num_uses`, ...).
    pub fn token(&self) -> &TokenSettings {
        &self.token
    }
}

impl Denial {
    /// The stable code: clients and tests match on it.
    pub fn code(&self) -> DenyCode {
        self.code
    }

    /// The role whose check failed, when one role was tried (a named role, or the only
    /// candidate).
    pub fn role(&self) -> Option<&str> {
        self.role.as_deref()
    }

    /// Why, in a sentence that is safe to return to the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The check that failed, with its place in the policy.
    pub fn condition(&self) -> Option<&FailedCheck> {
        self.condition.as_ref()
    }

    /// The value the token had there (`None` when the claim is missing). For logs and the
    /// author of the policy, not for the client.
    pub fn actual(&self) -> Option<&serde_json::Value> {
        self.actual.as_ref()
    }

    /// What the token had at the failing check, in words: `the token has "dev"`, `the token
    /// has no such claim`, or for an `any`/`all` group (which reads several claims) what went
    /// wrong with it: never "no such claim" for a group whose claims are there. Empty when the
    /// denial has no failing check.
    pub fn seen(&self) -> String {
        let Some(check) = &self.condition else { return String::new() };
        match (&self.actual, &check.path) {
            (Some(value), _) => format!("the token has {}", short_json(value)),
            (None, Some(_)) => "the token has no such claim".to_string(),
            (None, None) => match self.code {
                DenyCode::ClaimMissing => "a claim this group needs is missing".to_string(),
                DenyCode::ClaimTypeMismatch => "a claim this group reads has the wrong type".to_string(),
                _ if check.text.starts_with("not ") => "the group holds, so `not` refuses it".to_string(),
                _ if check.text.starts_with("any") => "no branch of the group holds".to_string(),
                _ => "a branch of the group does not hold".to_string(),
            },
        }
    }
}

impl FailedCheck {
    /// Canonical text: `claims.ref == "main"`, or `claims.exp` for a time check.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The claim the check reads, in canonical notation (`claims."kubernetes.io".namespace`);
    /// `None` for groups, which read several.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The policy file the check is written in.
    pub fn file(&self) -> FileId {
        self.file
    }

    /// Where in that file.
    pub fn span(&self) -> Span {
        self.span
    }

    /// The author's `message "..."`, if any.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

impl RoleTrace {
    /// The role tried.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// Every check evaluated, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether the role allowed.
    pub fn allowed(&self) -> bool {
        self.allowed
    }
}

impl Step {
    /// The check.
    pub fn check(&self) -> &FailedCheck {
        &self.check
    }

    /// How it ended.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The value seen at the check's claim path (`None` when missing).
    pub fn seen(&self) -> Option<&serde_json::Value> {
        self.seen.as_ref()
    }

    /// Nesting depth inside `any`/`all`/`not`, for display.
    pub fn depth(&self) -> usize {
        self.depth
    }
}

/// Stable denial codes; clients and tests match on these. More codes will come, so a `match`
/// needs a wildcard arm.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyCode {
    /// No provider accepts the token's `iss`.
    UnknownIssuer,
    /// The named role does not exist.
    UnknownRole,
    /// The named role's provider does not accept the token's `iss`.
    IssuerMismatch,
    /// `aud` holds none of the role's audiences.
    AudienceMismatch,
    /// A time claim the provider requires is missing.
    TimeClaimMissing,
    /// A time claim is not a number.
    TimeClaimInvalid,
    /// `exp` has been reached (plus the clock skew).
    TokenExpired,
    /// `nbf` is in the future, beyond the clock skew.
    TokenNotYetValid,
    /// `iat` is in the future, beyond the clock skew.
    IssuedInFuture,
    /// `now - iat` exceeds the provider's `max_token_age`.
    TokenTooOld,
    /// `exp - iat` exceeds the provider's `max_lifetime`.
    LifetimeTooLong,
    /// A role condition does not hold.
    ClaimMismatch,
    /// A role condition reads a claim the token does not have (or that is `null`).
    ClaimMissing,
    /// A role condition reads a claim whose JSON type does not fit its operator.
    ClaimTypeMismatch,
    /// `aud` is neither a string nor a list of strings (RFC 7519 4.1.3).
    AudienceInvalid,
    /// Automatic selection found no role whose conditions hold.
    NoRoleMatched,
    /// The identity, user or groups claim is missing or of the wrong type.
    IdentityUnavailable,
    /// A required metadata mapping's claim is missing or not a scalar, or a policies claim is
    /// not a list of strings.
    MappingUnavailable,
    /// The payload is not a JSON object within the limits (duplicate keys, malformed, too large).
    PayloadInvalid,
    /// The decision needed more evaluation steps than the configured limit.
    LimitExceeded,
    /// The token is signed with an algorithm its provider does not allow.
    AlgorithmNotAllowed,
    /// The token's `typ` header is not the one its provider expects.
    TypMismatch,
    /// The role's `bound_cidrs` do not hold the client's address (or the address is unknown).
    AddressNotAllowed,
    /// The token is not a well-formed compact JWS within the limits (segments, base64url,
    /// header, size), or uses a form that is not accepted (JWE, JSON serialisation, `crit`,
    /// `b64: false`, a nested token: `cty: JWT`).
    TokenMalformed,
    /// The keys of the token's provider are not loaded (a key source that has not answered, or
    /// whose last good keys are older than `cache_max_age`).
    KeysUnavailable,
    /// None of the provider's keys fits the token (its `kid`, or its algorithm).
    KeyNotFound,
    /// The signature does not verify with the provider's key.
    SignatureInvalid,
}

impl DenyCode {
    /// The code as clients see it: `claim_mismatch`, `token_expired`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            DenyCode::UnknownIssuer => "unknown_issuer",
            DenyCode::UnknownRole => "unknown_role",
            DenyCode::IssuerMismatch => "issuer_mismatch",
            DenyCode::AudienceMismatch => "audience_mismatch",
            DenyCode::TimeClaimMissing => "time_claim_missing",
            DenyCode::TimeClaimInvalid => "time_claim_invalid",
            DenyCode::TokenExpired => "token_expired",
            DenyCode::TokenNotYetValid => "token_not_yet_valid",
            DenyCode::IssuedInFuture => "issued_in_future",
            DenyCode::TokenTooOld => "token_too_old",
            DenyCode::LifetimeTooLong => "lifetime_too_long",
            DenyCode::ClaimMismatch => "claim_mismatch",
            DenyCode::ClaimMissing => "claim_missing",
            DenyCode::ClaimTypeMismatch => "claim_type_mismatch",
            DenyCode::AudienceInvalid => "audience_invalid",
            DenyCode::NoRoleMatched => "no_role_matched",
            DenyCode::IdentityUnavailable => "identity_unavailable",
            DenyCode::MappingUnavailable => "mapping_unavailable",
            DenyCode::PayloadInvalid => "payload_invalid",
            DenyCode::LimitExceeded => "limit_exceeded",
            DenyCode::AlgorithmNotAllowed => "algorithm_not_allowed",
            DenyCode::TypMismatch => "typ_mismatch",
            DenyCode::AddressNotAllowed => "address_not_allowed",
            DenyCode::TokenMalformed => "token_malformed",
            DenyCode::KeysUnavailable => "keys_unavailable",
            DenyCode::KeyNotFound => "key_not_found",
            DenyCode::SignatureInvalid => "signature_invalid",
        }
    }

    /// Every code, in the order of the documentation's table.
    pub const ALL: [DenyCode; 27] = [
        DenyCode::UnknownIssuer,
        DenyCode::UnknownRole,
        DenyCode::IssuerMismatch,
        DenyCode::AudienceMismatch,
        DenyCode::TimeClaimMissing,
        DenyCode::TimeClaimInvalid,
        DenyCode::TokenExpired,
        DenyCode::TokenNotYetValid,
        DenyCode::IssuedInFuture,
        DenyCode::TokenTooOld,
        DenyCode::LifetimeTooLong,
        DenyCode::ClaimMismatch,
        DenyCode::ClaimMissing,
        DenyCode::ClaimTypeMismatch,
        DenyCode::AudienceInvalid,
        DenyCode::NoRoleMatched,
        DenyCode::IdentityUnavailable,
        DenyCode::MappingUnavailable,
        DenyCode::PayloadInvalid,
        DenyCode::LimitExceeded,
        DenyCode::AlgorithmNotAllowed,
        DenyCode::TypMismatch,
        DenyCode::AddressNotAllowed,
        DenyCode::TokenMalformed,
        DenyCode::KeysUnavailable,
        DenyCode::KeyNotFound,
        DenyCode::SignatureInvalid,
    ];
}

impl std::fmt::Display for DenyCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a denial code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a denial code")]
pub struct UnknownDenyCode(pub String);

impl std::str::FromStr for DenyCode {
    type Err = UnknownDenyCode;

    fn from_str(text: &str) -> Result<DenyCode, UnknownDenyCode> {
        DenyCode::ALL.into_iter().find(|c| c.as_str() == text).ok_or_else(|| UnknownDenyCode(text.to_string()))
    }
}

impl DenyCode {
    /// Whether a denial comes from the provider's checks (issuer, token, time claims, limits),
    /// which fail every role of the provider alike, rather than from one role's own rules.
    pub fn is_provider_level(self) -> bool {
        !matches!(
            self,
            DenyCode::AudienceMismatch
                | DenyCode::AddressNotAllowed
                | DenyCode::ClaimMismatch
                | DenyCode::ClaimMissing
                | DenyCode::ClaimTypeMismatch
                | DenyCode::IdentityUnavailable
                | DenyCode::MappingUnavailable
        )
    }
}

impl Evaluation {
    /// A denial reached before any role was tried (the token or its payload was refused).
    pub fn denied(code: DenyCode, message: impl Into<String>) -> Evaluation {
        Evaluation { decision: Decision::Deny(Denial::simple(code, message)), trace: Vec::new() }
    }
}

impl Denial {
    /// A denial with a code and a message, and no condition or value to show.
    pub fn simple(code: DenyCode, message: impl Into<String>) -> Denial {
        Denial { code, role: None, message: message.into(), condition: None, actual: None }
    }

    /// The denial of automatic selection when no role allows.
    pub fn no_role_matched() -> Denial {
        Denial {
            code: DenyCode::NoRoleMatched,
            role: None,
            message: "no role accepts this token".to_string(),
            condition: None,
            actual: None,
        }
    }
}

/// A check that failed or was traced: a role condition, or one of the provider's checks on
/// `iss`, `aud` and the time claims (which have no source text of their own and point at the
/// setting that configures them).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailedCheck {
    /// Canonical text: `claims.ref == "main"`, or `claims.exp` for a time check.
    pub(crate) text: String,
    /// The claim the check reads, in canonical notation (`claims."kubernetes.io".namespace`);
    /// `None` for groups, which read several.
    pub(crate) path: Option<String>,
    pub(crate) file: FileId,
    pub(crate) span: Span,
    /// The author's `message "..."`, if any.
    pub(crate) message: Option<String>,
}

/// How one role was tried.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoleTrace {
    pub(crate) role: String,
    pub(crate) steps: Vec<Step>,
    pub(crate) allowed: bool,
}

/// One check evaluated.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    pub(crate) check: FailedCheck,
    pub(crate) outcome: Outcome,
    /// The value seen at the check's claim path (`None` when missing).
    pub(crate) seen: Option<serde_json::Value>,
    /// Nesting depth inside `any`/`all`/`not`, for display.
    pub(crate) depth: usize,
}

/// The result of one check, in three-valued logic. A condition on a missing (or `null`) claim
/// is `Missing`, and one on a claim whose JSON type does not fit its operator (`glob` on a
/// number, `<` on a string, `contains` on a string, `== "x"` on a list) is `TypeMismatch`:
/// neither holds nor fails. Both count as a failure and stay failures under `not`, so taking a
/// claim away or changing its type can turn an allow into a deny, never a deny into an allow.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The condition holds.
    Pass,
    /// The condition does not hold.
    Fail,
    /// The claim it reads is missing (or `null`).
    Missing,
    /// The claim's JSON type does not fit the operator.
    TypeMismatch,
}

impl Outcome {
    /// Whether the check passed.
    pub fn passed(self) -> bool {
        self == Outcome::Pass
    }

    /// Neither true nor false: the claim is missing or of the wrong type.
    pub fn is_unknown(self) -> bool {
        matches!(self, Outcome::Missing | Outcome::TypeMismatch)
    }

    /// `not`: pass and fail swap, an unknown outcome stays unknown.
    pub fn negate(self) -> Outcome {
        match self {
            Outcome::Pass => Outcome::Fail,
            Outcome::Fail => Outcome::Pass,
            unknown => unknown,
        }
    }

    /// The denial code of a top-level condition that ended with this outcome.
    pub fn denial_code(self) -> DenyCode {
        match self {
            Outcome::Missing => DenyCode::ClaimMissing,
            Outcome::TypeMismatch => DenyCode::ClaimTypeMismatch,
            Outcome::Pass | Outcome::Fail => DenyCode::ClaimMismatch,
        }
    }
}

/// A JSON value in at most 60 characters, for explanations.
pub fn short_json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 60 { text } else { format!("{}…", text.chars().take(59).collect::<String>()) }
}

#[cfg(test)]
mod tests {
    use super::cidr_contains;

    #[test]
    fn cidr_edges() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        for (cidr, address, holds) in [
            ("10.0.0.0/8", "10.255.255.255", true),
            ("10.0.0.0/8", "11.0.0.0", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("192.0.2.7/32", "192.0.2.7", true),
            ("192.0.2.7/32", "192.0.2.8", false),
            ("192.0.2.7", "192.0.2.7", true),
            ("::/0", "2001:db8::1", true),
            ("2001:db8::1/128", "2001:db8::1", true),
            ("2001:db8::1/128", "2001:db8::2", false),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("::ffff:10.0.0.0/104", "10.1.2.3", true),
            ("::ffff:10.0.0.0/104", "11.1.2.3", false),
            ("10.0.0.0/x", "10.0.0.0", false),
            ("10.0.0.0/33", "10.0.0.0", false),
            ("not an address", "10.0.0.0", false),
        ] {
            assert_eq!(cidr_contains(cidr, ip(address)), holds, "{cidr} {address}");
        }
    }
}
