//! RFC 7520 (JOSE cookbook) sec. 3 keys and sec. 4 signatures, and the
//! RFC 8037 Ed25519 example, from ietf-jose/cookbook.
//!
//! * 4.1 RS256, 4.2 PS384, 4.3 ES512 (P-521) and the Ed25519 example verify in
//!   compact form.
//! * 4.4 and 4.5 are HMAC: refused as symmetric.
//! * 4.6 and 4.7 exist only as JSON serialisations: refused as unsupported.
//! * 4.8 (multiple signatures) is JSON-only, and its key set gives an RSA and
//!   a P-521 key the same kid, which a key set refuses as ambiguous; with each
//!   key loaded alone, where a signature has a
//!   protected header, a compact form can be rebuilt and is verified (RS256)
//!   or refused (HS256); the ES512 one has no protected header at all (its
//!   `alg` is in an unprotected header), so it has no compact form.
//! * Every JSON and flattened JSON output is refused as unsupported.

use claimgate_jose::{AlgorithmSet, KeyError, KeyKind, KeySet, Verifier};
use serde_json::Value;

const JWS_FILES: [(&str, &str); 9] = [
    ("4_1", include_str!("vectors/jose-cookbook/jws/4_1.rsa_v15_signature.json")),
    ("4_2", include_str!("vectors/jose-cookbook/jws/4_2.rsa-pss_signature.json")),
    ("4_3", include_str!("vectors/jose-cookbook/jws/4_3.ecdsa_signature.json")),
    ("4_4", include_str!("vectors/jose-cookbook/jws/4_4.hmac-sha2_integrity_protection.json")),
    ("4_5", include_str!("vectors/jose-cookbook/jws/4_5.signature_with_detached_content.json")),
    ("4_6", include_str!("vectors/jose-cookbook/jws/4_6.protecting_specific_header_fields.json")),
    ("4_7", include_str!("vectors/jose-cookbook/jws/4_7.protecting_content_only.json")),
    ("4_8", include_str!("vectors/jose-cookbook/jws/4_8.multiple_signatures.json")),
    ("ed25519", include_str!("vectors/jose-cookbook/curve25519/jws.json")),
];

const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The public half of a cookbook key (they are given as private keys).
fn public_jwk(key: &Value) -> Value {
    let mut key = key.clone();
    for m in PRIVATE_MEMBERS {
        key.as_object_mut().unwrap().remove(m);
    }
    key
}

fn verifier_for(keys: &[Value]) -> Option<Verifier> {
    let set = serde_json::json!({ "keys": keys.iter().map(public_jwk).collect::<Vec<_>>() });
    KeySet::from_jwks_json(set.to_string().as_bytes()).ok().map(|keys| Verifier::new(keys, AlgorithmSet::ALL))
}

/// A verifier with only an unrelated key, for examples whose key we refuse.
fn unrelated() -> Verifier {
    let jwk = br#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    Verifier::new(KeySet::from_jwk_json(jwk).unwrap(), AlgorithmSet::ALL)
}

#[test]
fn rfc7520_section4_and_rfc8037() {
    let mut verified = Vec::new();
    let mut refused = Vec::new();
    let mut json_refused = 0;
    for (name, text) in JWS_FILES {
        let doc: Value = serde_json::from_str(text).unwrap();
        let keys: Vec<Value> = match &doc["input"]["key"] {
            Value::Array(keys) => keys.clone(),
            key => vec![key.clone()],
        };
        let verifier = verifier_for(&keys).unwrap_or_else(unrelated);
        let payload = doc["input"]["payload"].as_str().unwrap().as_bytes().to_vec();

        if let Some(compact) = doc["output"]["compact"].as_str() {
            let result = verifier.verify(compact.as_bytes());
            match name {
                "4_1" | "4_2" | "4_3" | "ed25519" => {
                    let v = result.unwrap_or_else(|e| panic!("{name}: {e:?}"));
                    assert_eq!(v.payload, payload, "{name}");
                    assert_eq!(v.header.alg.name(), doc["input"]["alg"].as_str().unwrap(), "{name}");
                    verified.push(name);
                }
                "4_4" | "4_5" => {
                    assert_eq!(result.unwrap_err().code(), "alg_symmetric", "{name}");
                    refused.push(name);
                }
                other => panic!("unexpected compact output in {other}"),
            }
        }
        for form in ["json", "json_flat"] {
            if let Some(json) = doc["output"].get(form) {
                let err = verifier.verify(json.to_string().as_bytes()).unwrap_err();
                assert_eq!(err.code(), "unsupported", "{name} {form}");
                json_refused += 1;
            }
        }
        if name == "4_8" {
            // The example's set gives its RSA and its P-521 key one kid (RFC 7517 4.5 allows
            // that for keys of different types). A set whose usable keys share a kid is refused
            // as ambiguous, so each key is loaded on its own: the P-521 key loads, the RSA key
            // verifies the RS256 signature.
            let set = serde_json::json!({ "keys": keys.iter().map(public_jwk).collect::<Vec<_>>() });
            let err = KeySet::from_jwks_json(set.to_string().as_bytes()).unwrap_err();
            assert_eq!(err.code(), "duplicate_kid", "{err}");
            let p521 = verifier_for(&keys[1..2]).unwrap();
            assert_eq!(p521.keys().iter().map(|k| k.kind).collect::<Vec<_>>(), [KeyKind::P521]);
            let verifier = verifier_for(&keys[..1]).unwrap();
            let json = &doc["output"]["json"];
            let payload_b64 = json["payload"].as_str().unwrap();
            let mut outcomes = Vec::new();
            for sig in json["signatures"].as_array().unwrap() {
                let Some(protected) = sig.get("protected").and_then(Value::as_str) else {
                    outcomes.push("no protected header");
                    continue;
                };
                let compact = format!("{protected}.{payload_b64}.{}", sig["signature"].as_str().unwrap());
                outcomes.push(match verifier.verify(compact.as_bytes()) {
                    Ok(v) => {
                        assert_eq!(v.header.alg.name(), "RS256");
                        assert_eq!(v.payload, payload);
                        "verified"
                    }
                    Err(e) => e.code(),
                });
            }
            assert_eq!(outcomes, ["verified", "no protected header", "alg_symmetric"]);
        }
    }
    assert_eq!(verified, ["4_1", "4_2", "4_3", "ed25519"]);
    assert_eq!(refused, ["4_4", "4_5"]);
    // 4_1..4_7 have json and json_flat, 4_8 only json, ed25519 both.
    assert_eq!(json_refused, 7 * 2 + 1 + 2);
}

#[test]
fn rfc7520_section3_keys() {
    let load = |text: &str| KeySet::from_jwk_json(text.as_bytes());
    // 3.1: a P-521 public key: loads, bound to no algorithm (it names none), so ES512.
    let set = load(include_str!("vectors/jose-cookbook/jwk/3_1.ec_public_key.json")).unwrap();
    let info = set.iter().next().unwrap();
    assert_eq!((set.len(), info.kind, info.alg), (1, KeyKind::P521, None));
    assert_eq!(info.kid, Some("bilbo.baggins@hobbiton.example"));
    // 3.2 and 3.4: private keys are never loaded into a verifier.
    for text in [
        include_str!("vectors/jose-cookbook/jwk/3_2.ec_private_key.json"),
        include_str!("vectors/jose-cookbook/jwk/3_4.rsa_private_key.json"),
    ] {
        assert_eq!(load(text).unwrap_err(), KeyError::PrivateKey { index: 0 });
    }
    // 3.3: the RSA public key loads.
    let set = load(include_str!("vectors/jose-cookbook/jwk/3_3.rsa_public_key.json")).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set.iter().next().unwrap().kid, Some("bilbo.baggins@hobbiton.example"));
    // 3.5: a symmetric key.
    // Its `k` is a secret: refused like private key material.
    let err = load(include_str!("vectors/jose-cookbook/jwk/3_5.symmetric_key_mac_computation.json")).unwrap_err();
    assert_eq!(err, KeyError::PrivateKey { index: 0 });
}
