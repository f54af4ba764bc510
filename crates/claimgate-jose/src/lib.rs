//! A strict, small JOSE signature core for claimgate, on [`ring`] (and, for
//! ES512 alone, RustCrypto's [`p521`]).
//!
//! It verifies compact JWS tokens (the form every workload JWT takes) against
//! keys configured by the operator, and returns the verified header and the
//! raw payload. Claims semantics (expiry, audience, ...) belong to the policy
//! evaluator, not here.
//!
//! ```no_run
//! use claimgate_jose::{AlgorithmSet, KeySet, Verifier, check_payload_json};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let jwks_bytes = b""; let token = b"";
//! let keys = KeySet::from_jwks_json(jwks_bytes)?;      // once, at config load
//! let verifier = Verifier::new(keys, AlgorithmSet::default());
//! let verified = verifier.verify(token)?;              // per token
//! let claims = check_payload_json(&verified.payload, verifier.limits())?;
//! # Ok(()) }
//! ```
//!
//! # Security choices, and why
//!
//! * **Compact JWS only.** JSON serialisation and JWE are recognised and
//!   refused with `unsupported` (not a parse error), so an operator sees what
//!   was sent. Fewer forms means fewer ways for two parsers to disagree.
//! * **Bounded before decoded.** The token size (default 16 KiB) is checked
//!   before any byte is decoded; the header has its own size and JSON depth
//!   bounds ([`Limits`]). Key input has a size bound (1 MiB) checked before
//!   parsing and a bound on the number of keys (100) checked before any key
//!   is decoded ([`KeyLimits`]): a JWK Set fetched from the network is input.
//! * **One encoding per value.** base64url must be the URL-safe alphabet, with
//!   no padding, no whitespace and zero trailing bits ([`b64`]). JSON member
//!   names must be unique at every depth ([`json`]); serde_json alone would
//!   silently keep the last `alg`.
//! * **No `none`, no HMAC.** They are not variants of [`Algorithm`], so no
//!   configuration can enable them; their names produce distinct errors
//!   (`alg_none`, `alg_symmetric`) rather than a generic failure. This also
//!   closes the RS256-public-key-as-HMAC-secret confusion by construction.
//! * **Keys come from configuration only.** The header's `jwk`, `jku`, `x5u`
//!   and `x5c` are never read, let alone fetched. `kid` is compared for exact
//!   equality against the configured set and never interpreted, so path
//!   traversal or SQL in a `kid` is just a kid that matches nothing. It is a
//!   hint (RFC 7515 4.1.4): when no configured key has the token's kid, the
//!   keys configured without a kid (PEM keys, a JWK without one) are tried,
//!   so a PEM key verifies real GitLab or Kubernetes tokens; a key under
//!   another kid never is.
//! * **Keys are bound to algorithms.** A key verifies only algorithms of its
//!   own type and curve (a P-256, P-384 or P-521 key ES256, ES384 or ES512
//!   respectively); a JWK that names an `alg` verifies exactly that one;
//!   `use` other than `sig` or `key_ops` without `verify` keep a key out of
//!   the set; an RSA key under the RSASSA-PSS OID verifies PS256/384/512 only.
//!   A token's `alg` must also be in the provider's [`AlgorithmSet`].
//! * **Validated once, at load.** RSA moduli must be 2048..=8192 bits with an
//!   odd exponent >= 3 and no ROCA fingerprint; EC points must lie on their
//!   curve; Ed25519 keys must decode to a point of large order. A key set
//!   holding private key material (an asymmetric private key, or an `oct`
//!   key's secret `k`) is refused outright. Keys that cannot be
//!   used are skipped and reported ([`KeySet::skipped`]) instead of failing
//!   the whole set, unless nothing usable remains.
//! * **Fixed-size signatures are fixed.** ES256/ES384/ES512/EdDSA signatures
//!   must be exactly 64/96/132/64 bytes (raw `r || s`; for ES512 two 66-byte
//!   integers); DER or padded encodings are refused before any key is chosen
//!   or any cryptography runs. ring, and p521 for ES512, reject `r` or `s`
//!   equal to zero or not below the group order (the "psychic signatures"
//!   bug, CVE-2022-21449, cannot occur); tests pin this, including, for
//!   ES512, `s + n`, which fits in 66 bytes and would verify if it were
//!   reduced instead of refused.
//! * **ES512 is the one algorithm not on ring.** ring has no P-521, and Vault
//!   and other verifiers accept ES512 by default, so RustCrypto's `p521`
//!   (pure Rust, so the crate still builds for WebAssembly; only its `ecdsa`
//!   feature) verifies ES512, and nothing else. Everything around it is this
//!   crate's, as for the other curves: the 132-byte rule, key binding, and
//!   load-time validation of P-521 keys (66-byte coordinates below p, on the
//!   curve by our own check and again by p521's), after which the key is
//!   kept parsed. Wycheproof's P-521 vectors run against it.
//! * **Critical extensions are refused.** Any `crit` (we understand none) and
//!   `b64: false` are refused, as RFC 7515/7797 require of a recipient that
//!   does not implement them.
//! * **Errors are safe to return.** Every error has a stable
//!   [`JoseError::code`]; messages are lowercase and echo at most a short,
//!   escaped prefix of the input.
//! * **Payload stays bytes; claims are checked separately.** A JWS may sign
//!   any bytes (and conformance vectors do), so [`Verifier::verify`] returns
//!   the payload exactly as signed. The policy evaluator must then call
//!   [`check_payload_json`], which accepts only a JSON object with unique
//!   member names at every depth within [`Limits::max_payload_depth`] and
//!   returns the parsed object, so claims are parsed once and duplicate
//!   claims (`{"sub":"a","sub":"admin"}`) can never be read two ways.
//! * **Portable.** No filesystem, network, clock or randomness: the crate
//!   builds for `wasm32-unknown-unknown` (ring's C/asm parts need `clang`
//!   for that target; getrandom is given a source that always fails, since
//!   nothing here ever asks for randomness).
//!
//! # What is deliberately not here
//!
//! HMAC, `none`, ES256K and other curves, JWE, JSON serialisation, detached
//! or unencoded payloads, nested tokens (`cty: JWT`), certificate-chain validation (a PEM certificate is only a key
//! container), fetching keys, and claims validation (`exp`, `aud`, ...).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod alg;
pub mod b64;
mod error;
pub mod json;
pub mod jwk;
mod jws;
mod key;
mod pem;
#[cfg(test)]
mod wycheproof_p521;

pub use alg::{Algorithm, AlgorithmError, AlgorithmSet};
pub use error::{JoseError, KeyError, SNIPPET_MAX_CHARS, SkippedKey, snippet, snippet_bytes};
pub use jws::{
    Header, KeyRef, Limits, UnverifiedToken, Verified, Verifier, check_payload_json, decode_unverified, typ_matches,
};
pub use key::{KeyInfo, KeyKind, KeyLimits, KeySet, RSA_MAX_BITS, RSA_MIN_BITS};

/// ring links getrandom, which on `wasm32-unknown-unknown` needs an explicit
/// source. Signature verification never asks for randomness, so the source
/// registered here always fails: if anything ever did ask, it would get an
/// error, never predictable bytes.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod wasm_no_rng {
    fn unavailable(_: &mut [u8]) -> Result<(), getrandom::Error> {
        Err(getrandom::Error::UNSUPPORTED)
    }
    getrandom::register_custom_getrandom!(unavailable);
}
