//! The checked policy set: what the checker (`check.rs`) produces from syntax trees once every
//! name resolves and every setting has the right kind of value. Defaults are filled in here, so
//! the compiler and the reference interpreter never guess.

use claimgate_jose::{Algorithm, AlgorithmSet};
use compact_str::CompactString;

use crate::ast::{ClaimPath, Condition};
use crate::source::{FileId, Span};

/// A located string value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    pub value: CompactString,
    pub span: Span,
}

/// All providers, roles and tests of a policy set, in file order (files sorted by path).
#[derive(Debug, Default)]
pub struct PolicySet {
    pub providers: Vec<Provider>,
    pub roles: Vec<Role>,
    pub tests: Vec<Test>,
}

impl PolicySet {
    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }
}

/// A trusted identity provider.
#[derive(Debug)]
pub struct Provider {
    pub name: CompactString,
    pub file: FileId,
    /// The span of the name in `provider NAME {`.
    pub span: Span,
    pub description: Option<CompactString>,
    /// Accepted `iss` values, compared exactly.
    pub issuers: Vec<Text>,
    pub keys: KeySource,
    pub algorithms: AlgorithmSet,
    pub clock_skew: u64,
    pub required_time_claims: TimeClaims,
    /// Largest accepted `now - iat`, in seconds.
    pub max_token_age: Option<u64>,
    /// Largest accepted `exp - iat`, in seconds.
    pub max_lifetime: Option<u64>,
    /// Expected `typ` header: a media type, `application/` implied when it has no `/` (RFC 7515
    /// 4.1.9), compared case-insensitively (`claimgate_jose::typ_matches`).
    pub typ: Option<CompactString>,
    /// `verbose_logging = true`: services log the claims of this provider's tokens with each
    /// decision (Strongbox's `verbose-logging`).
    pub verbose_logging: bool,
    /// `require { ... }` in the provider: conditions every role of this provider must also
    /// satisfy, evaluated before the role's own (Conjur's `enforced-claims`).
    pub conditions: Vec<Condition>,
}

pub const DEFAULT_CLOCK_SKEW: u64 = 60;
pub const DEFAULT_ALGORITHMS: [Algorithm; Algorithm::ALL.len()] = Algorithm::ALL;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeClaims {
    pub exp: bool,
    pub nbf: bool,
    pub iat: bool,
}

impl Default for TimeClaims {
    fn default() -> Self {
        TimeClaims { exp: true, nbf: false, iat: false }
    }
}

/// Where a provider's verification keys come from. Exactly one per provider.
#[derive(Debug)]
pub enum KeySource {
    /// PEM blocks: SPKI public keys, PKCS#1 RSA public keys or X.509 certificates.
    Pem(Vec<Text>),
    /// One inline JWK (JSON text).
    Jwk(Text),
    /// An inline JWK Set (JSON text).
    Jwks(Text),
    /// A JWK Set in a file, relative to the policy file that names it.
    JwksFile(Text),
    /// A JWK Set fetched over HTTPS.
    JwksUrl(Text, Fetch),
    /// An OpenID Connect issuer whose discovery document names the JWK Set.
    Discovery(Text, Fetch),
}

impl KeySource {
    pub fn kind(&self) -> &'static str {
        match self {
            KeySource::Pem(_) => "pem",
            KeySource::Jwk(_) => "jwk",
            KeySource::Jwks(_) => "jwks",
            KeySource::JwksFile(_) => "jwks_file",
            KeySource::JwksUrl(..) => "jwks_url",
            KeySource::Discovery(..) => "discovery_url",
        }
    }
}

/// How a remote key set is fetched and cached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    /// How often the key set is fetched again in the background.
    pub refresh: u64,
    /// How long one request may take.
    pub timeout: u64,
    /// How long a fetched key set may be used when refreshing fails.
    pub cache_max_age: u64,
    /// A pinned CA: only servers with a certificate chaining to it are trusted.
    pub ca: Option<CaSource>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaSource {
    Pem(Text),
    File(Text),
}

pub const DEFAULT_REFRESH: u64 = 3600;
pub const DEFAULT_TIMEOUT: u64 = 10;
pub const DEFAULT_CACHE_MAX_AGE: u64 = 86_400;

/// A role a token may log in as.
#[derive(Debug)]
pub struct Role {
    pub name: CompactString,
    pub file: FileId,
    pub span: Span,
    pub description: Option<CompactString>,
    /// Index into [`PolicySet::providers`].
    pub provider: usize,
    pub audience: Audience,
    /// Conditions that must all hold, in the order written.
    pub conditions: Vec<Condition>,
    pub identity: Template,
    pub user: Option<ClaimPath>,
    /// The groups claim (a list of strings, or one string), and whether it may be missing
    /// (`groups = optional claims.g`).
    pub groups: Option<(ClaimPath, bool)>,
    pub metadata: Vec<Mapping>,
    pub policies: Policies,
    pub token: TokenSettings,
    /// `verbose_logging = true`: services log the claims of tokens decided for this role.
    pub verbose_logging: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    /// `audience = any`: the role deliberately accepts every audience.
    Any(Span),
    /// `aud` must contain at least one of these.
    OneOf(Vec<Text>),
}

/// Text built from literal parts and claim values: `"host/jwt-apps/" + claims.project_path`.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TemplatePart {
    Literal(CompactString),
    Claim(ClaimPath),
}

/// `name = claims.path` (or `optional claims.path`) in `metadata { }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapping {
    pub name: CompactString,
    pub path: ClaimPath,
    pub optional: bool,
    pub span: Span,
}

/// Policies attached to the grant: fixed names and names read from claims, in the order
/// written (the grant lists them in that order, first occurrence first).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policies {
    pub terms: Vec<PolicyTerm>,
}

/// One term of a role's `policies`.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyTerm {
    /// A policy name written in quotes.
    Name(Text),
    /// A claim holding policy names (a string or a list of strings), and whether it may be
    /// missing (`optional claims.x`); a required one that is missing denies.
    Claim(ClaimPath, bool),
}

/// Settings of the token issued on login (Vault's token_* settings).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenSettings {
    pub ttl: Option<u64>,
    pub max_ttl: Option<u64>,
    pub explicit_max_ttl: Option<u64>,
    pub period: Option<u64>,
    /// 0 means unlimited.
    pub num_uses: u64,
    /// Normalised CIDR blocks, e.g. `10.0.0.0/8`.
    pub bound_cidrs: Vec<CompactString>,
    pub token_type: TokenType,
    /// Vault's `token_no_default_policy`: the issued token does not get the `default` policy.
    pub no_default_policy: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TokenType {
    #[default]
    Default,
    Service,
    Batch,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Default => "default",
            TokenType::Service => "service",
            TokenType::Batch => "batch",
        }
    }
}

/// A test written inside a policy file.
#[derive(Debug)]
pub struct Test {
    pub name: CompactString,
    pub file: FileId,
    pub span: Span,
    pub role: RoleChoice,
    /// The fixed "now" of the test, in seconds since the Unix epoch.
    pub now: i64,
    /// The claims as JSON text and its parsed form.
    pub claims: Text,
    pub claims_json: serde_json::Value,
    /// `header = """{"alg": ...}"""`: the token's header, checked against the provider's
    /// algorithms and `typ` as for a signed token.
    pub header: Option<claimgate_jose::Header>,
    /// `client_address = "10.1.2.3"`: the role's `bound_cidrs` are checked against it.
    pub client_address: Option<std::net::IpAddr>,
    pub expect: Expectation,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleChoice {
    /// The first role, in policy-set order, that the token satisfies.
    Auto,
    /// Index into [`PolicySet::roles`].
    Named(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expectation {
    Allow(ExpectAllow),
    Deny(ExpectDeny),
}

/// What an allowing test checks; `None` means "not checked".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExpectAllow {
    pub role: Option<usize>,
    pub identity: Option<CompactString>,
    pub user: Option<CompactString>,
    pub groups: Option<Vec<CompactString>>,
    pub policies: Option<Vec<CompactString>>,
    pub metadata: Option<Vec<(CompactString, CompactString)>>,
    pub span: Span,
}

/// What a denying test checks; `None` means "not checked".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExpectDeny {
    pub role: Option<usize>,
    pub condition: Option<ExpectedCondition>,
    /// A denial reason code such as `claim_mismatch` or `token_expired`.
    pub code: Option<CompactString>,
    pub span: Span,
}

/// The condition a denying test expects to fail: by the claim it reads or by its text.
#[derive(Clone, Debug, PartialEq)]
pub enum ExpectedCondition {
    Claim(ClaimPath),
    Text(CompactString),
}
