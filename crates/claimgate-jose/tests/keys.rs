//! Key loading: PEM (SPKI, PKCS#1, X.509), JWK validation, and the
//! load-time point checks cross-checked against independent implementations.

mod common;

use claimgate_jose::{Algorithm, AlgorithmSet, KeyError, KeyKind, KeyLimits, KeySet, Verifier, b64};
use common::signer;
use proptest::prelude::*;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;

const RSA_SPKI: &str = include_str!("keys/rsa2048.spki.pem");
const RSA_PKCS1: &str = include_str!("keys/rsa2048.pkcs1.pem");
const RSA_CERT: &str = include_str!("keys/rsa2048.cert.pem");
const RSA_1024: &str = include_str!("keys/rsa1024.spki.pem");
const P256_SPKI: &str = include_str!("keys/p256.spki.pem");
const P256_CERT: &str = include_str!("keys/p256.cert.pem");
const P256_PKCS8: &[u8] = include_bytes!("keys/p256.pk8");
const P384_SPKI: &str = include_str!("keys/p384.spki.pem");
const P521_SPKI: &str = include_str!("keys/p521.spki.pem");
const P521_CERT: &str = include_str!("keys/p521.cert.pem");
const ED25519_SPKI: &str = include_str!("keys/ed25519.spki.pem");

#[test]
fn rsa_pem_forms_verify_rs_and_ps_tokens() {
    for pem in [RSA_SPKI, RSA_PKCS1, RSA_CERT] {
        let keys = KeySet::from_pem(pem).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys.iter().next().unwrap().kind, KeyKind::Rsa { bits: 2048 });
        let v = Verifier::new(keys, AlgorithmSet::ALL);
        for alg in &Algorithm::ALL[..6] {
            let token = signer(*alg).token(None, b"{}");
            let verified = v.verify(token.as_bytes()).unwrap();
            assert_eq!(verified.key.index, 0);
            assert_eq!(verified.key.kid, None);
        }
    }
}

#[test]
fn ec_certificate_verifies_es256() {
    let rng = SystemRandom::new();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, P256_PKCS8, &rng).unwrap();
    let input = format!("{}.{}", b64::encode(br#"{"alg":"ES256"}"#), b64::encode(b"{}"));
    let sig = pair.sign(&rng, input.as_bytes()).unwrap();
    let token = format!("{input}.{}", b64::encode(sig.as_ref()));
    for pem in [P256_CERT, P256_SPKI] {
        let v = Verifier::new(KeySet::from_pem(pem).unwrap(), AlgorithmSet::ALL);
        v.verify(token.as_bytes()).unwrap();
    }
}

/// The P-521 test key (tests/keys/p521.pk8) as SPKI and as a self-signed certificate: both load
/// as P-521 keys and verify ES512 tokens signed with it, and nothing else.
#[test]
fn p521_pem_forms_verify_es512_only() {
    let key = common::p521_signing_key(common::P521_PKCS8);
    let input = format!("{}.{}", b64::encode(br#"{"alg":"ES512"}"#), b64::encode(b"{}"));
    let sig: p521::ecdsa::Signature = p521::ecdsa::signature::Signer::sign(&key, input.as_bytes());
    let token = format!("{input}.{}", b64::encode(&sig.to_bytes()));
    for pem in [P521_CERT, P521_SPKI] {
        let keys = KeySet::from_pem(pem).unwrap();
        assert_eq!(keys.iter().map(|k| k.kind).collect::<Vec<_>>(), [KeyKind::P521]);
        let v = Verifier::new(keys, AlgorithmSet::ALL);
        let verified = v.verify(token.as_bytes()).unwrap();
        assert_eq!((verified.header.alg, verified.key.index, verified.key.kid), (Algorithm::ES512, 0, None));
        // A kid is a hint: a kid-less PEM key is still the candidate.
        let with_kid = signer(Algorithm::ES512).token(Some("k"), b"{}");
        assert_eq!(v.verify(with_kid.as_bytes()).unwrap().key.index, 0);
        for alg in Algorithm::ALL.into_iter().filter(|a| *a != Algorithm::ES512) {
            let err = v.verify(signer(alg).token(None, b"{}").as_bytes()).unwrap_err();
            assert_eq!(err.code(), "no_matching_key", "{alg}");
        }
    }
    // The same key as a JWK: coordinates of exactly 66 bytes.
    let jwk = signer(Algorithm::ES512).public_jwk(None);
    assert_eq!(b64::decode(jwk["x"].as_str().unwrap().as_bytes()).unwrap().len(), 66);
    assert_eq!(b64::decode(jwk["y"].as_str().unwrap().as_bytes()).unwrap().len(), 66);
    let v = Verifier::new(KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap(), AlgorithmSet::ALL);
    v.verify(token.as_bytes()).unwrap();
}

/// SPKI under the secp521r1 OID with a point that is not on the curve, or compressed, or of the
/// wrong size: skipped with the reason, like the other curves.
#[test]
fn p521_spki_point_is_validated() {
    let body: String = P521_SPKI.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64_std_decode(&body);
    // SEQUENCE { SEQUENCE { ecPublicKey, secp521r1 }, BIT STRING { 00 04 x y } }: 25 bytes of
    // header, then the 133-byte point.
    assert_eq!(der.len(), 25 + 133);
    assert_eq!(&der[14..21], &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23]);
    assert_eq!(der[25], 4);
    let pem = |der: &[u8]| format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", base64_std(der));
    let mut off_curve = der.clone();
    off_curve[157] ^= 1;
    let err = KeySet::from_pem(&pem(&off_curve)).unwrap_err();
    assert_eq!(err.to_string(), "no usable key: key 0: ec point is not on p-521");
    let mut compressed = der.clone();
    compressed[25] = 2;
    let err = KeySet::from_pem(&pem(&compressed)).unwrap_err();
    assert_eq!(err.to_string(), "no usable key: key 0: compressed ec points are not supported");
    // The P-521 point under the P-384 OID: the wrong size for that curve.
    let p384_oid = [0x2b, 0x81, 0x04, 0x00, 0x22];
    let mut relabelled = der.clone();
    relabelled[16..21].copy_from_slice(&p384_oid);
    let err = KeySet::from_pem(&pem(&relabelled)).unwrap_err();
    assert_eq!(err.to_string(), "no usable key: key 0: ec point is not an uncompressed point of the right size");
}

#[test]
fn several_pem_blocks_with_skips() {
    let text = format!(
        "# provider keys\n{RSA_SPKI}\n{P521_SPKI}{P384_SPKI}some text\n{ED25519_SPKI}{RSA_1024}\
         -----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n{P256_CERT}"
    );
    let keys = KeySet::from_pem(&text).unwrap();
    let kinds: Vec<(usize, KeyKind)> = keys.iter().map(|k| (k.index, k.kind)).collect();
    assert_eq!(
        kinds,
        [
            (0, KeyKind::Rsa { bits: 2048 }),
            (1, KeyKind::P521),
            (2, KeyKind::P384),
            (3, KeyKind::Ed25519),
            (6, KeyKind::P256)
        ]
    );
    let skipped: Vec<String> = keys.skipped().iter().map(ToString::to_string).collect();
    assert_eq!(
        skipped,
        ["key 4: rsa modulus is 1024 bits, at least 2048 are required", "key 5: unsupported pem block \"X509 CRL\"",]
    );
}

#[test]
fn pem_refusals() {
    let err = KeySet::from_pem(RSA_1024).unwrap_err();
    assert_eq!(err.code(), "no_usable_keys");
    assert_eq!(err.to_string(), "no usable key: key 0: rsa modulus is 1024 bits, at least 2048 are required");
    let private = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
    assert_eq!(KeySet::from_pem(&format!("{RSA_SPKI}{private}")).unwrap_err(), KeyError::PrivateKey { index: 1 });
    let truncated = &RSA_SPKI[..RSA_SPKI.len() - 30];
    assert_eq!(KeySet::from_pem(truncated).unwrap_err().code(), "key_malformed");
    // Corrupt DER inside valid base64: skipped with a reason, not a panic.
    let corrupt = "-----BEGIN PUBLIC KEY-----\nMAMCAQA=\n-----END PUBLIC KEY-----\n";
    assert_eq!(KeySet::from_pem(corrupt).unwrap_err().code(), "no_usable_keys");
}

#[test]
fn key_from_any_format() {
    assert_eq!(KeySet::from_any(RSA_CERT.as_bytes()).unwrap().len(), 1);
    let jwk = signer(Algorithm::EdDSA).public_jwk(Some("k")).to_string();
    assert_eq!(KeySet::from_any(jwk.as_bytes()).unwrap().len(), 1);
    let set = json!({ "keys": [signer(Algorithm::EdDSA).public_jwk(Some("k"))] }).to_string();
    assert_eq!(KeySet::from_any(set.as_bytes()).unwrap().len(), 1);
}

#[test]
fn jwk_rsa_exponent_and_size_checks() {
    let (n, _) = signer(Algorithm::RS256).rsa_components().unwrap();
    let load = |n: &[u8], e: &[u8]| {
        let jwk = json!({"kty": "RSA", "n": b64::encode(n), "e": b64::encode(e)});
        KeySet::from_jwk_json(jwk.to_string().as_bytes()).map(|_| ())
    };
    assert!(load(&n, &[1, 0, 1]).is_ok());
    assert!(load(&[&[0u8][..], &n].concat(), &[0, 1, 0, 1]).is_ok());
    for (e, why) in
        [(&[1u8][..], "too small"), (&[0], "too small"), (&[], "too small"), (&[2], "too small"), (&[1, 0, 0], "odd")]
    {
        let err = load(&n, e).unwrap_err().to_string();
        assert!(err.contains(why), "{e:?}: {err}");
    }
    assert!(load(&n[..128], &[3]).unwrap_err().to_string().contains("1024 bits"));
    assert!(load(&[0xff; 1025], &[3]).unwrap_err().to_string().contains("at most 8192"));
}

/// Strict base64url applies to key members too.
#[test]
fn jwk_members_need_strict_base64url() {
    let mut jwk = signer(Algorithm::ES256).public_jwk(None);
    let x = jwk["x"].as_str().unwrap().to_owned();
    jwk["x"] = json!(format!("{x}="));
    let err = KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap_err();
    assert!(err.to_string().contains("\"x\" is not strict base64url"), "{err}");
}

fn ec_jwk_loads(crv: &str, x: &[u8], y: &[u8]) -> bool {
    let jwk = json!({"kty": "EC", "crv": crv, "x": b64::encode(x), "y": b64::encode(y)});
    KeySet::from_jwk_json(jwk.to_string().as_bytes()).is_ok()
}

fn p256_oracle(x: &[u8], y: &[u8]) -> bool {
    let point = [&[4u8][..], x, y].concat();
    p256::PublicKey::from_sec1_bytes(&point).is_ok()
}

fn p384_oracle(x: &[u8], y: &[u8]) -> bool {
    let point = [&[4u8][..], x, y].concat();
    p384::PublicKey::from_sec1_bytes(&point).is_ok()
}

/// RustCrypto's p521 also verifies ES512 here, but our own curve-equation check runs first at
/// load; this compares that check (the big-integer code shared with P-256/P-384) with p521's.
fn p521_oracle(x: &[u8], y: &[u8]) -> bool {
    let point = [&[4u8][..], x, y].concat();
    p521::PublicKey::from_sec1_bytes(&point).is_ok()
}

fn ed25519_loads(x: &[u8]) -> bool {
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64::encode(x)});
    KeySet::from_jwk_json(jwk.to_string().as_bytes()).is_ok()
}

/// Oracle: ed25519-dalek decodes it, it is not small-order, and the
/// encoding is canonical (y < p; dalek alone reduces y mod p).
fn ed25519_oracle(x: &[u8; 32]) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(x) else {
        return false;
    };
    let canonical = {
        let mut y = *x;
        y[31] &= 0x7f;
        // y < p = 2^255 - 19  <=>  not (top bytes all ff/7f and low byte >= 0xed)
        !(y[31] == 0x7f && y[1..31].iter().all(|b| *b == 0xff) && y[0] >= 0xed)
    };
    // x = 0 with the sign bit set is non-canonical (RFC 8032 5.1.3 step 4);
    // dalek accepts it, so compare against the re-encoding.
    canonical && !key.is_weak() && key.to_bytes() == *x
}

fn split_point(point: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let size = (point.len() - 1) / 2;
    (point[1..1 + size].to_vec(), point[1 + size..].to_vec())
}

#[test]
fn generated_points_load() {
    let curves = [(Algorithm::ES256, "P-256"), (Algorithm::ES384, "P-384"), (Algorithm::ES512, "P-521")];
    for (alg, crv) in curves {
        let (x, y) = split_point(&signer(alg).public_bytes());
        assert!(ec_jwk_loads(crv, &x, &y));
        // The wrong curve name: coordinates have the wrong size.
        for (_, other) in curves.iter().filter(|(_, c)| *c != crv) {
            assert!(!ec_jwk_loads(other, &x, &y), "{crv} point as {other}");
        }
    }
    assert!(ed25519_loads(&signer(Algorithm::EdDSA).public_bytes()));
}

/// P-521 JWK coordinates are exactly 66 bytes (RFC 7518 6.2.1.2: the full field size, leading
/// zeros kept) and must be below p = 2^521 - 1 and on the curve; the reason is reported.
#[test]
fn p521_jwk_coordinates_are_strict() {
    let (x, y) = split_point(&signer(Algorithm::ES512).public_bytes());
    assert_eq!((x.len(), y.len()), (66, 66));
    let reason = |x: &[u8], y: &[u8]| {
        let jwk = json!({"kty": "EC", "crv": "P-521", "kid": "k", "x": b64::encode(x), "y": b64::encode(y)});
        match KeySet::from_jwk_json(jwk.to_string().as_bytes()) {
            Ok(_) => "loaded".to_owned(),
            Err(KeyError::NoUsableKeys(skipped)) => skipped[0].reason.clone(),
            Err(other) => panic!("{other:?}"),
        }
    };
    assert_eq!(reason(&x, &y), "loaded");
    let size = "ec coordinates for p-521 must be 66 bytes each";
    // A leading zero byte dropped or added (the top 7 bits of a coordinate are always zero).
    assert_eq!(reason(&x[1..], &y), size);
    assert_eq!(reason(&x, &y[1..]), size);
    assert_eq!(reason(&[&[0u8][..], &x].concat(), &y), size);
    assert_eq!(reason(&[], &[]), size);
    let off = "ec point is not on p-521";
    let mut bad = y.clone();
    bad[65] ^= 1;
    assert_eq!(reason(&x, &bad), off);
    assert_eq!(reason(&y, &x), off);
    // x = p (congruent to 0), and a coordinate with bits above 2^521.
    let mut p = vec![0xffu8; 66];
    p[0] = 0x01;
    assert_eq!(reason(&p, &y), off);
    let mut high = x.clone();
    high[0] |= 0x80;
    assert_eq!(reason(&high, &y), off);
    // (x, p - y) is the negated point: on the curve.
    assert_eq!(reason(&x, &sub_be(&p, &y)), "loaded");
    // The identity has no affine encoding; (0, 0) is not on the curve.
    assert_eq!(reason(&[0; 66], &[0; 66]), off);
    // Public key material only: a P-521 JWK with "d" fails the whole load.
    let mut private = signer(Algorithm::ES512).public_jwk(None);
    private["d"] = json!(b64::encode(&[1u8; 66]));
    assert_eq!(KeySet::from_jwk_json(private.to_string().as_bytes()).unwrap_err(), KeyError::PrivateKey { index: 0 });
}

/// An invalid point is an error at load time, and ring agrees it is useless:
/// a genuine signature does not verify under the tampered key.
#[test]
fn invalid_point_fails_at_load_and_in_ring() {
    let s = signer(Algorithm::ES256);
    let point = s.public_bytes();
    let mut bad = point.clone();
    bad[64] ^= 1;
    let (x, y) = split_point(&bad);
    assert!(!ec_jwk_loads("P-256", &x, &y));
    let msg = b"hello";
    let sig = s.sign(msg);
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &bad);
    assert!(key.verify(msg, &sig).is_err());
    let good = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point);
    assert!(good.verify(msg, &sig).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Mutations of a valid P-256 point: our verdict matches p256's.
    #[test]
    fn p256_validation_matches_oracle(bit in 0usize..512, negate in any::<bool>(), raw in any::<bool>(), junk in proptest::collection::vec(any::<u8>(), 64)) {
        let (mut x, mut y) = split_point(&signer(Algorithm::ES256).public_bytes());
        if raw {
            x = junk[..32].to_vec();
            y = junk[32..].to_vec();
        } else if negate {
            // (x, p - y) is the negated point: valid.
            let p = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
            y = sub_be(&p, &y);
        } else {
            let target = if bit < 256 { &mut x } else { &mut y };
            target[(bit % 256) / 8] ^= 1 << (bit % 8);
        }
        prop_assert_eq!(ec_jwk_loads("P-256", &x, &y), p256_oracle(&x, &y));
    }

    /// Mutations of a valid P-521 point and random coordinates (with the top 7 bits cleared
    /// half of the time, so that values below p are common): our verdict matches p521's.
    #[test]
    fn p521_validation_matches_oracle(bit in 0usize..1056, negate in any::<bool>(), raw in any::<bool>(), clear_top in any::<bool>(), junk in proptest::collection::vec(any::<u8>(), 132)) {
        let (mut x, mut y) = split_point(&signer(Algorithm::ES512).public_bytes());
        if raw {
            x = junk[..66].to_vec();
            y = junk[66..].to_vec();
            if clear_top {
                x[0] &= 1;
                y[0] &= 1;
            }
        } else if negate {
            let mut p = vec![0xffu8; 66];
            p[0] = 0x01;
            y = sub_be(&p, &y);
        } else {
            let target = if bit < 528 { &mut x } else { &mut y };
            target[(bit % 528) / 8] ^= 1 << (bit % 8);
        }
        prop_assert_eq!(ec_jwk_loads("P-521", &x, &y), p521_oracle(&x, &y));
    }

    #[test]
    fn p384_validation_matches_oracle(bit in 0usize..768, raw in any::<bool>(), junk in proptest::collection::vec(any::<u8>(), 96)) {
        let (mut x, mut y) = split_point(&signer(Algorithm::ES384).public_bytes());
        if raw {
            x = junk[..48].to_vec();
            y = junk[48..].to_vec();
        } else {
            let target = if bit < 384 { &mut x } else { &mut y };
            target[(bit % 384) / 8] ^= 1 << (bit % 8);
        }
        prop_assert_eq!(ec_jwk_loads("P-384", &x, &y), p384_oracle(&x, &y));
    }

    /// Random and mutated Ed25519 encodings: our verdict matches dalek's
    /// (plus canonical encoding and no small order).
    #[test]
    fn ed25519_validation_matches_oracle(bit in 0usize..256, raw in any::<bool>(), junk in any::<[u8; 32]>()) {
        let mut x: [u8; 32] = signer(Algorithm::EdDSA).public_bytes().try_into().unwrap();
        if raw {
            x = junk;
        } else {
            x[bit / 8] ^= 1 << (bit % 8);
        }
        prop_assert_eq!(ed25519_loads(&x), ed25519_oracle(&x));
    }

    /// JWK and PEM loaders never panic on arbitrary input.
    #[test]
    fn loaders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = KeySet::from_jwks_json(&bytes);
        let _ = KeySet::from_jwk_json(&bytes);
        let _ = KeySet::from_any(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = KeySet::from_pem(&text);
        let wrapped = format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", base64_std(&bytes));
        let _ = KeySet::from_pem(&wrapped);
        let cert = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", base64_std(&bytes));
        let _ = KeySet::from_pem(&cert);
    }

    /// Truncations and bit flips of real DER never panic.
    #[test]
    fn mutated_der_never_panics(cut in 0usize..1200, bit in 0usize..9600, which in 0usize..6) {
        let pem = [RSA_SPKI, RSA_CERT, P256_CERT, ED25519_SPKI, P521_CERT, P521_SPKI][which];
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut der = base64_std_decode(&body);
        if bit / 8 < der.len() {
            der[bit / 8] ^= 1 << (bit % 8);
        }
        der.truncate(cut.min(der.len()));
        let label = if matches!(which, 1 | 2 | 4) { "CERTIFICATE" } else { "PUBLIC KEY" };
        let text = format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", base64_std(&der));
        let _ = KeySet::from_pem(&text);
    }
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_std_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

/// a - b for big-endian equal-length numbers with a >= b.
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let d = a[i] as i16 - b[i] as i16 - borrow;
        borrow = if d < 0 { 1 } else { 0 };
        out[i] = (d + 256 * borrow) as u8;
    }
    out
}

/// A JWK Set of `n` distinct Ed25519 keys (kids `k0`, `k1`, ...).
fn ed25519_set(n: usize) -> String {
    let keys: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[i as u8 + 1; 32]).unwrap();
            use ring::signature::KeyPair as _;
            json!({ "kty": "OKP", "crv": "Ed25519", "kid": format!("k{i}"), "x": b64::encode(pair.public_key().as_ref()) })
        })
        .collect();
    json!({ "keys": keys }).to_string()
}

#[test]
fn key_count_limit_at_its_edge() {
    let limits = KeyLimits { max_keys: 3, ..KeyLimits::default() };
    assert_eq!(KeySet::from_jwks_json_with_limits(ed25519_set(3).as_bytes(), &limits).unwrap().len(), 3);
    let err = KeySet::from_jwks_json_with_limits(ed25519_set(4).as_bytes(), &limits).unwrap_err();
    assert_eq!(err, KeyError::TooManyKeys { count: 4, max: 3 });
    assert_eq!(err.code(), "too_many_keys");
    assert_eq!(err.to_string(), "key input holds 4 keys, over the limit of 3 keys");
    // Unusable entries count too: the bound is on the work of looking at them.
    let mut set: serde_json::Value = serde_json::from_str(&ed25519_set(3)).unwrap();
    set["keys"].as_array_mut().unwrap().push(json!({ "kty": "oct", "k": "AAAA" }));
    let err = KeySet::from_jwks_json_with_limits(set.to_string().as_bytes(), &limits).unwrap_err();
    assert_eq!(err.code(), "too_many_keys");
    // The same limit through from_any, and PEM blocks counted the same way, before decoding
    // (the fourth block here is not even valid base64).
    assert_eq!(KeySet::from_any_with_limits(ed25519_set(4).as_bytes(), &limits).unwrap_err().code(), "too_many_keys");
    let pem = format!("{RSA_SPKI}{P256_SPKI}{ED25519_SPKI}");
    assert_eq!(KeySet::from_pem_with_limits(&pem, &limits).unwrap().len(), 3);
    let pem = format!("{pem}-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----\n");
    assert_eq!(KeySet::from_pem_with_limits(&pem, &limits).unwrap_err(), KeyError::TooManyKeys { count: 4, max: 3 });
    // The default allows 100 keys.
    assert_eq!(KeyLimits::default().max_keys, 100);
    assert_eq!(KeySet::from_jwks_json(ed25519_set(100).as_bytes()).unwrap().len(), 100);
    assert_eq!(KeySet::from_jwks_json(ed25519_set(101).as_bytes()).unwrap_err().code(), "too_many_keys");
}

#[test]
fn key_size_limit_at_its_edge() {
    let set = ed25519_set(2);
    let exact = KeyLimits { max_bytes: set.len(), ..KeyLimits::default() };
    assert_eq!(KeySet::from_jwks_json_with_limits(set.as_bytes(), &exact).unwrap().len(), 2);
    let under = KeyLimits { max_bytes: set.len() - 1, ..KeyLimits::default() };
    let err = KeySet::from_jwks_json_with_limits(set.as_bytes(), &under).unwrap_err();
    assert_eq!(err, KeyError::TooLarge { len: set.len(), max: set.len() - 1 });
    assert_eq!(err.code(), "key_too_large");
    assert_eq!(
        err.to_string(),
        format!("key input is {} bytes, over the limit of {} bytes for key input", set.len(), set.len() - 1)
    );
    let jwk = signer(Algorithm::EdDSA).public_jwk(Some("k")).to_string();
    let under = KeyLimits { max_bytes: jwk.len() - 1, ..KeyLimits::default() };
    assert_eq!(KeySet::from_jwk_json_with_limits(jwk.as_bytes(), &under).unwrap_err().code(), "key_too_large");
    let under = KeyLimits { max_bytes: RSA_SPKI.len() - 1, ..KeyLimits::default() };
    assert_eq!(KeySet::from_pem_with_limits(RSA_SPKI, &under).unwrap_err().code(), "key_too_large");
    assert_eq!(KeySet::from_any_with_limits(RSA_SPKI.as_bytes(), &under).unwrap_err().code(), "key_too_large");
    // The default: 1 MiB, checked before parsing (this input is not even JSON).
    let big = vec![b'{'; (1 << 20) + 1];
    assert_eq!(KeySet::from_jwks_json(&big).unwrap_err(), KeyError::TooLarge { len: (1 << 20) + 1, max: 1 << 20 });
}

/// The rsa2048 test key under the RSASSA-PSS OID (RFC 4055, no parameters), as
/// `openssl genpkey -algorithm RSA-PSS` writes public keys.
fn rsa_pss_spki_pem() -> String {
    let body: String = RSA_SPKI.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64_std_decode(&body);
    let rsa_alg_id = [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
    let pss_alg_id = [0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
    assert_eq!(&der[..2], &[0x30, 0x82]);
    assert_eq!(&der[4..4 + rsa_alg_id.len()], &rsa_alg_id);
    let mut out = der[..4].to_vec();
    out.extend_from_slice(&pss_alg_id);
    out.extend_from_slice(&der[4 + rsa_alg_id.len()..]);
    let length = u16::from_be_bytes([der[2], der[3]]) - 2;
    out[2..4].copy_from_slice(&length.to_be_bytes());
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", base64_std(&out))
}

#[test]
fn an_rsa_pss_public_key_verifies_ps_tokens_only() {
    let keys = KeySet::from_pem(&rsa_pss_spki_pem()).unwrap();
    assert_eq!(keys.iter().next().unwrap().kind, KeyKind::Rsa { bits: 2048 });
    let v = Verifier::new(keys, AlgorithmSet::ALL);
    for alg in [Algorithm::PS256, Algorithm::PS384, Algorithm::PS512] {
        assert!(v.verify(signer(alg).token(None, b"{}").as_bytes()).is_ok(), "{alg}");
    }
    for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512] {
        let error = v.verify(signer(alg).token(None, b"{}").as_bytes()).unwrap_err();
        assert_eq!(error.code(), "no_matching_key", "{alg}: {error}");
    }
    // With the token naming a kid the set does not have, the kid-less key is still a candidate.
    let error = v.verify(signer(Algorithm::RS256).token(Some("k"), b"{}").as_bytes()).unwrap_err();
    assert_eq!(error.code(), "no_matching_key");
    assert!(v.verify(signer(Algorithm::PS256).token(Some("k"), b"{}").as_bytes()).is_ok());
}

#[test]
fn a_kid_no_key_has_falls_back_to_keys_without_a_kid() {
    // RFC 7515 4.1.4: `kid` is a hint. GitLab, GitHub, Kubernetes and Entra tokens all carry
    // one; a PEM key has none, and must still verify them.
    let pem = KeySet::from_pem(RSA_SPKI).unwrap();
    let v = Verifier::new(pem, AlgorithmSet::ALL);
    let rs = signer(Algorithm::RS256);
    let verified = v.verify(rs.token(Some("gitlab-2024-01"), b"{}").as_bytes()).unwrap();
    assert_eq!((verified.key.index, verified.key.kid), (0, None));

    // A key under another kid is never a candidate for it; one under the token's kid is the
    // only candidate even when a kid-less key would verify.
    let other = signer(Algorithm::ES256);
    let set = json!({ "keys": [rs.public_jwk(Some("rsa-old")), other.public_jwk(Some("ec-1"))] });
    let v = Verifier::new(KeySet::from_jwks_json(set.to_string().as_bytes()).unwrap(), AlgorithmSet::ALL);
    let error = v.verify(rs.token(Some("rsa-new"), b"{}").as_bytes()).unwrap_err();
    assert_eq!(error.code(), "no_matching_key");
    assert_eq!(error.to_string(), "no configured key has kid \"rsa-new\"");

    let set = json!({ "keys": [rs.public_jwk(None), other.public_jwk(Some("ec-1"))] });
    let v = Verifier::new(KeySet::from_jwks_json(set.to_string().as_bytes()).unwrap(), AlgorithmSet::ALL);
    assert!(v.verify(rs.token(Some("rsa-new"), b"{}").as_bytes()).is_ok());
    // The token names the EC key's kid: that key decides, and it cannot verify RS256.
    let error = v.verify(rs.token(Some("ec-1"), b"{}").as_bytes()).unwrap_err();
    assert_eq!(error.code(), "key_unusable");
}
