//! Every Project Wycheproof JWS and JWK vector, run against the verifier.
//!
//! Scope: RS*, PS*, ES256, ES384, ES512 (and EdDSA, which Wycheproof's JOSE
//! files do not cover) must give the labelled result. Out of scope and always
//! refused: HS* (symmetric), JSON serialisation. Known label errors are
//! overridden in the single `OVERRIDES` table below, each with the check that
//! proves the claim. Counts are pinned so a vector file that silently stops
//! being read fails the suite.
//!
//! Wycheproof's ECDSA P-521 vectors (`ecdsa_secp521r1_sha512_p1363_test.json`)
//! sign arbitrary bytes rather than JWS signing inputs, so they cannot be
//! wrapped in tokens; they run inside the crate (`src/wycheproof_p521.rs`),
//! through the same length rule, key binding and verification the verifier
//! uses.

use std::collections::BTreeMap;

use claimgate_jose::{AlgorithmSet, JoseError, KeyError, KeySet, Verified, Verifier, b64};
use serde_json::Value;

const JWS_FILE: &str = include_str!("vectors/wycheproof/json_web_signature_test.json");
const JWK_FILE: &str = include_str!("vectors/wycheproof/json_web_key_test.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Valid,
    Invalid,
}

/// A vector whose upstream label we do not follow, and why.
struct Override {
    tc_id: u64,
    upstream: Expect,
    ours: Expect,
    reason: &'static str,
}

/// THE table of label overrides (json_web_signature_test.json). Each claim is
/// re-checked by `overrides_are_justified`.
const OVERRIDES: &[Override] = &[
    Override {
        tc_id: 367,
        upstream: Expect::Invalid,
        ours: Expect::Valid,
        reason: "byte-identical to the valid tcId 357 (C2SP/wycheproof#236); HS256, so we refuse it as out of scope either way",
    },
    Override {
        tc_id: 370,
        upstream: Expect::Invalid,
        ours: Expect::Valid,
        reason: "byte-identical to the valid tcId 357 (C2SP/wycheproof#236); HS256, so we refuse it as out of scope either way",
    },
    Override {
        tc_id: 372,
        upstream: Expect::Valid,
        ours: Expect::Invalid,
        reason: "'?' inside the base64url header: strict base64url rejects it (C2SP/wycheproof#236)",
    },
    Override {
        tc_id: 373,
        upstream: Expect::Valid,
        ours: Expect::Invalid,
        reason: "'?' inside the base64url payload: strict base64url rejects it (C2SP/wycheproof#236)",
    },
    Override {
        tc_id: 346,
        upstream: Expect::Valid,
        ours: Expect::Invalid,
        reason: "PS384 token, but the key says \"alg\": \"PS256\"; we bind keys to their alg (valid only if the key's alg is ignored)",
    },
    Override {
        tc_id: 350,
        upstream: Expect::Valid,
        ours: Expect::Invalid,
        reason: "PS384 token, but the key says \"alg\": \"PS256\" (with key_ops); we bind keys to their alg",
    },
    Override {
        tc_id: 347,
        upstream: Expect::Valid,
        ours: Expect::Invalid,
        reason: "ES512 token, but the key says \"alg\": \"ES521\", not a registered name: the key is skipped (valid only if the key's alg is ignored)",
    },
    Override {
        tc_id: 351,
        upstream: Expect::Valid,
        ours: Expect::Invalid,
        reason: "ES512 token, but the key says \"alg\": \"ES521\" (with key_ops), not a registered name: the key is skipped",
    },
];

fn override_for(tc_id: u64) -> Option<&'static Override> {
    OVERRIDES.iter().find(|o| o.tc_id == tc_id)
}

fn label(test: &Value) -> Expect {
    match test["result"].as_str() {
        Some("valid") => Expect::Valid,
        Some("invalid") => Expect::Invalid,
        other => panic!("unexpected result label {other:?}"),
    }
}

/// The `alg` a compact token's header claims, if the header decodes at all
/// (leniently: this is only used to classify vectors by scope).
fn header_alg(jws: &str) -> Option<String> {
    let header = jws.split('.').next()?;
    let bytes = b64::decode(header.as_bytes()).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v["alg"].as_str().map(str::to_owned)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    /// RS/PS/ES256/ES384/ES512/EdDSA: the label (after overrides) must hold.
    Supported,
    /// HS*: refused as symmetric, never verified.
    Symmetric,
    /// `none`: refused.
    None,
    /// JSON serialisation: refused as unsupported.
    JsonSerialization,
    /// No usable alg in the header (structurally broken vectors).
    Broken,
}

fn scope(jws: &Value) -> Scope {
    let Some(jws) = jws.as_str() else {
        return Scope::JsonSerialization;
    };
    if jws.trim_start().starts_with('{') {
        return Scope::JsonSerialization;
    }
    match header_alg(jws).as_deref() {
        Some("HS256" | "HS384" | "HS512") => Scope::Symmetric,
        Some(a) if a.eq_ignore_ascii_case("none") => Scope::None,
        Some(_) => Scope::Supported,
        None => Scope::Broken,
    }
}

fn token_text(jws: &Value) -> String {
    match jws {
        Value::String(s) => s.clone(),
        other => serde_json::to_string(other).unwrap(),
    }
}

/// A verifier for groups whose key cannot be loaded here (HMAC keys, keys naming "ES521"):
/// it holds an unrelated P-256 key so that every token still runs the full
/// pipeline and must be refused on its own merits.
fn fallback_verifier() -> Verifier {
    // A P-256 key made for this test (not the vectors' key, whose kid-less copy would verify
    // the vectors' tokens: a kid no configured key has falls back to keys without a kid).
    let jwk = br#"{"kty":"EC","crv":"P-256","x":"9MZhe1xV4Cj5x6i7QMoMc3LIy2bKKCZ5cvKWtF5VK1o","y":"iTywf42ALa5EfX8DRjO4txA0MltUZvK5AXOdfq1_onM"}"#;
    Verifier::new(KeySet::from_jwk_json(jwk).unwrap(), AlgorithmSet::ALL)
}

fn check_refusal(tc_id: u64, scope: Scope, result: &Result<Verified, JoseError>) {
    let err = match result {
        Ok(_) => panic!("tcId {tc_id}: out-of-scope vector ({scope:?}) was accepted"),
        Err(e) => e,
    };
    let ok = match scope {
        Scope::JsonSerialization => err.code() == "unsupported",
        Scope::None => err.code() == "alg_none",
        // Broken base64 in the header is found before the alg is read.
        Scope::Symmetric => matches!(err.code(), "alg_symmetric" | "malformed"),
        Scope::Broken => matches!(err.code(), "malformed" | "unsupported"),
        Scope::Supported => unreachable!(),
    };
    assert!(ok, "tcId {tc_id}: {scope:?} refused with unexpected {err:?}");
}

#[test]
fn json_web_signature_vectors() {
    let doc: Value = serde_json::from_str(JWS_FILE).unwrap();
    let fallback = fallback_verifier();
    let mut seen = 0u64;
    let mut by_scope: BTreeMap<(Scope, &str), u64> = BTreeMap::new();
    let mut overridden = 0;
    let mut groups_without_key = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        let verifier = match group.get("public") {
            Some(public) => {
                let keys = KeySet::from_jwk_json(public.to_string().as_bytes());
                match keys {
                    Ok(keys) => Some(Verifier::new(keys, AlgorithmSet::ALL)),
                    Err(e) => {
                        // Only the RFC 7520 P-521 keys ("alg": "ES521") and
                        // the encryption keys (use/key_ops) may fail to load.
                        let msg = e.to_string();
                        assert!(
                            msg.contains("ES521")
                                || msg.contains("not a signature key")
                                || msg.contains("does not include \"verify\""),
                            "{msg}"
                        );
                        groups_without_key += 1;
                        None
                    }
                }
            }
            None => {
                // HMAC groups: the private JWK is a symmetric secret, refused as private
                // key material.
                let err = KeySet::from_jwk_json(group["private"].to_string().as_bytes()).unwrap_err();
                assert_eq!(err.code(), "private_key");
                groups_without_key += 1;
                None
            }
        };
        let verifier = verifier.as_ref().unwrap_or(&fallback);
        for test in group["tests"].as_array().unwrap() {
            seen += 1;
            let tc_id = test["tcId"].as_u64().unwrap();
            let token = token_text(&test["jws"]);
            let result = verifier.verify(token.as_bytes());
            let scope = scope(&test["jws"]);
            let mut expect = label(test);
            if let Some(o) = override_for(tc_id) {
                assert_eq!(o.upstream, expect, "tcId {tc_id}: override table is stale");
                expect = o.ours;
                overridden += 1;
            }
            let outcome = if result.is_ok() { "accepted" } else { "rejected" };
            *by_scope.entry((scope, outcome)).or_default() += 1;
            if scope == Scope::Supported {
                match (expect, &result) {
                    (Expect::Valid, Ok(_)) | (Expect::Invalid, Err(_)) => {}
                    (Expect::Valid, Err(e)) => panic!("tcId {tc_id} ({}) should verify: {e:?}", test["comment"]),
                    (Expect::Invalid, Ok(_)) => {
                        panic!("tcId {tc_id} ({}) should fail", test["comment"])
                    }
                }
            } else {
                check_refusal(tc_id, scope, &result);
            }
        }
    }
    assert_eq!(seen, doc["numberOfTests"].as_u64().unwrap());
    assert_eq!(seen, 401);
    assert_eq!(overridden, OVERRIDES.len());
    assert_eq!(
        groups_without_key,
        1 + 2 + 1 + 2 + 4,
        "hs256, 2 rfc7520 hmac, base64, 2 P-521 keys naming ES521, 4 encryption keys"
    );
    let summary: Vec<String> = by_scope.iter().map(|((s, o), n)| format!("{s:?} {o}: {n}")).collect();
    // Pinned: a change in any of these means vectors were lost or reclassified.
    assert_eq!(
        summary,
        [
            "Supported accepted: 32",
            "Supported rejected: 314",
            "Symmetric rejected: 31",
            "None rejected: 5",
            "JsonSerialization rejected: 1",
            "Broken rejected: 18",
        ],
        "{summary:#?}"
    );
}

/// Re-checks every claim made in `OVERRIDES`.
#[test]
fn overrides_are_justified() {
    let doc: Value = serde_json::from_str(JWS_FILE).unwrap();
    let mut tests = BTreeMap::new();
    let mut groups = BTreeMap::new();
    for group in doc["testGroups"].as_array().unwrap() {
        for test in group["tests"].as_array().unwrap() {
            let id = test["tcId"].as_u64().unwrap();
            tests.insert(id, test.clone());
            groups.insert(id, group.clone());
        }
    }
    let jws = |id: u64| tests[&id]["jws"].as_str().unwrap().to_owned();

    // 367 and 370: byte-identical to the valid 357.
    assert_eq!(label(&tests[&357]), Expect::Valid);
    assert_eq!(jws(367), jws(357));
    assert_eq!(jws(370), jws(357));

    // 372 and 373: a '?' in a base64url segment; strict decoding refuses it.
    let seg = |id: u64, i: usize| jws(id).split('.').nth(i).unwrap().to_owned();
    assert!(seg(372, 0).contains('?'));
    assert!(b64::decode(seg(372, 0).as_bytes()).is_err());
    assert!(seg(373, 1).contains('?'));
    assert!(b64::decode(seg(373, 1).as_bytes()).is_err());
    assert_eq!(fallback_verifier().verify(jws(372).as_bytes()).unwrap_err().code(), "malformed");

    // 346 and 350: PS384 tokens; the key says PS256. With the key's alg the
    // key is unusable; with the alg removed, the signature verifies, which
    // proves the vector is only "valid" when the key's alg is ignored.
    for id in [346, 350] {
        assert_eq!(header_alg(&jws(id)).as_deref(), Some("PS384"));
        let public = groups[&id]["public"].clone();
        assert_eq!(public["alg"], "PS256");
        let bound = Verifier::new(KeySet::from_jwk_json(public.to_string().as_bytes()).unwrap(), AlgorithmSet::ALL);
        let err = bound.verify(jws(id).as_bytes()).unwrap_err();
        assert_eq!(err.code(), "key_unusable", "{err}");
        let mut unbound = public.clone();
        unbound.as_object_mut().unwrap().remove("alg");
        let unbound = Verifier::new(KeySet::from_jwk_json(unbound.to_string().as_bytes()).unwrap(), AlgorithmSet::ALL);
        unbound.verify(jws(id).as_bytes()).unwrap();
    }

    // 347 and 351: ES512 tokens; the key's alg is "ES521", which is not a
    // registered JOSE name (RFC 7518 registers ES512), so the key is skipped
    // and the token finds no key. With the alg removed, or set to the
    // registered ES512, the key loads and the signature verifies: the vectors
    // are "valid" only if the key's alg is ignored.
    for id in [347, 351] {
        assert_eq!(header_alg(&jws(id)).as_deref(), Some("ES512"));
        let public = &groups[&id]["public"];
        assert_eq!(public["alg"], "ES521");
        assert_eq!(public["crv"], "P-521");
        let err = KeySet::from_jwk_json(public.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("\"ES521\" is not supported"), "{err}");
        assert_eq!(fallback_verifier().verify(jws(id).as_bytes()).unwrap_err().code(), "no_matching_key");
        for alg in [None, Some("ES512")] {
            let mut fixed = public.clone();
            match alg {
                None => fixed.as_object_mut().unwrap().remove("alg"),
                Some(alg) => fixed.as_object_mut().unwrap().insert("alg".to_owned(), alg.into()),
            };
            let keys = KeySet::from_jwk_json(fixed.to_string().as_bytes()).unwrap();
            let verified = Verifier::new(keys, AlgorithmSet::ALL).verify(jws(id).as_bytes()).unwrap();
            assert_eq!(verified.header.alg.name(), "ES512");
        }
    }

    for o in OVERRIDES {
        assert!(!o.reason.is_empty());
        assert_ne!(o.upstream, o.ours, "tcId {}", o.tc_id);
    }
}

#[test]
fn json_web_key_vectors() {
    let doc: Value = serde_json::from_str(JWK_FILE).unwrap();
    let fallback = fallback_verifier();
    let mut seen = 0u64;
    let mut accepted = Vec::new();
    let mut key_rejections = BTreeMap::new();
    for group in doc["testGroups"].as_array().unwrap() {
        // The private sets must never load into a verifier: asymmetric ones
        // carry private members, symmetric ones are unsupported.
        let private = KeySet::from_jwks_json(group["private"].to_string().as_bytes());
        match private {
            Err(KeyError::PrivateKey { .. }) | Err(KeyError::NoUsableKeys(_)) => {}
            Ok(set) => panic!("a private set loaded: {} keys", set.len()),
            Err(other) => panic!("unexpected private-set error {other:?}"),
        }
        let loaded = match group.get("public") {
            Some(public) => KeySet::from_jwks_json(public.to_string().as_bytes()),
            None => KeySet::from_jwks_json(group["private"].to_string().as_bytes()),
        };
        let (verifier, load_error) = match loaded {
            Ok(keys) => (Verifier::new(keys, AlgorithmSet::ALL), None),
            Err(e) => (fallback.clone(), Some(e)),
        };
        for test in group["tests"].as_array().unwrap() {
            seen += 1;
            let tc_id = test["tcId"].as_u64().unwrap();
            let token = test["jws"].as_str().unwrap();
            let result = verifier.verify(token.as_bytes());
            let symmetric = matches!(scope(&test["jws"]), Scope::Symmetric);
            match (label(test), &result) {
                (Expect::Valid, Ok(_)) => accepted.push(tc_id),
                (Expect::Valid, Err(e)) => {
                    assert!(symmetric, "tcId {tc_id} should verify: {e:?}");
                    assert_eq!(e.code(), "alg_symmetric");
                }
                (Expect::Invalid, Ok(_)) => panic!("tcId {tc_id} should fail"),
                (Expect::Invalid, Err(_)) => {}
            }
            if let Some(e) = &load_error {
                key_rejections.insert(tc_id, e.to_string());
            }
        }
    }
    assert_eq!(seen, doc["numberOfTests"].as_u64().unwrap());
    assert_eq!(seen, 26);
    assert_eq!(accepted, [5]);
    // Why each asymmetric key was refused at load time.
    let expect_reason = [
        (6, "not a signature key"),
        (7, "roca"),
        (8, "1024 bits"),
        (9, "exponent 1 is too small"),
        (19, "\"ES521\" is not supported"),
        (20, "\"ES224\" is not supported"),
        (21, "not a signature key"),
        (22, "not on p-256"),
        (23, "coordinates for p-384 must be 48 bytes"),
        (24, "missing \"n\""),
    ];
    for (id, needle) in expect_reason {
        let reason = key_rejections.get(&id).unwrap_or_else(|| panic!("tcId {id}: key loaded"));
        assert!(reason.contains(needle), "tcId {id}: {reason}");
    }
}
