//! Differential tests against `jsonwebtoken` 11 (RustCrypto backend).
//!
//! * Tokens minted by jsonwebtoken for every supported algorithm verify here,
//!   and tokens minted here (ring) verify there. ES512 is left out: jsonwebtoken
//!   has no P-521 (the Wycheproof P-521 vectors and RFC 7520 4.3 cover it).
//! * Mutated tokens (bit flips in each segment, swapped segments, a changed
//!   `alg`, base64 re-encoded with padding or the standard alphabet,
//!   truncation) are never accepted here when jsonwebtoken rejects them.
//!   "Accepted here" means what the policy evaluator does: `verify` and then
//!   `check_payload_json`.
//! * Every known disagreement has its own `disagreement_*` test below.

mod common;

use claimgate_jose::{Algorithm, Limits, Verifier, b64, check_payload_json};
use common::{kid_for, signer, verifier_all, workload_claims};
use jsonwebtoken as jwt;
use proptest::prelude::*;
use serde_json::Value;
use std::sync::OnceLock;

/// jsonwebtoken's name for an algorithm; `None` for ES512, which it does not implement.
fn jwt_alg(alg: Algorithm) -> Option<jwt::Algorithm> {
    Some(match alg {
        Algorithm::RS256 => jwt::Algorithm::RS256,
        Algorithm::RS384 => jwt::Algorithm::RS384,
        Algorithm::RS512 => jwt::Algorithm::RS512,
        Algorithm::PS256 => jwt::Algorithm::PS256,
        Algorithm::PS384 => jwt::Algorithm::PS384,
        Algorithm::PS512 => jwt::Algorithm::PS512,
        Algorithm::ES256 => jwt::Algorithm::ES256,
        Algorithm::ES384 => jwt::Algorithm::ES384,
        Algorithm::EdDSA => jwt::Algorithm::EdDSA,
        Algorithm::ES512 => return None,
    })
}

/// The algorithms both sides implement, in `Algorithm::ALL` order.
const COMPARED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[test]
fn compared_is_every_algorithm_jsonwebtoken_has() {
    let both: Vec<Algorithm> = Algorithm::ALL.into_iter().filter(|a| jwt_alg(*a).is_some()).collect();
    assert_eq!(both, COMPARED);
}

/// jsonwebtoken's RustCrypto backend, chosen explicitly: a build that also enables its
/// `aws_lc_rs` feature (the benchmarks do) would otherwise have no default backend.
fn oracle_backend() {
    let _ = jwt::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
}

fn encoding_key(alg: Algorithm) -> jwt::EncodingKey {
    oracle_backend();
    let s = signer(alg);
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => jwt::EncodingKey::from_ec_der(&s.pkcs8),
        Algorithm::EdDSA => jwt::EncodingKey::from_ed_der(&s.pkcs8),
        _ => jwt::EncodingKey::from_rsa_der(common::RSA_PKCS1_DER),
    }
}

fn decoding_key(alg: Algorithm) -> jwt::DecodingKey {
    oracle_backend();
    let jwk = signer(alg).public_jwk(None);
    let m = |k: &str| jwk[k].as_str().unwrap().to_owned();
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => jwt::DecodingKey::from_ec_components(&m("x"), &m("y")).unwrap(),
        Algorithm::EdDSA => jwt::DecodingKey::from_ed_components(&m("x")).unwrap(),
        _ => jwt::DecodingKey::from_rsa_components(&m("n"), &m("e")).unwrap(),
    }
}

fn decoding_keys() -> &'static Vec<jwt::DecodingKey> {
    static KEYS: OnceLock<Vec<jwt::DecodingKey>> = OnceLock::new();
    KEYS.get_or_init(|| COMPARED.iter().map(|a| decoding_key(*a)).collect())
}

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(verifier_all)
}

/// jsonwebtoken's verdict, with the key for whatever alg the header claims
/// (as a naive caller would pick it) and claim validation switched off: we
/// compare signatures and structure, not time.
fn theirs(token: &str) -> bool {
    oracle_backend();
    let Ok(header) = jwt::decode_header(token) else {
        return false;
    };
    let Some(idx) = COMPARED.iter().position(|a| jwt_alg(*a) == Some(header.alg)) else {
        return false;
    };
    let mut validation = jwt::Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jwt::decode::<Value>(token, &decoding_keys()[idx], &validation).is_ok()
}

/// Our verdict as the policy evaluator sees it.
fn ours(token: &str) -> bool {
    verifier().verify(token.as_bytes()).and_then(|v| check_payload_json(&v.payload, &Limits::default())).is_ok()
}

/// One jsonwebtoken-minted token per algorithm, made once (RSA signing in a
/// debug build is slow).
fn minted(alg: Algorithm) -> &'static str {
    static TOKENS: OnceLock<Vec<String>> = OnceLock::new();
    let all = TOKENS.get_or_init(|| COMPARED.iter().map(|a| mint(*a)).collect());
    &all[COMPARED.iter().position(|a| *a == alg).unwrap()]
}

fn mint(alg: Algorithm) -> String {
    let mut header = jwt::Header::new(jwt_alg(alg).unwrap());
    header.kid = Some(kid_for(alg).to_owned());
    jwt::encode(&header, &workload_claims(), &encoding_key(alg)).unwrap()
}

#[test]
fn jsonwebtoken_tokens_verify_here_for_every_algorithm() {
    for alg in COMPARED {
        let token = mint(alg);
        let verified = verifier().verify(token.as_bytes()).unwrap_or_else(|e| panic!("{}: {e:?}", alg.name()));
        assert_eq!(verified.header.alg, alg);
        assert_eq!(verified.header.typ.as_deref(), Some("JWT"));
        assert_eq!(verified.key.kid.as_deref(), Some(kid_for(alg)));
        let claims = check_payload_json(&verified.payload, &Limits::default()).unwrap();
        assert_eq!(Value::Object(claims), workload_claims());
        assert!(theirs(&token));
    }
}

#[test]
fn ring_tokens_verify_in_jsonwebtoken() {
    for alg in COMPARED {
        let payload = workload_claims().to_string();
        let token = signer(alg).token(Some(kid_for(alg)), payload.as_bytes());
        assert!(theirs(&token), "{}", alg.name());
        assert!(ours(&token), "{}", alg.name());
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Flip one bit of the decoded bytes of a segment, re-encode.
    FlipDecoded { segment: usize, bit: usize },
    /// Flip one bit of the encoded text (may leave the alphabet).
    FlipEncoded { segment: usize, bit: usize },
    /// Swap two segments.
    Swap(usize, usize),
    /// Replace the header's alg, keeping everything else.
    ChangeAlg(usize),
    /// Re-encode a segment with `=` padding.
    Pad(usize),
    /// Re-encode a segment with the standard (+/) alphabet and padding.
    Standard(usize),
    /// Drop the last `n` characters of a segment.
    Truncate { segment: usize, n: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0usize..3, 0usize..8192).prop_map(|(segment, bit)| Mutation::FlipDecoded { segment, bit }),
        (0usize..3, 0usize..8192).prop_map(|(segment, bit)| Mutation::FlipEncoded { segment, bit }),
        (0usize..3, 0usize..3).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (0usize..12).prop_map(Mutation::ChangeAlg),
        (0usize..3).prop_map(Mutation::Pad),
        (0usize..3).prop_map(Mutation::Standard),
        (0usize..3, 1usize..4).prop_map(|(segment, n)| Mutation::Truncate { segment, n }),
    ]
}

fn apply(token: &str, m: &Mutation) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    match *m {
        Mutation::FlipDecoded { segment, bit } => {
            let mut bytes = b64::decode(parts[segment].as_bytes()).unwrap();
            if !bytes.is_empty() {
                let bit = bit % (bytes.len() * 8);
                bytes[bit / 8] ^= 1 << (bit % 8);
            }
            parts[segment] = b64::encode(&bytes);
        }
        Mutation::FlipEncoded { segment, bit } => {
            let mut bytes = parts[segment].clone().into_bytes();
            if !bytes.is_empty() {
                let bit = bit % (bytes.len() * 7);
                bytes[bit / 7] ^= 1 << (bit % 7);
            }
            parts[segment] = String::from_utf8(bytes).unwrap();
        }
        Mutation::Swap(a, b) => parts.swap(a, b),
        Mutation::ChangeAlg(i) => {
            let names = [
                "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256", "none",
                "ES512",
            ];
            let mut header: Value = serde_json::from_slice(&b64::decode(parts[0].as_bytes()).unwrap()).unwrap();
            header["alg"] = Value::from(names[i]);
            parts[0] = b64::encode(header.to_string().as_bytes());
        }
        Mutation::Pad(segment) => {
            let bytes = b64::decode(parts[segment].as_bytes()).unwrap();
            parts[segment] = URL_SAFE.encode(bytes);
        }
        Mutation::Standard(segment) => {
            let bytes = b64::decode(parts[segment].as_bytes()).unwrap();
            parts[segment] = STANDARD.encode(bytes);
        }
        Mutation::Truncate { segment, n } => {
            let len = parts[segment].len().saturating_sub(n);
            parts[segment].truncate(len);
        }
    }
    parts.join(".")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn mutated_tokens_are_never_accepted_here_when_jsonwebtoken_rejects(
        alg in 0usize..COMPARED.len(),
        m in mutation(),
    ) {
        let alg = COMPARED[alg];
        let original = minted(alg);
        let token = apply(original, &m);
        let (o, t) = (ours(&token), theirs(&token));
        prop_assert!(!o || t, "accepted here, rejected by jsonwebtoken: {m:?} {token}");
        // The reverse direction: only mutations that do not change the
        // token (a no-op swap, an alg changed to itself, a padding or
        // alphabet change that happens to be a no-op) may be accepted, and
        // then by both. Anything else accepted by jsonwebtoken alone would
        // be a new, unexplained disagreement.
        if t && !o {
            prop_assert!(false, "new disagreement (jsonwebtoken accepts, we reject): {m:?} {token}");
        }
        if token != original {
            // A real change must never verify anywhere, with one known
            // exception: ECDSA signatures stay valid under (r, n - s), which
            // bit flips cannot produce.
            prop_assert!(!o, "mutated token accepted: {m:?}");
        }
    }
}

/// jsonwebtoken ignores `crit`; RFC 7515 4.1.11 requires rejecting unknown
/// critical extensions, and we understand none.
#[test]
fn disagreement_crit_is_ignored_by_jsonwebtoken() {
    let s = signer(Algorithm::ES256);
    let token = s.token_with_header(
        r#"{"alg":"ES256","kid":"p256","crit":["exp"],"exp":1}"#,
        workload_claims().to_string().as_bytes(),
    );
    assert!(theirs(&token));
    assert_eq!(verifier().verify(token.as_bytes()).unwrap_err().code(), "unsupported");
}

/// Duplicate claims: for registered claims (`sub`, `exp`, ...) jsonwebtoken
/// refuses duplicates too (its typed validation struct errors on repeated
/// fields), but for any other claim serde_json keeps the *last* value. Our
/// claims gate refuses every duplicate, so no two parsers can disagree on,
/// say, `role` or `repository`.
#[test]
fn disagreement_duplicate_custom_claims_are_last_wins_in_jsonwebtoken() {
    let s = signer(Algorithm::ES256);
    let token = s.token(Some("p256"), br#"{"sub":"user","sub":"admin"}"#);
    assert!(!theirs(&token));
    assert!(!ours(&token));
    let token = s.token(Some("p256"), br#"{"role":"user","role":"admin"}"#);
    assert!(theirs(&token));
    assert!(verifier().verify(token.as_bytes()).is_ok());
    assert!(!ours(&token));
}

/// Duplicate *unknown* header members: jsonwebtoken's typed header ignores
/// members it does not know, duplicates included; our strict parser refuses
/// any duplicate. (Duplicate known members, like two `alg`s, are refused by
/// both: serde's derive errors on repeated fields.)
#[test]
fn disagreement_duplicate_unknown_header_members() {
    let s = signer(Algorithm::ES256);
    let claims = workload_claims().to_string();
    let token = s.token_with_header(r#"{"alg":"ES256","x":1,"x":2}"#, claims.as_bytes());
    assert!(theirs(&token));
    assert!(!ours(&token));
    let token = s.token_with_header(r#"{"alg":"ES256","alg":"ES256"}"#, claims.as_bytes());
    assert!(!theirs(&token));
    assert!(!ours(&token));
}

/// A header member we never use but jsonwebtoken parses into a typed field
/// (`jwk`, `x5c`, ...): if it is ill-typed, jsonwebtoken rejects the token;
/// we ignore the member entirely, so a correctly signed token verifies. This
/// is the one disagreement in the "we accept" direction, and it cannot arise
/// from mutation: the issuer itself signed that header.
#[test]
fn disagreement_ill_typed_ignored_header_members() {
    let s = signer(Algorithm::ES256);
    let claims = workload_claims().to_string();
    for header in [
        r#"{"alg":"ES256","jwk":"not-an-object"}"#,
        r#"{"alg":"ES256","x5c":"not-an-array"}"#,
        r#"{"alg":"ES256","jku":1}"#,
    ] {
        let token = s.token_with_header(header, claims.as_bytes());
        assert!(!theirs(&token), "{header}");
        assert!(ours(&token), "{header}");
    }
}

/// A payload that is not JSON: jsonwebtoken refuses to decode claims, and so
/// does our claims gate; `verify` alone is payload-agnostic (JWS can sign any
/// bytes, and the Wycheproof vectors do).
#[test]
fn disagreement_none_for_non_json_payloads() {
    let s = signer(Algorithm::EdDSA);
    let token = s.token(None, b"not json");
    assert!(!theirs(&token));
    assert!(verifier().verify(token.as_bytes()).is_ok());
    assert!(!ours(&token));
}

/// The same key without `kid`: jsonwebtoken is handed the key directly; we
/// try every configured key that fits the algorithm. Both accept.
#[test]
fn agreement_tokens_without_kid() {
    for alg in COMPARED {
        let header = jwt::Header::new(jwt_alg(alg).unwrap());
        let token = jwt::encode(&header, &workload_claims(), &encoding_key(alg)).unwrap();
        assert!(theirs(&token));
        assert!(ours(&token), "{}", alg.name());
    }
}

/// ECDSA malleability: (r, n - s) is also a valid signature. Both libraries
/// accept it (neither enforces low-s, which JWS does not require); it is the
/// same signed content, so nothing is gained by it.
#[test]
fn agreement_ecdsa_high_s_is_accepted_by_both() {
    let n = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6,
        0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51u8,
    ];
    let token = mint(Algorithm::ES256);
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = b64::decode(sig.as_bytes()).unwrap();
    let (r, s) = sig.split_at(32);
    let mut neg = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = n[i] as i16 - s[i] as i16 - borrow;
        borrow = (d < 0) as i16;
        neg[i] = (d + 256 * borrow) as u8;
    }
    let flipped = format!("{input}.{}", b64::encode(&[r, &neg[..]].concat()));
    assert!(ours(&flipped));
    assert!(theirs(&flipped));
}
