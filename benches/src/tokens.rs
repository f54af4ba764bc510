//! Signed tokens for the signature benchmarks: one key and one token per algorithm, the same
//! bytes decoded for ring's bare verify (the floor), and a role for the full path (signature,
//! then claims).
//!
//! The RSA key is the signature core's 2048-bit test key; EC and Ed25519 keys are generated
//! per run. Tokens carry a workload-identity-sized claim set (about 600 bytes for ES256; RSA
//! tokens are longer by their 256-byte signature).

use claimgate_jose::{Algorithm, b64};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

const RSA_PKCS8: &[u8] = include_bytes!("../../crates/claimgate-jose/tests/keys/rsa2048.pk8");

/// The algorithms benchmarked.
pub const ALGORITHMS: [Algorithm; 5] =
    [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA];

/// The time the full path decides at.
pub const NOW: i64 = 1_732_350_100;

/// The claims every token carries (GitHub Actions shaped; expires in 2096, so that
/// jsonwebtoken's check against the system clock passes too).
pub const CLAIMS: &str = r#"{"iss":"https://token.actions.githubusercontent.com","sub":"repo:claimgate/claimgate:ref:refs/heads/main","aud":"https://github.com/claimgate","ref":"refs/heads/main","repository":"claimgate/claimgate","repository_owner":"claimgate","sha":"8a6c1b4d3b0f4f2a9e7d5c1b0a9f8e7d6c5b4a39","event_name":"push","run_id":"7012345678","workflow":"release","iat":1700000000,"exp":4000000000}"#;

/// The role the full path decides: issuer, `exp`, audience, three conditions, a grant.
pub const POLICY: &str = r#"
provider github-actions {
  issuer = "https://token.actions.githubusercontent.com"
  keys {
    jwks_url = "https://token.actions.githubusercontent.com/.well-known/jwks"
  }
  algorithms = [RS256, PS256, ES256, ES384, EdDSA]
  required_time_claims = [exp]
  typ = "JWT"
}

role release {
  provider = github-actions
  audience = "https://github.com/claimgate"
  require {
    claims.repository_owner == "claimgate"
    claims.ref == "refs/heads/main"
    claims.event_name in ["push", "workflow_dispatch"]
  }
  identity = "github/" + claims.repository
  policies = ["release"]
}
"#;

/// The provider's name in [`POLICY`]: its keys are given to `Program::decide_token` under it.
pub const PROVIDER: &str = "github-actions";

/// The role's name in [`POLICY`].
pub const ROLE: &str = "release";

pub struct SignedToken {
    pub alg: Algorithm,
    /// The compact JWS.
    pub token: String,
    /// For the floor: what ring verifies, already decoded.
    pub signing_input: Vec<u8>,
    pub signature: Vec<u8>,
    pub ring_alg: &'static dyn signature::VerificationAlgorithm,
    /// DER RSAPublicKey, SEC1 point or Ed25519 bytes, as ring wants them.
    pub public_key: Vec<u8>,
    /// The public key as a JWK (`kid` "k1").
    pub jwk: Value,
}

/// A token over [`CLAIMS`] signed with a key for `alg`.
pub fn signed(alg: Algorithm) -> SignedToken {
    signed_claims(alg, CLAIMS)
}

/// The fewest claims [`ROLE`] accepts: with RS256 and a 2048-bit key, a token of about 680
/// bytes (the signature alone is 342 of them).
pub const SMALL_CLAIMS: &str = r#"{"iss":"https://token.actions.githubusercontent.com","aud":"https://github.com/claimgate","repository":"claimgate/claimgate","repository_owner":"claimgate","ref":"refs/heads/main","event_name":"push","exp":4000000000}"#;

/// A token of `claims` signed with `alg`.
pub fn signed_claims(alg: Algorithm, claims: &str) -> SignedToken {
    let rng = SystemRandom::new();
    let header = json!({ "alg": alg.name(), "typ": "JWT", "kid": "k1" });
    let signing_input = format!("{}.{}", b64::encode(header.to_string().as_bytes()), b64::encode(claims.as_bytes()));
    let msg = signing_input.as_bytes();
    let (signature, ring_alg, public_key, jwk): (Vec<u8>, &'static dyn signature::VerificationAlgorithm, _, _) =
        match alg {
            Algorithm::RS256 | Algorithm::PS256 => {
                let pair = RsaKeyPair::from_pkcs8(RSA_PKCS8).unwrap();
                let mut sig = vec![0; pair.public().modulus_len()];
                let (enc, ver): (&'static dyn signature::RsaEncoding, &'static dyn signature::VerificationAlgorithm) =
                    if alg == Algorithm::RS256 {
                        (&signature::RSA_PKCS1_SHA256, &signature::RSA_PKCS1_2048_8192_SHA256)
                    } else {
                        (&signature::RSA_PSS_SHA256, &signature::RSA_PSS_2048_8192_SHA256)
                    };
                pair.sign(enc, &rng, msg, &mut sig).unwrap();
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
                let jwk = json!({"kty": "RSA", "kid": "k1", "n": b64::encode(&c.n), "e": b64::encode(&c.e)});
                (sig, ver, pair.public().as_ref().to_vec(), jwk)
            }
            Algorithm::ES256 | Algorithm::ES384 => {
                let (sign_alg, ver, crv, size): (_, &'static dyn signature::VerificationAlgorithm, _, _) =
                    if alg == Algorithm::ES256 {
                        (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &signature::ECDSA_P256_SHA256_FIXED, "P-256", 32)
                    } else {
                        (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &signature::ECDSA_P384_SHA384_FIXED, "P-384", 48)
                    };
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(sign_alg, &rng).unwrap();
                let pair = EcdsaKeyPair::from_pkcs8(sign_alg, pkcs8.as_ref(), &rng).unwrap();
                let sig = pair.sign(&rng, msg).unwrap().as_ref().to_vec();
                let point = pair.public_key().as_ref().to_vec();
                let (x, y) = (b64::encode(&point[1..1 + size]), b64::encode(&point[1 + size..]));
                let jwk = json!({"kty": "EC", "kid": "k1", "crv": crv, "x": x, "y": y});
                (sig, ver, point, jwk)
            }
            Algorithm::EdDSA => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
                let sig = pair.sign(msg).as_ref().to_vec();
                let point = pair.public_key().as_ref().to_vec();
                let jwk = json!({"kty": "OKP", "kid": "k1", "crv": "Ed25519", "x": b64::encode(&point)});
                (sig, &signature::ED25519, point, jwk)
            }
            other => unreachable!("{other} is not benchmarked"),
        };
    let token = format!("{signing_input}.{}", b64::encode(&signature));
    SignedToken { alg, token, signing_input: signing_input.into_bytes(), signature, ring_alg, public_key, jwk }
}
