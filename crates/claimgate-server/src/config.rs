//! The server's settings: a TOML file, every field optional, every value checked at start.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The most `limits.max_connections` takes: far above what one process serves (each connection
/// holds a socket and buffers), and within what the connection semaphore can count.
const MAX_CONNECTIONS: usize = 1 << 20;

/// Everything `claimgate serve` is configured with.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Where to listen (`127.0.0.1:8200` by default).
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<Tls>,
    /// Allow plain HTTP on an address other than loopback (behind a TLS-terminating proxy).
    pub allow_plain_http: bool,
    /// The `iss` of the tokens this server signs, and the base of its discovery document.
    /// Defaults to `https://` (or `http://` without TLS) and the listen address.
    pub issuer: String,
    /// Where the embedded store and the audit log live.
    pub data_dir: PathBuf,
    /// A shared store (`postgres://...`) instead of the embedded one, for several nodes.
    pub store_url: Option<String>,
    /// PEM file of the CA certificates the shared store's TLS certificate is verified against;
    /// with it, connections to the store are TLS only.
    pub store_ca: Option<PathBuf>,
    /// Allow plain connections to a shared store off loopback (a private network).
    pub allow_plain_store: bool,
    /// The embedded store: whether a login waits for its new token to reach the disk (fsync).
    /// Revocations, use counts, renewals and keys always do. Without it (the default) a new
    /// token reaches the disk within a quarter second; a crash of the server loses none, and a
    /// power cut may lose the last quarter second's, whose holders are refused and log in again.
    pub sync_issued_tokens: bool,
    /// Conjur accounts (and Strongbox tenants) that logins may name, each with the providers
    /// that may log in to it (`None`: every provider, for the one account of
    /// `accounts = ["myorg"]`). See [`Config::account_takes`].
    accounts: BTreeMap<String, Option<Vec<String>>>,
    /// Vault mount path → the provider it serves. Empty: each provider at its own name.
    pub mounts: BTreeMap<String, String>,
    /// Vault's system-wide token lifetimes: the TTL of a token whose role sets none, and the
    /// ceiling of every token.
    pub default_lease_ttl: Duration,
    /// See `default_lease_ttl`.
    pub max_lease_ttl: Duration,
    /// How long one signing key signs before the next takes over.
    pub signing_key_rotation: Duration,
    /// Peers whose `X-Forwarded-For` is believed (addresses or CIDR blocks).
    pub trusted_proxies: Vec<String>,
    /// Request bounds and the failed-login limit.
    pub limits: Limits,
    /// Where the audit log goes: a file path, or `-` for standard output.
    pub audit_log: PathBuf,
    /// The issuer made from the listen address when none was configured: while `issuer` is
    /// still this, it follows the address the listener is bound to (port 0).
    derived_issuer: Option<String>,
}

/// The certificate chain and private key of the HTTPS listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Tls {
    /// PEM file: the server certificate first, then its intermediates.
    pub certificate: PathBuf,
    /// PEM file: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Bounds on requests.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// Largest request body (64 KiB by default: a JWT is a few KiB).
    pub max_body_bytes: usize,
    /// Largest request head: request line and headers (16 KiB by default).
    pub max_header_bytes: usize,
    /// Time to receive the request head.
    pub header_timeout: Duration,
    /// Time to receive the body and answer.
    pub request_timeout: Duration,
    /// Failed logins allowed per client address per minute before it gets 429.
    pub failed_logins_per_minute: u32,
    /// The IPv6 network the failed-login quota counts as one client address (32 to 128 bits;
    /// 64 by default, a host's usual allocation). IPv4 addresses count one by one.
    pub failed_logins_ipv6_prefix: u8,
    /// Concurrent connections.
    pub max_connections: usize,
    /// How long SIGTERM waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Verified tokens kept so that a token presented again is not verified again (0: none).
    pub verified_token_cache: usize,
}

impl Config {
    /// Whether a login through `provider` may name `account` (a Conjur account, a Strongbox
    /// tenant): the account is configured, and takes that provider.
    pub fn account_takes(&self, account: &str, provider: &str) -> bool {
        match self.accounts.get(account) {
            Some(None) => true,
            Some(Some(providers)) => providers.iter().any(|p| p == provider),
            None => false,
        }
    }

    /// The configured accounts (Conjur accounts, Strongbox tenants).
    pub fn accounts(&self) -> impl Iterator<Item = &str> {
        self.accounts.keys().map(String::as_str)
    }

    /// The providers the accounts name, with their account.
    pub(crate) fn account_providers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.accounts.iter().flat_map(|(account, providers)| {
            providers.iter().flatten().map(move |provider| (account.as_str(), provider.as_str()))
        })
    }

    /// Every provider the configuration names (by a Vault mount or an account), with the
    /// error of a policy set that does not define it: refused at start and on reload.
    pub(crate) fn provider_references(&self) -> impl Iterator<Item = (&str, String)> {
        let undefined = |what: &str, provider: &str| {
            format!("{what} names provider `{provider}`, which the policies do not define")
        };
        let mounts = self.mounts.iter().map(move |(mount, provider)| {
            (provider.as_str(), undefined(&format!("vault.mounts: mount `{mount}`"), provider))
        });
        mounts.chain(
            self.account_providers().map(move |(account, provider)| {
                (provider, undefined(&format!("accounts: account `{account}`"), provider))
            }),
        )
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            failed_logins_per_minute: 60,
            failed_logins_ipv6_prefix: 64,
            max_connections: 4096,
            shutdown_grace: Duration::from_secs(30),
            verified_token_cache: 10_000,
        }
    }
}

/// A configuration that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped field.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the line and column.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as written in the file.
        field: &'static str,
        /// What is wrong and what to write instead.
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<String>,
    tls: Option<Tls>,
    allow_plain_http: Option<bool>,
    issuer: Option<String>,
    data_dir: Option<PathBuf>,
    store: Option<String>,
    store_ca: Option<PathBuf>,
    allow_plain_store: Option<bool>,
    sync_issued_tokens: Option<bool>,
    /// `["myorg"]` (one account, every provider) or a table `{ dev = ["gitlab"], ... }`.
    accounts: Option<toml::Value>,
    audit_log: Option<PathBuf>,
    trusted_proxies: Option<Vec<String>>,
    signing_key_rotation: Option<String>,
    vault: Option<VaultFile>,
    limits: Option<LimitsFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VaultFile {
    mounts: Option<BTreeMap<String, String>>,
    default_lease_ttl: Option<String>,
    max_lease_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_body_bytes: Option<usize>,
    max_header_bytes: Option<usize>,
    header_timeout: Option<String>,
    request_timeout: Option<String>,
    failed_logins_per_minute: Option<u32>,
    failed_logins_ipv6_prefix: Option<u8>,
    max_connections: Option<usize>,
    shutdown_grace: Option<String>,
    verified_token_cache: Option<usize>,
}

/// The longest duration a setting takes: 100 years, the language's own bound, so that every
/// time computed from one stays a four-digit year and far from integer overflow.
/// (humantime's year: 365.25 days, so that `"100y"` itself is taken.)
const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

fn duration(field: &'static str, text: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    match text {
        None => Ok(default),
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) if d <= MAX_DURATION => Ok(d),
            Ok(_) => Err(ConfigError::Invalid {
                field,
                message: format!("`{text}` is longer than 100 years, the longest duration a setting takes"),
            }),
            Err(e) => Err(ConfigError::Invalid {
                field,
                message: format!("`{text}` is not a duration ({e}); write e.g. \"30s\", \"15m\" or \"1h\""),
            }),
        },
    }
}

/// A shared store reached in clear carries token hashes, use counts and the signing keys:
/// only to loopback or a Unix socket, unless `store_ca` makes it TLS or the operator says the
/// network is private (`allow_plain_store`).
fn check_plain_store(url: &str, tls: bool, allowed: bool) -> Result<(), ConfigError> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| ConfigError::Invalid { field: "store", message: format!("not a PostgreSQL URL: {e}") })?;
    if tls {
        return Ok(());
    }
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        return Err(ConfigError::Invalid {
            field: "store",
            message: "`sslmode=require` needs store_ca, the CA certificate to verify the database with".into(),
        });
    }
    if allowed {
        return Ok(());
    }
    // `hostaddr` wins over `host` when given (tokio-postgres connects to it), so both count.
    let remote_address =
        config.get_hostaddrs().iter().find(|address| !address.is_loopback()).map(|address| address.to_string());
    let remote = remote_address.or_else(|| {
        config.get_hosts().iter().find_map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => {
                let loopback = name == "localhost"
                    || name.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
                (!loopback && config.get_hostaddrs().is_empty()).then(|| name.clone())
            }
            tokio_postgres::config::Host::Unix(_) => None,
        })
    });
    match remote {
        Some(host) => Err(ConfigError::Invalid {
            field: "store",
            message: format!(
                "the database at {host} would be reached in clear (token records, use counts, the signing keys \
                 and the batch token key cross that link); set store_ca to the CA certificate of its TLS \
                 certificate, or allow_plain_store = true on a private network"
            ),
        }),
        None => Ok(()),
    }
}

impl Config {
    /// The settings of a server with no configuration file.
    pub fn defaults() -> Config {
        Config::from_toml("", Path::new("<defaults>")).unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }

    /// Reads and checks a configuration file. Relative paths in it are relative to its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Config::from_toml(&text, path)
    }

    /// Checks a configuration given as TOML text; `path` names it in errors and anchors its
    /// relative paths.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file: File =
            toml::from_str(text).map_err(|e| ConfigError::Syntax { path: path.into(), message: e.to_string() })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let relative = |p: PathBuf| if p.is_absolute() || p.as_os_str() == "-" { p } else { base.join(p) };
        let listen_text = file.listen.as_deref().unwrap_or("127.0.0.1:8200");
        let listen: SocketAddr = listen_text.parse().map_err(|_| ConfigError::Invalid {
            field: "listen",
            message: format!("`{listen_text}` is not an address and port; write e.g. \"127.0.0.1:8200\""),
        })?;
        let tls = file.tls.map(|t| Tls { certificate: relative(t.certificate), key: relative(t.key) });
        let derived_issuer = file.issuer.is_none().then(|| default_issuer(listen, tls.is_some()));
        let issuer = file.issuer.or_else(|| derived_issuer.clone()).unwrap_or_default();
        let data_dir = relative(file.data_dir.unwrap_or_else(|| PathBuf::from("claimgate-data")));
        let accounts = accounts(file.accounts)?;
        let vault = file.vault.unwrap_or_default();
        let max_lease_ttl =
            duration("vault.max_lease_ttl", vault.max_lease_ttl.as_deref(), Duration::from_secs(768 * 3600))?;
        // Unset, the default follows a lower ceiling down (Vault's 768h default is no use then).
        let default_lease_ttl = duration(
            "vault.default_lease_ttl",
            vault.default_lease_ttl.as_deref(),
            Duration::from_secs(768 * 3600).min(max_lease_ttl),
        )?;
        let l = file.limits.unwrap_or_default();
        let d = Limits::default();
        let limits = Limits {
            max_body_bytes: l.max_body_bytes.unwrap_or(d.max_body_bytes),
            max_header_bytes: l.max_header_bytes.unwrap_or(d.max_header_bytes),
            header_timeout: duration("limits.header_timeout", l.header_timeout.as_deref(), d.header_timeout)?,
            request_timeout: duration("limits.request_timeout", l.request_timeout.as_deref(), d.request_timeout)?,
            failed_logins_per_minute: l.failed_logins_per_minute.unwrap_or(d.failed_logins_per_minute),
            failed_logins_ipv6_prefix: l.failed_logins_ipv6_prefix.unwrap_or(d.failed_logins_ipv6_prefix),
            max_connections: l.max_connections.unwrap_or(d.max_connections),
            shutdown_grace: duration("limits.shutdown_grace", l.shutdown_grace.as_deref(), d.shutdown_grace)?,
            verified_token_cache: l.verified_token_cache.unwrap_or(d.verified_token_cache),
        };
        let config = Config {
            listen,
            tls,
            allow_plain_http: file.allow_plain_http.unwrap_or(false),
            issuer,
            audit_log: relative(file.audit_log.unwrap_or_else(|| data_dir.join("audit.log"))),
            data_dir,
            store_url: file.store,
            store_ca: file.store_ca.map(relative),
            allow_plain_store: file.allow_plain_store.unwrap_or(false),
            sync_issued_tokens: file.sync_issued_tokens.unwrap_or(false),
            accounts,
            mounts: vault.mounts.unwrap_or_default(),
            default_lease_ttl,
            max_lease_ttl,
            signing_key_rotation: duration(
                "signing_key_rotation",
                file.signing_key_rotation.as_deref(),
                Duration::from_secs(30 * 86400),
            )?,
            trusted_proxies: file.trusted_proxies.unwrap_or_default(),
            limits,
            derived_issuer,
        };
        config.check()?;
        Ok(config)
    }

    /// Checks every value, as [`Config::from_toml`] does: [`crate::Server::start`] checks again,
    /// so that settings changed through the fields cannot start a server they would break.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, message: String| Err(ConfigError::Invalid { field, message });
        check_plain_http(self.listen, self.tls.is_some(), self.allow_plain_http)?;
        let issuer = &self.issuer;
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) || issuer.ends_with('/') {
            return invalid("issuer", format!("`{issuer}` must be an http(s) URL without a trailing slash"));
        }
        if let Some(url) = &self.store_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return invalid(
                "store",
                "only PostgreSQL is supported as a shared store (`postgres://user@host/db`); \
                 leave `store` out for the embedded one"
                    .into(),
            );
        }
        if let Some(url) = &self.store_url {
            check_plain_store(url, self.store_ca.is_some(), self.allow_plain_store)?;
        } else if self.store_ca.is_some() {
            return invalid("store_ca", "there is no shared store (`store = \"postgres://...\"`) to connect to".into());
        }
        for mount in self.mounts.keys() {
            if !mount.split('/').all(valid_name) || mount == "token" {
                return invalid(
                    "vault.mounts",
                    format!(
                        "`{}` is not a mount path (names separated by `/`; `token` is taken)",
                        mount.escape_debug()
                    ),
                );
            }
        }
        // Token lifetimes count whole seconds.
        if self.max_lease_ttl.as_secs() == 0 || self.max_lease_ttl > MAX_DURATION {
            return invalid("vault.max_lease_ttl", "must be at least one second and at most 100 years".into());
        }
        if self.default_lease_ttl.as_secs() == 0 || self.default_lease_ttl > self.max_lease_ttl {
            return invalid("vault.default_lease_ttl", "must be more than zero and at most vault.max_lease_ttl".into());
        }
        if self.signing_key_rotation < Duration::from_secs(3600) {
            return invalid(
                "signing_key_rotation",
                "must be at least one hour (a key is announced before it signs)".into(),
            );
        }
        if self.signing_key_rotation > MAX_DURATION {
            return invalid("signing_key_rotation", "must be at most 100 years".into());
        }
        for proxy in &self.trusted_proxies {
            if !valid_cidr(proxy) {
                return invalid(
                    "trusted_proxies",
                    format!("`{}` is not an address or CIDR block", proxy.escape_debug()),
                );
            }
        }
        let limits = &self.limits;
        // A zero timeout would end every TLS handshake and every request at once.
        for (field, value, least) in [
            ("limits.header_timeout", limits.header_timeout, Duration::from_millis(1)),
            ("limits.request_timeout", limits.request_timeout, Duration::from_millis(1)),
            ("limits.shutdown_grace", limits.shutdown_grace, Duration::ZERO),
        ] {
            if value < least {
                return invalid(field, "must be more than zero".into());
            }
            if value > MAX_DURATION {
                return invalid(field, "must be at most 100 years".into());
            }
        }
        // A batch token may be 8 KiB (`batch::MAX_TOKEN_BYTES`), and it travels in a header
        // beside the request line and the others: a smaller buffer would refuse tokens issued.
        if limits.max_header_bytes < 16384 {
            return invalid(
                "limits.max_header_bytes",
                "must be at least 16384 (a batch token alone may be 8 KiB)".into(),
            );
        }
        if limits.max_connections == 0 || limits.max_connections > MAX_CONNECTIONS {
            return invalid("limits.max_connections", format!("must be between 1 and {MAX_CONNECTIONS}"));
        }
        // Shorter than /32 would count whole providers' networks as one client.
        if !(32..=128).contains(&limits.failed_logins_ipv6_prefix) {
            return invalid("limits.failed_logins_ipv6_prefix", "must be between 32 and 128".into());
        }
        if limits.max_body_bytes < 1024 || limits.failed_logins_per_minute == 0 {
            return invalid(
                "limits",
                "max_body_bytes must be at least 1024; failed_logins_per_minute at least 1".into(),
            );
        }
        Ok(())
    }

    /// The same settings listening on `listen` (the command line's `--listen`), checked again.
    pub fn with_listen(mut self, listen: SocketAddr) -> Result<Config, ConfigError> {
        check_plain_http(listen, self.tls.is_some(), self.allow_plain_http)?;
        self.listen = listen;
        if self.issuer_follows_listen() {
            self.issuer = default_issuer(listen, self.tls.is_some());
            self.derived_issuer = Some(self.issuer.clone());
        }
        Ok(self)
    }

    /// The issuer when the listener is bound to `bound` (it differs from `listen` for port 0).
    pub(crate) fn issuer_at(&self, bound: SocketAddr) -> String {
        if self.issuer_follows_listen() { default_issuer(bound, self.tls.is_some()) } else { self.issuer.clone() }
    }

    /// Whether the issuer is still the one made from the listen address (not configured, and
    /// not set through the field since).
    fn issuer_follows_listen(&self) -> bool {
        self.derived_issuer.as_deref() == Some(self.issuer.as_str())
    }

    /// Whether `address` is a configured trusted proxy.
    pub(crate) fn is_trusted_proxy(&self, address: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|cidr| claimgate::decision::cidr_contains(cidr, address))
    }
}

fn default_issuer(listen: SocketAddr, tls: bool) -> String {
    format!("{}://{listen}", if tls { "https" } else { "http" })
}

fn check_plain_http(listen: SocketAddr, tls: bool, allowed: bool) -> Result<(), ConfigError> {
    if tls || listen.ip().is_loopback() || allowed {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        field: "listen",
        message: format!(
            "plain HTTP on {listen} would carry tokens in clear; configure [tls], listen on loopback, \
             or set allow_plain_http = true behind a TLS-terminating proxy"
        ),
    })
}

/// The `accounts` setting. A list names one account, which every provider may log in to; with
/// more than one account, a table says which providers each takes: the client names the
/// account in the URL (Conjur) or the body (Strongbox's tenant), and the policy does not see
/// it, so a list of several would let a token allowed for `dev` log in to `prod`.
fn accounts(value: Option<toml::Value>) -> Result<BTreeMap<String, Option<Vec<String>>>, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid { field: "accounts", message };
    // Names as Conjur service ids and account names are written (and as the policies name
    // providers), so that a setting that strayed into the table is not taken for one.
    let name = |text: String, what: &str| {
        if valid_name(&text) {
            Ok(text)
        } else {
            Err(invalid(format!("`{}` is not {what} (letters, digits, `-`, `_`, `.`)", text.escape_debug())))
        }
    };
    let names = |items: Vec<toml::Value>, what: &str| {
        items
            .into_iter()
            .map(|item| match item {
                toml::Value::String(text) => name(text, what),
                other => Err(invalid(format!("{what} is a string, not a value of type {}", other.type_str()))),
            })
            .collect::<Result<Vec<String>, ConfigError>>()
    };
    match value {
        None => Ok(BTreeMap::new()),
        Some(toml::Value::Array(items)) => {
            let accounts = names(items, "an account name")?;
            if accounts.len() > 1 {
                return Err(invalid(format!(
                    "with more than one account, say which providers each takes, so that a token allowed for \
                     one cannot log in to another: `accounts = {{ {} = [\"a-provider\"], ... }}`",
                    accounts[0]
                )));
            }
            Ok(accounts.into_iter().map(|account| (account, None)).collect())
        }
        Some(toml::Value::Table(table)) if table.is_empty() => {
            Err(invalid("names no account; leave it out if no login names one (Conjur, Strongbox tenants)".into()))
        }
        Some(toml::Value::Table(table)) => table
            .into_iter()
            .map(|(account, providers)| {
                let account = name(account, "an account name")?;
                let toml::Value::Array(providers) = providers else {
                    return Err(invalid(format!(
                        "account `{account}`: write the providers that may log in to it as a list, \
                         `{account} = [\"gitlab\"]`, not a value of type {} (a name with a dot is quoted: \
                         `\"dev.eu\" = [...]`)",
                        providers.type_str()
                    )));
                };
                let providers = names(providers, "a provider name")?;
                if providers.is_empty() {
                    return Err(invalid(format!("account `{account}` names no provider that may log in to it")));
                }
                Ok((account, Some(providers)))
            })
            .collect(),
        Some(other) => Err(invalid(format!(
            "write a list of one account (`accounts = [\"myorg\"]`) or a table of accounts and the providers \
             each takes (`accounts = {{ dev = [\"gitlab\"] }}`), not a value of type {}",
            other.type_str()
        ))),
    }
}

/// A name as Conjur accounts and Vault mount segments are written.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn valid_cidr(text: &str) -> bool {
    let (address, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let Ok(address) = address.parse::<IpAddr>() else { return false };
    let max = if address.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max) && !p.starts_with('+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        Config::from_toml(text, Path::new("/etc/claimgate/serve.toml")).unwrap_err().to_string()
    }

    #[test]
    fn defaults_listen_on_loopback_with_vaults_lifetimes() {
        let config = Config::defaults();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8200");
        assert_eq!(config.issuer, "http://127.0.0.1:8200");
        assert_eq!(config.max_lease_ttl, Duration::from_secs(768 * 3600));
    }

    #[test]
    fn plain_http_off_loopback_is_refused_unless_allowed() {
        assert_eq!(
            error("listen = \"0.0.0.0:8200\""),
            "listen: plain HTTP on 0.0.0.0:8200 would carry tokens in clear; configure [tls], listen on loopback, \
             or set allow_plain_http = true behind a TLS-terminating proxy"
        );
        assert!(Config::from_toml("listen = \"0.0.0.0:8200\"\nallow_plain_http = true", Path::new("x")).is_ok());
    }

    #[test]
    fn the_issuer_follows_the_bound_address_until_it_is_set() {
        let bound: SocketAddr = "127.0.0.1:41234".parse().unwrap();
        let mut config = Config::from_toml("", Path::new("serve.toml")).unwrap();
        assert_eq!(config.issuer_at(bound), "http://127.0.0.1:41234");
        let config_at = config.clone().with_listen("127.0.0.1:9000".parse().unwrap()).unwrap();
        assert_eq!(config_at.issuer, "http://127.0.0.1:9000");
        assert_eq!(config_at.issuer_at(bound), "http://127.0.0.1:41234");
        // Set through the field: kept, whatever the listener binds or --listen says.
        config.issuer = "https://auth.example".into();
        assert_eq!(config.issuer_at(bound), "https://auth.example");
        let config = config.with_listen("127.0.0.1:9000".parse().unwrap()).unwrap();
        assert_eq!(config.issuer_at(bound), "https://auth.example");
        let configured = Config::from_toml("issuer = \"https://a.example\"", Path::new("serve.toml")).unwrap();
        assert_eq!(configured.issuer_at(bound), "https://a.example");
    }

    #[test]
    fn unknown_fields_and_bad_values_are_located() {
        assert!(error("lisen = \"x\"").contains("unknown field `lisen`"), "{}", error("lisen = \"x\""));
        assert!(error("lisen = \"x\"").starts_with("/etc/claimgate/serve.toml: TOML parse error at line 1, column 1"));
        assert_eq!(
            error("[vault]\ndefault_lease_ttl = \"soon\""),
            "vault.default_lease_ttl: `soon` is not a duration (expected number at 0); write e.g. \"30s\", \"15m\" or \"1h\""
        );
        assert_eq!(
            error("[vault]\ndefault_lease_ttl = \"9000y\""),
            "vault.default_lease_ttl: `9000y` is longer than 100 years, the longest duration a setting takes"
        );
        assert_eq!(
            error("trusted_proxies = [\"10.0.0.0/33\"]"),
            "trusted_proxies: `10.0.0.0/33` is not an address or CIDR block"
        );
        assert_eq!(
            error("store = \"redis://x\""),
            "store: only PostgreSQL is supported as a shared store (`postgres://user@host/db`); leave `store` out for the embedded one"
        );
        assert!(error("[vault.mounts]\ntoken = \"x\"").starts_with("vault.mounts: `token` is not a mount path"));
        assert!(
            error("store = \"postgres://claimgate@db.internal/claimgate\"")
                .starts_with("store: the database at db.internal would be reached in clear"),
            "{}",
            error("store = \"postgres://claimgate@db.internal/claimgate\"")
        );
        let ok = |toml: &str| Config::from_toml(toml, Path::new("/etc/claimgate/serve.toml")).map(|c| c.store_ca);
        assert_eq!(ok("store = \"postgres://claimgate@127.0.0.1:5432/x\"").unwrap(), None);
        assert_eq!(ok("store = \"postgres://claimgate@localhost/x\"").unwrap(), None);
        assert_eq!(
            ok("store = \"postgres://claimgate@db.internal/x\"\nstore_ca = \"db-ca.pem\"").unwrap(),
            Some(PathBuf::from("/etc/claimgate/db-ca.pem"))
        );
        assert!(ok("store = \"postgres://claimgate@db.internal/x\"\nallow_plain_store = true").is_ok());
        // hostaddr is where tokio-postgres connects, whatever host says.
        for url in
            ["postgres://claimgate@localhost/x?hostaddr=203.0.113.5", "postgres://claimgate@/x?hostaddr=203.0.113.5"]
        {
            assert!(
                error(&format!("store = \"{url}\""))
                    .starts_with("store: the database at 203.0.113.5 would be reached in clear"),
                "{url}"
            );
        }
        assert!(ok("store = \"postgres://claimgate@db.internal/x?hostaddr=127.0.0.1\"").is_ok());
        assert!(ok("[vault]\nmax_lease_ttl = \"100y\"").is_ok());
        // A lower ceiling alone brings the default down with it.
        let config = Config::from_toml("[vault]\nmax_lease_ttl = \"30m\"", Path::new("serve.toml")).unwrap();
        assert_eq!(
            (config.default_lease_ttl, config.max_lease_ttl),
            (Duration::from_secs(1800), Duration::from_secs(1800))
        );
        assert_eq!(
            error("[vault]\nmax_lease_ttl = \"0s\""),
            "vault.max_lease_ttl: must be at least one second and at most 100 years"
        );
        assert_eq!(
            error("[vault]\nmax_lease_ttl = \"500ms\""),
            "vault.max_lease_ttl: must be at least one second and at most 100 years"
        );
        assert_eq!(error("[limits]\nrequest_timeout = \"0s\""), "limits.request_timeout: must be more than zero");
        assert_eq!(error("[limits]\nheader_timeout = \"0s\""), "limits.header_timeout: must be more than zero");
        assert!(ok("[limits]\nshutdown_grace = \"0s\"").is_ok());
        assert_eq!(
            error("[vault]\ndefault_lease_ttl = \"1h\"\nmax_lease_ttl = \"30m\""),
            "vault.default_lease_ttl: must be more than zero and at most vault.max_lease_ttl"
        );
        assert!(error("store_ca = \"db-ca.pem\"").starts_with("store_ca: there is no shared store"));
    }

    #[test]
    fn several_accounts_name_the_providers_each_takes() {
        let load = |text: &str| Config::from_toml(text, Path::new("/etc/claimgate/serve.toml"));
        // One account in a list: every provider logs in to it.
        let one = load("accounts = [\"myorg\"]").unwrap();
        assert!(one.account_takes("myorg", "gitlab") && one.account_takes("myorg", "github"));
        assert!(!one.account_takes("other", "gitlab"));
        assert_eq!(one.account_providers().count(), 0);
        // Several: a table, each account with its providers, inline or as a section.
        for text in [
            "accounts = { dev = [\"gitlab\", \"github\"], prod = [\"gitlab-prod\"] }",
            "[accounts]\ndev = [\"gitlab\", \"github\"]\nprod = [\"gitlab-prod\"]",
        ] {
            let table = load(text).unwrap();
            assert!(table.account_takes("dev", "github") && table.account_takes("prod", "gitlab-prod"));
            assert!(!table.account_takes("prod", "gitlab"), "a provider of dev does not log in to prod");
            assert_eq!(table.accounts().collect::<Vec<_>>(), ["dev", "prod"]);
            assert_eq!(
                table.account_providers().collect::<Vec<_>>(),
                [("dev", "gitlab"), ("dev", "github"), ("prod", "gitlab-prod")]
            );
        }
        assert!(load("accounts = { \"dev.eu\" = [\"gitlab\"] }").unwrap().account_takes("dev.eu", "gitlab"));
        assert!(!Config::defaults().account_takes("myorg", "gitlab"), "no account unless configured");
        assert_eq!(
            error("accounts = [\"dev\", \"prod\"]"),
            "accounts: with more than one account, say which providers each takes, so that a token allowed \
             for one cannot log in to another: `accounts = { dev = [\"a-provider\"], ... }`"
        );
        assert_eq!(error("[accounts]\nprod = []"), "accounts: account `prod` names no provider that may log in to it");
        assert_eq!(
            error("[accounts]"),
            "accounts: names no account; leave it out if no login names one (Conjur, Strongbox tenants)"
        );
        assert_eq!(
            error("[accounts]\nprod = [\"\"]"),
            "accounts: `` is not a provider name (letters, digits, `-`, `_`, `.`)"
        );
        // A setting written after `[accounts]` belongs to the table in TOML: refused, not taken
        // for an account whose provider is `10.0.0.0/8` (a stray setting whose value reads as a
        // provider name is caught at start: the policies define no such provider).
        assert_eq!(
            error("[accounts]\ndev = [\"gitlab\"]\ntrusted_proxies = [\"10.0.0.0/8\"]"),
            "accounts: `10.0.0.0/8` is not a provider name (letters, digits, `-`, `_`, `.`)"
        );
        assert_eq!(
            error("[accounts]\ndev = \"gitlab\""),
            "accounts: account `dev`: write the providers that may log in to it as a list, `dev = [\"gitlab\"]`, \
             not a value of type string (a name with a dot is quoted: `\"dev.eu\" = [...]`)"
        );
        assert!(error("[accounts]\ndev.eu = [\"x\"]").contains("account `dev`: write the providers"));
        assert_eq!(
            error("accounts = \"myorg\""),
            "accounts: write a list of one account (`accounts = [\"myorg\"]`) or a table of accounts and the \
             providers each takes (`accounts = { dev = [\"gitlab\"] }`), not a value of type string"
        );
        assert!(error("[accounts]\n\"a b\" = [\"x\"]").contains("`a b` is not an account name"));
        assert!(error("accounts = [1]").contains("an account name is a string, not a value of type integer"));
    }

    #[test]
    fn the_quotas_ipv6_network_is_a_prefix_of_32_to_128_bits() {
        let load = |text: &str| Config::from_toml(text, Path::new("/etc/claimgate/serve.toml"));
        assert_eq!(Config::defaults().limits.failed_logins_ipv6_prefix, 64);
        assert_eq!(load("[limits]\nfailed_logins_ipv6_prefix = 128").unwrap().limits.failed_logins_ipv6_prefix, 128);
        for bad in ["16", "129"] {
            assert_eq!(
                error(&format!("[limits]\nfailed_logins_ipv6_prefix = {bad}")),
                "limits.failed_logins_ipv6_prefix: must be between 32 and 128"
            );
        }
    }

    #[test]
    fn relative_paths_are_anchored_at_the_file() {
        let config = Config::from_toml(
            "data_dir = \"data\"\n[tls]\ncertificate = \"c.pem\"\nkey = \"/k.pem\"",
            Path::new("/etc/claimgate/serve.toml"),
        )
        .unwrap();
        assert_eq!(config.data_dir, Path::new("/etc/claimgate/data"));
        assert_eq!(config.audit_log, Path::new("/etc/claimgate/data/audit.log"));
        let tls = config.tls.unwrap();
        assert_eq!(
            (tls.certificate.as_path(), tls.key.as_path()),
            (Path::new("/etc/claimgate/c.pem"), Path::new("/k.pem"))
        );
        assert_eq!(config.issuer, "https://127.0.0.1:8200");
    }
}
