//! Batch tokens, as Vault makes them: the token is its own record, sealed, and never written
//! to the store.
//!
//! `hvb.` + base64url(version `1` ‖ 96-bit random nonce ‖ ChaCha20-Poly1305 of the record).
//! The key is one per store (created by the first node that starts, read by every other), so
//! that any node opens a batch token any node made. A token that does not open, or has expired,
//! is simply not a token. Batch tokens cannot be renewed, revoked or limited in uses (Vault's
//! rules); they live until their TTL.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError, TokenRecord};

pub(crate) const PREFIX: &str = "hvb.";
const VERSION: u8 = 1;
/// Bound before any work: a record holds a role's policies and metadata, never this much.
const MAX_TOKEN_BYTES: usize = 8192;
/// Binds a sealed record to its use, so that nothing else sealed with this key opens as one.
const AAD: &[u8] = b"claimgate batch token v1";

/// Seals and opens batch tokens with the store's key.
pub(crate) struct Sealer {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

/// Why a batch token could not be made.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SealError {
    /// The grant (policies, metadata, identity) makes a token longer than any server takes.
    TooLarge,
    /// The system random generator failed.
    Random,
}

/// What the token carries: the record and its expiry (which the store keeps beside a record).
/// Written from a borrowed record, read back into an owned one.
#[derive(Serialize)]
struct SealedRef<'a> {
    expire_time: i64,
    record: &'a TokenRecord,
}

#[derive(Deserialize)]
struct Sealed {
    expire_time: i64,
    record: TokenRecord,
}

impl Sealer {
    /// The store's batch key, made now if the store has none yet.
    pub(crate) async fn from_store(store: &dyn Store) -> Result<Sealer, StoreError> {
        let random = SystemRandom::new();
        let mut candidate = [0u8; 32];
        random.fill(&mut candidate).map_err(|_| StoreError("the system random generator failed".into()))?;
        let bytes = store.batch_key(&candidate).await?;
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| StoreError("the batch token key in the store is not 32 bytes".into()))?;
        Ok(Sealer { key: LessSafeKey::new(key), random })
    }

    /// The token for `record`, valid until `expire_time`. `Err` when the grant is too large to
    /// travel as a token ([`open`](Self::open) would refuse it), or the random generator fails.
    pub(crate) fn seal(&self, record: &TokenRecord, expire_time: i64) -> Result<String, SealError> {
        let token = self.seal_unchecked(record, expire_time).ok_or(SealError::Random)?;
        if token.len() - PREFIX.len() > MAX_TOKEN_BYTES {
            return Err(SealError::TooLarge);
        }
        Ok(token)
    }

    fn seal_unchecked(&self, record: &TokenRecord, expire_time: i64) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        let mut sealed = serde_json::to_vec(&SealedRef { expire_time, record }).ok()?;
        self.key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(AAD), &mut sealed).ok()?;
        let mut bytes = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        bytes.push(VERSION);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Some(format!("{PREFIX}{}", B64.encode(bytes)))
    }

    /// The record of a batch token that opens and has not expired at `now`, with its hash and
    /// expiry filled in; `None` for anything else.
    pub(crate) fn open(&self, token: &str, now: i64) -> Option<TokenRecord> {
        let body = token.strip_prefix(PREFIX)?;
        if body.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let mut bytes = B64.decode(body).ok()?;
        if bytes.len() < 1 + NONCE_LEN || bytes[0] != VERSION {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&bytes[1..1 + NONCE_LEN]).ok()?;
        let plain = self.key.open_in_place(nonce, Aad::from(AAD), &mut bytes[1 + NONCE_LEN..]).ok()?;
        let Sealed { expire_time, mut record } = serde_json::from_slice(plain).ok()?;
        if now >= expire_time {
            return None;
        }
        record.hash = crate::issue::token_hash(token);
        record.expire_time = expire_time;
        Some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SqliteStore, TokenKind};

    fn record() -> TokenRecord {
        TokenRecord {
            hash: [0; 32],
            accessor: String::new(),
            kind: TokenKind::Batch,
            provider: "ci".into(),
            role: "batchy".into(),
            identity: "svc".into(),
            policies: vec!["default".into()],
            metadata: vec![("role".into(), "batchy".into())],
            path: "auth/ci/login".into(),
            display_name: "ci-svc".into(),
            creation_time: 1000,
            creation_ttl: 300,
            expire_time: 0,
            explicit_max_ttl: 0,
            max_ttl: 300,
            period: 0,
            num_uses: 0,
            uses_left: 0,
            bound_cidrs: vec!["10.0.0.0/8".into()],
            last_renewal: None,
        }
    }

    #[tokio::test]
    async fn a_sealed_token_opens_until_it_expires_and_not_when_touched() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let sealer = Sealer::from_store(&store).await.unwrap();
        let token = sealer.seal(&record(), 1300).unwrap();
        assert!(token.starts_with("hvb."));
        let opened = sealer.open(&token, 1299).unwrap();
        assert_eq!((opened.identity.as_str(), opened.expire_time), ("svc", 1300));
        assert_eq!(opened.bound_cidrs, vec!["10.0.0.0/8".to_string()]);
        assert_eq!(opened.hash, crate::issue::token_hash(&token));
        assert!(sealer.open(&token, 1300).is_none(), "expired");

        // Any changed character, a cut, another prefix or another version: not a token.
        let mut chars: Vec<char> = token.chars().collect();
        let last = chars.len() - 5;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        assert!(sealer.open(&chars.into_iter().collect::<String>(), 1000).is_none());
        assert!(sealer.open(&token[..token.len() - 2], 1000).is_none());
        assert!(sealer.open(&token.replacen("hvb.", "hvs.", 1), 1000).is_none());
        assert!(sealer.open(&format!("hvb.{}", B64.encode([2u8; 64])), 1000).is_none());
        assert!(sealer.open(&format!("hvb.{}", "A".repeat(MAX_TOKEN_BYTES + 1)), 1000).is_none());

        // A second node on the same store opens it; a node on another store does not.
        let same = Sealer::from_store(&SqliteStore::open(dir.path()).unwrap()).await.unwrap();
        assert!(same.open(&token, 1000).is_some());
        let other_dir = tempfile::tempdir().unwrap();
        let other = Sealer::from_store(&SqliteStore::open(other_dir.path()).unwrap()).await.unwrap();
        assert!(other.open(&token, 1000).is_none());

        // A grant too large to travel as a token is refused when sealing, never issued as a
        // token that no later request would accept; the largest that seals also opens.
        let mut big = record();
        big.policies = (0..150).map(|i| format!("00000000-0000-0000-0000-{i:012}")).collect();
        assert_eq!(sealer.seal(&big, 1300), Err(SealError::TooLarge));
        big.policies.truncate(100);
        let token = sealer.seal(&big, 1300).unwrap();
        assert!(sealer.open(&token, 1000).is_some());
    }
}
