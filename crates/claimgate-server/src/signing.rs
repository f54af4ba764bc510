//! The server's own signing keys: Ed25519 (ring), kept in the store, rotated with overlap.
//!
//! A key is announced in the JWKS before it signs (so that verifiers that cached the JWKS
//! find it, and so that every node has read it from the store), signs for
//! `signing_key_rotation`, then stays in the JWKS until every token it signed has expired.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::store::{SigningKeyRecord, Store, StoreError};

/// The longest life of a token this server signs (Conjur's own ceiling, 5 hours).
pub(crate) const MAX_SIGNED_TTL: i64 = 5 * 3600;
/// How long a key is in the JWKS before it signs.
pub(crate) const PREPUBLISH: i64 = 3600;

struct Key {
    record: SigningKeyRecord,
    pair: Ed25519KeyPair,
}

/// The keys read from the store, newest activation last.
#[derive(Default)]
pub(crate) struct Keyring {
    keys: std::sync::RwLock<Arc<Vec<Key>>>,
    creating: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring")
    }
}

/// RFC 7638 thumbprint of an Ed25519 public key.
fn thumbprint(public: &[u8]) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, B64.encode(public));
    B64.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()))
}

fn new_key(activates: i64, rotation: i64) -> Result<SigningKeyRecord, StoreError> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| StoreError("the system random generator failed".into()))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| StoreError("a new key does not parse".into()))?;
    let retires = activates + rotation;
    Ok(SigningKeyRecord {
        kid: thumbprint(pair.public_key().as_ref()),
        pkcs8: pkcs8.as_ref().to_vec(),
        activates,
        retires,
        published_until: retires + MAX_SIGNED_TTL,
    })
}

impl Keyring {
    fn snapshot(&self) -> Arc<Vec<Key>> {
        self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Reads the keys from the store, and creates the next key when none will sign an hour
    /// from now (or none signs now: on the first start, or after the server was down longer
    /// than a rotation, a key signs at once, since there is no earlier key to sign with).
    ///
    /// A key is kept only if no other node's key covers its time (see
    /// [`Store::insert_signing_key`]), and the keys are read again after any insert, so that
    /// nodes starting together all sign with, and publish, the same key.
    pub(crate) async fn refresh(&self, store: &dyn Store, now: i64, rotation: i64) -> Result<(), StoreError> {
        let _one = self.creating.lock().await;
        let mut records = store.signing_keys(now).await?;
        let signs_at = |records: &[SigningKeyRecord], t: i64| records.iter().any(|k| k.activates <= t && t < k.retires);
        let mut inserted = false;
        if !signs_at(&records, now) {
            inserted |= store.insert_signing_key(&new_key(now, rotation)?).await?;
            records = store.signing_keys(now).await?;
        }
        if !signs_at(&records, now + PREPUBLISH) {
            let last_retires = records.iter().map(|k| k.retires).max().unwrap_or(now);
            inserted |= store.insert_signing_key(&new_key(last_retires.max(now), rotation)?).await?;
            records = store.signing_keys(now).await?;
        }
        if inserted {
            tracing::info!("created a signing key");
        }
        let mut keys = Vec::with_capacity(records.len());
        for record in records {
            match Ed25519KeyPair::from_pkcs8_maybe_unchecked(&record.pkcs8) {
                Ok(pair) => keys.push(Key { record, pair }),
                Err(_) => {
                    tracing::error!(kid = %record.kid, "a signing key in the store does not parse; it is left out")
                }
            }
        }
        keys.sort_by(|a, b| (a.record.activates, &a.record.kid).cmp(&(b.record.activates, &b.record.kid)));
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
        Ok(())
    }

    /// The published keys as a JWK Set.
    pub(crate) fn jwks(&self, now: i64) -> serde_json::Value {
        let keys: Vec<_> = self
            .snapshot()
            .iter()
            .filter(|k| k.record.published_until > now)
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": B64.encode(k.pair.public_key().as_ref()),
                    "kid": k.record.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Signs `payload` (JSON text) as a JWS with the key that signs at `now`: the protected
    /// header, payload and signature, base64url without padding (RFC 7515). The header and
    /// payload are written first as [`portable_json`], so that their encodings also read the
    /// same under plain padded base64, which Conjur's own clients use. `None` when no key signs
    /// now (the store has not been read yet).
    pub(crate) fn sign(&self, payload: &str, now: i64) -> Option<[String; 3]> {
        let keys = self.snapshot();
        let key = keys.iter().rev().find(|k| k.record.activates <= now && now < k.record.retires)?;
        let header = B64.encode(portable_json(&format!(r#"{{"alg":"EdDSA","kid":"{}","typ":"JWT"}}"#, key.record.kid)));
        let payload = B64.encode(portable_json(payload));
        let signature = key.pair.sign(format!("{header}.{payload}").as_bytes());
        Some([header, payload, B64.encode(signature.as_ref())])
    }

    /// Whether a key signs at `now`.
    pub(crate) fn ready(&self, now: i64) -> bool {
        self.snapshot().iter().any(|k| k.record.activates <= now && now < k.record.retires)
    }
}

/// The same JSON object, written so that its base64url encoding is also its plain base64
/// encoding, padding included: Conjur's clients decode an access token's payload with standard
/// padded base64 (conjur-api-go: `base64.StdEncoding.DecodeString`; Python's `b64decode`),
/// while JOSE libraries read base64url without padding (RFC 7515). Both read the same text when
/// it needs no padding (its length is a multiple of 3) and holds none of the two characters the
/// alphabets disagree on. An ASCII byte yields the sextet 62 or 63 (`+`/`-`, `/`/`_`) only as the
/// last of its group of three, and only for `>`, `?`, `~` and DEL, which JSON allows only
/// inside strings: those, and every non-ASCII character, are written as `\u` escapes, which
/// decode to the same string. Spaces before the closing brace then make the length a multiple
/// of 3. `text` is one JSON object, as serde_json writes it.
pub(crate) fn portable_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_ascii() && !matches!(c, '>' | '?' | '~' | '\u{7f}') {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    let body = out.strip_suffix('}').map(str::len).unwrap_or(out.len());
    let spaces = (3 - out.len() % 3) % 3;
    out.insert_str(body, &" ".repeat(spaces));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    #[test]
    fn portable_json_reads_the_same_in_both_base64_alphabets_with_or_without_padding() {
        use base64::engine::general_purpose::STANDARD;
        for value in [
            serde_json::json!({}),
            serde_json::json!({ "sub": "host/a>b?c~d\u{7f}", "iat": 1 }),
            serde_json::json!({ "sub": "hôst/ünïcode/😀", "exp": 12345, "aud": "prod" }),
            serde_json::json!({ "sub": "host/jwt-apps/app", "iat": 1_764_000_000, "exp": 1_764_000_480 }),
        ] {
            for extra in 0..3 {
                let mut value = value.clone();
                value["pad"] = serde_json::json!("x".repeat(extra));
                let text = portable_json(&value.to_string());
                assert_eq!(text.len() % 3, 0, "{text}");
                let url = B64.encode(&text);
                assert!(!url.contains(['-', '_', '+', '/', '=']), "{text} -> {url}");
                assert_eq!(STANDARD.decode(&url).unwrap(), text.as_bytes());
                let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(parsed, value, "the same claims");
            }
        }
    }

    const HOUR: i64 = 3600;

    fn kids(jwks: &serde_json::Value) -> Vec<String> {
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
    }

    fn signer(keyring: &Keyring, now: i64) -> String {
        let [header, _, _] = keyring.sign("{}", now).unwrap();
        let header: serde_json::Value = serde_json::from_slice(&B64.decode(header).unwrap()).unwrap();
        header["kid"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn keys_are_announced_before_they_sign_and_published_until_their_tokens_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let rotation = 24 * HOUR;
        let t0 = 1_000_000;
        let keyring = Keyring::default();
        keyring.refresh(&store, t0, rotation).await.unwrap();
        let first = signer(&keyring, t0);
        assert_eq!(kids(&keyring.jwks(t0)), std::slice::from_ref(&first), "one key, signing now");

        // An hour before the first retires, the next is created and published, not yet signing.
        let t1 = t0 + rotation - HOUR + 1;
        keyring.refresh(&store, t1, rotation).await.unwrap();
        let published = kids(&keyring.jwks(t1));
        assert_eq!(published.len(), 2);
        assert_eq!(signer(&keyring, t1), first);
        let second = published.iter().find(|k| **k != first).unwrap().clone();

        // At the rotation the second signs; the first stays published for the 5 hours its last
        // tokens may live, then leaves the JWKS.
        let t2 = t0 + rotation;
        keyring.refresh(&store, t2, rotation).await.unwrap();
        assert_eq!(signer(&keyring, t2), second);
        assert!(kids(&keyring.jwks(t2 + MAX_SIGNED_TTL - 1)).contains(&first));
        assert!(!kids(&keyring.jwks(t2 + MAX_SIGNED_TTL)).contains(&first));

        // A second node reading the same store signs and publishes the same keys.
        let other = Keyring::default();
        other.refresh(&store, t2, rotation).await.unwrap();
        assert_eq!(signer(&other, t2), second);
        assert_eq!(kids(&other.jwks(t2)), kids(&keyring.jwks(t2)));

        // Published keys carry no private part.
        assert!(keyring.jwks(t2)["keys"].as_array().unwrap().iter().all(|k| k.get("d").is_none()));
    }

    #[tokio::test]
    async fn nodes_starting_together_on_one_store_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        // Two handles on one file, as two processes would have.
        let (a, b) = (SqliteStore::open(dir.path()).unwrap(), SqliteStore::open(dir.path()).unwrap());
        let (first, second) = (Keyring::default(), Keyring::default());
        let t0 = 1_000_000;
        let (x, y) = tokio::join!(first.refresh(&a, t0, 24 * HOUR), second.refresh(&b, t0, 24 * HOUR));
        x.unwrap();
        y.unwrap();
        assert_eq!(signer(&first, t0), signer(&second, t0));
        assert_eq!(kids(&first.jwks(t0)), kids(&second.jwks(t0)));
        assert_eq!(a.signing_keys(t0).await.unwrap().len(), 1, "one key, not one per node");
    }

    #[tokio::test]
    async fn after_a_long_stop_a_key_is_made_to_sign_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let keyring = Keyring::default();
        keyring.refresh(&store, 1_000_000, 24 * HOUR).await.unwrap();
        let later = 1_000_000 + 365 * 24 * HOUR;
        assert!(!keyring.ready(later));
        keyring.refresh(&store, later, 24 * HOUR).await.unwrap();
        assert!(keyring.ready(later));
        assert!(keyring.sign("{}", later).is_some());
    }
}
