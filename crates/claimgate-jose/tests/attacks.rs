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

/// P-256 and P-384 group orders, big-endian.
const N_P256: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const N_P384: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn ecdsa_psychic_signatures_cve_2022_21449() {
    let v = verifier_all();
    for (alg, n) in [(Algorithm::ES256, N_P256), (Algorithm::ES384, N_P384)] {
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
    for alg in [Algorithm::ES256, Algorithm::ES384] {
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
