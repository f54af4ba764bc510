//! Who the client is (its address, through trusted proxies) and how many logins it failed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::HeaderMap;

use crate::config::Config;

/// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest address
/// in `X-Forwarded-For` that is not a trusted proxy. `Err` when a trusted proxy sent an
/// `X-Forwarded-For` that does not parse (a request that cannot be placed is refused, since
/// `bound_cidrs` and the failed-login limit depend on it).
pub(crate) fn client_address(config: &Config, peer: IpAddr, headers: &HeaderMap) -> Result<IpAddr, ()> {
    let peer = canonical(peer);
    if !config.is_trusted_proxy(peer) {
        return Ok(peer);
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let text = value.to_str().map_err(drop)?;
        for hop in text.split(',') {
            hops.push(hop.trim().parse::<IpAddr>().map_err(drop)?);
        }
    }
    for hop in hops.into_iter().rev().map(canonical) {
        if !config.is_trusted_proxy(hop) {
            return Ok(hop);
        }
    }
    Ok(peer)
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// Failed logins per client address: past the quota, the address is refused (429) until the
/// limiter lets it try again.
pub(crate) struct FailedLogins {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl std::fmt::Debug for FailedLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FailedLogins")
    }
}

impl FailedLogins {
    pub(crate) fn new(per_minute: u32) -> FailedLogins {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        FailedLogins { limiter: RateLimiter::keyed(Quota::per_minute(n)), blocked: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.blocked.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long `address` must wait, if it is over its quota.
    pub(crate) fn blocked(&self, address: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut blocked = self.lock();
        match blocked.get(&address) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                blocked.remove(&address);
                None
            }
            None => None,
        }
    }

    /// Counts a failed login of `address`.
    pub(crate) fn failed(&self, address: IpAddr) {
        if let Err(not_until) = self.limiter.check_key(&address) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            self.lock().insert(address, Instant::now() + wait.max(Duration::from_secs(1)));
        }
    }

    /// Forgets addresses that are no longer limited (run now and then, so that the maps stay
    /// as small as the set of recent failing clients).
    pub(crate) fn prune(&self) {
        let now = Instant::now();
        self.lock().retain(|_, until| *until > now);
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(proxies: &str) -> Config {
        Config::from_toml(&format!("trusted_proxies = [{proxies}]"), std::path::Path::new("x")).unwrap()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let c = config(r#""10.0.0.0/8""#);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // An untrusted peer's header is ignored.
        assert_eq!(client_address(&c, ip("192.0.2.7"), &headers(&["203.0.113.9"])), Ok(ip("192.0.2.7")));
        // Through two trusted proxies: the nearest untrusted hop, not the client-supplied first one.
        assert_eq!(
            client_address(&c, ip("10.0.0.1"), &headers(&["1.1.1.1, 203.0.113.9", "10.0.0.2"])),
            Ok(ip("203.0.113.9"))
        );
        assert_eq!(client_address(&c, ip("::ffff:10.0.0.1"), &headers(&["198.51.100.1"])), Ok(ip("198.51.100.1")));
        assert_eq!(client_address(&c, ip("10.0.0.1"), &headers(&["not-an-ip"])), Err(()));
        assert_eq!(client_address(&c, ip("10.0.0.1"), &headers(&[])), Ok(ip("10.0.0.1")));
    }

    #[test]
    fn an_address_over_its_failed_quota_is_blocked() {
        let limits = FailedLogins::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        limits.failed(a);
        limits.failed(a);
        assert!(limits.blocked(a).is_none());
        limits.failed(a);
        assert!(limits.blocked(a).is_some());
        assert!(limits.blocked(b).is_none());
    }
}
