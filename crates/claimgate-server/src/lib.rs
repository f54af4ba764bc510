//! claimgate's authenticator server: the login endpoints that Conjur, Vault and Strongbox
//! clients already speak, deciding with claimgate policies and issuing short-lived tokens.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use claimgate_server::{Config, Server};
//!
//! let config = Config::load("serve.toml".as_ref())?;
//! let server = Server::start("policies".into(), config).await?;
//! server.run_until_signal().await?; // SIGHUP reloads the policies, SIGTERM drains and stops
//! # Ok(()) }
//! ```
//!
//! The endpoints (docs/serve.md has the requests and answers):
//! - Conjur authn-jwt: `POST /authn-jwt/{service-id}/{account}[/{host-id}]/authenticate`;
//! - Vault: `POST /v1/auth/{mount}/login`, `/v1/auth/token/{lookup-self,renew-self,revoke-self}`;
//! - Strongbox-style: `POST /v1/jwt-login`;
//! - `/.well-known/jwks.json` and `/.well-known/openid-configuration` for the tokens it signs;
//! - `/healthz`, `/readyz`, `/metrics`.

#![warn(missing_docs)]

mod audit;
mod batch;
mod client;
mod config;
mod conjur;
mod files;
mod issue;
mod listen;
mod login;
mod ops;
mod reload;
mod signing;
pub mod store;
mod strongbox;
mod vault;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use claimgate_engine::{Engine, PolicySource};

pub use config::{Config, ConfigError, Limits, Tls};
use store::{PostgresStore, SqliteStore, Store};

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The policies have problems (the message is the located diagnostics).
    #[error("the policies did not load: {0}")]
    Policies(String),
    /// The policies could not be read: a file, a key file or a compiled set.
    #[error("the policies did not load: {0}")]
    PolicyFiles(String),
    /// The configuration does not fit the policies (a mount naming no provider).
    #[error("{0}")]
    Config(String),
    /// The store could not be opened or set up.
    #[error("{0}")]
    Store(#[from] store::StoreError),
    /// The audit log could not be opened.
    #[error("cannot open the audit log {path}: {source}")]
    AuditLog {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The listener could not be set up (address in use, certificate or key unreadable).
    #[error("{0}")]
    Listen(String),
}

/// Everything the handlers share.
pub(crate) struct State {
    pub config: Config,
    pub engine: Engine,
    pub store: Arc<dyn Store>,
    pub keyring: signing::Keyring,
    /// Seals and opens batch tokens (never stored).
    pub batch: batch::Sealer,
    pub audit: audit::AuditLog,
    pub failed_logins: client::FailedLogins,
    /// The last reload's error, while the previous policy set keeps serving.
    pub reload_error: std::sync::Mutex<Option<String>>,
    pub prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The issuer once the listener is bound (see `Config::issuer_at`).
    pub issuer: std::sync::OnceLock<String>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("config", &self.config).finish_non_exhaustive()
    }
}

impl State {
    /// The `iss` of the tokens this server signs.
    pub(crate) fn issuer(&self) -> &str {
        self.issuer.get().unwrap_or(&self.config.issuer)
    }

    pub(crate) fn mount_ttl(&self) -> issue::MountTtl {
        issue::MountTtl {
            default: self.config.default_lease_ttl.as_secs() as i64,
            max: self.config.max_lease_ttl.as_secs() as i64,
        }
    }

    /// Counts a store failure, for `/metrics` and the log.
    pub(crate) fn store_failed(&self, error: &store::StoreError) {
        metrics::counter!("claimgate_store_errors_total").increment(1);
        tracing::error!(%error, "the token store failed");
    }
}

/// A configured server: policies loaded, store open, signing keys read. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Server {
    state: Arc<State>,
    policies: PathBuf,
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// A Unix time as a `SystemTime` for RFC 3339 text, held within 1970..=9999: the formatter
/// cannot write a five-digit year (it would fail, and `to_string` would panic).
pub(crate) fn rfc3339_time(unix: i64) -> std::time::SystemTime {
    const LAST_SECOND_OF_9999: i64 = 253_402_300_799;
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.clamp(0, LAST_SECOND_OF_9999) as u64)
}

/// The Prometheus recorder of this process (there is one global recorder per process; a second
/// server in the same process shares it).
fn prometheus() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
            let buckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];
            let builder =
                PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets).ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .clone()
}

/// Every metric docs/serve.md lists, described and at zero from the start, so that a scrape
/// (and an alert on a rate) sees each before its first event. The login counters start with
/// `allow` for each provider; a denial code appears when it first happens.
fn announce_metrics(engine: &Engine) {
    use metrics::{Unit, counter, describe_counter, describe_histogram};
    describe_counter!("claimgate_logins_total", "Login decisions of the policies, by code and provider.");
    describe_histogram!("claimgate_login_duration_seconds", Unit::Seconds, "Time to decide a login, by provider.");
    describe_counter!("claimgate_key_fetches_total", "Fetches of providers' keys, by result.");
    describe_counter!("claimgate_kid_refetches_total", "Key refetches asked for by unknown kids, by result.");
    describe_counter!("claimgate_verified_token_cache_hits_total", "Tokens whose verified signature was reused.");
    describe_counter!("claimgate_store_errors_total", "Token store operations that failed.");
    describe_counter!("claimgate_policy_reloads_total", "Policy reloads, by result.");
    describe_counter!("claimgate_audit_write_errors_total", "Audit lines that could not be written.");
    for result in ["ok", "error"] {
        counter!("claimgate_key_fetches_total", "result" => result).increment(0);
        counter!("claimgate_policy_reloads_total", "result" => result).increment(0);
    }
    for result in ["fetched", "rate_limited"] {
        counter!("claimgate_kid_refetches_total", "result" => result).increment(0);
    }
    for name in [
        "claimgate_verified_token_cache_hits_total",
        "claimgate_store_errors_total",
        "claimgate_audit_write_errors_total",
    ] {
        counter!(name).increment(0);
    }
    announce_providers(engine);
}

/// The login series of each provider, at zero: at start and after each reload (which may
/// bring new providers).
pub(crate) fn announce_providers(engine: &Engine) {
    for (provider, _) in engine.readiness() {
        metrics::counter!("claimgate_logins_total", "code" => "allow", "provider" => provider.clone()).increment(0);
        // Registered, so that its (empty) buckets show.
        let _ = metrics::histogram!("claimgate_login_duration_seconds", "provider" => provider);
    }
}

/// The store `config` names: its PostgreSQL, or the embedded store in its data folder.
async fn open_store(config: &Config) -> Result<Arc<dyn Store>, ServeError> {
    Ok(match &config.store_url {
        Some(url) => Arc::new(PostgresStore::connect(url, config.store_ca.as_deref()).await?),
        None => Arc::new(SqliteStore::open(&config.data_dir)?.sync_issued_tokens(config.sync_issued_tokens)),
    })
}

/// Revokes every live stored token that `filter` matches, in the store `config` names, while
/// the servers on it run (`claimgate revoke`); returns how many. Their next use is refused on
/// every node, as after `revoke-self`. Batch tokens and Conjur access tokens are not stored:
/// they cannot be revoked, and live until they expire (the role's `ttl`). An empty filter is
/// refused.
pub async fn revoke_tokens(config: &Config, filter: &store::TokenFilter) -> Result<u64, ServeError> {
    if filter.is_empty() {
        return Err(ServeError::Config(
            "name the tokens to revoke: an accessor, a provider, a role or an identity".into(),
        ));
    }
    config.check().map_err(|e| ServeError::Config(e.to_string()))?;
    // Opening the embedded store creates it: a configuration whose data folder is not the
    // server's (a copy elsewhere, another host) would revoke nothing in an empty new store and
    // say so as if all were well.
    if config.store_url.is_none() {
        let file = SqliteStore::database_file(&config.data_dir);
        if !file.is_file() {
            return Err(ServeError::Config(format!(
                "no token store at {}: run this where the server keeps its data (data_dir), as a user who can read it",
                file.display()
            )));
        }
    }
    let store = open_store(config).await?;
    Ok(store.revoke_matching(filter, unix_now()).await?)
}

impl Server {
    /// Loads the policies in `policies` (a folder of `.cg` files), opens the store (embedded,
    /// or the configured PostgreSQL), reads or creates the signing keys, opens the audit log.
    pub async fn start(policies: PathBuf, config: Config) -> Result<Server, ServeError> {
        config.check().map_err(|e| ServeError::Config(e.to_string()))?;
        let prometheus = prometheus();
        let mut builder = Engine::builder(PolicySource::dir(policies.clone()));
        let cached = config.limits.verified_token_cache;
        if cached > 0 {
            // About 3 KiB per token at most (the engine also bounds the bytes).
            builder = builder.verified_token_cache(cached, cached.saturating_mul(3 << 10));
        }
        // Every provider that a Vault mount or an account names must be defined, at start and in
        // every reloaded set: a reload that drops one is refused, and the current set keeps
        // serving.
        let references: Vec<(String, String)> =
            config.provider_references().map(|(provider, error)| (provider.to_string(), error)).collect();
        builder = builder.check_each_set(move |program| {
            match references.iter().find(|(provider, _)| program.provider_index(provider).is_none()) {
                Some((_, error)) => Err(error.clone()),
                None => Ok(()),
            }
        });
        let engine = builder.build().await.map_err(|e| match e {
            claimgate_engine::LoadError::Refused(error) => ServeError::Config(error),
            e @ claimgate_engine::LoadError::Policies { .. } => ServeError::Policies(e.to_string()),
            e => ServeError::PolicyFiles(e.to_string()),
        })?;
        announce_metrics(&engine);
        let store = open_store(&config).await?;
        let audit_out: Box<dyn std::io::Write + Send> = if config.audit_log.as_os_str() == "-" {
            Box::new(std::io::stdout())
        } else {
            if let Some(dir) = config.audit_log.parent() {
                files::private_dir(dir).map_err(|source| ServeError::AuditLog { path: dir.into(), source })?;
            }
            Box::new(
                files::append_private(&config.audit_log)
                    .map_err(|source| ServeError::AuditLog { path: config.audit_log.clone(), source })?,
            )
        };
        let keyring = signing::Keyring::default();
        keyring.refresh(store.as_ref(), unix_now(), config.signing_key_rotation.as_secs() as i64).await?;
        let batch = batch::Sealer::from_store(store.as_ref()).await?;
        let state = State {
            failed_logins: client::FailedLogins::new(
                config.limits.failed_logins_per_minute,
                config.limits.failed_logins_ipv6_prefix,
            ),
            config,
            engine,
            store,
            keyring,
            batch,
            audit: audit::AuditLog::new(audit_out),
            reload_error: std::sync::Mutex::new(None),
            prometheus,
            issuer: std::sync::OnceLock::new(),
        };
        Ok(Server { state: Arc::new(state), policies })
    }

    /// The engine deciding the logins (for reloads and readiness from outside).
    pub fn engine(&self) -> &Engine {
        &self.state.engine
    }

    /// The HTTP routes, without the listener, for embedding in another server: serve them with
    /// `into_make_service_with_connect_info::<SocketAddr>()` (a request without its
    /// connection's address is refused with 500, since `bound_cidrs` and the failed-login limit
    /// need it).
    pub fn router(&self) -> axum::Router {
        ops::router(self.state.clone())
    }

    /// Loads the policies again; a set with errors is refused, logged and shown in `/readyz`,
    /// and the current set keeps serving.
    pub async fn reload(&self) -> Result<(), String> {
        reload::reload(&self.state).await
    }

    /// Serves until `shutdown` completes, then stops accepting, lets requests in flight finish
    /// (up to `limits.shutdown_grace`) and returns. Also runs the background work: signing key
    /// rotation, expired token purging, policy reload on changes in the policy folder.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let listener = listen::Listener::bind(&self.state.config).await?;
        let _ = self.state.issuer.set(self.state.config.issuer_at(listener.local_addr()));
        self.serve_on(listener, shutdown).await
    }

    /// Serves on `listener` with the background work running, until `shutdown`.
    async fn serve_on(
        self,
        listener: listen::Listener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let background = self.spawn_background();
        let result = listener.serve(self.router(), &self.state.config, shutdown).await;
        for task in background {
            task.abort();
        }
        result
    }

    /// [`Server::run`], reloading on SIGHUP and stopping on SIGTERM or Ctrl-C.
    pub async fn run_until_signal(self) -> Result<(), ServeError> {
        let reloader = self.clone();
        let hangups = tokio::spawn(async move { reload::on_sighup(&reloader.state).await });
        let result = self.run(reload::terminate()).await;
        hangups.abort();
        result
    }

    /// The background work: signing key refresh and rotation, purging, pruning, watching.
    fn spawn_background(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let state = self.state.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut ticks = 0u64;
            loop {
                tick.tick().await;
                ticks += 1;
                if let Some(prometheus) = &state.prometheus {
                    // Histogram samples are kept until upkeep folds them into their buckets:
                    // without it they pile up with every login.
                    prometheus.run_upkeep();
                }
                if ticks % 12 != 1 {
                    continue;
                }
                // Once a minute:
                let minutes = ticks / 12;
                let rotation = state.config.signing_key_rotation.as_secs() as i64;
                if let Err(error) = state.keyring.refresh(state.store.as_ref(), unix_now(), rotation).await {
                    state.store_failed(&error);
                }
                state.failed_logins.prune();
                if minutes.is_multiple_of(10) {
                    // Expired tokens are refused by the store's own checks; this only frees space.
                    match state.store.purge_expired(unix_now() - 60).await {
                        Ok(n) if n > 0 => tracing::info!(purged = n, "expired tokens forgotten"),
                        Ok(_) => {}
                        Err(error) => state.store_failed(&error),
                    }
                }
            }
        }));
        let state = self.state.clone();
        let policies = self.policies.clone();
        tasks.push(tokio::spawn(async move { reload::watch(&state, &policies).await }));
        tasks
    }

    /// Binds the listener now and serves on it until `shutdown`: like [`Server::run`], but
    /// returns the bound address first (for `listen = "127.0.0.1:0"`).
    pub async fn bind(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<Result<(), ServeError>>), ServeError> {
        let listener = listen::Listener::bind(&self.state.config).await?;
        let address = listener.local_addr();
        let _ = self.state.issuer.set(self.state.config.issuer_at(address));
        let handle = tokio::spawn(self.serve_on(listener, shutdown));
        Ok((address, handle))
    }
}
