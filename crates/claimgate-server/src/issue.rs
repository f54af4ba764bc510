//! Minting tokens: random values, accessors, Vault's policy and lifetime rules.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::{SecureRandom, SystemRandom};

use claimgate_engine::{TokenSettings, TokenType};

/// A new token's value: 256 bits, base64url, behind a prefix that says what the token is
/// (secret scanners key on `hvs.`). The first 64 bits are the issue time in microseconds and
/// the other 192 are random: 192 bits leave nothing to guess (Vault's own tokens carry about 143:
/// 24 base62 characters), and
/// the time makes the store's keys ([`token_key`]) of tokens issued together lie together, so
/// that a commit of many new tokens writes a few pages at the end of the store's index instead
/// of one random page per token (which, once the index outgrows the cache, is also one read).
/// The issue time is no secret: a token's lookup returns it.
pub(crate) fn token_value(prefix: &str) -> Option<String> {
    let mut bytes = [0u8; 32];
    let micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_micros();
    bytes[..8].copy_from_slice(&u64::try_from(micros).ok()?.to_be_bytes());
    SystemRandom::new().fill(&mut bytes[8..]).ok()?;
    Some(format!("{prefix}{}", B64.encode(bytes)))
}

/// SHA-256 of a token's value.
pub(crate) fn token_hash(value: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, value.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

/// The store's key for a token: the issue time its value begins with ([`token_value`]), then
/// the first 192 bits of the SHA-256 of the whole value. The store never holds the value, and
/// a value whose time was altered has another hash. A value of another shape (never issued
/// here) gets its plain SHA-256, which matches no stored key.
pub(crate) fn token_key(value: &str) -> [u8; 32] {
    key_with_hash(value, token_hash(value))
}

/// [`token_key`] from the value's SHA-256, for a caller that needs both.
pub(crate) fn key_with_hash(value: &str, hash: [u8; 32]) -> [u8; 32] {
    let mut key = hash;
    let mut bytes = [0u8; 33];
    let issued = value
        .split_once('.')
        .filter(|(_, rest)| rest.len() == 43)
        .is_some_and(|(_, rest)| B64.decode_slice(rest, &mut bytes).ok() == Some(32));
    if issued {
        key.copy_within(..24, 8);
        key[..8].copy_from_slice(&bytes[..8]);
    }
    key
}

/// The first 16 hex digits of a token's SHA-256, to correlate log lines without the token.
pub(crate) fn short_hash(value: &str) -> String {
    let prefix: [u8; 8] = token_hash(value)[..8].try_into().unwrap_or_default();
    format!("{:016x}", u64::from_be_bytes(prefix))
}

/// `n` random characters from `[0-9A-Za-z]` (Vault's accessors are 24 of them).
pub(crate) fn base62(n: usize) -> Option<String> {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(n);
    let mut buffer = [0u8; 64];
    while out.len() < n {
        rng.fill(&mut buffer).ok()?;
        // 248 = 4 * 62: rejecting the bytes above keeps every character equally likely.
        for b in buffer.iter().filter(|b| **b < 248) {
            if out.len() < n {
                out.push(ALPHABET[(*b % 62) as usize] as char);
            }
        }
    }
    Some(out)
}

/// A random request id in UUID form (128 random bits, as Vault's `uuid.GenerateUUID`).
pub(crate) fn request_id() -> String {
    let v: u128 = rand::random();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        v >> 96,
        (v >> 80) & 0xffff,
        (v >> 64) & 0xffff,
        (v >> 48) & 0xffff,
        v & 0xffff_ffff_ffff
    )
}

/// Vault's `SanitizePolicies`: trimmed, lower case, no empty names, `default` added unless the
/// role refuses it, sorted, no duplicates. `Err` names a `root` policy, which a login may never
/// grant.
pub(crate) fn sanitize_policies(policies: &[String], no_default: bool) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = policies.iter().map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty()).collect();
    if out.iter().any(|p| p == "root") {
        return Err("auth methods cannot create root tokens".into());
    }
    if !no_default {
        out.push("default".into());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Token lifetimes of a Vault login, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lifetime {
    pub ttl: i64,
    /// The renewal ceiling after creation (0 for periodic tokens: only `explicit_max_ttl`).
    pub max_ttl: i64,
    pub explicit_max_ttl: i64,
    pub period: i64,
    /// The role's `period` was longer than the effective max TTL and was cut to it (Vault
    /// answers with a warning).
    pub period_capped: bool,
}

/// The system-wide lifetimes (Vault's mount tuning).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MountTtl {
    pub default: i64,
    pub max: i64,
}

fn positive(value: Option<u64>) -> i64 {
    value.map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX))
}

/// Vault's effective max TTL: the mount's ceiling, lowered by the role's `max_ttl` and by
/// `explicit_max_ttl` where they are set.
fn effective_max(mount: MountTtl, max_ttl: i64, explicit_max_ttl: i64) -> i64 {
    let mut max = mount.max;
    for limit in [max_ttl, explicit_max_ttl] {
        if limit > 0 {
            max = max.min(limit);
        }
    }
    max
}

/// Vault's `CalculateTTL` at login (increment 0): the role's `ttl` or the mount default, under
/// the effective max (`max_ttl`, `explicit_max_ttl`, the mount ceiling). A periodic token lives
/// one `period`, itself cut to the effective max, and renews within `explicit_max_ttl` only.
/// `Err` when the result is not positive.
pub(crate) fn login_lifetime(settings: &TokenSettings, mount: MountTtl) -> Result<Lifetime, String> {
    let explicit = positive(settings.explicit_max_ttl);
    let period = positive(settings.period);
    let max = effective_max(mount, positive(settings.max_ttl), explicit);
    if max <= 0 {
        return Err("max TTL must be greater than zero".into());
    }
    let lifetime = if period > 0 {
        let ttl = period.min(max);
        Lifetime { ttl, max_ttl: 0, explicit_max_ttl: explicit, period: ttl, period_capped: period > max }
    } else {
        let ttl = match positive(settings.ttl) {
            0 => mount.default,
            ttl => ttl,
        };
        Lifetime { ttl: ttl.min(max), max_ttl: max, explicit_max_ttl: explicit, period: 0, period_capped: false }
    };
    if lifetime.ttl <= 0 {
        return Err("refusing to create a token with a zero TTL".into());
    }
    Ok(lifetime)
}

/// Why a renewal came out shorter than asked (Vault answers with a warning).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Capped {
    /// The period (`asked`) was longer than the effective max TTL (`max`).
    Period { asked: i64, max: i64 },
    /// The TTL (`asked`) would have passed the token's ceiling.
    Ttl { asked: i64 },
}

impl Capped {
    /// Vault's warning, in Vault's words and with its durations (`"1h"`, `"1h30m"`).
    pub(crate) fn warning(self, ttl: i64) -> String {
        match self {
            Capped::Period { asked, max } => format!(
                "period of \"{}\" exceeded the effective max_ttl of \"{}\"; period value is capped accordingly",
                human_duration(asked),
                human_duration(max)
            ),
            Capped::Ttl { asked } => format!(
                "TTL of \"{}\" exceeded the effective max_ttl of \"{}\"; TTL value is capped accordingly",
                human_duration(asked),
                human_duration(ttl)
            ),
        }
    }
}

/// A number of seconds as Vault writes it in warnings (`humanDuration` in its SDK): Go's
/// `Duration.String` (`1h0m0s`) without the zero minutes and seconds (`1h`, `1h30m`, `1m`).
pub(crate) fn human_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut text = if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    };
    if text.ends_with("m0s") {
        text.truncate(text.len() - 2);
    }
    if let Some(at) = text.find("h0m").filter(|at| *at > 0) {
        text.replace_range(at + 1..at + 3, "");
    }
    text
}

/// A renewal at `now` of a token created at `created`: the new TTL counted from now and
/// whether (and why) it was capped, or why it cannot be renewed. `settings` are
/// the role's current settings (Vault's JWT plugin reads the role again at each renewal);
/// `explicit_max_ttl` stays the one the token was created with.
pub(crate) fn renewal_ttl(
    settings: &TokenSettings,
    mount: MountTtl,
    explicit_max_ttl: i64,
    created: i64,
    now: i64,
    increment: i64,
) -> Result<(i64, Option<Capped>), String> {
    let period = positive(settings.period);
    let max = effective_max(mount, positive(settings.max_ttl), explicit_max_ttl);
    if max <= 0 {
        return Err("max TTL must be greater than zero".into());
    }
    let (wanted, capped, ceiling) = if period > 0 {
        let capped = (period > max).then_some(Capped::Period { asked: period, max });
        (period.min(max), capped, (explicit_max_ttl > 0).then(|| created.saturating_add(explicit_max_ttl)))
    } else {
        let wanted = if increment > 0 {
            increment
        } else {
            match positive(settings.ttl) {
                0 => mount.default,
                ttl => ttl,
            }
        };
        (wanted, None, Some(created.saturating_add(max)))
    };
    match ceiling {
        Some(ceiling) if now.saturating_add(wanted) > ceiling => {
            let ttl = ceiling - now;
            if ttl <= 0 {
                Err("past the max TTL, cannot renew".into())
            } else {
                Ok((ttl, Some(Capped::Ttl { asked: wanted })))
            }
        }
        _ => Ok((wanted, capped)),
    }
}

/// Whether a role's token type makes batch tokens (Vault's `default` is `default-service`).
pub(crate) fn is_batch(settings: &TokenSettings) -> bool {
    settings.token_type == TokenType::Batch
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNT: MountTtl = MountTtl { default: 768 * 3600, max: 768 * 3600 };

    fn settings(ttl: Option<u64>, max: Option<u64>, explicit: Option<u64>, period: Option<u64>) -> TokenSettings {
        TokenSettings { ttl, max_ttl: max, explicit_max_ttl: explicit, period, ..TokenSettings::default() }
    }

    #[test]
    fn policies_are_sanitised_as_vault_does() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            sanitize_policies(&p(&[" Reader", "ci", "", "reader"]), false).unwrap(),
            p(&["ci", "default", "reader"])
        );
        assert_eq!(sanitize_policies(&p(&["ci"]), true).unwrap(), p(&["ci"]));
        assert_eq!(sanitize_policies(&p(&["ROOT "]), false).unwrap_err(), "auth methods cannot create root tokens");
    }

    #[test]
    fn login_lifetimes_follow_vaults_calculate_ttl() {
        let l = |s| login_lifetime(&s, MOUNT).unwrap();
        assert_eq!(l(settings(None, None, None, None)).ttl, 768 * 3600);
        assert_eq!(
            l(settings(Some(900), Some(600), None, None)),
            Lifetime { ttl: 600, max_ttl: 600, explicit_max_ttl: 0, period: 0, period_capped: false }
        );
        assert_eq!(l(settings(Some(900), Some(3600), Some(300), None)).ttl, 300);
        // A period is cut to the effective max TTL (the role's max_ttl here), with a warning.
        assert_eq!(
            l(settings(Some(900), Some(60), None, Some(3600))),
            Lifetime { ttl: 60, max_ttl: 0, explicit_max_ttl: 0, period: 60, period_capped: true }
        );
        assert_eq!(
            l(settings(None, None, None, Some(3600))),
            Lifetime { ttl: 3600, max_ttl: 0, explicit_max_ttl: 0, period: 3600, period_capped: false }
        );
        assert_eq!(l(settings(None, None, Some(100), Some(3600))).ttl, 100);
        // ... and by the mount's ceiling: a 30-day period under a 1-hour max_lease_ttl.
        let hour = MountTtl { default: 3600, max: 3600 };
        assert_eq!(login_lifetime(&settings(None, None, None, Some(30 * 86400)), hour).unwrap().ttl, 3600);
        let small = MountTtl { default: 60, max: 120 };
        assert_eq!(login_lifetime(&settings(Some(900), None, None, None), small).unwrap().ttl, 120);
    }

    #[test]
    fn renewals_count_from_now_and_stop_at_the_ceiling() {
        let s = settings(Some(600), Some(3600), None, None);
        assert_eq!(renewal_ttl(&s, MOUNT, 0, 1000, 1100, 0), Ok((600, None)));
        assert_eq!(renewal_ttl(&s, MOUNT, 0, 1000, 1100, 120), Ok((120, None)));
        assert_eq!(renewal_ttl(&s, MOUNT, 0, 1000, 4100, 0), Ok((500, Some(Capped::Ttl { asked: 600 }))));
        assert_eq!(renewal_ttl(&s, MOUNT, 0, 1000, 4600, 0), Err("past the max TTL, cannot renew".into()));
        assert_eq!(renewal_ttl(&s, MOUNT, 1000, 1000, 1900, 0), Ok((100, Some(Capped::Ttl { asked: 600 }))));
        // Periodic: the increment is ignored, the period comes back (cut to the effective max),
        // and only explicit_max_ttl ends the renewals.
        let p = settings(None, None, None, Some(300));
        assert_eq!(renewal_ttl(&p, MOUNT, 0, 0, 1_000_000, 9999), Ok((300, None)));
        assert_eq!(renewal_ttl(&p, MOUNT, 400, 0, 200, 0), Ok((200, Some(Capped::Ttl { asked: 300 }))));
        assert_eq!(renewal_ttl(&p, MOUNT, 400, 0, 400, 0), Err("past the max TTL, cannot renew".into()));
        let capped = settings(None, Some(60), None, Some(300));
        assert_eq!(
            renewal_ttl(&capped, MOUNT, 0, 0, 1_000_000, 0),
            Ok((60, Some(Capped::Period { asked: 300, max: 60 })))
        );
        let hour = MountTtl { default: 3600, max: 3600 };
        let month = settings(None, None, None, Some(30 * 86400));
        assert_eq!(
            renewal_ttl(&month, hour, 0, 0, 1_000_000, 0),
            Ok((3600, Some(Capped::Period { asked: 30 * 86400, max: 3600 })))
        );
    }

    #[test]
    fn random_values_have_their_shape() {
        let t = token_value("hvs.").unwrap();
        assert!(t.starts_with("hvs.") && t.len() == 4 + 43, "{t}");
        let u = token_value("hvs.").unwrap();
        assert_ne!(t, u);
        // A key begins with the issue time in microseconds and ends with its value's hash.
        let kt = token_key(&t);
        let issued = u64::from_be_bytes(kt[..8].try_into().unwrap()) as i64 / 1_000_000;
        assert!((issued - crate::unix_now()).abs() < 60, "{issued}");
        assert_eq!(kt[8..], token_hash(&t)[..24]);
        assert_eq!(kt[..8], B64.decode(&t[4..]).unwrap()[..8]);
        // An altered time or value is another key; a value of another shape is its hash.
        let mut altered = t.clone().into_bytes();
        altered[5] = if altered[5] == b'A' { b'B' } else { b'A' };
        assert_ne!(token_key(std::str::from_utf8(&altered).unwrap())[8..], kt[8..]);
        assert_eq!(token_key("hvs.short"), token_hash("hvs.short"));
        let a = base62(24).unwrap();
        assert!(a.len() == 24 && a.bytes().all(|b| b.is_ascii_alphanumeric()));
        for (seconds, text) in [
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (90, "1m30s"),
            (1800, "30m"),
            (3600, "1h"),
            (3601, "1h1s"),
            (5400, "1h30m"),
            (2_764_800, "768h"),
        ] {
            assert_eq!(human_duration(seconds), text, "{seconds}");
        }
        assert_eq!(short_hash("x"), "2d711642b726b044", "the SHA-256's first 8 bytes in hex");
        assert_eq!(request_id().len(), 36);
    }
}
