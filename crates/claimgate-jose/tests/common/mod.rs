//! Shared test helpers: ring signers for every supported algorithm and the
//! matching public JWKs.
//!
//! The RSA key is a fixture (generated once with openssl, committed under
//! tests/keys/) because RSA key generation is slow and ring cannot do it; so is
//! the P-521 key, signed with RustCrypto's p521 (ring has no P-521), whose
//! certificate and SPKI are fixtures too. P-256, P-384 and Ed25519 keys are
//! generated per test process with ring.
#![allow(dead_code)]

use std::sync::OnceLock;

use claimgate_jose::{Algorithm, AlgorithmSet, KeySet, Verifier, b64};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{Value, json};

pub const RSA_PKCS8: &[u8] = include_bytes!("../keys/rsa2048.pk8");
pub const RSA_PKCS1_DER: &[u8] = include_bytes!("../keys/rsa2048.pkcs1.der");
pub const P521_PKCS8: &[u8] = include_bytes!("../keys/p521.pk8");

pub enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    P521(p521::ecdsa::SigningKey),
}

/// A private key able to sign for one algorithm, with its PKCS#8 bytes.
pub struct Signer {
    pub alg: Algorithm,
    pub pair: Pair,
    pub pkcs8: Vec<u8>,
}

fn rng() -> &'static SystemRandom {
    static RNG: OnceLock<SystemRandom> = OnceLock::new();
    RNG.get_or_init(SystemRandom::new)
}

fn make(alg: Algorithm) -> Signer {
    let rng = rng();
    let (pair, pkcs8) = match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => (Pair::Rsa(RsaKeyPair::from_pkcs8(RSA_PKCS8).unwrap()), RSA_PKCS8.to_vec()),
        Algorithm::ES256 | Algorithm::ES384 => {
            let signing = if alg == Algorithm::ES256 {
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, rng).unwrap();
            let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), rng).unwrap();
            (Pair::Ec(pair), pkcs8.as_ref().to_vec())
        }
        Algorithm::EdDSA => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(rng).unwrap();
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
            (Pair::Ed(pair), pkcs8.as_ref().to_vec())
        }
        Algorithm::ES512 => (Pair::P521(p521_signing_key(P521_PKCS8)), P521_PKCS8.to_vec()),
    };
    Signer { alg, pair, pkcs8 }
}

/// A P-521 signing key from PKCS#8 DER.
pub fn p521_signing_key(pkcs8: &[u8]) -> p521::ecdsa::SigningKey {
    use p521::pkcs8::DecodePrivateKey as _;
    let secret = p521::SecretKey::from_pkcs8_der(pkcs8).unwrap();
    p521::ecdsa::SigningKey::from_bytes(&secret.to_bytes()).unwrap()
}

/// The uncompressed SEC1 point (`04 || x || y`, 133 bytes) of a P-521 key.
pub fn p521_point(key: &p521::ecdsa::SigningKey) -> Vec<u8> {
    p521::ecdsa::VerifyingKey::from(key).to_encoded_point(false).as_bytes().to_vec()
}

/// One signer per algorithm, created once per test process.
pub fn signer(alg: Algorithm) -> &'static Signer {
    static SIGNERS: OnceLock<Vec<Signer>> = OnceLock::new();
    let all = SIGNERS.get_or_init(|| Algorithm::ALL.iter().map(|a| make(*a)).collect());
    all.iter().find(|s| s.alg == alg).unwrap()
}

impl Signer {
    /// Raw signature over `msg` (JWS form: r||s for ECDSA).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(pair) => {
                let padding: &'static dyn signature::RsaEncoding = match self.alg {
                    Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    Algorithm::PS384 => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(padding, rng(), msg, &mut sig).unwrap();
                sig
            }
            Pair::Ec(pair) => pair.sign(rng(), msg).unwrap().as_ref().to_vec(),
            Pair::Ed(pair) => pair.sign(msg).as_ref().to_vec(),
            Pair::P521(key) => {
                use p521::ecdsa::signature::Signer as _;
                let sig: p521::ecdsa::Signature = key.sign(msg);
                sig.to_bytes().to_vec()
            }
        }
    }

    /// A compact token with the given header JSON (verbatim) and payload.
    pub fn token_with_header(&self, header_json: &str, payload: &[u8]) -> String {
        let signing_input = format!("{}.{}", b64::encode(header_json.as_bytes()), b64::encode(payload));
        let sig = self.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", b64::encode(&sig))
    }

    /// A compact token with header `{"alg":..,"kid":..}`.
    pub fn token(&self, kid: Option<&str>, payload: &[u8]) -> String {
        let mut header = json!({ "alg": self.alg.name() });
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        self.token_with_header(&header.to_string(), payload)
    }

    /// Raw public key bytes: SEC1 point, Ed25519 bytes, or (n, e) for RSA.
    pub fn public_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(pair) => pair.public().as_ref().to_vec(),
            Pair::Ec(pair) => pair.public_key().as_ref().to_vec(),
            Pair::Ed(pair) => pair.public_key().as_ref().to_vec(),
            Pair::P521(key) => p521_point(key),
        }
    }

    pub fn rsa_components(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        match &self.pair {
            Pair::Rsa(pair) => {
                let c: RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
                Some((c.n, c.e))
            }
            _ => None,
        }
    }

    /// The public JWK (no `alg`, no `use`), with an optional kid.
    pub fn public_jwk(&self, kid: Option<&str>) -> Value {
        let mut jwk = match &self.pair {
            Pair::Rsa(_) => {
                let (n, e) = self.rsa_components().unwrap();
                json!({"kty": "RSA", "n": b64::encode(&n), "e": b64::encode(&e)})
            }
            Pair::Ec(_) | Pair::P521(_) => {
                let point = self.public_bytes();
                let size = (point.len() - 1) / 2;
                let crv = match size {
                    32 => "P-256",
                    48 => "P-384",
                    _ => "P-521",
                };
                json!({
                    "kty": "EC",
                    "crv": crv,
                    "x": b64::encode(&point[1..1 + size]),
                    "y": b64::encode(&point[1 + size..]),
                })
            }
            Pair::Ed(pair) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64::encode(pair.public_key().as_ref()),
            }),
        };
        if let Some(kid) = kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }
}

/// A verifier holding one key per key type, each with kid = algorithm family
/// name, allowing every algorithm.
pub fn verifier_all() -> Verifier {
    let keys = [
        signer(Algorithm::RS256).public_jwk(Some("rsa")),
        signer(Algorithm::ES256).public_jwk(Some("p256")),
        signer(Algorithm::ES384).public_jwk(Some("p384")),
        signer(Algorithm::EdDSA).public_jwk(Some("ed25519")),
        signer(Algorithm::ES512).public_jwk(Some("p521")),
    ];
    let set = json!({ "keys": keys });
    Verifier::new(KeySet::from_jwks_json(set.to_string().as_bytes()).unwrap(), AlgorithmSet::ALL)
}

/// The kid `verifier_all` uses for an algorithm's key.
pub fn kid_for(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "p256",
        Algorithm::ES384 => "p384",
        Algorithm::EdDSA => "ed25519",
        Algorithm::ES512 => "p521",
        _ => "rsa",
    }
}

/// A ~600-byte token payload resembling a workload identity token.
pub fn workload_claims() -> Value {
    json!({
        "iss": "https://token.actions.githubusercontent.com",
        "sub": "repo:claimgate/claimgate:ref:refs/heads/main",
        "aud": "https://github.com/claimgate",
        "ref": "refs/heads/main",
        "sha": "8a6c1b4d3b0f4f2a9e7d5c1b0a9f8e7d6c5b4a39",
        "repository": "claimgate/claimgate",
        "repository_owner": "claimgate",
        "run_id": "7012345678",
        "workflow": "release",
        "event_name": "push",
        "iat": 1_700_000_000u64,
        "nbf": 1_700_000_000u64,
        "exp": 4_000_000_000u64,
    })
}
