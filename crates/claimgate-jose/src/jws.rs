//! Compact JWS parsing and verification (RFC 7515 sec. 7.1).

use serde_json::{Map, Value};

use crate::alg::{Algorithm, AlgorithmSet};
use crate::b64;
use crate::error::{JoseError, SNIPPET_MAX_CHARS, snippet};
use crate::json::{self, JsonError};
use crate::key::{Key, KeySet};

/// Size and shape limits, all checked before the work they bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole token, in bytes. Checked before anything is decoded.
    pub max_token_bytes: usize,
    /// Largest decoded protected header, in bytes.
    pub max_header_bytes: usize,
    /// Deepest nesting in the header JSON (the header object itself is 1).
    pub max_header_depth: usize,
    /// Deepest nesting in the payload JSON, for [`check_payload_json`].
    pub max_payload_depth: usize,
}

impl Limits {
    /// The defaults: 16 KiB tokens, 4 KiB headers of depth 4, payload depth 32.
    pub const DEFAULT: Limits =
        Limits { max_token_bytes: 16 * 1024, max_header_bytes: 4 * 1024, max_header_depth: 4, max_payload_depth: 32 };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// The protected header members this core reads. Everything else is
/// ignored; in particular `jwk`, `jku`, `x5u`, `x5c` and `x5t` never select
/// or supply a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The signature algorithm.
    pub alg: Algorithm,
    /// `typ`, verbatim (e.g. `JWT`); judging it is the policy's job.
    pub typ: Option<String>,
    /// `cty`, verbatim.
    pub cty: Option<String>,
    /// `kid`, verbatim; used only as an exact-match lookup key.
    pub kid: Option<String>,
}

/// Which configured key verified a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    /// The key's position in its input (JWKS array index or PEM block).
    pub index: usize,
    /// The key's `kid`, if it had one.
    pub kid: Option<String>,
}

/// A token whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The verified protected header.
    pub header: Header,
    /// The decoded payload, exactly as signed. Not yet parsed: see
    /// [`check_payload_json`].
    pub payload: Vec<u8>,
    /// The key that verified it.
    pub key: KeyRef,
}

/// The three parts of a compact JWS, borrowed from the token.
struct Parts<'a> {
    header_b64: &'a [u8],
    payload_b64: &'a [u8],
    signature_b64: &'a [u8],
    /// `header_b64 '.' payload_b64`: the bytes the signature covers.
    signing_input: &'a [u8],
}

fn split<'a>(token: &'a [u8], limits: &Limits) -> Result<Parts<'a>, JoseError> {
    if token.len() > limits.max_token_bytes {
        return Err(JoseError::TooLarge { what: "token", len: token.len(), max: limits.max_token_bytes });
    }
    if token.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Err(JoseError::Unsupported("json serialization: only compact tokens are accepted".to_owned()));
    }
    let mut dots = token.iter().enumerate().filter(|(_, b)| **b == b'.').map(|(i, _)| i);
    let (Some(first), Some(second)) = (dots.next(), dots.next()) else {
        return Err(segment_error(token));
    };
    if dots.next().is_some() {
        return Err(segment_error(token));
    }
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), Some(signing_input)) =
        (token.get(..first), token.get(first + 1..second), token.get(second + 1..), token.get(..second))
    else {
        return Err(segment_error(token));
    };
    if header_b64.len() > b64::encoded_len(limits.max_header_bytes) {
        return Err(JoseError::TooLarge {
            what: "header",
            len: b64::decoded_len_upper(header_b64.len()),
            max: limits.max_header_bytes,
        });
    }
    Ok(Parts { header_b64, payload_b64, signature_b64, signing_input })
}

fn segment_error(token: &[u8]) -> JoseError {
    let segments = token.iter().filter(|b| **b == b'.').count() + 1;
    if segments == 5 {
        JoseError::Unsupported("jwe (five segments): only signed tokens are accepted".to_owned())
    } else {
        JoseError::Malformed(format!("a compact jws has 3 dot-separated segments, found {segments}"))
    }
}

fn decode_part(part: &[u8], what: &str) -> Result<Vec<u8>, JoseError> {
    b64::decode(part).map_err(|_| JoseError::Malformed(format!("{what} is not strict base64url")))
}

fn optional_string(map: &Map<String, Value>, name: &str) -> Result<Option<String>, JoseError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JoseError::Malformed(format!("header member \"{name}\" is not a string"))),
    }
}

/// Parses and checks the protected header.
fn parse_header(header_b64: &[u8], limits: &Limits) -> Result<Header, JoseError> {
    let bytes = decode_part(header_b64, "header")?;
    let map = json::parse_object(&bytes, limits.max_header_depth).map_err(|e| match e {
        JsonError::NotObject => JoseError::Malformed("header is not a json object".to_owned()),
        other => JoseError::Malformed(format!("header: {other}")),
    })?;
    let alg = match map.get("alg") {
        Some(Value::String(name)) => name.parse::<Algorithm>()?,
        Some(_) => {
            return Err(JoseError::Malformed("header member \"alg\" is not a string".to_owned()));
        }
        None => {
            return Err(JoseError::Malformed("header has no \"alg\" member".to_owned()));
        }
    };
    // RFC 7515 4.1.11: a recipient must reject a token whose `crit` lists an
    // extension it does not understand. We understand none, and an empty or
    // ill-typed `crit` is itself an error (the RFC forbids both).
    if let Some(crit) = map.get("crit") {
        let Value::Array(names) = crit else {
            return Err(JoseError::Malformed("header member \"crit\" is not an array".to_owned()));
        };
        let Some(first) = names.first() else {
            return Err(JoseError::Malformed("header member \"crit\" is empty".to_owned()));
        };
        let Value::String(first) = first else {
            return Err(JoseError::Malformed("header member \"crit\" holds a non-string".to_owned()));
        };
        return Err(JoseError::Unsupported(format!(
            "critical header extension \"{}\" is not understood",
            snippet(first)
        )));
    }
    // RFC 7797 unencoded payloads change what the signature covers.
    match map.get("b64") {
        None | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => {
            return Err(JoseError::Unsupported("unencoded payloads (\"b64\": false) are not supported".to_owned()));
        }
        Some(_) => {
            return Err(JoseError::Malformed("header member \"b64\" is not a boolean".to_owned()));
        }
    }
    // RFC 7519 5.2: `cty: JWT` says the payload is another token (a nested JWS or JWE), whose
    // claims are the inner token's. This core does not open nested tokens, and reading the outer
    // payload as the claims would take what the issuer labelled as something else.
    // Content types are case-insensitive and may drop `application/` (RFC 7515 4.1.10).
    let cty = optional_string(&map, "cty")?;
    if let Some(cty) = &cty {
        let bare = match cty.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &cty[12..],
            _ => cty.as_str(),
        };
        if bare.eq_ignore_ascii_case("jwt") {
            return Err(JoseError::Unsupported("nested tokens (\"cty\": \"JWT\") are not supported".to_owned()));
        }
    }
    Ok(Header { alg, typ: optional_string(&map, "typ")?, cty, kid: optional_string(&map, "kid")? })
}

/// Decodes a token *without verifying it*, applying every structural and
/// header rule that [`Verifier::verify`] applies, so that what `decode` shows
/// is exactly what `verify` would have looked at. For display and debugging
/// only: nothing returned here is authenticated.
pub fn decode_unverified(token: &str, limits: &Limits) -> Result<(Header, Vec<u8>), JoseError> {
    UnverifiedToken::parse(token.as_bytes(), limits).map(UnverifiedToken::into_parts)
}

/// A compact JWS that passed every structural and header rule of
/// [`Verifier::verify`] but whose signature has not been checked yet.
///
/// Its header and payload are **not authenticated**. It exists so that a
/// policy engine can read the payload's `iss` to find the one provider whose
/// keys may verify the token, then verify with [`Verifier::verify_parsed`]
/// and decide on the same decoded payload.
#[derive(Debug, Clone)]
pub struct UnverifiedToken<'a> {
    header: Header,
    payload: Vec<u8>,
    signature: Vec<u8>,
    /// `header_b64 '.' payload_b64`: the bytes the signature covers.
    signing_input: &'a [u8],
}

impl<'a> UnverifiedToken<'a> {
    /// Splits and decodes a compact JWS: size, serialisation, segments,
    /// strict base64url, the header's rules. No key is involved.
    pub fn parse(token: &'a [u8], limits: &Limits) -> Result<UnverifiedToken<'a>, JoseError> {
        let parts = split(token, limits)?;
        let header = parse_header(parts.header_b64, limits)?;
        let payload = decode_part(parts.payload_b64, "payload")?;
        let signature = decode_part(parts.signature_b64, "signature")?;
        Ok(UnverifiedToken { header, payload, signature, signing_input: parts.signing_input })
    }

    /// The protected header (not authenticated until verified).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The decoded payload bytes (not authenticated until verified).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Gives up the token, keeping its header and payload.
    pub fn into_parts(self) -> (Header, Vec<u8>) {
        (self.header, self.payload)
    }
}

/// Whether a token's `typ` header names the media type a policy expects. RFC 7515 4.1.9: a
/// `typ` without a `/` stands for `application/` followed by it, and media types compare
/// case-insensitively; so `at+jwt`, `AT+JWT` and `application/at+jwt` are one type (RFC 9068
/// section 4 asks resource servers to accept both spellings).
pub fn typ_matches(typ: &str, expected: &str) -> bool {
    const APPLICATION: &str = "application/";
    fn short(t: &str) -> Option<&str> {
        match t.get(..APPLICATION.len()) {
            Some(prefix) if prefix.eq_ignore_ascii_case(APPLICATION) => t.get(APPLICATION.len()..),
            _ if t.contains('/') => None,
            _ => Some(t),
        }
    }
    match (short(typ), short(expected)) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, None) => typ.eq_ignore_ascii_case(expected),
        _ => false,
    }
}

/// Parses a verified payload as a JWT claims set: a JSON object with unique
/// member names at every depth, nested at most `limits.max_payload_depth`.
///
/// The signature core itself stays payload-agnostic (a JWS may sign any
/// bytes, and conformance vectors do), so this is a separate step the policy
/// evaluator calls; it returns the parsed object so nothing parses twice.
/// Duplicate claims are refused for the same reason as duplicate header
/// members: two parsers could otherwise read two different `sub`s.
pub fn check_payload_json(payload: &[u8], limits: &Limits) -> Result<Map<String, Value>, JoseError> {
    json::parse_object(payload, limits.max_payload_depth).map_err(|e| JoseError::BadPayload(e.to_string()))
}

/// ECDSA and Ed25519 signatures have one legal length (64, 96 or 132 bytes of
/// raw `r || s`, 64 for Ed25519). Refusing any other before a key is chosen
/// (DER-encoded ECDSA, zero padding, truncation) keeps malleable encodings
/// away from the crypto entirely.
pub(crate) fn check_signature_len(alg: Algorithm, signature: &[u8]) -> Result<(), JoseError> {
    match alg.fixed_signature_len() {
        Some(expected) if signature.len() != expected => {
            Err(JoseError::SignatureLength { alg: alg.name(), expected, actual: signature.len() })
        }
        _ => Ok(()),
    }
}

/// Verifies compact JWS tokens against one provider's keys and algorithms.
///
/// Build once per provider and share (`Send + Sync`); `verify` allocates only
/// the decoded parts and does no key parsing beyond what ring requires.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// Shared, so that verifiers for several algorithm sets (one per provider) can use one key
    /// set without copying it.
    keys: std::sync::Arc<KeySet>,
    algorithms: AlgorithmSet,
    limits: Limits,
}

impl Verifier {
    /// A verifier with default [`Limits`].
    pub fn new(keys: impl Into<std::sync::Arc<KeySet>>, algorithms: AlgorithmSet) -> Verifier {
        Verifier { keys: keys.into(), algorithms, limits: Limits::DEFAULT }
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: Limits) -> Verifier {
        self.limits = limits;
        self
    }

    /// The key set.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The allowed algorithms.
    pub fn algorithms(&self) -> AlgorithmSet {
        self.algorithms
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Verifies a compact JWS.
    ///
    /// Order of checks: size; serialisation (JSON, JWE); segment count;
    /// header (strict base64url, strict JSON, `alg`, `crit`, `b64`, member
    /// types); payload and signature decoding; algorithm allowed; signature
    /// shape; key selection (the key with the token's `kid`; when no key
    /// has that kid, or the token has none, every key without a kid (or, for
    /// a token without kid, every key) that fits the algorithm); signature
    /// verification.
    pub fn verify(&self, token: &[u8]) -> Result<Verified, JoseError> {
        let parsed = UnverifiedToken::parse(token, &self.limits)?;
        let key = self.verify_parsed(&parsed)?;
        let UnverifiedToken { header, payload, .. } = parsed;
        Ok(Verified { header, payload, key })
    }

    /// Verifies a token parsed with [`UnverifiedToken::parse`]: for callers
    /// that must read the (still unauthenticated) payload to choose which
    /// provider's keys verify it, without decoding the token twice. The size
    /// and header limits are those the token was parsed with: parse with
    /// [`Verifier::limits`] to apply this verifier's.
    pub fn verify_parsed(&self, token: &UnverifiedToken<'_>) -> Result<KeyRef, JoseError> {
        let alg = token.header.alg;
        if !self.algorithms.contains(alg) {
            return Err(JoseError::AlgorithmNotAllowed(alg));
        }
        let signature = token.signature.as_slice();
        check_signature_len(alg, signature)?;

        let key = match token.header.kid.as_deref() {
            Some(kid) if self.keys.keys.iter().any(|k| k.kid.as_deref() == Some(kid)) => {
                let key = self.key_by_kid(kid, alg)?;
                if !key.material.verify(alg, token.signing_input, signature) {
                    return Err(self.signature_error(key, alg, signature));
                }
                key
            }
            // RFC 7515 4.1.4: `kid` is a hint. When no configured key carries the token's kid,
            // the keys configured without one (PEM keys, a JWK without `kid`) are candidates, as
            // for a token without a kid; keys under another kid never are.
            Some(kid) => {
                let mut candidates = self.keys.keys.iter().filter(|k| k.kid.is_none() && k.fits(alg)).peekable();
                let Some(&first) = candidates.peek() else {
                    return Err(self.key_by_kid(kid, alg).err().unwrap_or(JoseError::NoMatchingKey { kid: None }));
                };
                match candidates.find(|k| k.material.verify(alg, token.signing_input, signature)) {
                    Some(key) => key,
                    None => return Err(self.signature_error(first, alg, signature)),
                }
            }
            None => {
                let mut candidates = self.keys.keys.iter().filter(|k| k.fits(alg)).peekable();
                let Some(&only) = candidates.peek() else {
                    return Err(JoseError::NoMatchingKey { kid: None });
                };
                match candidates.find(|k| k.material.verify(alg, token.signing_input, signature)) {
                    Some(key) => key,
                    None => return Err(self.signature_error(only, alg, signature)),
                }
            }
        };
        Ok(KeyRef { index: key.index, kid: key.kid.clone() })
    }

    /// Exact-match lookup; the kid is never interpreted (no paths, no URLs,
    /// no queries), only compared.
    fn key_by_kid(&self, kid: &str, alg: Algorithm) -> Result<&Key, JoseError> {
        match self.keys.keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
            Some(key) if key.fits(alg) => Ok(key),
            Some(key) => Err(JoseError::KeyUnusable(key.misfit_reason(alg))),
            // Skipped keys only keep an escaped, bounded kid; match on it only
            // when that copy is exact, to explain why a named key is absent.
            None => {
                match self.keys.skipped.iter().find(|s| {
                    kid.chars().count() <= SNIPPET_MAX_CHARS && s.kid.as_deref() == Some(snippet(kid).as_str())
                }) {
                    Some(skipped) => {
                        Err(JoseError::KeyUnusable(format!("key {} was not loaded: {}", skipped.index, skipped.reason)))
                    }
                    None => Err(JoseError::NoMatchingKey { kid: Some(snippet(kid)) }),
                }
            }
        }
    }

    /// For RSA, a signature whose length differs from the modulus is a shape
    /// error worth reporting as such; everything else is a plain failure.
    fn signature_error(&self, key: &Key, alg: Algorithm, signature: &[u8]) -> JoseError {
        match key.material.rsa_signature_len() {
            Some(expected) if expected != signature.len() && self.single_rsa_candidate(key, alg) => {
                JoseError::SignatureLength { alg: alg.name(), expected, actual: signature.len() }
            }
            _ => JoseError::BadSignature,
        }
    }

    fn single_rsa_candidate(&self, key: &Key, alg: Algorithm) -> bool {
        key.kid.is_some() || self.keys.keys.iter().filter(|k| k.fits(alg)).count() == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(header: &str, payload: &[u8], sig: &[u8]) -> String {
        format!("{}.{}.{}", b64::encode(header.as_bytes()), b64::encode(payload), b64::encode(sig))
    }

    #[test]
    fn header_rules() {
        let l = Limits::DEFAULT;
        let d = |h: &str| decode_unverified(&tok(h, b"{}", b"sig"), &l).map(|(h, _)| h);
        assert_eq!(d(r#"{"alg":"ES256","kid":"k","typ":"JWT"}"#).unwrap().kid.as_deref(), Some("k"));
        assert_eq!(d(r#"{"alg":"none"}"#).unwrap_err().code(), "alg_none");
        assert_eq!(d(r#"{"alg":"NoNe"}"#).unwrap_err().code(), "alg_none");
        assert_eq!(d(r#"{"alg":"HS256"}"#).unwrap_err().code(), "alg_symmetric");
        assert_eq!(d(r#"{"alg":"ES512"}"#).unwrap().alg, Algorithm::ES512);
        assert_eq!(d(r#"{"alg":"ES521"}"#).unwrap_err().code(), "alg_unknown");
        assert_eq!(d(r#"{"typ":"JWT"}"#).unwrap_err().code(), "malformed");
        assert_eq!(d(r#"{"alg":1}"#).unwrap_err().code(), "malformed");
        assert_eq!(d(r#"{"alg":"ES256","kid":1}"#).unwrap_err().code(), "malformed");
        assert_eq!(d(r#"{"alg":"ES256","crit":["exp"]}"#).unwrap_err().code(), "unsupported");
        assert_eq!(d(r#"{"alg":"ES256","crit":[]}"#).unwrap_err().code(), "malformed");
        assert_eq!(d(r#"{"alg":"ES256","crit":"b64"}"#).unwrap_err().code(), "malformed");
        assert_eq!(d(r#"{"alg":"ES256","crit":[1]}"#).unwrap_err().code(), "malformed");
        assert_eq!(d(r#"{"alg":"ES256","b64":false}"#).unwrap_err().code(), "unsupported");
        assert_eq!(d(r#"{"alg":"ES256","b64":"no"}"#).unwrap_err().code(), "malformed");
        assert!(d(r#"{"alg":"ES256","b64":true}"#).is_ok());
        assert_eq!(d(r#"{"alg":"ES256","alg":"ES256"}"#).unwrap_err().code(), "malformed");
        assert_eq!(d(r#"{"alg":"ES256","x":{"a":{"b":{"c":{}}}}}"#).unwrap_err().code(), "malformed");
        assert_eq!(d(r#"["alg"]"#).unwrap_err().code(), "malformed");
    }

    #[test]
    fn segments() {
        let l = Limits::DEFAULT;
        assert_eq!(decode_unverified("a.b", &l).unwrap_err().code(), "malformed");
        assert_eq!(decode_unverified("a.b.c.d", &l).unwrap_err().code(), "malformed");
        assert_eq!(decode_unverified("a.b.c.d.e", &l).unwrap_err().code(), "unsupported");
        assert_eq!(decode_unverified(" {\"payload\":1}", &l).unwrap_err().code(), "unsupported");
        assert_eq!(decode_unverified("", &l).unwrap_err().code(), "malformed");
        let big = "a".repeat(l.max_token_bytes + 1);
        assert_eq!(decode_unverified(&big, &l).unwrap_err().code(), "too_large");
        let header = format!(r#"{{"alg":"ES256","pad":"{}"}}"#, "x".repeat(5000));
        assert_eq!(decode_unverified(&tok(&header, b"", b""), &l).unwrap_err().code(), "too_large");
    }

    #[test]
    fn typ_media_types() {
        for (typ, expected, matches) in [
            ("at+jwt", "at+jwt", true),
            ("AT+JWT", "at+jwt", true),
            ("application/at+jwt", "at+jwt", true),
            ("Application/AT+JWT", "at+jwt", true),
            ("at+jwt", "application/at+jwt", true),
            ("JWT", "jwt", true),
            ("jwt", "at+jwt", false),
            ("application/jwt", "at+jwt", false),
            ("text/at+jwt", "at+jwt", false),
            ("text/at+jwt", "text/AT+JWT", true),
            ("application/", "at+jwt", false),
            ("", "at+jwt", false),
        ] {
            assert_eq!(typ_matches(typ, expected), matches, "{typ} vs {expected}");
            assert_eq!(typ_matches(expected, typ), matches, "{expected} vs {typ}");
        }
    }

    #[test]
    fn payload_check() {
        let l = Limits::DEFAULT;
        assert!(check_payload_json(br#"{"sub":"a"}"#, &l).is_ok());
        let e = check_payload_json(br#"{"sub":"a","sub":"b"}"#, &l).unwrap_err();
        assert_eq!(e.code(), "bad_payload");
        assert_eq!(e.to_string(), "bad payload: duplicate json member \"sub\"");
        assert_eq!(check_payload_json(b"[1]", &l).unwrap_err().code(), "bad_payload");
        assert_eq!(check_payload_json(b"foo", &l).unwrap_err().code(), "bad_payload");
    }
}
