//! Signature verification: claimgate's `Verifier::verify` against the floor
//! (ring's bare `UnparsedPublicKey::verify` on the same signing input and
//! signature, base64 decoding done outside the timed loop) and against
//! jsonwebtoken 11's `decode` (RustCrypto backend) for the same token.
//!
//! Tokens carry a workload-identity-sized claims set (~600 bytes for ES256;
//! RSA tokens are longer by their 256-byte signature).
//!
//! Run: cargo bench -p claimgate-benches --bench verify -- --warm-up-time 1 --measurement-time 3

use std::hint::black_box;

use claimgate_jose::{Algorithm, AlgorithmSet, KeySet, Verifier, b64};
use criterion::{Criterion, criterion_group, criterion_main};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

const RSA_PKCS8: &[u8] = include_bytes!("../../crates/claimgate-jose/tests/keys/rsa2048.pk8");

struct Case {
    alg: Algorithm,
    token: String,
    /// For the floor: what ring verifies, already decoded.
    signing_input: Vec<u8>,
    signature: Vec<u8>,
    ring_alg: &'static dyn signature::VerificationAlgorithm,
    /// DER RSAPublicKey, SEC1 point or Ed25519 bytes, as ring wants them.
    public_key: Vec<u8>,
    jwk: Value,
    jwt_key: jsonwebtoken::DecodingKey,
    jwt_alg: jsonwebtoken::Algorithm,
}

fn claims() -> Value {
    json!({
        "iss": "https://token.actions.githubusercontent.com",
        "sub": "repo:claimgate/claimgate:ref:refs/heads/main",
        "aud": "https://github.com/claimgate",
        "ref": "refs/heads/main",
        "repository": "claimgate/claimgate",
        "repository_owner": "claimgate",
        "sha": "8a6c1b4d3b0f4f2a9e7d5c1b0a9f8e7d6c5b4a39",
        "event_name": "push",
        "run_id": "7012345678",
        "workflow": "release",
        "iat": 1_700_000_000u64,
        "exp": 4_000_000_000u64,
    })
}

fn case(alg: Algorithm) -> Case {
    let rng = SystemRandom::new();
    let header = json!({ "alg": alg.name(), "typ": "JWT", "kid": "k1" });
    let signing_input =
        format!("{}.{}", b64::encode(header.to_string().as_bytes()), b64::encode(claims().to_string().as_bytes()));
    let msg = signing_input.as_bytes();
    let (signature, ring_alg, public_key, jwk, jwt_key, jwt_alg): (
        Vec<u8>,
        &'static dyn signature::VerificationAlgorithm,
        Vec<u8>,
        Value,
        jsonwebtoken::DecodingKey,
        jsonwebtoken::Algorithm,
    ) = match alg {
        Algorithm::RS256 | Algorithm::PS256 => {
            let pair = RsaKeyPair::from_pkcs8(RSA_PKCS8).unwrap();
            let mut sig = vec![0; pair.public().modulus_len()];
            let (enc, ver, jalg): (
                &'static dyn signature::RsaEncoding,
                &'static dyn signature::VerificationAlgorithm,
                _,
            ) = if alg == Algorithm::RS256 {
                (&signature::RSA_PKCS1_SHA256, &signature::RSA_PKCS1_2048_8192_SHA256, jsonwebtoken::Algorithm::RS256)
            } else {
                (&signature::RSA_PSS_SHA256, &signature::RSA_PSS_2048_8192_SHA256, jsonwebtoken::Algorithm::PS256)
            };
            pair.sign(enc, &rng, msg, &mut sig).unwrap();
            let c: signature::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
            let jwk = json!({"kty": "RSA", "kid": "k1", "n": b64::encode(&c.n), "e": b64::encode(&c.e)});
            let key =
                jsonwebtoken::DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
                    .unwrap();
            (sig, ver, pair.public().as_ref().to_vec(), jwk, key, jalg)
        }
        Algorithm::ES256 | Algorithm::ES384 => {
            let (sign_alg, ver, crv, size, jalg): (_, &'static dyn signature::VerificationAlgorithm, _, _, _) =
                if alg == Algorithm::ES256 {
                    (
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        &signature::ECDSA_P256_SHA256_FIXED,
                        "P-256",
                        32,
                        jsonwebtoken::Algorithm::ES256,
                    )
                } else {
                    (
                        &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                        &signature::ECDSA_P384_SHA384_FIXED,
                        "P-384",
                        48,
                        jsonwebtoken::Algorithm::ES384,
                    )
                };
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(sign_alg, &rng).unwrap();
            let pair = EcdsaKeyPair::from_pkcs8(sign_alg, pkcs8.as_ref(), &rng).unwrap();
            let sig = pair.sign(&rng, msg).unwrap().as_ref().to_vec();
            let point = pair.public_key().as_ref().to_vec();
            let (x, y) = (b64::encode(&point[1..1 + size]), b64::encode(&point[1 + size..]));
            let jwk = json!({"kty": "EC", "kid": "k1", "crv": crv, "x": x, "y": y});
            let key = jsonwebtoken::DecodingKey::from_ec_components(&x, &y).unwrap();
            (sig, ver, point, jwk, key, jalg)
        }
        Algorithm::EdDSA => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
            let sig = pair.sign(msg).as_ref().to_vec();
            let point = pair.public_key().as_ref().to_vec();
            let x = b64::encode(&point);
            let jwk = json!({"kty": "OKP", "kid": "k1", "crv": "Ed25519", "x": x});
            let key = jsonwebtoken::DecodingKey::from_ed_components(&x).unwrap();
            (sig, &signature::ED25519, point, jwk, key, jsonwebtoken::Algorithm::EdDSA)
        }
        other => unreachable!("{other} is not benchmarked"),
    };
    let token = format!("{signing_input}.{}", b64::encode(&signature));
    Case {
        alg,
        token,
        signing_input: signing_input.into_bytes(),
        signature,
        ring_alg,
        public_key,
        jwk,
        jwt_key,
        jwt_alg,
    }
}

fn bench_verify(c: &mut Criterion) {
    for alg in [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
        let case = case(alg);
        let keys = KeySet::from_jwk_json(case.jwk.to_string().as_bytes()).unwrap();
        let verifier = Verifier::new(keys, AlgorithmSet::ALL);
        verifier.verify(case.token.as_bytes()).expect("claimgate verifies");
        let floor_key = signature::UnparsedPublicKey::new(case.ring_alg, &case.public_key);
        floor_key.verify(&case.signing_input, &case.signature).expect("ring verifies");
        let mut validation = jsonwebtoken::Validation::new(case.jwt_alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(&case.token, &case.jwt_key, &validation).expect("jsonwebtoken verifies");

        let mut group = c.benchmark_group(format!("verify/{}", case.alg.name()));
        group.bench_function(format!("claimgate ({} B token)", case.token.len()), |b| {
            b.iter(|| verifier.verify(black_box(case.token.as_bytes())).unwrap())
        });
        group.bench_function("ring floor", |b| {
            b.iter(|| floor_key.verify(black_box(&case.signing_input), black_box(&case.signature)).unwrap())
        });
        // The non-cryptographic part of claimgate's work, for reference.
        let limits = claimgate_jose::Limits::default();
        let token_str = case.token.as_str();
        group.bench_function("claimgate decode only (no crypto)", |b| {
            b.iter(|| claimgate_jose::decode_unverified(black_box(token_str), &limits).unwrap())
        });
        group.bench_function("jsonwebtoken", |b| {
            b.iter(|| jsonwebtoken::decode::<Value>(black_box(&case.token), &case.jwt_key, &validation).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
