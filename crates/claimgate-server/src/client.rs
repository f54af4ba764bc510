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
/// in `X-Forwarded-For` that is not a trusted proxy (when every hop is trusted, the nearest one,
/// which the trusted peer itself wrote; the first entries are whatever the client sent).
/// `Err` when a trusted proxy sent no `X-Forwarded-For`, or one that does not parse: a request
/// that cannot be placed is refused (Vault's `x_forwarded_for_reject_not_present`), since
/// `bound_cidrs` and the failed-login limit depend on it, and taking the proxy's own address
/// would let whatever reaches the server through it pass a bound that covers the proxies.
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
    let nearest = hops.last().copied().map(canonical).ok_or(())?;
    for hop in hops.into_iter().rev().map(canonical) {
        if !config.is_trusted_proxy(hop) {
            return Ok(hop);
        }
    }
    Ok(nearest)
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// The key failed logins are counted under: the IPv4 address, or the IPv6 network of
/// `ipv6_prefix` bits (64 by default: one host is usually given a whole /64, and would
/// otherwise have 2^64 addresses to fail from; where hosts share a /64, as containers on one
/// bridge do, a longer prefix keeps one from blocking its neighbours).
fn limit_key(address: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match canonical(address) {
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(ipv6_prefix.min(128))).unwrap_or(0);
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & mask))
        }
        v4 => v4,
    }
}

/// How long an address over its quota is refused: a whole quota period, so that a client
/// cannot keep guessing at the rate the quota refills.
const BLOCK: Duration = Duration::from_secs(60);

/// Failed logins per client address (IPv6: per network, /64 by default): past the per-minute
/// quota, the address is refused (429) for a minute.
pub(crate) struct FailedLogins {
    ipv6_prefix: u8,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl std::fmt::Debug for FailedLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FailedLogins")
    }
}

impl FailedLogins {
    pub(crate) fn new(per_minute: u32, ipv6_prefix: u8) -> FailedLogins {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        FailedLogins {
            ipv6_prefix,
            limiter: RateLimiter::keyed(Quota::per_minute(n)),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.blocked.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long `address` must wait, if it is over its quota.
    pub(crate) fn blocked(&self, address: IpAddr) -> Option<Duration> {
        let address = limit_key(address, self.ipv6_prefix);
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
        let address = limit_key(address, self.ipv6_prefix);
        if self.limiter.check_key(&address).is_err() {
            self.lock().insert(address, Instant::now() + BLOCK);
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
        // A trusted proxy that names no client: refused, never taken as the client itself.
        assert_eq!(client_address(&c, ip("10.0.0.1"), &headers(&[])), Err(()));
        // Every hop trusted: the nearest, which the trusted peer wrote (not the first, which
        // the client may have written to pick an address inside a bound).
        assert_eq!(client_address(&c, ip("10.0.0.1"), &headers(&["10.1.1.1, 10.0.0.2"])), Ok(ip("10.0.0.2")));
    }

    #[test]
    fn an_address_over_its_failed_quota_is_blocked() {
        let limits = FailedLogins::new(2, 64);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        limits.failed(a);
        limits.failed(a);
        assert!(limits.blocked(a).is_none());
        limits.failed(a);
        let wait = limits.blocked(a).expect("blocked");
        assert!(wait > Duration::from_secs(55), "blocked for a minute, not until one slot refills: {wait:?}");
        assert!(limits.blocked(b).is_none());
    }

    #[test]
    fn ipv6_clients_are_counted_per_network_of_the_configured_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Containers on one bridge share a /64: counted per /128, one cannot block another.
        let limits = FailedLogins::new(1, 128);
        limits.failed(ip("fd00:1::a"));
        limits.failed(ip("fd00:1::a"));
        assert!(limits.blocked(ip("fd00:1::a")).is_some());
        assert!(limits.blocked(ip("fd00:1::b")).is_none());
        // A /48: the whole site.
        let limits = FailedLogins::new(1, 48);
        limits.failed(ip("2001:db8:1:2::1"));
        limits.failed(ip("2001:db8:1:ffff::1"));
        assert!(limits.blocked(ip("2001:db8:1:abcd::77")).is_some());
        assert!(limits.blocked(ip("2001:db8:2::1")).is_none());
        // IPv4 addresses are counted one by one whatever the prefix, mapped ones included.
        let limits = FailedLogins::new(1, 32);
        limits.failed(ip("192.0.2.1"));
        limits.failed(ip("::ffff:192.0.2.1"));
        assert!(limits.blocked(ip("192.0.2.1")).is_some());
        assert!(limits.blocked(ip("192.0.2.2")).is_none());
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let limits = FailedLogins::new(1, 64);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        limits.failed(ip("2001:db8:1:2::1"));
        limits.failed(ip("2001:db8:1:2:ffff::9"));
        assert!(limits.blocked(ip("2001:db8:1:2:abcd::77")).is_some());
        assert!(limits.blocked(ip("2001:db8:1:3::1")).is_none());
    }
}
