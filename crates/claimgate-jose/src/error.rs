//! Error types with stable machine-readable codes.
//!
//! Every error carries a `code()` that callers can log, count and match on
//! without parsing prose. Display messages are lowercase, carry no trailing
//! period, never name a Rust type, and never echo more than a short escaped
//! prefix of attacker-supplied input (see [`snippet`]), so they are safe to
//! return to the client that presented the token.

use std::fmt::Write as _;

use crate::alg::{Algorithm, AlgorithmError};

/// The most characters of untrusted input an error message ever shows.
pub const SNIPPET_MAX_CHARS: usize = 32;

/// Renders a short, escaped prefix of untrusted text for an error message.
///
/// Control characters, quotes, backslashes and everything outside printable
/// ASCII are escaped (so a message can never inject terminal escapes or fake
/// log lines), and the result is cut after [`SNIPPET_MAX_CHARS`] source
/// characters with a trailing `...` marker.
pub fn snippet(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i >= SNIPPET_MAX_CHARS {
            out.push_str("...");
            break;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    out
}

/// Like [`snippet`] for bytes that may not be UTF-8.
pub fn snippet_bytes(bytes: &[u8]) -> String {
    let cut = bytes.len().min(SNIPPET_MAX_CHARS * 4);
    let prefix = bytes.get(..cut).unwrap_or(bytes);
    snippet(&String::from_utf8_lossy(prefix))
}

/// Why a token was not accepted.
///
/// The variants are grouped by [`JoseError::code`]; the code is the stable
/// interface, the message is for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoseError {
    /// The token (or one of its parts) is larger than the configured limit.
    /// Checked before any decoding so oversized input costs nothing.
    #[error("{what} is {len} bytes, larger than the limit of {max}")]
    TooLarge {
        /// Which part was too large.
        what: &'static str,
        /// Its size in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The token is not a well-formed compact JWS.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// A well-formed JOSE object this core deliberately does not handle
    /// (JWE, JSON serialisation, critical extensions, unencoded payloads, nested tokens).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The header names an algorithm that is refused outright.
    #[error(transparent)]
    Algorithm(#[from] AlgorithmError),
    /// The algorithm is supported but not allowed for this provider.
    #[error("algorithm {} is not allowed for this provider", .0.name())]
    AlgorithmNotAllowed(Algorithm),
    /// No configured key can be used for this token.
    #[error("{}", no_key_message(.kid.as_deref()))]
    NoMatchingKey {
        /// The escaped `kid` from the header, if it had one.
        kid: Option<String>,
    },
    /// The key named by the token exists but may not verify this token.
    #[error("key unusable: {0}")]
    KeyUnusable(String),
    /// The signature has the wrong shape for the algorithm (checked before
    /// any cryptography runs).
    #[error("signature for {alg} must be {expected} bytes, got {actual}")]
    SignatureLength {
        /// The algorithm name.
        alg: &'static str,
        /// The length the algorithm requires.
        expected: usize,
        /// The decoded length found.
        actual: usize,
    },
    /// No candidate key verified the signature.
    #[error("signature verification failed")]
    BadSignature,
    /// The payload is not an acceptable JSON claims object (only returned by
    /// [`crate::check_payload_json`]).
    #[error("bad payload: {0}")]
    BadPayload(String),
}

fn no_key_message(kid: Option<&str>) -> String {
    match kid {
        Some(kid) => format!("no configured key has kid \"{kid}\""),
        None => "no configured key fits the token's algorithm".to_owned(),
    }
}

impl JoseError {
    /// A stable, machine-readable code for this error.
    ///
    /// | code | meaning |
    /// |---|---|
    /// | `too_large` | size limit hit before decoding |
    /// | `malformed` | not a well-formed compact JWS |
    /// | `unsupported` | JWE, JSON serialisation, `crit`, `b64: false`, a nested token (`cty: JWT`) |
    /// | `alg_none` | the `none` algorithm, in any casing |
    /// | `alg_symmetric` | HS256/HS384/HS512 |
    /// | `alg_unknown` | an algorithm name this core does not know |
    /// | `algorithm_not_allowed` | supported but outside the provider's set |
    /// | `no_matching_key` | no configured key for this kid / algorithm |
    /// | `key_unusable` | the named key may not verify this algorithm |
    /// | `bad_signature` | wrong signature shape, or verification failed |
    /// | `bad_payload` | payload is not a unique-key JSON object within limits |
    pub fn code(&self) -> &'static str {
        match self {
            JoseError::TooLarge { .. } => "too_large",
            JoseError::Malformed(_) => "malformed",
            JoseError::Unsupported(_) => "unsupported",
            JoseError::Algorithm(e) => e.code(),
            JoseError::AlgorithmNotAllowed(_) => "algorithm_not_allowed",
            JoseError::NoMatchingKey { .. } => "no_matching_key",
            JoseError::KeyUnusable(_) => "key_unusable",
            JoseError::SignatureLength { .. } | JoseError::BadSignature => "bad_signature",
            JoseError::BadPayload(_) => "bad_payload",
        }
    }
}

/// Why a key or key set could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key input is larger than [`crate::KeyLimits::max_bytes`].
    #[error("key input is {len} bytes, over the limit of {max} bytes for key input")]
    TooLarge {
        /// Input size in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The key input holds more keys than [`crate::KeyLimits::max_keys`].
    #[error("key input holds {count} keys, over the limit of {max} keys")]
    TooManyKeys {
        /// Keys counted: JWK Set entries or PEM blocks, usable or not.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The JSON or PEM text itself is malformed.
    #[error("malformed key input: {0}")]
    Malformed(String),
    /// A key carries private material. A verifier must only ever be given
    /// public keys: a private key here usually means the wrong file was
    /// deployed, and it would then sit in the verifier's memory and configs.
    #[error("key {index} contains private key material: configure public keys only")]
    PrivateKey {
        /// Position of the key in the input.
        index: usize,
    },
    /// Two usable keys share a `kid`, so lookup by `kid` would be ambiguous.
    #[error("keys {first} and {second} share the kid \"{kid}\"")]
    DuplicateKid {
        /// The escaped kid.
        kid: String,
        /// Position of the first key.
        first: usize,
        /// Position of the second key.
        second: usize,
    },
    /// Every key was skipped; the reasons are attached.
    #[error("{}", no_usable_message(.0))]
    NoUsableKeys(Vec<SkippedKey>),
}

fn no_usable_message(skipped: &[SkippedKey]) -> String {
    match skipped.first() {
        None => "no usable key: the input holds no keys".to_owned(),
        Some(first) if skipped.len() == 1 => format!("no usable key: {first}"),
        Some(first) => format!("no usable key: {first} (and {} more skipped)", skipped.len() - 1),
    }
}

impl KeyError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            KeyError::TooLarge { .. } => "key_too_large",
            KeyError::TooManyKeys { .. } => "too_many_keys",
            KeyError::Malformed(_) => "key_malformed",
            KeyError::PrivateKey { .. } => "private_key",
            KeyError::DuplicateKid { .. } => "duplicate_kid",
            KeyError::NoUsableKeys(_) => "no_usable_keys",
        }
    }
}

/// A key that was left out of a [`crate::KeySet`], and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position of the key in the input (JWKS `keys` array or PEM block).
    pub index: usize,
    /// The key's `kid`, escaped, if it had one.
    pub kid: Option<String>,
    /// Why it was skipped (lowercase prose).
    pub reason: String,
}

impl std::fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kid {
            Some(kid) => write!(f, "key {} (kid \"{kid}\"): {}", self.index, self.reason),
            None => write!(f, "key {}: {}", self.index, self.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_escapes_and_truncates() {
        assert_eq!(snippet("abc"), "abc");
        assert_eq!(snippet("a\"b\\c"), "a\\\"b\\\\c");
        assert_eq!(snippet("\u{1b}[31m"), "\\u{1b}[31m");
        assert_eq!(snippet("\n"), "\\u{a}");
        let long = "x".repeat(100);
        assert_eq!(snippet(&long), format!("{}...", "x".repeat(32)));
        assert_eq!(snippet_bytes(&[0xff, b'a']), "\\u{fffd}a");
    }
}
