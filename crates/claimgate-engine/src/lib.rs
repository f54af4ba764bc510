//! claimgate for services: a policy set and its providers' keys behind one handle.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use claimgate_engine::{AuthRequest, Engine, PolicySource};
//!
//! // At start: parse, check and compile the policies (errors come here, located, as
//! // `claimgate check` shows them), read `jwks_file`s, fetch every provider's keys.
//! let engine = Engine::builder(PolicySource::dir("policies")).build().await?;
//!
//! // Per request, from any task or thread (the handle is cheap to clone):
//! # let bearer = "";
//! match engine.authenticate(AuthRequest::new(bearer).role("deploy")).await {
//!     Ok(grant) => println!("{} may log in with {:?}", grant.identity(), grant.policies()),
//!     Err(error) => eprintln!("{} ({}): {}", error.kind().http_status(), error.code(), error.detail()),
//! }
//! # Ok(()) }
//! ```
//!
//! A token is verified only with the keys of the provider its issuer selects (the language
//! crate's `Program::decide_token`); this crate supplies those keys: inline keys come compiled
//! in the program, `jwks_file`s are read at load and on reload, and `jwks_url` /
//! `discovery_url` sources are fetched over HTTPS and kept fresh:
//! refreshed on the policy's interval (shortened by `Cache-Control: max-age`), served stale on
//! failure until `cache_max_age`, and fetched again (single-flight, rate-limited per provider)
//! when a token names a `kid` the cached set does not have.
//!
//! This is the only library crate of claimgate that does I/O; it needs a Tokio runtime.

#![warn(missing_docs)]

mod fetch;
mod keys;
pub mod layer;
mod load;
mod observe;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use claimgate::decision::Decision;
use claimgate::program::KeysCode;
use claimgate::vm::KeyLookup;
use claimgate_jose::KeySet;

use fetch::FetchError;
pub use keys::KeyStatus;
// What the engine's own signatures name, so that a service depends on this crate alone.
pub use claimgate::{DenyCode, Grant, Options, PayloadLimits, Program, TokenSettings, TokenType};
pub use claimgate_jose::{KeyLimits, Limits as TokenLimits};
pub use load::{LoadError, PolicySource, load_policy, policy_files, read_bounded};

use keys::{Remote, RemoteKeys};

/// How long a provider waits between two refetches caused by unknown `kid`s (Conjur allows 10
/// per 5 minutes).
pub const DEFAULT_KID_REFETCH_COOLDOWN: Duration = Duration::from_secs(30);

/// Builds an [`Engine`].
#[derive(Debug)]
#[must_use]
pub struct EngineBuilder {
    source: PolicySource,
    options: Options,
    key_limits: KeyLimits,
    kid_cooldown: Duration,
    require_keys: bool,
    cache: Option<(usize, usize)>,
    set_check: Option<SetCheck>,
}

/// A service's own check of each policy set, before the set serves.
#[derive(Clone)]
struct SetCheck(Arc<CheckFn>);

type CheckFn = dyn Fn(&Program) -> Result<(), String> + Send + Sync;

impl std::fmt::Debug for SetCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetCheck")
    }
}

impl EngineBuilder {
    /// Keep tokens whose signature verified, so that a token presented again is not verified
    /// again (bearer tokens are presented many times in their lifetime). Off by default. At most
    /// `max_entries` tokens and `max_bytes` bytes; the time claims, audience and role conditions
    /// are still evaluated on every use; entries are dropped when their provider's keys change
    /// or the policies reload; refused signatures are never kept.
    pub fn verified_token_cache(mut self, max_entries: usize, max_bytes: usize) -> Self {
        self.cache = Some((max_entries, max_bytes));
        self
    }

    /// Limits and options of each decision (payload bounds, evaluation steps, token bounds).
    pub fn decision_options(mut self, options: Options) -> Self {
        self.options = options.explain(false);
        self
    }

    /// Bounds on fetched and file key sets (size before parsing, number of keys).
    pub fn key_limits(mut self, limits: KeyLimits) -> Self {
        self.key_limits = limits;
        self
    }

    /// The least time between two refetches of one provider's keys caused by tokens with
    /// unknown `kid`s ([`DEFAULT_KID_REFETCH_COOLDOWN`] by default). Zero turns the limit off:
    /// every token with a `kid` the cache does not hold then costs the issuer a fetch (one at a
    /// time), which is for tests, not for a service facing the network.
    pub fn kid_refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.kid_cooldown = cooldown;
        self
    }

    /// A check of the service's own that every policy set must pass before it serves, at
    /// [`EngineBuilder::build`] and on every reload: for example that the providers the
    /// service's configuration names are defined. A set it refuses is refused as a set with
    /// errors is ([`LoadError::Refused`], with the check's message), and the current set keeps
    /// serving. It runs before any key is fetched.
    pub fn check_each_set(mut self, check: impl Fn(&Program) -> Result<(), String> + Send + Sync + 'static) -> Self {
        self.set_check = Some(SetCheck(Arc::new(check)));
        self
    }

    /// Fail [`EngineBuilder::build`] when a provider has no keys after the first fetch, instead
    /// of starting with that provider unavailable (its tokens get `keys_unavailable`) and
    /// retrying in the background. It applies to the first load only: a reload is taken even
    /// when a provider it brings has no keys yet (its tokens get `keys_unavailable` while its
    /// fetches are retried, and [`Engine::readiness`] shows it), since refusing it would also
    /// hold back unrelated policy changes while an issuer is down.
    pub fn require_keys_at_start(mut self, require: bool) -> Self {
        self.require_keys = require;
        self
    }

    /// Loads the policies, reads key files, fetches remote keys (all providers at once, each
    /// within its timeout), and starts the refresh tasks.
    pub async fn build(self) -> Result<Engine, LoadError> {
        let shared = Arc::new(Shared {
            options: self.options,
            key_limits: self.key_limits,
            kid_cooldown: self.kid_cooldown,
            counters: Arc::new(Counters::default()),
            remotes: std::sync::Mutex::new(HashMap::new()),
            fetchers: std::sync::Mutex::new(HashMap::new()),
            cache: self.cache.map(|(max_entries, max_bytes)| TokenCache {
                max_entries,
                max_bytes,
                inner: std::sync::Mutex::new(CacheInner::default()),
            }),
            set_check: self.set_check,
        });
        let loaded = Loaded::load(&shared, &self.source).await?;
        if self.require_keys
            && let Some((provider, status)) = loaded.statuses().into_iter().find(|(_, s)| !s.has_keys())
        {
            let KeyStatus::Unavailable { error } = status else { unreachable!("checked above") };
            return Err(LoadError::Keys { provider, error });
        }
        let engine = Engine {
            inner: Arc::new(Inner {
                shared,
                source: self.source,
                current: ArcSwap::from_pointee(loaded),
                reloading: tokio::sync::Mutex::new(()),
            }),
        };
        Ok(engine)
    }
}

/// The policies, their providers' keys, and the counters, behind one handle. Clone it freely:
/// clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// The providers and how many verified tokens are cached: never the cached tokens themselves
/// (bearer credentials, replayable by whoever reads a log line with `{engine:?}`), nor the
/// whole compiled set.
impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("providers", &self.inner.current.load().provider_names)
            .field("verified_token_cache", &self.inner.shared.cache)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    source: PolicySource,
    current: ArcSwap<Loaded>,
    /// One reload at a time, so that they cannot finish out of order.
    reloading: tokio::sync::Mutex<()>,
}

/// What every loaded set shares: settings, counters, and the remote key caches by source, so
/// that a reload keeps the caches of providers whose key source did not change.
#[derive(Debug)]
struct Shared {
    options: Options,
    key_limits: KeyLimits,
    kid_cooldown: Duration,
    counters: Arc<Counters>,
    remotes: std::sync::Mutex<HashMap<RemoteId, std::sync::Weak<RemoteKeys>>>,
    fetchers: std::sync::Mutex<HashMap<Option<Vec<u8>>, fetch::Fetcher>>,
    cache: Option<TokenCache>,
    set_check: Option<SetCheck>,
}

/// Verified tokens by their exact bytes (no hash collisions to reason about).
struct TokenCache {
    max_entries: usize,
    max_bytes: usize,
    inner: std::sync::Mutex<CacheInner>,
}

/// Its size only: the keys are bearer tokens.
impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (entries, bytes) = {
            let inner = self.lock();
            (inner.map.len(), inner.bytes)
        };
        f.debug_struct("TokenCache")
            .field("entries", &entries)
            .field("bytes", &bytes)
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<Box<[u8]>, claimgate::vm::VerifiedToken>,
    bytes: usize,
}

impl TokenCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, token: &[u8]) -> Option<claimgate::vm::VerifiedToken> {
        self.lock().map.get(token).cloned()
    }

    fn insert(&self, token: &[u8], verified: claimgate::vm::VerifiedToken) {
        let size = token.len() + verified.size();
        if size > self.max_bytes || self.max_entries == 0 {
            return;
        }
        let mut inner = self.lock();
        // Full: start again rather than track recency (bounded, and cheap on the hot path).
        if inner.map.len() >= self.max_entries || inner.bytes + size > self.max_bytes {
            inner.map.clear();
            inner.bytes = 0;
        }
        if inner.map.insert(token.into(), verified).is_none() {
            inner.bytes += size;
        }
    }

    fn remove(&self, token: &[u8]) {
        let mut inner = self.lock();
        if let Some(old) = inner.map.remove(token) {
            inner.bytes = inner.bytes.saturating_sub(token.len() + old.size());
        }
    }

    fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.bytes = 0;
    }
}

/// Identifies a remote key cache: the source and everything that changes what it fetches.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RemoteId {
    url: String,
    discovery: bool,
    issuers: Vec<String>,
    refresh: u64,
    timeout: u64,
    cache_max_age: u64,
    ca: Option<Vec<u8>>,
}

/// One loaded policy set with its providers' keys.
#[derive(Debug)]
struct Loaded {
    program: Program,
    /// Per provider (by index): where its keys come from at run time.
    keys: Vec<ProviderKeys>,
    provider_names: Vec<String>,
    /// Whether any provider or role has `verbose_logging` (most sets: none, and then no
    /// decision looks names up for it).
    any_verbose: bool,
}

#[derive(Debug)]
enum ProviderKeys {
    /// Compiled into the program.
    Inline,
    /// Read from a `jwks_file` at load.
    File(Arc<KeySet>),
    Remote(Arc<RemoteKeys>),
}

impl KeyLookup for Loaded {
    fn keys(&self, provider: &str) -> Option<Arc<KeySet>> {
        let index = self.program.provider_index(provider)? as usize;
        match self.keys.get(index)? {
            ProviderKeys::Inline => None,
            ProviderKeys::File(keys) => Some(keys.clone()),
            ProviderKeys::Remote(remote) => remote.current(),
        }
    }
}

impl Loaded {
    async fn load(shared: &Arc<Shared>, source: &PolicySource) -> Result<Loaded, LoadError> {
        // Reading files and compiling patterns blocks: off the async worker threads.
        let (source, limits) = (source.clone(), shared.key_limits);
        let (program, key_file) = tokio::task::spawn_blocking(move || load::program(&source, &limits))
            .await
            .map_err(|e| LoadError::Io(format!("policy loading stopped: {e}")))??;
        if let Some(SetCheck(check)) = &shared.set_check {
            check(&program).map_err(LoadError::Refused)?;
        }
        let mut keys = Vec::with_capacity(program.providers.len());
        let mut first_fetches = Vec::new();
        let mut provider_names = Vec::new();
        for provider in &program.providers {
            let name = program.string(provider.name).to_string();
            let issuers: Vec<String> = provider.issuers.iter().map(|i| program.string(*i).to_string()).collect();
            let entry = match &provider.keys {
                KeysCode::Pem(_) | KeysCode::Jwk(_) | KeysCode::Jwks(_) => ProviderKeys::Inline,
                KeysCode::JwksFile { path, file } => {
                    let keys =
                        key_file(program.files.get(*file as usize).map_or("", |f| f.as_ref()), program.string(*path))
                            .map_err(|error| LoadError::Keys { provider: name.clone(), error })?;
                    ProviderKeys::File(Arc::new(keys))
                }
                KeysCode::JwksUrl { url, fetch } | KeysCode::Discovery { url, fetch } => {
                    let discovery = matches!(provider.keys, KeysCode::Discovery { .. });
                    let ca = match &fetch.ca {
                        None => None,
                        // Lines trimmed: a PEM block written inside an indented policy string
                        // may keep some indentation, which PEM readers do not skip.
                        Some(claimgate::program::CaCode::Pem(text)) => Some(
                            program.string(*text).lines().map(str::trim).collect::<Vec<_>>().join("\n").into_bytes(),
                        ),
                        Some(claimgate::program::CaCode::File { path, file }) => {
                            let base = program.files.get(*file as usize).map_or("", |f| f.as_ref());
                            Some(load::read_relative(base, program.string(*path), 1 << 20).map_err(|error| {
                                LoadError::Keys { provider: name.clone(), error: format!("ca_file: {error}") }
                            })?)
                        }
                    };
                    let url_text = program.string(*url).to_string();
                    let id = RemoteId {
                        url: url_text.clone(),
                        discovery,
                        issuers: issuers.clone(),
                        refresh: fetch.refresh,
                        timeout: fetch.timeout,
                        cache_max_age: fetch.cache_max_age,
                        ca: ca.clone(),
                    };
                    let existing =
                        shared.remotes.lock().ok().and_then(|r| r.get(&id).and_then(std::sync::Weak::upgrade));
                    let remote = match existing {
                        Some(remote) => {
                            // A load that was dropped before starting its task leaves one
                            // without; whoever reuses it starts it.
                            remote.ensure_started();
                            remote
                        }
                        None => {
                            let parsed = url::Url::parse(&url_text).map_err(|e| LoadError::Keys {
                                provider: name.clone(),
                                error: format!("`{url_text}` is not a URL: {e}"),
                            })?;
                            let fetcher = shared
                                .fetcher(ca.as_deref())
                                .map_err(|e| LoadError::Keys { provider: name.clone(), error: e.to_string() })?;
                            let source = if discovery {
                                Remote::Discovery(parsed, issuers.clone())
                            } else {
                                Remote::Jwks(parsed)
                            };
                            let remote = Arc::new(RemoteKeys::new(
                                source,
                                fetch.clone(),
                                shared.key_limits,
                                fetcher,
                                shared.kid_cooldown,
                                shared.counters.clone(),
                            ));
                            if let Ok(mut remotes) = shared.remotes.lock() {
                                remotes.retain(|_, weak| weak.strong_count() > 0);
                                remotes.insert(id, Arc::downgrade(&remote));
                            }
                            first_fetches.push(remote.clone());
                            remote
                        }
                    };
                    ProviderKeys::Remote(remote)
                }
            };
            keys.push(entry);
            provider_names.push(name);
        }
        // First fetches of new sources, all at once; failures leave the provider unavailable
        // (reported by `readiness`) and its refresh task retries with backoff.
        let results = futures_join_all(first_fetches.iter().map(|r| r.first_fetch())).await;
        for (remote, result) in first_fetches.iter().zip(results) {
            if let Err(error) = &result {
                tracing::warn!(target: "claimgate::keys", %error, "first key fetch failed; retrying in the background");
            }
            remote.start(result.ok());
        }
        let any_verbose =
            program.providers.iter().any(|p| p.verbose_logging) || program.roles.iter().any(|r| r.verbose_logging);
        Ok(Loaded { program, keys, provider_names, any_verbose })
    }

    fn statuses(&self) -> Vec<(String, KeyStatus)> {
        self.provider_names
            .iter()
            .zip(&self.keys)
            .map(|(name, keys)| {
                let status = match keys {
                    ProviderKeys::Inline | ProviderKeys::File(_) => KeyStatus::Static,
                    ProviderKeys::Remote(remote) => remote.status(),
                };
                (name.clone(), status)
            })
            .collect()
    }

    /// Whether the provider or the role asked for the claims in the log (`verbose_logging`).
    fn verbose(&self, provider: Option<&str>, role: Option<&str>) -> bool {
        if !self.any_verbose {
            return false;
        }
        let program = &self.program;
        let provider = provider.and_then(|name| program.provider_index(name));
        let role = role.and_then(|name| program.role_index(name));
        provider.and_then(|i| program.providers.get(i as usize)).is_some_and(|p| p.verbose_logging)
            || role.and_then(|i| program.roles.get(i as usize)).is_some_and(|r| r.verbose_logging)
    }

    fn current_keys(&self, index: u32) -> Option<Arc<KeySet>> {
        match self.keys.get(index as usize)? {
            ProviderKeys::Inline => self.program.inline_key_set(index).cloned(),
            ProviderKeys::File(keys) => Some(keys.clone()),
            ProviderKeys::Remote(remote) => remote.current(),
        }
    }

    fn remote(&self, provider: &str) -> Option<&Arc<RemoteKeys>> {
        let index = self.program.provider_index(provider)? as usize;
        match self.keys.get(index)? {
            ProviderKeys::Remote(remote) => Some(remote),
            _ => None,
        }
    }
}

/// Runs futures concurrently on the current task and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in set.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every future completed")).collect()
}

impl Shared {
    fn fetcher(&self, ca: Option<&[u8]>) -> Result<fetch::Fetcher, FetchError> {
        let key = ca.map(<[u8]>::to_vec);
        let mut fetchers = self.fetchers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(fetcher) = fetchers.get(&key) {
            return Ok(fetcher.clone());
        }
        let fetcher = fetch::Fetcher::new(ca)?;
        fetchers.insert(key, fetcher.clone());
        Ok(fetcher)
    }
}

/// One login: the token, and optionally the role, the client's address and the time.
#[derive(Clone, Copy)]
#[must_use]
pub struct AuthRequest<'a> {
    token: &'a str,
    role: Option<&'a str>,
    provider: Option<&'a str>,
    client_address: Option<IpAddr>,
    now: Option<i64>,
}

/// Everything but the token, which is a bearer credential: its length only.
impl std::fmt::Debug for AuthRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthRequest")
            .field("token_bytes", &self.token.len())
            .field("role", &self.role)
            .field("provider", &self.provider)
            .field("client_address", &self.client_address)
            .field("now", &self.now)
            .finish()
    }
}

impl<'a> AuthRequest<'a> {
    /// A login with `token` (a compact JWS; surrounding ASCII white space is ignored), the
    /// role chosen automatically, no client address, at the system clock's time.
    pub fn new(token: &'a str) -> Self {
        AuthRequest {
            token: token.trim_matches(|c: char| c.is_ascii_whitespace()),
            role: None,
            provider: None,
            client_address: None,
            now: None,
        }
    }

    /// Accept only tokens whose issuer selects this provider (a login endpoint bound to one
    /// provider, such as a Conjur service id or a Vault mount): a token of any other provider
    /// is refused with `issuer_mismatch`, even when its own provider would allow it.
    pub fn provider(mut self, provider: &'a str) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Log in as this role (otherwise the first role of the token's provider that allows).
    pub fn role(mut self, role: &'a str) -> Self {
        self.role = Some(role);
        self
    }

    /// The client's address, checked against the role's `bound_cidrs`.
    pub fn client_address(mut self, address: IpAddr) -> Self {
        self.client_address = Some(address);
        self
    }

    /// Decide at this time (seconds since the Unix epoch) instead of the system clock's.
    pub fn now(mut self, now: i64) -> Self {
        self.now = Some(now);
        self
    }
}

/// How a refused login maps to a protocol answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request itself is wrong (an unknown role): HTTP 400.
    BadRequest,
    /// The token is not a valid credential here (malformed, bad signature, expired, unknown
    /// issuer, wrong audience): HTTP 401.
    Unauthenticated,
    /// The token is valid but the policy refuses it: HTTP 403.
    Forbidden,
    /// The keys of the token's provider are not available: HTTP 503.
    KeysUnavailable,
}

impl ErrorKind {
    /// The HTTP status for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::KeysUnavailable => 503,
        }
    }

    fn of(code: DenyCode) -> ErrorKind {
        match code {
            DenyCode::UnknownRole | DenyCode::LimitExceeded => ErrorKind::BadRequest,
            DenyCode::KeysUnavailable => ErrorKind::KeysUnavailable,
            DenyCode::ClaimMismatch
            | DenyCode::ClaimMissing
            | DenyCode::ClaimTypeMismatch
            | DenyCode::NoRoleMatched
            | DenyCode::IdentityUnavailable
            | DenyCode::MappingUnavailable
            | DenyCode::AddressNotAllowed => ErrorKind::Forbidden,
            // A token of another issuer than the named role's provider was never verified:
            // not a credential here, as an unknown issuer is not.
            _ => ErrorKind::Unauthenticated,
        }
    }
}

/// A refused login: a stable [`DenyCode`], a kind that maps to HTTP, a short message that is
/// safe to send to the client, and the detail (the failing check and the value the token had)
/// for logs.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message} ({code})")]
pub struct AuthError {
    code: DenyCode,
    kind: ErrorKind,
    message: &'static str,
    detail: String,
    provider: Option<String>,
    role: Option<String>,
}

impl AuthError {
    /// The stable denial code (`signature_invalid`, `claim_mismatch`, ...).
    pub fn code(&self) -> DenyCode {
        self.code
    }

    /// How to answer the client.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A short message for the client: it names no rule, key or claim value.
    pub fn message(&self) -> &str {
        self.message
    }

    /// What failed and why, for logs (may quote the token's claim values; never the token).
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The provider that the token's issuer (or role) selected, if one was.
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    /// The role that refused the token, when one role was tried.
    pub fn role(&self) -> Option<&str> {
        self.role.as_deref()
    }

    fn new(denial: &claimgate::decision::Denial, provider: Option<String>) -> AuthError {
        let kind = ErrorKind::of(denial.code());
        let message = match kind {
            ErrorKind::BadRequest => "the login request is not valid",
            ErrorKind::Unauthenticated => "the token is not valid",
            ErrorKind::Forbidden => "the token may not log in here",
            ErrorKind::KeysUnavailable => "the token's issuer cannot be verified right now",
        };
        let mut detail = denial.message().to_string();
        if let Some(check) = denial.condition() {
            detail.push_str(&format!(" [check `{}`]", check.text()));
        }
        if let Some(actual) = denial.actual() {
            detail.push_str(&format!(" [token has {}]", claimgate::decision::short_json(actual)));
        }
        AuthError { code: denial.code(), kind, message, detail, provider, role: denial.role().map(str::to_string) }
    }
}

/// Counters since the engine was built, as a snapshot ([`Engine::metrics`]).
#[derive(Debug, Default)]
struct Counters {
    allows: AtomicU64,
    denials: [AtomicU64; DenyCode::ALL.len()],
    key_fetches: AtomicU64,
    key_fetch_failures: AtomicU64,
    kid_refetches: AtomicU64,
    kid_refetches_limited: AtomicU64,
    cache_hits: AtomicU64,
}

/// A snapshot of the engine's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Metrics {
    /// Logins allowed.
    pub allows: u64,
    /// Logins refused, by denial code (codes that never occurred are left out).
    pub denials: Vec<(DenyCode, u64)>,
    /// Key set fetches started (first fetches, refreshes and refetches).
    pub key_fetches: u64,
    /// Key set fetches that failed.
    pub key_fetch_failures: u64,
    /// Refetches caused by a token with an unknown `kid`.
    pub kid_refetches: u64,
    /// Refetches for an unknown `kid` refused by the cooldown.
    pub kid_refetches_limited: u64,
    /// Decisions on a token found in the verified-token cache (no signature verified).
    pub cache_hits: u64,
}

/// One decision, with the provider the token selected and its `kid` (for the refetch and logs).
struct Decided {
    outcome: Result<Grant, Box<claimgate::decision::Denial>>,
    provider: Option<String>,
    kid: Option<String>,
}

impl Decided {
    /// The decision, with the role's `bound_cidrs` checked against the client's address.
    fn of(decision: Decision, request: &AuthRequest<'_>, provider: Option<String>, kid: Option<String>) -> Decided {
        let outcome = match decision {
            // Provider-level denials (malformed, unknown issuer) stand: they say more.
            Decision::Deny(denial) if denial.code().is_provider_level() && provider.is_none() => Err(Box::new(denial)),
            _ if request.provider.is_some() && request.provider != provider.as_deref() => {
                Err(Box::new(claimgate::decision::Denial::simple(
                    DenyCode::IssuerMismatch,
                    format!(
                        "the token's issuer selects {}, but this login accepts only provider `{}`",
                        provider.as_deref().map_or("no provider".to_string(), |p| format!("provider `{p}`")),
                        request.provider.unwrap_or_default()
                    ),
                )))
            }
            Decision::Allow(grant) => grant.for_address(request.client_address),
            Decision::Deny(denial) => Err(Box::new(denial)),
        };
        Decided { outcome, provider, kid }
    }
}

/// The token's claims in the log, for a provider or role with `verbose_logging = true`: compact
/// JSON with every control and bidirectional-formatting character escaped (`\u....`), so that a
/// claim cannot forge log lines or reorder what a terminal shows. The claims of a refused token
/// may be forged (`allowed` says which it was).
fn log_claims(request: &AuthRequest<'_>, provider: Option<&str>, role: Option<&str>, allowed: bool, options: &Options) {
    let Ok((_, payload)) = claimgate_jose::decode_unverified(request.token, &options.token) else { return };
    let Ok(claims) = claimgate_jose::check_payload_json(&payload, &options.token) else { return };
    let escaped = escape_log_text(&serde_json::Value::Object(claims).to_string());
    tracing::info!(target: "claimgate::claims", provider, role, allowed, claims = %escaped, "token claims");
}

/// Text for a log line or a terminal with every control, bidirectional-formatting and line
/// separator character written as `\uXXXX`, so that attacker-controlled text (claims, names)
/// cannot forge lines or reorder what a terminal shows. JSON text stays valid JSON.
pub fn escape_log_text(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        let hidden = matches!(
            c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
        );
        if c.is_control() || hidden {
            escaped.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            escaped.push(c);
        }
    }
    escaped
}

thread_local! {
    static SCRATCH: std::cell::RefCell<claimgate::payload::Scratch> = std::cell::RefCell::default();
}

impl Engine {
    /// Starts building an engine from a policy source.
    pub fn builder(source: PolicySource) -> EngineBuilder {
        EngineBuilder {
            source,
            options: Options::default(),
            key_limits: KeyLimits::default(),
            kid_cooldown: DEFAULT_KID_REFETCH_COOLDOWN,
            require_keys: false,
            cache: None,
            set_check: None,
        }
    }

    /// Decides a login: the signature with the token's own provider's keys, then the policy,
    /// then the role's `bound_cidrs` against the client's address.
    pub async fn authenticate(&self, request: AuthRequest<'_>) -> Result<Grant, AuthError> {
        let started = Instant::now();
        let mut loaded = self.inner.current.load_full();
        let mut decided = self.decide(&loaded, &request, request.now.unwrap_or_else(unix_now));
        // A kid the cached keys do not have: the issuer may have rotated. Fetch again (once,
        // shared, rate-limited) and decide again.
        if let (Err(denial), Some(provider), Some(_)) = (&decided.outcome, &decided.provider, &decided.kid)
            && denial.code() == DenyCode::KeyNotFound
            && let Some(remote) = loaded.remote(provider).cloned()
            && tokio::spawn(async move { remote.refetch_for_unknown_kid().await }).await.unwrap_or(false)
        {
            // The wait may have been as long as the provider's fetch timeout (and a slow key
            // source is the attacker's to make): decide on the set in force now and at the time
            // now, never on a set a reload has replaced or with a clock from before the wait.
            loaded = self.inner.current.load_full();
            decided = self.decide(&loaded, &request, request.now.unwrap_or_else(unix_now));
        }
        let counters = &self.inner.shared.counters;
        let latency_us = started.elapsed().as_micros() as u64;
        let Decided { outcome, provider, kid } = decided;
        let role = match &outcome {
            Ok(grant) => Some(grant.role()),
            Err(denial) => denial.role().or(request.role),
        };
        if loaded.verbose(provider.as_deref(), role) {
            log_claims(&request, provider.as_deref(), role, outcome.is_ok(), &self.inner.shared.options);
        }
        match outcome {
            Ok(grant) => {
                counters.allows.fetch_add(1, Ordering::Relaxed);
                observe::login("allow", provider.as_deref(), started.elapsed().as_secs_f64());
                tracing::info!(
                    target: "claimgate::decision",
                    provider,
                    role = %grant.role(),
                    kid = kid.as_deref().map(claimgate_jose::snippet),
                    code = "allow",
                    latency_us,
                    "login allowed"
                );
                Ok(grant)
            }
            Err(denial) => {
                if let Some(i) = DenyCode::ALL.iter().position(|c| *c == denial.code()) {
                    counters.denials[i].fetch_add(1, Ordering::Relaxed);
                }
                observe::login(denial.code().as_str(), provider.as_deref(), started.elapsed().as_secs_f64());
                let error = AuthError::new(&denial, provider.clone());
                tracing::info!(
                    target: "claimgate::decision",
                    provider,
                    role = denial.role(),
                    kid = kid.as_deref().map(claimgate_jose::snippet),
                    code = %denial.code(),
                    latency_us,
                    // Debug formatting escapes control characters: the detail may quote claims.
                    detail = ?error.detail(),
                    "login refused"
                );
                Err(error)
            }
        }
    }

    fn decide(&self, loaded: &Loaded, request: &AuthRequest<'_>, now: i64) -> Decided {
        let shared = &self.inner.shared;
        let options = &shared.options;
        let token = request.token.as_bytes();
        if let Some(cache) = &shared.cache
            && let Some(verified) = cache.get(token)
        {
            // Still verified only by this policy set, and while its provider's keys are the ones
            // that verified it.
            if loaded.program.verified_this(&verified)
                && loaded.current_keys(verified.provider()).is_some_and(|keys| Arc::ptr_eq(&keys, verified.keys()))
            {
                shared.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
                observe::cache_hit();
                let evaluation = SCRATCH.with(|scratch| {
                    loaded.program.decide_verified(&verified, request.role, now, options, &mut scratch.borrow_mut())
                });
                let provider = loaded.provider_names.get(verified.provider() as usize).cloned();
                return Decided::of(evaluation.into_decision(), request, provider, None);
            }
            cache.remove(token);
        }
        let result = SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            loaded.program.decide_token(token, loaded, request.role, now, options, &mut scratch)
        });
        // Only allowed tokens are kept: a token the policy refuses gains nothing from the cache,
        // and must not be able to push others out.
        if let (Some(cache), Some(verified), true) =
            (&shared.cache, &result.verified(), result.evaluation().decision().is_allow())
        {
            cache.insert(token, verified.token().clone());
        }
        let (provider, kid) = (result.provider().map(str::to_string), result.kid().map(str::to_string));
        Decided::of(result.into_evaluation().into_decision(), request, provider, kid)
    }

    /// Each provider's key status, in policy order.
    pub fn readiness(&self) -> Vec<(String, KeyStatus)> {
        self.inner.current.load().statuses()
    }

    /// Whether every provider can verify tokens now.
    pub fn is_ready(&self) -> bool {
        self.readiness().iter().all(|(_, status)| status.has_keys())
    }

    /// The counters since the engine was built.
    pub fn metrics(&self) -> Metrics {
        let c = &self.inner.shared.counters;
        Metrics {
            allows: c.allows.load(Ordering::Relaxed),
            denials: DenyCode::ALL
                .iter()
                .zip(&c.denials)
                .map(|(code, n)| (*code, n.load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            key_fetches: c.key_fetches.load(Ordering::Relaxed),
            key_fetch_failures: c.key_fetch_failures.load(Ordering::Relaxed),
            kid_refetches: c.kid_refetches.load(Ordering::Relaxed),
            kid_refetches_limited: c.kid_refetches_limited.load(Ordering::Relaxed),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
        }
    }

    /// Loads the policy source again (re-reading files and key files) and swaps it in
    /// atomically: requests in flight finish on the set they started with. Providers whose key
    /// source did not change keep their cached keys. A set with errors is refused and the
    /// current one keeps serving.
    pub async fn reload(&self) -> Result<(), LoadError> {
        self.reload_from(&self.inner.source.clone()).await
    }

    /// Like [`Engine::reload`], from another source (which later reloads do not use).
    pub async fn reload_from(&self, source: &PolicySource) -> Result<(), LoadError> {
        let _one_at_a_time = self.inner.reloading.lock().await;
        let loaded = Loaded::load(&self.inner.shared, source).await?;
        self.inner.current.store(Arc::new(loaded));
        if let Some(cache) = &self.inner.shared.cache {
            cache.clear();
        }
        Ok(())
    }

    /// Whether the provider or the role sets `verbose_logging = true` in the current policy
    /// set: a service that writes its own decision records (an audit log) includes the
    /// token's claims only then.
    pub fn logs_claims(&self, provider: Option<&str>, role: Option<&str>) -> bool {
        self.inner.current.load().verbose(provider, role)
    }

    /// The compiled program in use.
    pub fn with_program<T>(&self, f: impl FnOnce(&Program) -> T) -> T {
        f(&self.inner.current.load().program)
    }
}

/// Fetches one provider's remote keys once (its `jwks_url` or `discovery_url`, with its pinned
/// CA and timeout), for tools such as `claimgate eval` that decide one token and exit. `None`
/// when the provider's keys are not remote; an error names the URL and the cause.
pub async fn fetch_provider_keys(
    program: &Program,
    provider: &str,
    limits: &KeyLimits,
) -> Option<Result<KeySet, String>> {
    let code = &program.providers[program.provider_index(provider)? as usize];
    let (url, fetch, discovery) = match &code.keys {
        KeysCode::JwksUrl { url, fetch } => (url, fetch, false),
        KeysCode::Discovery { url, fetch } => (url, fetch, true),
        _ => return None,
    };
    Some(
        async {
            let ca = match &fetch.ca {
                None => None,
                Some(claimgate::program::CaCode::Pem(text)) => {
                    Some(program.string(*text).lines().map(str::trim).collect::<Vec<_>>().join("\n").into_bytes())
                }
                Some(claimgate::program::CaCode::File { path, file }) => {
                    let base = program.files.get(*file as usize).map_or("", |f| f.as_ref());
                    Some(
                        load::read_relative(base, program.string(*path), 1 << 20)
                            .map_err(|e| format!("ca_file: {e}"))?,
                    )
                }
            };
            let fetcher = fetch::Fetcher::new(ca.as_deref()).map_err(|e| e.to_string())?;
            let url_text = program.string(*url);
            let parsed = url::Url::parse(url_text).map_err(|e| format!("`{url_text}` is not a URL: {e}"))?;
            let timeout = Duration::from_secs(fetch.timeout.max(1));
            let fetched = if discovery {
                let issuers: Vec<String> = code.issuers.iter().map(|i| program.string(*i).to_string()).collect();
                fetcher.discovery(&parsed, &issuers, timeout, limits).await
            } else {
                fetcher.jwks(&parsed, timeout, limits).await
            };
            fetched.map(|f| f.keys).map_err(|e| e.to_string())
        }
        .await,
    )
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
