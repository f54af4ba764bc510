//! Shared fixtures for the fuzz targets: a fixed key set and valid tokens signed with it, and the
//! checks every error message must pass.
//!
//! Everything here is deterministic, so that a crash found in one run reproduces in the next:
//! the Ed25519 keys come from fixed seeds, the RSA and P-256 keys are the committed test keys of
//! `claimgate-jose`, RS256 (PKCS#1 v1.5) signatures are deterministic, and the ES256 tokens,
//! whose signatures are not (ECDSA draws a random nonce), were signed once with the committed
//! P-256 key and are stored below; `fixture()` checks they still verify.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use claimgate_jose::{Algorithm, AlgorithmSet, JoseError, KeySet, Verifier, b64};
use ring::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::json;

/// The committed test keys of the signature core.
pub const RSA_PKCS8: &[u8] = include_bytes!("../../crates/claimgate-jose/tests/keys/rsa2048.pk8");
pub const P256_SPKI_PEM: &str = include_str!("../../crates/claimgate-jose/tests/keys/p256.spki.pem");
/// A P-521 public key (ES512, verified by RustCrypto's p521): tokens the fuzzer names `ES512`
/// with kid `p521` reach its length, range and verification checks.
pub const P521_SPKI_PEM: &str = include_str!("../../crates/claimgate-jose/tests/keys/p521.spki.pem");

/// The payload every fixture token carries.
pub const PAYLOAD: &str = r#"{"iss":"https://issuer.example","sub":"repo:claimgate/claimgate:ref:refs/heads/main","aud":"claimgate","ref":"refs/heads/main","iat":1700000000,"exp":4000000000}"#;

/// ES256 tokens over [`PAYLOAD`], signed once with `tests/keys/p256.pk8` (headers
/// `{"alg":"ES256","kid":"p256","typ":"JWT"}` and `{"alg":"ES256"}`).
const ES256_TOKENS: [&str; 2] = [
    "eyJhbGciOiJFUzI1NiIsImtpZCI6InAyNTYiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwic3ViIjoicmVwbzpjbGFpbWdhdGUvY2xhaW1nYXRlOnJlZjpyZWZzL2hlYWRzL21haW4iLCJhdWQiOiJjbGFpbWdhdGUiLCJyZWYiOiJyZWZzL2hlYWRzL21haW4iLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6NDAwMDAwMDAwMH0.8x6LZgV_eThlLSZ5Pp84Wdu6SVVQ1SqC6ytHj1SekPHONlGvR0s-gLUtm7ZeH6FrwB30rvnPszhCQHmQzWj5og",
    "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwic3ViIjoicmVwbzpjbGFpbWdhdGUvY2xhaW1nYXRlOnJlZjpyZWZzL2hlYWRzL21haW4iLCJhdWQiOiJjbGFpbWdhdGUiLCJyZWYiOiJyZWZzL2hlYWRzL21haW4iLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6NDAwMDAwMDAwMH0.HBVBnv10-diqpR-kLrPivQigSr8ZTmVJj-f1q3hsA1Cx8ajXwahZDp4eZ8XRamCRLrve0V4ManpshBc13rXEFg",
];

/// A valid token of the fixture and its decoded parts.
#[derive(Debug)]
pub struct Original {
    pub token: String,
    pub alg: Algorithm,
    pub header: Vec<u8>,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// The fixed key set, a verifier over it allowing every algorithm, and valid tokens.
pub struct Fixture {
    pub keys: KeySet,
    pub verifier: Verifier,
    pub originals: Vec<Original>,
}

fn ed25519(seed: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).expect("ed25519 seed")
}

fn signed(header: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64::encode(header.as_bytes()), b64::encode(PAYLOAD.as_bytes()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64::encode(&signature))
}

/// The JWK Set of the fixture: two Ed25519 keys (one with kid `ed`, one without), the P-256
/// test key (kid `p256`, bound to ES256), the RSA test key (kid `rsa`) and a P-521 key (kid `p521`).
pub fn jwks_json() -> String {
    let rsa = RsaKeyPair::from_pkcs8(RSA_PKCS8).expect("rsa test key");
    let rsa_public: ring::rsa::PublicKeyComponents<Vec<u8>> = rsa.public().into();
    // The P-256 test key's public point, from its SPKI (the last 65 bytes: 0x04 || x || y).
    let der = pem_body(P256_SPKI_PEM);
    let point = &der[der.len() - 65..];
    let p521 = pem_body(P521_SPKI_PEM);
    let p521 = &p521[p521.len() - 133..];
    json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64::encode(ed25519(1).public_key().as_ref())},
        {"kty": "OKP", "crv": "Ed25519", "x": b64::encode(ed25519(2).public_key().as_ref())},
        {"kty": "EC", "crv": "P-256", "kid": "p256", "alg": "ES256", "use": "sig",
         "x": b64::encode(&point[1..33]), "y": b64::encode(&point[33..])},
        {"kty": "RSA", "kid": "rsa", "n": b64::encode(&rsa_public.n), "e": b64::encode(&rsa_public.e)},
        {"kty": "EC", "crv": "P-521", "kid": "p521", "x": b64::encode(&p521[1..67]), "y": b64::encode(&p521[67..])},
    ]})
    .to_string()
}

fn pem_body(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("pem base64")
}

/// The fixture, built once per process.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys = KeySet::from_jwks_json(jwks_json().as_bytes()).expect("fixture key set");
        assert_eq!(keys.len(), 5, "every fixture key loads");
        let verifier = Verifier::new(keys.clone(), AlgorithmSet::ALL);
        let rsa = RsaKeyPair::from_pkcs8(RSA_PKCS8).expect("rsa test key");
        let rng = ring::rand::SystemRandom::new();
        let rs256 = |msg: &[u8]| {
            let mut signature = vec![0; rsa.public().modulus_len()];
            rsa.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut signature).expect("rsa signature");
            signature
        };
        let tokens = [
            (
                Algorithm::EdDSA,
                signed(r#"{"alg":"EdDSA","kid":"ed","typ":"JWT"}"#, |m| ed25519(1).sign(m).as_ref().to_vec()),
            ),
            (Algorithm::EdDSA, signed(r#"{"alg":"EdDSA"}"#, |m| ed25519(2).sign(m).as_ref().to_vec())),
            (Algorithm::ES256, ES256_TOKENS[0].to_string()),
            (Algorithm::ES256, ES256_TOKENS[1].to_string()),
            (Algorithm::RS256, signed(r#"{"alg":"RS256","kid":"rsa","cty":"json"}"#, rs256)),
        ];
        let originals = tokens
            .into_iter()
            .map(|(alg, token)| {
                let verified =
                    verifier.verify(token.as_bytes()).unwrap_or_else(|e| panic!("fixture token {token}: {e}"));
                assert_eq!(verified.header.alg, alg);
                let parts: Vec<Vec<u8>> =
                    token.split('.').map(|p| b64::decode(p.as_bytes()).expect("fixture base64")).collect();
                Original {
                    token,
                    alg,
                    header: parts[0].clone(),
                    payload: parts[1].clone(),
                    signature: parts[2].clone(),
                }
            })
            .collect();
        Fixture { keys, verifier, originals }
    })
}

/// Lenient base64 decoding (either alphabet, padded or not, trailing bits allowed), for
/// mutations that work on decoded bytes.
pub fn decode_lenient(text: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let url = GeneralPurpose::new(&base64::alphabet::URL_SAFE, config);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    url.decode(text).ok().or_else(|| standard.decode(text).ok())
}

/// Encodes with one of the four common base64 flavours: `standard` picks `+/` over `-_`.
pub fn encode_flavour(bytes: &[u8], padding: bool, standard: bool) -> String {
    match (padding, standard) {
        (false, false) => URL_SAFE_NO_PAD.encode(bytes),
        (true, false) => URL_SAFE.encode(bytes),
        (false, true) => STANDARD_NO_PAD.encode(bytes),
        (true, true) => STANDARD.encode(bytes),
    }
}

/// What the signature core promises of every message: no control characters (untrusted text is
/// escaped) and a length bounded whatever the input's size. The bound is loose on purpose: a
/// snippet shows up to 32 characters of input, and one escaped character takes up to 10 bytes
/// (`\u{10ffff}`), so one snippet alone may take 323 bytes.
pub fn check_message(message: &str, max_len: usize) {
    assert!(!message.is_empty(), "empty error message");
    assert!(message.chars().all(|c| !c.is_control()), "control character in error message: {message:?}");
    assert!(message.len() <= max_len, "error message longer than {max_len} bytes: {message:?}");
}

/// [`check_message`] for token errors.
pub fn check_jose_error(error: &JoseError) {
    assert!(!error.code().is_empty());
    check_message(&error.to_string(), 1024);
}
