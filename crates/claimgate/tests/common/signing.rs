//! Test signers: the RSA keys of `tests/keys/` (most bundled policies allow only RS256), their
//! public JWK Sets, and compact tokens signed with them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

/// One RSA test key with a `kid`.
pub struct Signer {
    pub kid: String,
    pair: RsaKeyPair,
}

impl Signer {
    /// Test key `n` (1 to 8) under `kid`.
    pub fn rsa(n: usize, kid: &str) -> Signer {
        let path = super::crate_dir().join(format!("tests/keys/rsa-{n}.der"));
        let der = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Signer { kid: kid.to_string(), pair: RsaKeyPair::from_der(&der).expect("a PKCS#1 RSA key") }
    }

    /// The public key as a one-key JWK Set.
    pub fn jwks(&self) -> String {
        let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(self.pair.public());
        format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"{}","use":"sig","alg":"RS256","n":"{}","e":"{}"}}]}}"#,
            self.kid,
            B64.encode(&public.n),
            B64.encode(&public.e)
        )
    }

    /// An RS256 token over `payload` with the given header (`alg` must be RS256).
    pub fn sign_with_header(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", B64.encode(header), B64.encode(payload));
        let mut signature = vec![0; self.pair.public().modulus_len()];
        let rng = ring::rand::SystemRandom::new();
        self.pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut signature).expect("signing");
        format!("{input}.{}", B64.encode(&signature))
    }

    /// An RS256 token with `typ: JWT` and this key's `kid`.
    pub fn sign(&self, payload: &str) -> String {
        self.sign_with_header(&format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{}"}}"#, self.kid), payload)
    }
}
