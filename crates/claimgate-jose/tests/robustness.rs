//! No panics on any input, output shape, and error-message hygiene.

mod common;

use claimgate_jose::{Algorithm, AlgorithmSet, JoseError, KeySet, Limits, Verifier, b64, decode_unverified};
use common::signer;
use std::sync::OnceLock;

/// One shared verifier: building it validates keys, which proptest would
/// otherwise repeat for every case.
fn verifier_all() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(common::verifier_all)
}
use proptest::prelude::*;
use serde_json::json;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn verify_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let v = verifier_all();
        let _ = v.verify(&bytes);
        let _ = decode_unverified(&String::from_utf8_lossy(&bytes), &Limits::default());
    }

    /// Token-shaped input: base64url characters, dots, padding and braces.
    #[test]
    fn verify_never_panics_on_token_shaped_text(s in "[A-Za-z0-9_\\-.={}+/ ]{0,300}") {
        let _ = verifier_all().verify(s.as_bytes());
        let _ = decode_unverified(&s, &Limits::default());
    }

    /// Arbitrary JSON-ish headers, correctly signed: never a panic, and
    /// whatever is refused has a clean message.
    #[test]
    fn arbitrary_signed_headers(header in "\\{(\"[a-z]{1,4}\":(\"[A-Za-z0-9]{0,6}\"|[0-9]|true|false|null|\\[\\]|\\{\\}),?){0,5}\\}") {
        let s = signer(Algorithm::ES256);
        let token = s.token_with_header(&header, b"{}");
        if let Err(e) = verifier_all().verify(token.as_bytes()) {
            check_message(&e);
        }
    }
}

fn check_message(e: &JoseError) {
    let msg = e.to_string();
    assert!(!msg.is_empty());
    let first = msg.chars().next().unwrap();
    assert!(!first.is_uppercase(), "{msg}");
    assert!(!msg.ends_with('.'), "{msg}");
    assert!(!msg.contains("::"), "{msg}");
    assert!(!msg.contains("Value") && !msg.contains("String") && !msg.contains("struct"), "{msg}");
    assert!(msg.chars().all(|c| !c.is_control()), "{msg:?}");
    assert!(msg.len() <= 200, "{msg}");
}

#[test]
fn error_messages_are_clean() {
    let v = verifier_all();
    let s = signer(Algorithm::ES256);
    let long = "A".repeat(6000);
    let inputs = [
        String::new(),
        "a.b".into(),
        "a.b.c.d.e".into(),
        "{\"payload\":1}".into(),
        long.clone(),
        format!("{long}.{long}.{long}"),
        "!!!.e30.AAAA".into(),
        s.token_with_header(r#"{"alg":"none"}"#, b"{}"),
        s.token_with_header(r#"{"alg":"HS256"}"#, b"{}"),
        s.token_with_header(r#"{"alg":"RS1\n\u001b[31m"}"#, b"{}"),
        s.token_with_header(r#"{"alg":"ES256","kid":"nope"}"#, b"{}"),
        s.token_with_header(r#"{"alg":"ES256","kid":"rsa"}"#, b"{}"),
        s.token_with_header(r#"{"alg":"ES256","crit":["x"]}"#, b"{}"),
        s.token_with_header(r#"{"alg":"ES256","b64":false}"#, b"{}"),
        s.token_with_header(r#"{"alg":"ES256","a":1,"a":1}"#, b"{}"),
        s.token_with_header(r#"{"alg":"ES256"}"#, b"{}") + "A",
        format!("{}.e30.{}", b64::encode(br#"{"alg":"ES256"}"#), b64::encode(&[0; 64])),
        format!("{}.e30.", b64::encode(br#"{"alg":"RS256"}"#)),
    ];
    let mut codes = Vec::new();
    for input in &inputs {
        let e = v.verify(input.as_bytes()).unwrap_err();
        check_message(&e);
        codes.push(e.code());
    }
    assert_eq!(
        codes,
        [
            "malformed",
            "malformed",
            "unsupported",
            "unsupported",
            "malformed",
            "too_large",
            "malformed",
            "alg_none",
            "alg_symmetric",
            "alg_unknown",
            "no_matching_key",
            "key_unusable",
            "unsupported",
            "unsupported",
            "malformed",
            "bad_signature",
            "bad_signature",
            "bad_signature",
        ]
    );
    // The unknown alg with an escape sequence is echoed escaped.
    let e = v.verify(inputs[9].as_bytes()).unwrap_err();
    assert_eq!(e.to_string(), "unknown algorithm \"RS1\\u{a}\\u{1b}[31m\"");
}

#[test]
fn verified_output_reports_header_and_key() {
    // Two skipped keys first, so the verifying key's index is 2 in the input.
    let ed = signer(Algorithm::EdDSA);
    let set = json!({ "keys": [
        {"kty": "oct"},
        {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA", "kid": "old"},
        ed.public_jwk(Some("ed-1")),
    ]});
    let keys = KeySet::from_jwks_json(set.to_string().as_bytes()).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys.skipped().len(), 2);
    assert_eq!(keys.skipped()[1].kid.as_deref(), Some("old"));
    let v = Verifier::new(keys, AlgorithmSet::ALL);
    let token = ed.token_with_header(r#"{"alg":"EdDSA","typ":"JWT","cty":"json","kid":"ed-1"}"#, br#"{"sub":"x"}"#);
    let verified = v.verify(token.as_bytes()).unwrap();
    assert_eq!(verified.header.alg, Algorithm::EdDSA);
    assert_eq!(verified.header.typ.as_deref(), Some("JWT"));
    assert_eq!(verified.header.cty.as_deref(), Some("json"));
    assert_eq!(verified.header.kid.as_deref(), Some("ed-1"));
    assert_eq!(verified.payload, br#"{"sub":"x"}"#);
    assert_eq!(verified.key.index, 2);
    assert_eq!(verified.key.kid.as_deref(), Some("ed-1"));
    // A kid naming a skipped key says why it is unusable.
    let token = ed.token(Some("old"), b"{}");
    let err = v.verify(token.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "key_unusable");
    assert!(err.to_string().contains("unsupported ec curve"), "{err}");
}

#[test]
fn without_kid_every_fitting_key_is_tried() {
    // Three Ed25519 keys; the token is signed by the last.
    let rng = ring::rand::SystemRandom::new();
    let mut keys = Vec::new();
    let mut pairs = Vec::new();
    for _ in 0..3 {
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        use ring::signature::KeyPair;
        keys.push(json!({"kty": "OKP", "crv": "Ed25519", "x": b64::encode(pair.public_key().as_ref())}));
        pairs.push(pair);
    }
    keys.push(signer(Algorithm::ES256).public_jwk(None));
    let v = Verifier::new(
        KeySet::from_jwks_json(json!({ "keys": keys }).to_string().as_bytes()).unwrap(),
        AlgorithmSet::ALL,
    );
    let input = format!("{}.{}", b64::encode(br#"{"alg":"EdDSA"}"#), b64::encode(b"{}"));
    let sig = pairs[2].sign(input.as_bytes());
    let token = format!("{input}.{}", b64::encode(sig.as_ref()));
    assert_eq!(v.verify(token.as_bytes()).unwrap().key.index, 2);
    // No key for the algorithm at all.
    let rs = signer(Algorithm::RS256).token(None, b"{}");
    assert_eq!(v.verify(rs.as_bytes()).unwrap_err().code(), "no_matching_key");
}

#[test]
fn verifier_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Verifier>();
    check::<KeySet>();
    check::<JoseError>();
    let v = std::sync::Arc::new(verifier_all().clone());
    let token = signer(Algorithm::ES384).token(None, b"{}");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let v = v.clone();
            let token = token.clone();
            std::thread::spawn(move || v.verify(token.as_bytes()).is_ok())
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}
