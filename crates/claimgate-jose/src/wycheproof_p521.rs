//! Project Wycheproof's ECDSA P-521 / SHA-512 vectors in IEEE P1363 form (raw `r || s`, the
//! form JWS uses), `tests/vectors/wycheproof/ecdsa_secp521r1_sha512_p1363_test.json`.
//!
//! A vector signs arbitrary bytes, not a JWS signing input, so it cannot be wrapped in a token;
//! it runs here, inside the crate, through exactly the steps [`crate::Verifier`] takes for an
//! ES512 token once a key is chosen: the length rule ([`crate::jws::check_signature_len`]), the
//! key's fit for the algorithm, then [`Material::verify`]. Each group's key is loaded two or three ways
//! through the public loaders (a JWK built from its point, its own JWK where the file gives one,
//! its PEM SubjectPublicKeyInfo), and every form must hold exactly the group's point.
//!
//! Every label must hold exactly: `valid` verifies, `invalid` does not. `acceptable` (a
//! signature a library may take or leave) is refused here, as the strict choice; the file has
//! none today, and the count is pinned so that a new one is looked at.

use serde_json::Value;

use crate::alg::Algorithm;
use crate::jws::check_signature_len;
use crate::key::{Key, KeySet, Material};

const FILE: &str = include_str!("../tests/vectors/wycheproof/ecdsa_secp521r1_sha512_p1363_test.json");

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// What the verifier does with an ES512 signature once `key` is the candidate.
fn verdict(key: &Key, msg: &[u8], sig: &[u8]) -> Outcome {
    if check_signature_len(Algorithm::ES512, sig).is_err() {
        return Outcome::RefusedLength;
    }
    assert!(key.fits(Algorithm::ES512));
    if p521::ecdsa::Signature::from_slice(sig).is_err() {
        // r or s outside [1, n-1]: Material::verify refuses it before any arithmetic.
        assert!(!key.material.verify(Algorithm::ES512, msg, sig));
        return Outcome::RefusedRange;
    }
    if key.material.verify(Algorithm::ES512, msg, sig) { Outcome::Verified } else { Outcome::RefusedMath }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Verified,
    /// Not 132 bytes: refused before any key is looked at.
    RefusedLength,
    /// 132 bytes, but r or s is 0 or not below the group order.
    RefusedRange,
    /// Well-formed, and the equation does not hold.
    RefusedMath,
}

fn only_key(set: &KeySet) -> &Key {
    assert_eq!(set.keys.len(), 1);
    &set.keys[0]
}

#[test]
fn every_p521_p1363_vector_gives_its_label() {
    let doc: Value = serde_json::from_str(FILE).unwrap();
    assert_eq!(doc["algorithm"], "ECDSA");
    assert_eq!(doc["schema"], "ecdsa_p1363_verify_schema_v1.json");
    let mut seen = 0u64;
    let (mut valid, mut invalid, mut acceptable) = (0u64, 0u64, 0u64);
    let (mut by_length, mut by_range, mut by_math) = (0u64, 0u64, 0u64);
    let mut with_jwk = 0;
    let groups = doc["testGroups"].as_array().unwrap();
    for group in groups {
        assert_eq!(group["type"], "EcdsaP1363Verify");
        assert_eq!(group["sha"], "SHA-512");
        assert_eq!(group["publicKey"]["curve"], "secp521r1");
        // The key three ways: a JWK made from the uncompressed point (66-byte x and y), the
        // group's own JWK where it has one (the groups from other sources do not), its PEM.
        let point = unhex(group["publicKey"]["uncompressed"].as_str().unwrap());
        assert_eq!((point.len(), point[0]), (133, 4));
        let jwk = serde_json::json!({
            "kty": "EC",
            "crv": "P-521",
            "x": crate::b64::encode(&point[1..67]),
            "y": crate::b64::encode(&point[67..]),
        });
        let mut sets = vec![
            KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap(),
            KeySet::from_pem(group["publicKeyPem"].as_str().unwrap()).unwrap(),
        ];
        if let Some(given) = group.get("publicKeyJwk") {
            assert_eq!(given["crv"], "P-521");
            sets.push(KeySet::from_jwk_json(given.to_string().as_bytes()).unwrap());
            with_jwk += 1;
        }
        let keys: Vec<&Key> = sets.iter().map(only_key).collect();
        for key in &keys {
            // Every form holds the same prepared point, so one verdict per vector stands for all.
            let Material::P521(prepared) = &key.material else { panic!("not a p-521 key: {key:?}") };
            assert_eq!(prepared.sec1_uncompressed(), point);
            // A P-521 key serves ES512 only.
            for alg in Algorithm::ALL {
                assert_eq!(key.fits(alg), alg == Algorithm::ES512, "{alg}");
            }
        }
        let key = keys[0];
        for test in group["tests"].as_array().unwrap() {
            seen += 1;
            let tc_id = test["tcId"].as_u64().unwrap();
            let msg = unhex(test["msg"].as_str().unwrap());
            let sig = unhex(test["sig"].as_str().unwrap());
            let outcome = verdict(key, &msg, &sig);
            let comment = test["comment"].as_str().unwrap_or("");
            match test["result"].as_str() {
                Some("valid") => {
                    valid += 1;
                    assert_eq!(outcome, Outcome::Verified, "tcId {tc_id} ({comment}) should verify");
                }
                Some("invalid") => {
                    invalid += 1;
                    assert_ne!(outcome, Outcome::Verified, "tcId {tc_id} ({comment}) must not verify");
                }
                Some("acceptable") => {
                    acceptable += 1;
                    assert_ne!(outcome, Outcome::Verified, "tcId {tc_id} ({comment}): acceptable, refused here");
                }
                other => panic!("tcId {tc_id}: unexpected result label {other:?}"),
            }
            match outcome {
                Outcome::Verified => {}
                Outcome::RefusedLength => by_length += 1,
                Outcome::RefusedRange => by_range += 1,
                Outcome::RefusedMath => by_math += 1,
            }
        }
    }
    // Pinned: a change in any of these means vectors were lost, added or reclassified.
    assert_eq!((groups.len(), with_jwk), (107, 98));
    assert_eq!(seen, doc["numberOfTests"].as_u64().unwrap());
    assert_eq!((seen, valid, invalid, acceptable), (318, 231, 87, 0));
    // Of the 87 invalid: 14 are not 132 bytes, 55 have r or s equal to 0 or not below n (the
    // crate's range check), 18 are well-formed and fail the verification equation.
    assert_eq!((by_length, by_range, by_math), (14, 55, 18));
}
