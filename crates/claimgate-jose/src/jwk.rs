//! JSON Web Keys (RFC 7517) and JWK Sets.
//!
//! Rules, in the order they are applied to each key:
//!
//! 1. The JSON must be an object with unique member names (the whole input is
//!    parsed strictly; a duplicate anywhere fails the load).
//! 2. Private members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`) fail the whole
//!    load: a verifier has no business holding a private key.
//! 3. `kty` must be `RSA`, `EC` or `OKP`; anything else (including `oct`,
//!    symmetric keys) is skipped and reported.
//! 4. `use`, if present, must be `sig`; `key_ops`, if present, must contain
//!    `verify`. Otherwise the key is not a verification key and is skipped.
//! 5. `alg`, if present, must be a supported algorithm that fits the key type;
//!    the key then verifies that algorithm only.
//! 6. The key material is decoded (strict base64url) and validated.
//!
//! Anything a key says about certificates (`x5c`, `x5u`, `x5t`) is ignored;
//! `n`/`e`, `x`/`y` are authoritative.

use serde_json::{Map, Value};

use crate::alg::{Algorithm, Family};
use crate::b64;
use crate::error::{KeyError, SkippedKey, snippet};
use crate::json;
use crate::key::{Key, KeyLimits, KeySet, Material};

/// Deepest JSON nesting accepted in key input.
pub const MAX_KEY_JSON_DEPTH: usize = 8;

const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

impl KeySet {
    /// Loads a JWK Set: `{"keys": [ ... ]}`.
    ///
    /// Keys that cannot be used are skipped and listed in
    /// [`KeySet::skipped`]; the load fails only if the input is malformed,
    /// holds private key material or duplicate kids, or nothing usable is
    /// left.
    pub fn from_jwks_json(bytes: &[u8]) -> Result<KeySet, KeyError> {
        KeySet::from_jwks_json_with_limits(bytes, &KeyLimits::default())
    }

    /// [`KeySet::from_jwks_json`] with limits other than the defaults: the input size is checked
    /// before parsing, the number of entries in `keys` (usable or not) before any key is decoded.
    pub fn from_jwks_json_with_limits(bytes: &[u8], limits: &KeyLimits) -> Result<KeySet, KeyError> {
        KeySet::from_jwks_object(&parse(bytes, limits)?, limits)
    }

    /// A JWK Set already parsed (strictly, within the size limit).
    pub(crate) fn from_jwks_object(top: &Map<String, Value>, limits: &KeyLimits) -> Result<KeySet, KeyError> {
        let Some(keys) = top.get("keys") else {
            return Err(KeyError::Malformed(if top.contains_key("kty") {
                "expected a jwk set ({\"keys\": [...]}), found a single jwk".to_owned()
            } else {
                "jwk set has no \"keys\" member".to_owned()
            }));
        };
        let Value::Array(keys) = keys else {
            return Err(KeyError::Malformed("jwk set member \"keys\" is not an array".to_owned()));
        };
        limits.check_count(keys.len())?;
        let mut loaded = Vec::new();
        let mut skipped = Vec::new();
        for (index, jwk) in keys.iter().enumerate() {
            let Value::Object(jwk) = jwk else {
                skipped.push(SkippedKey { index, kid: None, reason: "not a json object".to_owned() });
                continue;
            };
            match load_jwk(index, jwk)? {
                Ok(key) => loaded.push(key),
                Err(skip) => skipped.push(skip),
            }
        }
        KeySet::build(loaded, skipped)
    }

    /// Loads a single JWK. A key that would be skipped in a set is an error
    /// here ([`KeyError::NoUsableKeys`] with the reason).
    pub fn from_jwk_json(bytes: &[u8]) -> Result<KeySet, KeyError> {
        KeySet::from_jwk_json_with_limits(bytes, &KeyLimits::default())
    }

    /// [`KeySet::from_jwk_json`] with a size limit other than the default.
    pub fn from_jwk_json_with_limits(bytes: &[u8], limits: &KeyLimits) -> Result<KeySet, KeyError> {
        KeySet::from_jwk_object(&parse(bytes, limits)?)
    }

    /// A single JWK already parsed (strictly, within the size limit).
    pub(crate) fn from_jwk_object(jwk: &Map<String, Value>) -> Result<KeySet, KeyError> {
        if jwk.contains_key("keys") && !jwk.contains_key("kty") {
            return Err(KeyError::Malformed("expected a single jwk, found a jwk set".to_owned()));
        }
        match load_jwk(0, jwk)? {
            Ok(key) => KeySet::build(vec![key], Vec::new()),
            Err(skip) => Err(KeyError::NoUsableKeys(vec![skip])),
        }
    }
}

/// Key JSON, strictly: within the size limit (checked first), the depth bound, unique names.
pub(crate) fn parse(bytes: &[u8], limits: &KeyLimits) -> Result<Map<String, Value>, KeyError> {
    limits.check_size(bytes.len())?;
    json::parse_object(bytes, MAX_KEY_JSON_DEPTH).map_err(|e| KeyError::Malformed(e.to_string()))
}

/// Outer `Result`: fatal for the whole load. Inner: the key or why it was
/// skipped.
fn load_jwk(index: usize, jwk: &Map<String, Value>) -> Result<Result<Key, SkippedKey>, KeyError> {
    let kid_raw = jwk.get("kid");
    let kid_shown = match kid_raw {
        Some(Value::String(s)) => Some(snippet(s)),
        _ => None,
    };
    let skip = |reason: String| Ok(Err(SkippedKey { index, kid: kid_shown.clone(), reason }));

    let kty = match jwk.get("kty") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return skip("\"kty\" is not a string".to_owned()),
        None => return skip("missing \"kty\"".to_owned()),
    };
    if matches!(kty, "RSA" | "EC" | "OKP") && PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(KeyError::PrivateKey { index });
    }
    let family_hint = match kty {
        "RSA" => Family::Rsa,
        "EC" | "OKP" => Family::P256, // refined below from "crv"
        // A symmetric key's `k` is a secret: a set that publishes one is refused whole, like
        // any other private key material.
        "oct" if jwk.contains_key("k") => return Err(KeyError::PrivateKey { index }),
        "oct" => return skip("symmetric keys (kty \"oct\") are not supported".to_owned()),
        other => return skip(format!("unsupported key type \"{}\"", snippet(other))),
    };

    let kid = match kid_raw {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return skip("\"kid\" is not a string".to_owned()),
    };
    match jwk.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(Value::String(u)) => {
            return skip(format!("\"use\" is \"{}\", not \"sig\": not a signature key", snippet(u)));
        }
        Some(_) => return skip("\"use\" is not a string".to_owned()),
    }
    match jwk.get("key_ops") {
        None => {}
        Some(Value::Array(ops)) => {
            if !ops.iter().all(Value::is_string) {
                return skip("\"key_ops\" is not an array of strings".to_owned());
            }
            if !ops.iter().any(|op| op == "verify") {
                return skip("\"key_ops\" does not include \"verify\"".to_owned());
            }
        }
        Some(_) => return skip("\"key_ops\" is not an array".to_owned()),
    }
    let alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(a)) => match a.parse::<Algorithm>() {
            Ok(alg) => Some(alg),
            Err(_) => {
                return skip(format!("key algorithm \"{}\" is not supported", snippet(a)));
            }
        },
        Some(_) => return skip("\"alg\" is not a string".to_owned()),
    };

    let material = match family_hint {
        Family::Rsa => {
            let n = member_b64(jwk, "n");
            let e = member_b64(jwk, "e");
            match (n, e) {
                (Ok(n), Ok(e)) => Material::rsa(&n, &e),
                (Err(r), _) | (_, Err(r)) => Err(r),
            }
        }
        _ => match (kty, jwk.get("crv")) {
            ("EC", Some(Value::String(crv))) => {
                let family = match crv.as_str() {
                    "P-256" => Family::P256,
                    "P-384" => Family::P384,
                    "P-521" => Family::P521,
                    other => {
                        return skip(format!("unsupported ec curve \"{}\"", snippet(other)));
                    }
                };
                match (member_b64(jwk, "x"), member_b64(jwk, "y")) {
                    (Ok(x), Ok(y)) => Material::ec(family, &x, &y),
                    (Err(r), _) | (_, Err(r)) => Err(r),
                }
            }
            ("OKP", Some(Value::String(crv))) => {
                if crv != "Ed25519" {
                    return skip(format!("unsupported okp curve \"{}\"", snippet(crv)));
                }
                member_b64(jwk, "x").and_then(|x| Material::ed25519(&x))
            }
            (_, Some(_)) => Err("\"crv\" is not a string".to_owned()),
            (_, None) => Err("missing \"crv\"".to_owned()),
        },
    };
    let material = match material {
        Ok(m) => m,
        Err(reason) => return skip(reason),
    };
    match alg {
        Some(alg) if alg.family() != material.family() => {
            return skip(format!("key algorithm {} does not fit {}", alg.name(), material.describe()));
        }
        _ => {}
    }
    Ok(Ok(Key { index, kid, alg, pss_only: false, material }))
}

fn member_b64(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    match jwk.get(name) {
        Some(Value::String(s)) => b64::decode(s.as_bytes()).map_err(|_| format!("\"{name}\" is not strict base64url")),
        Some(_) => Err(format!("\"{name}\" is not a string")),
        None => Err(format!("missing \"{name}\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_N: &str = "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw";

    #[test]
    fn loads_rfc7520_rsa_key() {
        let jwk = format!(r#"{{"kty":"RSA","kid":"bilbo","use":"sig","n":"{RSA_N}","e":"AQAB"}}"#);
        let set = KeySet::from_jwk_json(jwk.as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        let info = set.iter().next().unwrap();
        assert_eq!(info.kid, Some("bilbo"));
        assert_eq!(info.kind, crate::KeyKind::Rsa { bits: 2048 });
    }

    #[test]
    fn private_material_is_fatal() {
        let jwk = format!(r#"{{"kty":"RSA","n":"{RSA_N}","e":"AQAB","d":"AQAB"}}"#);
        assert_eq!(KeySet::from_jwk_json(jwk.as_bytes()).unwrap_err(), KeyError::PrivateKey { index: 0 });
    }

    #[test]
    fn unusable_keys_are_skipped_with_reasons() {
        let set = format!(
            r#"{{"keys":[
                {{"kty":"oct","kid":"hmac"}},
                {{"kty":"RSA","n":"{RSA_N}","e":"AQAB","use":"enc","kid":"enc"}},
                {{"kty":"RSA","n":"{RSA_N}","e":"AQAB","key_ops":["encrypt"]}},
                {{"kty":"RSA","n":"{RSA_N}","e":"AQAB","alg":"ES256"}},
                {{"kty":"RSA","n":"{RSA_N}","e":"AQAB","alg":"RSA-OAEP"}},
                {{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}},
                {{"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"}},
                {{"kty":"RSA","n":"{RSA_N}=","e":"AQAB"}},
                "junk",
                {{"kty":"RSA","n":"{RSA_N}","e":"AQAB","kid":"good"}}
            ]}}"#
        );
        let set = KeySet::from_jwks_json(set.as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.iter().next().unwrap().index, 9);
        let reasons: Vec<String> = set.skipped().iter().map(|s| s.to_string()).collect();
        assert_eq!(reasons.len(), 9, "{reasons:#?}");
        assert!(reasons[0].contains("symmetric"));
        assert!(reasons[0].contains("kid \"hmac\""));
        assert!(reasons[1].contains("not a signature key"));
        assert!(reasons[2].contains("verify"));
        assert!(reasons[3].contains("does not fit"));
        assert!(reasons[4].contains("not supported"));
        assert!(reasons[5].contains("ec coordinates for p-521 must be 66 bytes each"));
        assert!(reasons[6].contains("unsupported ec curve \"secp256k1\""));
        assert!(reasons[7].contains("base64url"));
        assert!(reasons[8].contains("not a json object"));
    }

    #[test]
    fn a_symmetric_secret_is_fatal() {
        let set = format!(
            r#"{{"keys":[{{"kty":"oct","k":"c2VjcmV0","kid":"hmac"}},{{"kty":"RSA","n":"{RSA_N}","e":"AQAB"}}]}}"#
        );
        assert_eq!(KeySet::from_jwks_json(set.as_bytes()).unwrap_err(), KeyError::PrivateKey { index: 0 });
        assert_eq!(
            KeySet::from_jwk_json(br#"{"kty":"oct","k":"c2VjcmV0"}"#).unwrap_err(),
            KeyError::PrivateKey { index: 0 }
        );
    }

    #[test]
    fn duplicate_kids_and_members_fail() {
        let set = format!(
            r#"{{"keys":[{{"kty":"RSA","n":"{RSA_N}","e":"AQAB","kid":"a"}},{{"kty":"RSA","n":"{RSA_N}","e":"AQAB","kid":"a"}}]}}"#
        );
        assert_eq!(KeySet::from_jwks_json(set.as_bytes()).unwrap_err().code(), "duplicate_kid");
        let dup = format!(r#"{{"kty":"RSA","n":"{RSA_N}","e":"AQAB","e":"AQAB"}}"#);
        assert_eq!(KeySet::from_jwk_json(dup.as_bytes()).unwrap_err().code(), "key_malformed");
    }

    #[test]
    fn set_and_single_are_not_confused() {
        let single = format!(r#"{{"kty":"RSA","n":"{RSA_N}","e":"AQAB"}}"#);
        let err = KeySet::from_jwks_json(single.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("single jwk"), "{err}");
        let set = format!(r#"{{"keys":[{single}]}}"#);
        let err = KeySet::from_jwk_json(set.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("jwk set"), "{err}");
        assert_eq!(KeySet::from_any(set.as_bytes()).unwrap().len(), 1);
        assert_eq!(KeySet::from_any(single.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn empty_set_is_an_error() {
        assert_eq!(KeySet::from_jwks_json(br#"{"keys":[]}"#).unwrap_err().code(), "no_usable_keys");
    }
}
