//! The attack catalogue: one named test per known JWT/JWS attack.

mod common;

use claimgate_jose::{
    Algorithm, AlgorithmSet, JoseError, KeySet, Limits, Verifier, b64, check_payload_json, decode_unverified,
};
use common::{kid_for, signer, verifier_all};
use ring::hmac;
use serde_json::json;

fn b64j(v: &serde_json::Value) -> String {
    b64::encode(v.to_string().as_bytes())
}

fn code(v: &Verifier, token: &str) -> &'static str {
    match v.verify(token.as_bytes()) {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn alg_none_in_any_casing_is_refused() {
    let v = verifier_all();
    let payload = b64::encode(br#"{"sub":"admin"}"#);
    for alg in ["none", "None", "NONE", "nOnE"] {
        for kid in [None, Some("rsa")] {
            let mut header = json!({ "alg": alg });
            if let Some(kid) = kid {
                header["kid"] = json!(kid);
            }
            for sig in ["", "AAAA"] {
                let token = format!("{}.{payload}.{sig}", b64j(&header));
                let err = v.verify(token.as_bytes()).unwrap_err();
                assert_eq!(err.code(), "alg_none", "{alg} {sig:?}");
                assert_eq!(err.to_string(), "the `none` algorithm is refused: tokens must be signed");
            }
        }
    }
}

#[test]
fn rs256_public_key_used_as_hs256_secret() {
    // The classic key confusion: sign HS256 with the bytes of the RSA public
    // key (PEM, DER, or JWK text), hoping the verifier feeds "the key" to HMAC.
    let v = verifier_all();
    let rsa = signer(Algorithm::RS256);
    let jwk = rsa.public_jwk(Some("rsa")).to_string();
    let pem = include_str!("keys/rsa2048.spki.pem");
    for secret in [jwk.as_bytes(), pem.as_bytes(), &rsa.public_bytes()[..]] {
        for alg in ["HS256", "HS384", "HS512"] {
            let input = format!("{}.{}", b64j(&json!({"alg": alg, "kid": "rsa"})), b64::encode(br#"{"sub":"admin"}"#));
            let key_alg = match alg {
                "HS256" => hmac::HMAC_SHA256,
                "HS384" => hmac::HMAC_SHA384,
                _ => hmac::HMAC_SHA512,
            };
            let tag = hmac::sign(&hmac::Key::new(key_alg, secret), input.as_bytes());
            let token = format!("{input}.{}", b64::encode(tag.as_ref()));
            assert_eq!(code(&v, &token), "alg_symmetric", "{alg}");
        }
    }
}

#[test]
fn embedded_jwk_header_with_attackers_key() {
    let v = verifier_all();
    // The attacker's own P-256 key (the ES384 signer is a different key
    // type, so generate a fresh ES256 pair).
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let attacker = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    use ring::signature::KeyPair;
    let point = attacker.public_key().as_ref();
    let attacker_jwk = json!({
        "kty": "EC", "crv": "P-256",
        "x": b64::encode(&point[1..33]), "y": b64::encode(&point[33..]),
    });
    for kid in [None, Some("p256"), Some("attacker")] {
        let mut header = json!({ "alg": "ES256", "jwk": attacker_jwk });
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        let input = format!("{}.{}", b64j(&header), b64::encode(br#"{"sub":"admin"}"#));
        let sig = attacker.sign(&rng, input.as_bytes()).unwrap();
        let token = format!("{input}.{}", b64::encode(sig.as_ref()));
        let expected = if kid == Some("attacker") { "no_matching_key" } else { "bad_signature" };
        assert_eq!(code(&v, &token), expected, "kid {kid:?}");
    }
}

#[test]
fn jku_and_x5u_pointing_elsewhere_are_never_used() {
    let v = verifier_all();
    let es = signer(Algorithm::ES256);
    for (member, url) in [
        ("jku", "https://attacker.example/jwks.json"),
        ("x5u", "https://attacker.example/cert.pem"),
        ("x5c", "MIIBattacker"),
    ] {
        // Signed by the configured key: verifies, and the URL was not needed.
        let header = json!({ "alg": "ES256", member: url }).to_string();
        let ok = v.verify(es.token_with_header(&header, b"{}").as_bytes()).unwrap();
        assert_eq!(ok.key.kid.as_deref(), Some("p256"));
        // Signed by anyone else: a forged signature of the right length.
        let input = format!("{}.{}", b64::encode(header.as_bytes()), b64::encode(b"{}"));
        let forged = format!("{input}.{}", b64::encode(&[7u8; 64]));
        assert_eq!(code(&v, &forged), "bad_signature", "{member}");
    }
}

#[test]
fn kid_with_path_traversal_or_sql_is_only_a_map_lookup() {
    let v = verifier_all();
    let es = signer(Algorithm::ES256);
    for kid in [
        "../../../../../../dev/null",
        "/etc/passwd",
        "' OR '1'='1",
        "p256' UNION SELECT key FROM keys--",
        "p256\u{0}",
        "P256",
        " p256",
        "",
        "|cat /etc/shadow",
        "$(reboot)",
    ] {
        let token = es.token(Some(kid), b"{}");
        let err = v.verify(token.as_bytes()).unwrap_err();
        assert_eq!(err.code(), "no_matching_key", "{kid:?}");
        let msg = err.to_string();
        assert!(!msg.contains('\u{0}'), "{msg:?}");
    }
    // A long hostile kid is echoed only as a short escaped prefix.
    let kid = format!("\u{1b}[2J{}", "x".repeat(500));
    let err = v.verify(es.token(Some(&kid), b"{}").as_bytes()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.len() < 100, "{msg}");
    assert!(msg.contains("\\u{1b}[2J"), "{msg}");
    assert!(!msg.contains('\u{1b}'));
}

/// P-256, P-384 and P-521 group orders, big-endian, as wide as a signature's r and s.
const N_P256: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const N_P384: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
const N_P521: &str = "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn ecdsa_psychic_signatures_cve_2022_21449() {
    let v = verifier_all();
    for (alg, n) in [(Algorithm::ES256, N_P256), (Algorithm::ES384, N_P384), (Algorithm::ES512, N_P521)] {
        let s = signer(alg);
        let size = n.len() / 2;
        let n = hex(n);
        let zero = vec![0u8; size];
        let mut one = vec![0u8; size];
        one[size - 1] = 1;
        let header = json!({ "alg": alg.name(), "kid": kid_for(alg) });
        let input = format!("{}.{}", b64j(&header), b64::encode(br#"{"sub":"admin"}"#));
        let genuine = s.sign(input.as_bytes());
        let (gr, gs) = genuine.split_at(size);
        let cases: [(&str, &[u8], &[u8]); 7] = [
            ("r = s = 0", &zero, &zero),
            ("r = 0", &zero, gs),
            ("s = 0", gr, &zero),
            ("r = s = n", &n, &n),
            ("r = n", &n, gs),
            ("s = n", gr, &n),
            ("r = s = 1", &one, &one),
        ];
        for (name, r, sv) in cases {
            let sig = [r, sv].concat();
            let token = format!("{input}.{}", b64::encode(&sig));
            assert_eq!(code(&v, &token), "bad_signature", "{} {name}", alg.name());
        }
        // And the genuine signature verifies, so the cases above are real.
        let token = format!("{input}.{}", b64::encode(&genuine));
        assert_eq!(code(&v, &token), "ok");
    }
}

/// Big-endian a + b (or a - b) over equal widths; the result keeps the width (the tests keep
/// it from overflowing or going below zero).
fn add_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut carry = 0u16;
    for i in (0..a.len()).rev() {
        let t = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = t as u8;
        carry = t >> 8;
    }
    assert_eq!(carry, 0, "overflow");
    out
}

fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        out[i] = (d + 256 * borrow) as u8;
    }
    assert_eq!(borrow, 0, "underflow");
    out
}

/// ES512's r and s are 66 bytes, but the order n is 521 bits: there is room for 2^528 - 1, so
/// r + n and s + n always fit in a well-formed 132-byte signature. An implementation that
/// reduced s mod n instead of refusing it would accept (r, s + n) for every genuine (r, s);
/// the range check (r and s in [1, n-1], in p521's `Signature::from_slice`) refuses it. The
/// equivalent in-range signature (r, n - s) verifies (ECDSA is malleable, as for the other
/// curves), which proves that the refusals below are the range check and not the arithmetic.
#[test]
fn es512_r_and_s_must_lie_in_one_to_n_minus_one() {
    let v = verifier_all();
    let s = signer(Algorithm::ES512);
    let n = hex(N_P521);
    let input = format!("{}.{}", b64j(&json!({ "alg": "ES512", "kid": "p521" })), b64::encode(br#"{"sub":"a"}"#));
    let genuine = s.sign(input.as_bytes());
    assert_eq!(genuine.len(), 132);
    let (r, sv) = genuine.split_at(66);
    let token = |r: &[u8], sv: &[u8]| format!("{input}.{}", b64::encode(&[r, sv].concat()));
    assert_eq!(code(&v, &token(r, sv)), "ok");
    assert_eq!(code(&v, &token(r, &sub_be(&n, sv))), "ok", "(r, n - s) is the same signature");

    let zero = [0u8; 66];
    let mut one = [0u8; 66];
    one[65] = 1;
    let n_minus_1 = sub_be(&n, &one);
    let all_ones = [0xffu8; 66];
    let mut top_bit = [0u8; 66];
    top_bit[0] = 0x80;
    let cases: [(&str, Vec<u8>, Vec<u8>); 13] = [
        ("r = 0", zero.to_vec(), sv.to_vec()),
        ("s = 0", r.to_vec(), zero.to_vec()),
        ("r = s = 0", zero.to_vec(), zero.to_vec()),
        ("r = n", n.clone(), sv.to_vec()),
        ("s = n", r.to_vec(), n.clone()),
        ("r = s = n", n.clone(), n.clone()),
        ("r + n", add_be(r, &n), sv.to_vec()),
        ("s + n", r.to_vec(), add_be(sv, &n)),
        ("n - s + n", r.to_vec(), add_be(&sub_be(&n, sv), &n)),
        ("r = 2^528 - 1", all_ones.to_vec(), sv.to_vec()),
        ("s = 2^527", r.to_vec(), top_bit.to_vec()),
        ("r = n - 1", n_minus_1.clone(), sv.to_vec()),
        ("s = n - 1", r.to_vec(), n_minus_1.clone()),
    ];
    for (name, r, sv) in cases {
        assert_eq!((r.len(), sv.len()), (66, 66), "{name}");
        assert_eq!(code(&v, &token(&r, &sv)), "bad_signature", "{name}");
    }
    // The range check itself, on the crate that runs it: zero and n and above are refused,
    // n - 1 is not.
    let parses = |r: &[u8], sv: &[u8]| p521::ecdsa::Signature::from_slice(&[r, sv].concat()).is_ok();
    assert!(parses(r, sv));
    assert!(parses(&n_minus_1, &n_minus_1));
    assert!(parses(&one, &one));
    for (r, sv) in [
        (&zero[..], sv),
        (r, &zero[..]),
        (&n[..], sv),
        (r, &n[..]),
        (&add_be(r, &n)[..], sv),
        (r, &add_be(sv, &n)[..]),
        (&all_ones[..], sv),
    ] {
        assert!(!parses(r, sv));
    }
}

/// DER-encodes a raw r||s signature the way many libraries emit ECDSA.
fn der_signature(raw: &[u8]) -> Vec<u8> {
    fn int(bytes: &[u8]) -> Vec<u8> {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len() - 1);
        let mut v = bytes[start..].to_vec();
        if v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let body = [int(r), int(s)].concat();
    let mut out = vec![0x30];
    if body.len() >= 0x80 {
        out.push(0x81);
    }
    out.push(body.len() as u8);
    out.extend(body);
    out
}

#[test]
fn der_encoded_es256_signature_is_refused_before_ring() {
    let v = verifier_all();
    for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::ES512] {
        let s = signer(alg);
        let header = json!({ "alg": alg.name() });
        let input = format!("{}.{}", b64j(&header), b64::encode(b"{}"));
        let der = der_signature(&s.sign(input.as_bytes()));
        let token = format!("{input}.{}", b64::encode(&der));
        let err = v.verify(token.as_bytes()).unwrap_err();
        assert!(matches!(err, JoseError::SignatureLength { actual, .. } if actual == der.len()), "{err:?}");
        assert_eq!(err.code(), "bad_signature");
    }
    // Zero-padded and truncated raw signatures are refused the same way.
    let s = signer(Algorithm::ES256);
    let good = s.token(None, b"{}");
    let (input, sig) = good.rsplit_once('.').unwrap();
    let mut raw = b64::decode(sig.as_bytes()).unwrap();
    raw.push(0);
    let padded = format!("{input}.{}", b64::encode(&raw));
    assert!(matches!(v.verify(padded.as_bytes()), Err(JoseError::SignatureLength { expected: 64, actual: 65, .. })));
    // ES512: 132 bytes exactly. One byte more or less (a zero byte added, a leading zero
    // dropped) is refused before any key is chosen, with the length in the error.
    let good = signer(Algorithm::ES512).token(Some("p521"), b"{}");
    assert_eq!(code(&v, &good), "ok");
    let (input, sig) = good.rsplit_once('.').unwrap();
    let raw = b64::decode(sig.as_bytes()).unwrap();
    for (bytes, actual) in
        [([&raw[..], &[0]].concat(), 133), ([&[0u8][..], &raw].concat(), 133), (raw[1..].to_vec(), 131)]
    {
        let token = format!("{input}.{}", b64::encode(&bytes));
        let err = v.verify(token.as_bytes()).unwrap_err();
        assert_eq!(err, JoseError::SignatureLength { alg: "ES512", expected: 132, actual });
        assert_eq!(err.to_string(), format!("signature for ES512 must be 132 bytes, got {actual}"));
        assert_eq!(err.code(), "bad_signature");
    }
    // A 64- or 96-byte signature under an ES512 header (an ES256/ES384 signature relabelled).
    for alg in [Algorithm::ES256, Algorithm::ES384] {
        let sig = signer(alg).sign(input.as_bytes());
        let token = format!("{input}.{}", b64::encode(&sig));
        assert!(matches!(v.verify(token.as_bytes()), Err(JoseError::SignatureLength { expected: 132, .. })), "{alg}");
    }
}

#[test]
fn duplicate_alg_in_header_is_refused() {
    let v = verifier_all();
    let s = signer(Algorithm::ES256);
    for header in [
        r#"{"alg":"ES256","alg":"none"}"#,
        r#"{"alg":"none","alg":"ES256"}"#,
        r#"{"alg":"ES256","alg":"ES256"}"#,
        r#"{"alg":"ES256","\u0061lg":"HS256"}"#,
        r#"{"alg":"ES256","kid":"p256","kid":"rsa"}"#,
        r#"{"alg":"ES256","x":{"y":1,"y":2}}"#,
    ] {
        // Genuinely signed by the configured key: only the duplicate is wrong.
        let token = s.token_with_header(header, b"{}");
        let err = v.verify(token.as_bytes()).unwrap_err();
        assert_eq!(err.code(), "malformed", "{header}");
        assert!(err.to_string().contains("duplicate json member"), "{err}");
    }
}

/// The core returns the payload as signed bytes (a JWS may sign anything);
/// `check_payload_json` is the claims gate the evaluator must use, and it
/// refuses duplicate claims at any depth.
#[test]
fn duplicate_claims_in_payload_are_refused_by_check_payload_json() {
    let v = verifier_all();
    let s = signer(Algorithm::EdDSA);
    let limits = Limits::default();
    for payload in [
        r#"{"sub":"user","sub":"admin"}"#,
        r#"{"sub":"user","\u0073ub":"admin"}"#,
        r#"{"groups":{"admin":false,"admin":true}}"#,
    ] {
        let verified = v.verify(s.token(None, payload.as_bytes()).as_bytes()).unwrap();
        let err = check_payload_json(&verified.payload, &limits).unwrap_err();
        assert_eq!(err.code(), "bad_payload", "{payload}");
    }
    // Too deep, not an object, not JSON.
    let deep = format!("{}1{}", r#"{"a":"#.repeat(40), "}".repeat(40));
    for payload in [deep.as_str(), "[]", "\"sub\"", "not json"] {
        let verified = v.verify(s.token(None, payload.as_bytes()).as_bytes()).unwrap();
        assert_eq!(check_payload_json(&verified.payload, &limits).unwrap_err().code(), "bad_payload");
    }
    let ok = v.verify(s.token(None, br#"{"sub":"a"}"#).as_bytes()).unwrap();
    assert_eq!(check_payload_json(&ok.payload, &limits).unwrap()["sub"], "a");
}

#[test]
fn crit_with_unknown_name_is_refused() {
    let v = verifier_all();
    let s = signer(Algorithm::ES256);
    for header in [
        r#"{"alg":"ES256","crit":["exp"],"exp":1}"#,
        r#"{"alg":"ES256","crit":["b64"],"b64":true}"#,
        r#"{"alg":"ES256","crit":["http://example.com/x"]}"#,
    ] {
        let token = s.token_with_header(header, b"{}");
        assert_eq!(code(&v, &token), "unsupported", "{header}");
    }
    for header in [
        r#"{"alg":"ES256","crit":[]}"#,
        r#"{"alg":"ES256","crit":"exp"}"#,
        r#"{"alg":"ES256","crit":[null]}"#,
        r#"{"alg":"ES256","crit":{}}"#,
    ] {
        let token = s.token_with_header(header, b"{}");
        assert_eq!(code(&v, &token), "malformed", "{header}");
    }
}

#[test]
fn a_nested_token_is_refused_not_read_as_claims() {
    let v = verifier_all();
    let s = signer(Algorithm::ES256);
    // RFC 7519 5.2: the payload is another token. Its claims would be the inner token's, and
    // the outer payload is not claims, even when it parses as them.
    for cty in ["JWT", "jwt", "application/jwt", "Application/JWT"] {
        let header = format!(r#"{{"alg":"ES256","kid":"p256","cty":"{cty}"}}"#);
        let token = s.token_with_header(&header, br#"{"sub":"admin"}"#);
        let err = v.verify(token.as_bytes()).unwrap_err();
        assert_eq!(err.code(), "unsupported", "{header}");
        assert!(err.to_string().contains("nested"), "{err}");
    }
    // Other content types are the issuer's business: read as before.
    for cty in ["json", "application/json", "JWTX"] {
        let header = format!(r#"{{"alg":"ES256","kid":"p256","cty":"{cty}"}}"#);
        let token = s.token_with_header(&header, br#"{"sub":"a"}"#);
        assert_eq!(v.verify(token.as_bytes()).unwrap().header.cty.as_deref(), Some(cty));
    }
}

#[test]
fn b64_false_is_refused() {
    let v = verifier_all();
    let s = signer(Algorithm::ES256);
    // RFC 7797: the signature covers the raw payload. Build it that way.
    let header = r#"{"alg":"ES256","b64":false,"crit":["b64"]}"#;
    let input = format!("{}.{}", b64::encode(header.as_bytes()), "$.02");
    let sig = s.sign(input.as_bytes());
    let token = format!("{}..{}", b64::encode(header.as_bytes()), b64::encode(&sig));
    assert_eq!(code(&v, &token), "unsupported");
    // Without crit (itself non-conformant), still refused.
    let token = s.token_with_header(r#"{"alg":"ES256","b64":false}"#, b"{}");
    let err = v.verify(token.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "unsupported");
    assert!(err.to_string().contains("b64"), "{err}");
}

#[test]
fn one_mib_token_is_refused_before_decoding() {
    let v = verifier_all();
    let s = signer(Algorithm::ES256);
    let big_payload = vec![b'a'; 1 << 20];
    let token = s.token(Some("p256"), &big_payload);
    assert!(token.len() > 1 << 20);
    let err = v.verify(token.as_bytes()).unwrap_err();
    assert_eq!(err, JoseError::TooLarge { what: "token", len: token.len(), max: 16 * 1024 });
    // Garbage of the same size: still too_large, proving the size check
    // comes before any parsing.
    let junk = "!".repeat(1 << 20);
    assert_eq!(code(&v, &junk), "too_large");
    // A caller may raise the limit; then it verifies.
    let roomy = v.clone().with_limits(Limits { max_token_bytes: 2 << 20, ..Limits::default() });
    assert!(roomy.verify(token.as_bytes()).is_ok());
}

#[test]
fn four_or_six_segments_are_malformed() {
    let v = verifier_all();
    let good = signer(Algorithm::ES256).token(None, b"{}");
    assert_eq!(code(&v, &good), "ok");
    let four = format!("{good}.AAAA");
    let six = format!("{good}.AAAA.AAAA.AAAA");
    let two = good.rsplit_once('.').unwrap().0.to_owned();
    for token in [&four, &six, &two, &format!("{good}."), &".".repeat(3)] {
        let err = v.verify(token.as_bytes()).unwrap_err();
        assert_eq!(err.code(), "malformed", "{token}");
    }
    assert!(v.verify(four.as_bytes()).unwrap_err().to_string().contains("found 4"));
    assert!(v.verify(six.as_bytes()).unwrap_err().to_string().contains("found 6"));
}

#[test]
fn empty_signature_is_refused() {
    let v = verifier_all();
    for alg in Algorithm::ALL {
        let good = signer(alg).token(None, b"{}");
        let (input, _) = good.rsplit_once('.').unwrap();
        let token = format!("{input}.");
        let err = v.verify(token.as_bytes()).unwrap_err();
        assert!(matches!(err, JoseError::SignatureLength { actual: 0, .. }), "{}: {err:?}", alg.name());
    }
}

#[test]
fn jwe_with_five_segments_is_unsupported() {
    let v = verifier_all();
    // RFC 7516 A.3 shape: header.encrypted_key.iv.ciphertext.tag
    let jwe = "eyJhbGciOiJBMTI4S1ciLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0.6KB707dM9YTIgHtLvtgWQ8mKwboJW3of9locizkDTHzBC2IlrT1oOQ.AxY8DCtDaGlsbGljb3RoZQ.KDlTtXchhZTGufMYmOYGS4HffxPSUrfmqCHXaI9wOGY.U0m_YmjN04DJvceFICbCVQ";
    let err = v.verify(jwe.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "unsupported");
    assert!(err.to_string().contains("jwe"), "{err}");
    assert_eq!(decode_unverified(jwe, &Limits::default()).unwrap_err().code(), "unsupported");
}

#[test]
fn json_serialisation_is_unsupported() {
    let v = verifier_all();
    let flat = r#"{"payload":"e30","protected":"eyJhbGciOiJFUzI1NiJ9","signature":"AAAA"}"#;
    assert_eq!(code(&v, flat), "unsupported");
    assert_eq!(code(&v, &format!("\n  {flat}")), "unsupported");
}

#[test]
fn key_bound_to_another_algorithm_is_unusable() {
    // An RSA key that says "alg": "PS256" must not verify RS256, even with a
    // genuine RS256 signature from the same key pair.
    let rs = signer(Algorithm::RS256);
    let mut jwk = rs.public_jwk(Some("rsa"));
    jwk["alg"] = json!("PS256");
    let v = Verifier::new(KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap(), AlgorithmSet::ALL);
    assert_eq!(code(&v, &rs.token(Some("rsa"), b"{}")), "key_unusable");
    assert_eq!(code(&v, &rs.token(None, b"{}")), "no_matching_key");
    let ps = signer(Algorithm::PS256);
    assert_eq!(code(&v, &ps.token(Some("rsa"), b"{}")), "ok");
}

#[test]
fn token_alg_must_fit_the_key_type() {
    // ES256 header with the kid of the RSA key: unusable, never "tried".
    let v = verifier_all();
    let es = signer(Algorithm::ES256);
    let token = es.token(Some("rsa"), b"{}");
    let err = v.verify(token.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "key_unusable");
    assert_eq!(err.to_string(), "key unusable: the key is an rsa key and cannot verify ES256");
}

/// Each curve is bound to its own algorithm: a P-521 key verifies ES512 only, and an ES256 or
/// ES384 key never verifies ES512, whichever way the token names (or does not name) the key.
#[test]
fn ec_curves_are_bound_to_their_algorithms() {
    let v = verifier_all();
    for (alg, kid, other_kid, describe) in [
        (Algorithm::ES512, "p521", "p256", "an ec p-256 key"),
        (Algorithm::ES512, "p521", "p384", "an ec p-384 key"),
        (Algorithm::ES256, "p256", "p521", "an ec p-521 key"),
        (Algorithm::ES384, "p384", "p521", "an ec p-521 key"),
        (Algorithm::ES512, "p521", "rsa", "an rsa key"),
        (Algorithm::ES512, "p521", "ed25519", "an ed25519 key"),
    ] {
        let s = signer(alg);
        assert_eq!(v.verify(s.token(Some(kid), b"{}").as_bytes()).unwrap().key.kid.as_deref(), Some(kid));
        let err = v.verify(s.token(Some(other_kid), b"{}").as_bytes()).unwrap_err();
        assert_eq!(err.code(), "key_unusable", "{alg} under {other_kid}");
        assert_eq!(err.to_string(), format!("key unusable: the key is {describe} and cannot verify {alg}"));
    }
    // Without a kid, only the P-521 key is a candidate for ES512.
    assert_eq!(
        v.verify(signer(Algorithm::ES512).token(None, b"{}").as_bytes()).unwrap().key.kid.as_deref(),
        Some("p521")
    );

    // A set holding only P-256 and P-384 keys has nothing for ES512, and a P-521-only set
    // nothing for ES256/ES384, even with kid-less keys (candidates for any kid).
    let ec = json!({ "keys": [signer(Algorithm::ES256).public_jwk(None), signer(Algorithm::ES384).public_jwk(None)] });
    let ec = Verifier::new(KeySet::from_jwks_json(ec.to_string().as_bytes()).unwrap(), AlgorithmSet::ALL);
    for kid in [None, Some("x")] {
        assert_eq!(code(&ec, &signer(Algorithm::ES512).token(kid, b"{}")), "no_matching_key");
    }
    let p521 = json!({ "keys": [signer(Algorithm::ES512).public_jwk(None)] });
    let p521 = Verifier::new(KeySet::from_jwks_json(p521.to_string().as_bytes()).unwrap(), AlgorithmSet::ALL);
    assert_eq!(code(&p521, &signer(Algorithm::ES512).token(Some("x"), b"{}")), "ok");
    for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA, Algorithm::RS256] {
        assert_eq!(code(&p521, &signer(alg).token(None, b"{}")), "no_matching_key", "{alg}");
    }
}

/// A JWK's `alg` binds the key: a P-521 JWK that names ES512 verifies it; one that names another
/// algorithm (or the unregistered "ES521" of RFC 7520's draft keys) is skipped with the reason,
/// and a P-256 or P-384 JWK that names ES512 is skipped too.
#[test]
fn a_jwk_naming_another_algorithm_is_skipped() {
    let p521 = signer(Algorithm::ES512);
    let mut bound = p521.public_jwk(Some("p521"));
    bound["alg"] = json!("ES512");
    let v = Verifier::new(KeySet::from_jwk_json(bound.to_string().as_bytes()).unwrap(), AlgorithmSet::ALL);
    assert_eq!(code(&v, &p521.token(Some("p521"), b"{}")), "ok");

    let mut keys = Vec::new();
    let mut expected = Vec::new();
    for (alg, name, reason) in [
        (Algorithm::ES512, "ES256", "key algorithm ES256 does not fit an ec p-521 key"),
        (Algorithm::ES512, "ES384", "key algorithm ES384 does not fit an ec p-521 key"),
        (Algorithm::ES512, "RS512", "key algorithm RS512 does not fit an ec p-521 key"),
        (Algorithm::ES512, "ES521", "key algorithm \"ES521\" is not supported"),
        (Algorithm::ES512, "HS512", "key algorithm \"HS512\" is not supported"),
        (Algorithm::ES256, "ES512", "key algorithm ES512 does not fit an ec p-256 key"),
        (Algorithm::ES384, "ES512", "key algorithm ES512 does not fit an ec p-384 key"),
    ] {
        let kid = format!("{}-{name}", kid_for(alg));
        let mut jwk = signer(alg).public_jwk(Some(&kid));
        jwk["alg"] = json!(name);
        keys.push(jwk);
        expected.push(format!("key {} (kid \"{kid}\"): {reason}", expected.len()));
    }
    keys.push(bound);
    let set = KeySet::from_jwks_json(json!({ "keys": keys }).to_string().as_bytes()).unwrap();
    let skipped: Vec<String> = set.skipped().iter().map(ToString::to_string).collect();
    assert_eq!(skipped, expected);
    assert_eq!(set.len(), 1);
    let v = Verifier::new(set, AlgorithmSet::ALL);
    // A token naming a skipped key is told why; the bound key verifies its own tokens.
    let err = v.verify(p521.token(Some("p521-ES256"), b"{}").as_bytes()).unwrap_err();
    assert_eq!(err.code(), "key_unusable");
    assert!(err.to_string().contains("does not fit an ec p-521 key"), "{err}");
    assert_eq!(code(&v, &p521.token(Some("p521"), b"{}")), "ok");
}

/// ES512 is one algorithm of the set like the others: allowed by default, refused when a
/// provider's set leaves it out (before any key is looked at), and `none`/HS512 stay refused
/// as attacks rather than unknown names.
#[test]
fn es512_follows_the_provider_algorithm_set() {
    let keys = verifier_all().keys().clone();
    assert!(AlgorithmSet::default().contains(Algorithm::ES512));
    let token = signer(Algorithm::ES512).token(Some("p521"), b"{}");
    assert_eq!(code(&Verifier::new(keys.clone(), AlgorithmSet::default()), &token), "ok");
    let mut without = AlgorithmSet::ALL;
    without.remove(Algorithm::ES512);
    let v = Verifier::new(keys.clone(), without);
    let err = v.verify(token.as_bytes()).unwrap_err();
    assert_eq!(err, JoseError::AlgorithmNotAllowed(Algorithm::ES512));
    assert_eq!(err.to_string(), "algorithm ES512 is not allowed for this provider");
    assert_eq!(err.code(), "algorithm_not_allowed");
    let only: AlgorithmSet = [Algorithm::ES512].into_iter().collect();
    assert_eq!(code(&Verifier::new(keys, only), &token), "ok");
    for (alg, expected) in [("HS512", "alg_symmetric"), ("none", "alg_none"), ("es512", "alg_unknown")] {
        let header = json!({ "alg": alg, "kid": "p521" }).to_string();
        let forged = signer(Algorithm::ES512).token_with_header(&header, b"{}");
        assert_eq!(code(&verifier_all(), &forged), expected, "{alg}");
    }
}

#[test]
fn algorithm_outside_the_provider_set_is_not_allowed() {
    let keys = verifier_all().keys().clone();
    let v = Verifier::new(keys, [Algorithm::ES256].into_iter().collect());
    assert_eq!(code(&v, &signer(Algorithm::ES256).token(None, b"{}")), "ok");
    for alg in Algorithm::ALL.into_iter().filter(|a| *a != Algorithm::ES256) {
        let token = signer(alg).token(None, b"{}");
        assert_eq!(code(&v, &token), "algorithm_not_allowed", "{}", alg.name());
    }
}

#[test]
fn lenient_base64_variants_are_refused() {
    let v = verifier_all();
    let good = signer(Algorithm::EdDSA).token(None, br#"{"sub":"a"}"#);
    let parts: Vec<&str> = good.split('.').collect();
    for i in 0..3 {
        // Padding, standard alphabet, whitespace.
        let mut padded: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
        padded[i].push('=');
        assert_eq!(code(&v, &padded.join(".")), "malformed", "pad {i}");
        let mut spaced: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
        spaced[i].insert(2, ' ');
        assert_eq!(code(&v, &spaced.join(".")), "malformed", "space {i}");
        let std: Vec<String> = parts
            .iter()
            .enumerate()
            .map(|(j, p)| if j == i { p.replace('-', "+").replace('_', "/") } else { p.to_string() })
            .collect();
        if std[i] != parts[i] {
            assert_eq!(code(&v, &std.join(".")), "malformed", "std {i}");
        }
    }
}
