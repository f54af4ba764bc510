//! Each remote provider's keys: the last good key set, when it was fetched, the refresh loop
//! (interval from the policy, `Cache-Control: max-age` honoured within it, backoff on failure),
//! stale-if-error until `cache_max_age`, and the refetch a token with an unknown `kid` may ask
//! for: single-flight, and at most one per cooldown per provider.

use std::sync::Arc;
use std::time::{Duration, Instant};

use claimgate::program::FetchCode;
use claimgate_jose::{KeyLimits, KeySet};

use crate::fetch::{FetchError, Fetcher};

/// The shortest refresh interval, whatever a server's `Cache-Control` says (the checker's floor
/// for `refresh` too).
pub(crate) const MIN_REFRESH: Duration = Duration::from_secs(10);
/// The first retry after a failed fetch; it doubles up to [`MAX_BACKOFF`] (or the refresh
/// interval, if shorter).
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Where a remote key set comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Remote {
    Jwks(url::Url),
    /// The discovery URL and the issuers its document may name.
    Discovery(url::Url, Vec<String>),
}

/// How fresh a provider's keys are, for readiness.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyStatus {
    /// Keys inside the policy, or read from a file at load.
    Static,
    /// Fetched, and the last fetch succeeded.
    Fresh {
        /// Time since the keys were fetched.
        age: Duration,
    },
    /// The last refresh failed; the last good keys still serve until `cache_max_age`.
    Stale {
        /// Time since the last good keys were fetched.
        age: Duration,
        /// Why the last fetch failed.
        error: String,
    },
    /// No keys: never fetched yet, or the last good ones are older than `cache_max_age`.
    Unavailable {
        /// Why.
        error: String,
    },
}

impl KeyStatus {
    /// Whether tokens of this provider can be verified now.
    pub fn has_keys(&self) -> bool {
        !matches!(self, KeyStatus::Unavailable { .. })
    }
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    last_error: Option<String>,
    /// When the last refetch for an unknown `kid` started.
    last_kid_refetch: Option<Instant>,
}

/// One remote provider's key cache. Shared by the engine's loaded sets (a reload that keeps the
/// provider's key source keeps this cache) and by its refresh task.
pub(crate) struct RemoteKeys {
    pub(crate) source: Remote,
    fetch: FetchCode,
    limits: KeyLimits,
    fetcher: Fetcher,
    kid_cooldown: Duration,
    state: std::sync::Mutex<State>,
    /// Serialises fetches: concurrent refetch requests share one.
    flight: tokio::sync::Mutex<()>,
    /// Bumped on every successful fetch.
    generation: std::sync::atomic::AtomicU64,
    counters: Arc<crate::Counters>,
    task: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for RemoteKeys {
    fn drop(&mut self) {
        if let Ok(mut task) = self.task.lock()
            && let Some(task) = task.take()
        {
            task.abort();
        }
    }
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys").field("source", &self.source).finish_non_exhaustive()
    }
}

impl RemoteKeys {
    pub(crate) fn new(
        source: Remote,
        fetch: FetchCode,
        limits: KeyLimits,
        fetcher: Fetcher,
        kid_cooldown: Duration,
        counters: Arc<crate::Counters>,
    ) -> RemoteKeys {
        RemoteKeys {
            source,
            fetch,
            limits,
            fetcher,
            kid_cooldown,
            state: std::sync::Mutex::new(State::default()),
            flight: tokio::sync::Mutex::new(()),
            generation: std::sync::atomic::AtomicU64::new(0),
            counters,
            task: std::sync::Mutex::new(None),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent (every update is
        // one assignment), so a poisoned lock is used as it is.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cache_max_age(&self) -> Duration {
        Duration::from_secs(self.fetch.cache_max_age)
    }

    /// The refresh interval: the policy's, but never so long that the keys expire before the
    /// next refresh (at most half of `cache_max_age`, so that one failed refresh leaves a stale
    /// window to retry in).
    fn refresh(&self) -> Duration {
        let half_age = Duration::from_secs(self.fetch.cache_max_age / 2);
        Duration::from_secs(self.fetch.refresh).min(half_age).max(MIN_REFRESH)
    }

    /// The keys, if the last good set is younger than `cache_max_age`.
    pub(crate) fn current(&self) -> Option<Arc<KeySet>> {
        let state = self.state();
        match (&state.keys, state.fetched_at) {
            (Some(keys), Some(at)) if at.elapsed() <= self.cache_max_age() => Some(keys.clone()),
            _ => None,
        }
    }

    pub(crate) fn status(&self) -> KeyStatus {
        let state = self.state();
        match (state.fetched_at, &state.last_error) {
            (Some(at), _) if at.elapsed() > self.cache_max_age() => KeyStatus::Unavailable {
                error: state.last_error.clone().unwrap_or_else(|| "the keys are older than cache_max_age".to_string()),
            },
            (Some(at), None) => KeyStatus::Fresh { age: at.elapsed() },
            (Some(at), Some(error)) => KeyStatus::Stale { age: at.elapsed(), error: error.clone() },
            (None, error) => {
                KeyStatus::Unavailable { error: error.clone().unwrap_or_else(|| "not fetched yet".to_string()) }
            }
        }
    }

    /// Fetches once and records the outcome. Returns how long to wait before the next
    /// scheduled refresh (the policy's interval, shortened by `Cache-Control: max-age`).
    async fn fetch_once(&self) -> Result<Duration, FetchError> {
        let timeout = Duration::from_secs(self.fetch.timeout.max(1));
        self.counters.key_fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let result = match &self.source {
            Remote::Jwks(url) => self.fetcher.jwks(url, timeout, &self.limits).await,
            Remote::Discovery(url, issuers) => self.fetcher.discovery(url, issuers, timeout, &self.limits).await,
        };
        match result {
            Ok(fetched) => {
                let mut state = self.state();
                state.keys = Some(Arc::new(fetched.keys));
                state.fetched_at = Some(Instant::now());
                state.last_error = None;
                drop(state);
                self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                let next = fetched.max_age.map_or(self.refresh(), |age| age.clamp(MIN_REFRESH, self.refresh()));
                crate::observe::key_fetch(true);
                tracing::debug!(target: "claimgate::keys", source = ?self.source, next_refresh_s = next.as_secs(), "keys fetched");
                Ok(next)
            }
            Err(error) => {
                self.counters.key_fetch_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                crate::observe::key_fetch(false);
                tracing::warn!(target: "claimgate::keys", %error, "key fetch failed");
                self.state().last_error = Some(error.to_string());
                Err(error)
            }
        }
    }

    /// The first fetch, at load: the wait before the next refresh, or the error (reported by
    /// the caller).
    pub(crate) async fn first_fetch(&self) -> Result<Duration, FetchError> {
        let _flight = self.flight.lock().await;
        self.fetch_once().await
    }

    /// Starts the refresh loop: after `first_wait` (the first fetch's next refresh, or a
    /// retry when it failed), fetch; on success wait the refresh interval (or `max-age`), on
    /// failure retry with backoff (1 s doubling, at most 5 minutes or the interval).
    pub(crate) fn start(self: &Arc<Self>, first_wait: Option<Duration>) {
        let mut task = self.task.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if task.is_some() {
            return;
        }
        let weak = Arc::downgrade(self);
        let refresh = self.refresh();
        let handle = tokio::spawn(async move {
            let mut wait = first_wait.unwrap_or(FIRST_BACKOFF);
            let mut backoff = FIRST_BACKOFF;
            loop {
                tokio::time::sleep(wait).await;
                let Some(keys) = weak.upgrade() else { return };
                let outcome = {
                    let _flight = keys.flight.lock().await;
                    keys.fetch_once().await
                };
                wait = match outcome {
                    Ok(next) => {
                        backoff = FIRST_BACKOFF;
                        next
                    }
                    Err(_) => {
                        let next = backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF).min(refresh);
                        next
                    }
                };
            }
        });
        *task = Some(handle.abort_handle());
    }

    /// Starts the refresh loop if nothing has (retrying soon).
    pub(crate) fn ensure_started(self: &Arc<Self>) {
        self.start(None);
    }

    /// A token named a `kid` the current keys do not have: fetch again, unless a fetch already
    /// happened while this one waited its turn (single flight), or one for an unknown kid
    /// happened less than the cooldown ago (so random kids cannot make us hammer the issuer).
    /// Returns whether new keys were fetched.
    pub(crate) async fn refetch_for_unknown_kid(&self) -> bool {
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        let _flight = self.flight.lock().await;
        if self.generation.load(std::sync::atomic::Ordering::Acquire) != generation {
            return true;
        }
        {
            let mut state = self.state();
            if state.last_kid_refetch.is_some_and(|at| at.elapsed() < self.kid_cooldown) {
                self.counters.kid_refetches_limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                crate::observe::kid_refetch(true);
                return false;
            }
            state.last_kid_refetch = Some(Instant::now());
        }
        self.counters.kid_refetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::observe::kid_refetch(false);
        self.fetch_once().await.is_ok()
    }
}
