//! The engine's counters in the `metrics` facade (feature `metrics`), for services that already
//! export through a `metrics` recorder (Prometheus, StatsD, ...). Without the feature these are
//! no-ops and [`crate::Engine::metrics`] is the only way to read the counters.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `claimgate_logins_total` | counter | `code` (`allow` or the denial code), `provider` |
//! | `claimgate_login_duration_seconds` | histogram | `provider` |
//! | `claimgate_key_fetches_total` | counter | `result` (`ok`, `error`) |
//! | `claimgate_kid_refetches_total` | counter | `result` (`fetched`, `rate_limited`) |
//! | `claimgate_verified_token_cache_hits_total` | counter | |
//!
//! Label values come from the policy set and the code list only (never from a token), so their
//! number is bounded; a token whose issuer selects no provider is counted under `provider=""`.

/// One decision.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn login(code: &'static str, provider: Option<&str>, seconds: f64) {
    #[cfg(feature = "metrics")]
    {
        let provider = provider.unwrap_or("").to_string();
        metrics::counter!("claimgate_logins_total", "code" => code, "provider" => provider.clone()).increment(1);
        metrics::histogram!("claimgate_login_duration_seconds", "provider" => provider).record(seconds);
    }
}

/// One fetch of a provider's keys.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn key_fetch(ok: bool) {
    #[cfg(feature = "metrics")]
    metrics::counter!("claimgate_key_fetches_total", "result" => if ok { "ok" } else { "error" }).increment(1);
}

/// A refetch asked for by an unknown `kid`: made, or refused by the cooldown.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn kid_refetch(limited: bool) {
    #[cfg(feature = "metrics")]
    metrics::counter!("claimgate_kid_refetches_total", "result" => if limited { "rate_limited" } else { "fetched" })
        .increment(1);
}

/// A token answered from the verified-token cache.
pub(crate) fn cache_hit() {
    #[cfg(feature = "metrics")]
    metrics::counter!("claimgate_verified_token_cache_hits_total").increment(1);
}
