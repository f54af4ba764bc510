//! Where issued tokens and the signing keys live: one trait, an embedded SQLite store for one
//! node, a PostgreSQL store shared by several.
//!
//! Tokens are kept by a key made from their value (`issue::token_key`: the issue time it
//! begins with, then its SHA-256), never the value. Every use goes through
//! [`Store::use_token`], one atomic statement that checks revocation, expiry and the use count
//! and consumes a use, so that two nodes on one database cannot both spend a token's last use.

mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use serde::{Deserialize, Serialize};

/// The store cannot answer (down, full, or its data is damaged). Logins fail closed on it.
#[derive(Debug, thiserror::Error)]
#[error("token store: {0}")]
pub struct StoreError(pub(crate) String);

impl StoreError {
    /// The error and its causes, `: `-joined: the pool's "error performing TLS handshake"
    /// says little without rustls's "invalid peer certificate: UnknownIssuer" under it.
    pub(crate) fn of(error: impl std::error::Error) -> StoreError {
        let mut text = error.to_string();
        let mut cause = error.source();
        while let Some(inner) = cause {
            let more = inner.to_string();
            if !text.contains(&more) {
                text.push_str(": ");
                text.push_str(&more);
            }
            cause = inner.source();
        }
        StoreError(text)
    }
}

/// What kind of token a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenKind {
    /// A Vault service token: renewable, revocable, with an accessor and a use count.
    Service,
    /// A Vault batch token: no accessor, neither renewable nor revocable, unlimited uses.
    Batch,
    /// A token issued by the Strongbox-style login (service-token semantics).
    Strongbox,
}

/// One issued token, as kept in the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenRecord {
    /// The store's key for the token's value (its issue time, then its SHA-256; `issue::token_key`).
    #[serde(skip)]
    pub hash: [u8; 32],
    /// The token's accessor (`""` for batch tokens).
    pub accessor: String,
    /// The token's kind.
    pub kind: TokenKind,
    /// The provider whose token was exchanged.
    pub provider: String,
    /// The role that allowed the login.
    pub role: String,
    /// The identity the role mapped.
    pub identity: String,
    /// Policies, sanitised as Vault does (lower case, sorted, `default` unless refused).
    pub policies: Vec<String>,
    /// Mapped claims, plus `role`.
    pub metadata: Vec<(String, String)>,
    /// The login path (`auth/jwt/login`).
    pub path: String,
    /// Vault's display name (`jwt-<identity>`).
    pub display_name: String,
    /// Unix seconds.
    pub creation_time: i64,
    /// The TTL given at creation, in seconds.
    pub creation_ttl: i64,
    /// Unix seconds; the token is refused from this second on.
    #[serde(skip)]
    pub expire_time: i64,
    /// Seconds after creation beyond which no renewal reaches (0: none).
    pub explicit_max_ttl: i64,
    /// The ceiling of renewals, seconds after creation (mount and role `max_ttl`).
    pub max_ttl: i64,
    /// Periodic tokens renew to this TTL (0: not periodic).
    pub period: i64,
    /// The use count given at creation (0: unlimited).
    pub num_uses: i64,
    /// Uses left (meaningful when `num_uses > 0`).
    #[serde(skip)]
    pub uses_left: i64,
    /// CIDR blocks the token may be used from (empty: anywhere).
    pub bound_cidrs: Vec<String>,
    /// Unix seconds of the last renewal.
    #[serde(skip)]
    pub last_renewal: Option<i64>,
}

impl TokenRecord {
    pub(crate) fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(crate) fn from_parts(
        hash: [u8; 32],
        body: &str,
        expire_time: i64,
        uses_left: i64,
        last_renewal: Option<i64>,
    ) -> Result<TokenRecord, StoreError> {
        let mut record: TokenRecord =
            serde_json::from_str(body).map_err(|e| StoreError(format!("a token record is damaged: {e}")))?;
        record.hash = hash;
        record.expire_time = expire_time;
        record.uses_left = uses_left;
        record.last_renewal = last_renewal;
        Ok(record)
    }
}

/// A signing key of the server, as kept in the store.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SigningKeyRecord {
    /// RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// The Ed25519 private key, PKCS#8 v2.
    pub pkcs8: Vec<u8>,
    /// Unix seconds: first signs at this time (it is published before).
    pub activates: i64,
    /// Unix seconds: signs no more from this time.
    pub retires: i64,
    /// Unix seconds: left out of the JWKS from this time (after every token it signed expired).
    pub published_until: i64,
}

/// Which live tokens [`Store::revoke_matching`] revokes: those whose every given field equals
/// the token's. Built with [`TokenFilter::new`] and its setters; a filter that names nothing
/// matches nothing (revoking every token takes a new batch of logins from every workload, and
/// is not what a mistyped command line should do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenFilter {
    accessor: Option<String>,
    provider: Option<String>,
    role: Option<String>,
    identity: Option<String>,
}

impl TokenFilter {
    /// A filter naming nothing yet.
    pub fn new() -> TokenFilter {
        TokenFilter::default()
    }

    /// The token with this accessor (Vault's handle for a token without its value).
    pub fn accessor(mut self, accessor: impl Into<String>) -> TokenFilter {
        self.accessor = Some(accessor.into());
        self
    }

    /// Tokens issued for logins through this provider.
    pub fn provider(mut self, provider: impl Into<String>) -> TokenFilter {
        self.provider = Some(provider.into());
        self
    }

    /// Tokens issued by this role.
    pub fn role(mut self, role: impl Into<String>) -> TokenFilter {
        self.role = Some(role.into());
        self
    }

    /// Tokens issued to this identity.
    pub fn identity(mut self, identity: impl Into<String>) -> TokenFilter {
        self.identity = Some(identity.into());
        self
    }

    /// Whether the filter names nothing (and so matches nothing).
    pub fn is_empty(&self) -> bool {
        self.accessor.is_none() && self.provider.is_none() && self.role.is_none() && self.identity.is_none()
    }

    /// The fields in the order the stores' statements take them: accessor, provider, role,
    /// identity.
    pub(crate) fn fields(&self) -> [Option<&str>; 4] {
        [self.accessor.as_deref(), self.provider.as_deref(), self.role.as_deref(), self.identity.as_deref()]
    }
}

/// The store behind the server. Every method is one atomic step.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Keeps a new token. Fails rather than overwrite (a hash collision is a bug).
    async fn insert_token(&self, record: &TokenRecord) -> Result<(), StoreError>;

    /// A live token (not revoked, not expired at `now`, not used up), without using it.
    async fn get_token(&self, hash: &[u8; 32], now: i64) -> Result<Option<TokenRecord>, StoreError>;

    /// Uses a token once: `None` when it is unknown, revoked, expired at `now` or used up;
    /// otherwise the record after this use (its `uses_left` already lowered).
    async fn use_token(&self, hash: &[u8; 32], now: i64) -> Result<Option<TokenRecord>, StoreError>;

    /// Sets a live token's expiry (a renewal at `now`). `false` when it is no longer live.
    async fn renew_token(&self, hash: &[u8; 32], expire_time: i64, now: i64) -> Result<bool, StoreError>;

    /// Revokes a token. `false` when it was not live.
    async fn revoke_token(&self, hash: &[u8; 32], now: i64) -> Result<bool, StoreError>;

    /// Revokes every live token (not revoked, not expired at `now`, not used up) that `filter`
    /// matches, as one statement; returns how many. An empty filter revokes nothing.
    async fn revoke_matching(&self, filter: &TokenFilter, now: i64) -> Result<u64, StoreError>;

    /// Forgets tokens that expired before `before`; returns how many.
    async fn purge_expired(&self, before: i64) -> Result<u64, StoreError>;

    /// Every signing key not yet past `published_until` at `now`.
    async fn signing_keys(&self, now: i64) -> Result<Vec<SigningKeyRecord>, StoreError>;

    /// Keeps a new signing key, unless a key in the store already signs at its `activates`
    /// (another node made one first), as one atomic step; returns whether it was kept. Nodes
    /// that start or rotate together so agree on one key instead of each signing with its own.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StoreError>;

    /// The key batch tokens are sealed with: `candidate` is stored if the store has no key
    /// yet, as one atomic step, and the store's key (the first one kept) is returned, so that
    /// every node seals and opens with the same key.
    async fn batch_key(&self, candidate: &[u8; 32]) -> Result<Vec<u8>, StoreError>;

    /// Whether the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// The schema, the same for both stores (types spelled so that SQLite and PostgreSQL read them).
pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS tokens (
        hash BYTEA PRIMARY KEY,
        body TEXT NOT NULL,
        expire_time BIGINT NOT NULL,
        num_uses BIGINT NOT NULL,
        uses_left BIGINT NOT NULL,
        revoked BOOLEAN NOT NULL DEFAULT FALSE,
        last_renewal BIGINT
    )",
    "CREATE INDEX IF NOT EXISTS tokens_expire_time ON tokens (expire_time)",
    "CREATE TABLE IF NOT EXISTS signing_keys (
        kid TEXT PRIMARY KEY,
        pkcs8 BYTEA NOT NULL,
        activates BIGINT NOT NULL,
        retires BIGINT NOT NULL,
        published_until BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS batch_keys (
        id INTEGER PRIMARY KEY,
        secret BYTEA NOT NULL
    )",
];
