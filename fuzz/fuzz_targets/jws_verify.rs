//! Signature verification over a fixed key set: arbitrary bytes, and structured mutations of
//! valid tokens signed with the fixture's keys.
//!
//! Input: the first byte picks the mode. Even: the rest is the token, verified as is. Odd: the
//! rest is read with `arbitrary` as a `Plan`: which valid token to start from, which algorithms
//! the verifier allows, and a list of mutations (bit flips in the text or in a decoded segment,
//! segment swaps, duplicates and splices, `alg` and other header changes, base64 re-encodings
//! with padding or the standard alphabet, byte insertions and deletions, truncation).
//!
//! Oracle: never a panic; every error is safe to show; a token that verifies is byte-identical
//! to one of the fixture's valid tokens (the core admits one encoding per value, so a token
//! whose decoded header, payload and signature are the original ones but whose text differs
//! must be refused too), its algorithm is allowed, and it verifies to the original's header and
//! payload; `decode_unverified` agrees with what verified.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use claimgate_fuzz::{Original, check_jose_error, decode_lenient, encode_flavour, fixture};
use claimgate_jose::{AlgorithmSet, Limits, Verifier, b64, decode_unverified};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Plan {
    base: u8,
    /// Algorithms the verifier allows (bit i = `Algorithm::ALL[i]`), or every one.
    algorithms: Option<u16>,
    mutations: Vec<Mutation>,
}

#[derive(Arbitrary, Debug)]
enum AlgName {
    Known(u8),
    None,
    NoneCased,
    Hs256,
    Es512,
    Other(String),
}

impl AlgName {
    fn value(&self) -> serde_json::Value {
        const KNOWN: [&str; 10] =
            ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "ES512"];
        serde_json::Value::String(match self {
            AlgName::Known(i) => KNOWN[*i as usize % KNOWN.len()].to_owned(),
            AlgName::None => "none".to_owned(),
            AlgName::NoneCased => "nOnE".to_owned(),
            AlgName::Hs256 => "HS256".to_owned(),
            AlgName::Es512 => "ES512".to_owned(),
            AlgName::Other(s) => s.clone(),
        })
    }
}

#[derive(Arbitrary, Debug)]
enum HeaderValue {
    Str(String),
    Kid(u8),
    Int(i64),
    Bool(bool),
    Null,
    StrList(Vec<String>),
    Object,
}

impl HeaderValue {
    fn value(&self) -> serde_json::Value {
        use serde_json::{Value, json};
        match self {
            HeaderValue::Str(s) => Value::String(s.clone()),
            HeaderValue::Kid(i) => json!(["ed", "p256", "rsa", "", "ED", "ed\u{0}"][*i as usize % 6]),
            HeaderValue::Int(i) => json!(i),
            HeaderValue::Bool(b) => json!(b),
            HeaderValue::Null => Value::Null,
            HeaderValue::StrList(l) => json!(l),
            HeaderValue::Object => json!({}),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Mutation {
    /// Flip one bit of the token text.
    FlipTextBit { at: u16, bit: u8 },
    /// Flip one bit of a decoded segment and re-encode it strictly.
    FlipDecodedBit { segment: u8, at: u16, bit: u8 },
    /// Swap two segments.
    SwapSegments { a: u8, b: u8 },
    /// Repeat a segment in place (four segments or more).
    DuplicateSegment { segment: u8 },
    /// Remove a segment.
    RemoveSegment { segment: u8 },
    /// Replace a segment with the same segment of another valid token.
    Splice { segment: u8, other: u8 },
    /// Set `alg` in the header (re-serialised, re-encoded; signature unchanged).
    SetAlg(AlgName),
    /// Set any header member (`kid`, `crit`, `b64`, `typ`, `jwk`, ...).
    SetHeaderMember { name: HeaderName, value: HeaderValue },
    /// Remove a header member.
    RemoveHeaderMember(HeaderName),
    /// Replace the header with raw bytes (duplicate members, bad JSON, ...), strictly encoded.
    RawHeader(Vec<u8>),
    /// Replace the signature with raw bytes, strictly encoded.
    RawSignature(Vec<u8>),
    /// Re-encode a segment with padding and/or the standard alphabet.
    Reencode { segment: u8, padding: bool, standard: bool },
    /// Insert a byte.
    Insert { at: u16, byte: u8 },
    /// Delete a byte.
    Delete { at: u16 },
    /// Keep a prefix.
    Truncate { len: u16 },
    /// Append whitespace or a line break, as a careless client would.
    AppendWhitespace(u8),
}

#[derive(Arbitrary, Debug)]
enum HeaderName {
    Alg,
    Kid,
    Typ,
    Cty,
    Crit,
    B64,
    Jwk,
    Jku,
    X5c,
    Other(String),
}

impl HeaderName {
    fn name(&self) -> &str {
        match self {
            HeaderName::Alg => "alg",
            HeaderName::Kid => "kid",
            HeaderName::Typ => "typ",
            HeaderName::Cty => "cty",
            HeaderName::Crit => "crit",
            HeaderName::B64 => "b64",
            HeaderName::Jwk => "jwk",
            HeaderName::Jku => "jku",
            HeaderName::X5c => "x5c",
            HeaderName::Other(s) => s,
        }
    }
}

fn segments(token: &[u8]) -> Vec<Vec<u8>> {
    token.split(|b| *b == b'.').map(<[u8]>::to_vec).collect()
}

fn join(segments: &[Vec<u8>]) -> Vec<u8> {
    segments.join(&b'.')
}

/// Applies `f` to the decoded header as a JSON object, if it is one; re-encodes strictly.
fn edit_header(token: &mut Vec<u8>, f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let mut parts = segments(token);
    let Some(header) = parts.first().and_then(|h| decode_lenient(h)) else { return };
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice::<serde_json::Value>(&header) else { return };
    f(&mut map);
    parts[0] = b64::encode(serde_json::Value::Object(map).to_string().as_bytes()).into_bytes();
    *token = join(&parts);
}

fn apply(token: &mut Vec<u8>, mutation: &Mutation, originals: &[Original]) {
    let n = segments(token).len();
    let pick = |i: u8| i as usize % n;
    match mutation {
        Mutation::FlipTextBit { at, bit } => {
            if !token.is_empty() {
                let at = *at as usize % token.len();
                token[at] ^= 1 << (bit % 8);
            }
        }
        Mutation::FlipDecodedBit { segment, at, bit } => {
            let mut parts = segments(token);
            let i = pick(*segment);
            if let Some(mut bytes) = decode_lenient(&parts[i])
                && !bytes.is_empty()
            {
                let at = *at as usize % bytes.len();
                bytes[at] ^= 1 << (bit % 8);
                parts[i] = b64::encode(&bytes).into_bytes();
                *token = join(&parts);
            }
        }
        Mutation::SwapSegments { a, b } => {
            let mut parts = segments(token);
            parts.swap(pick(*a), pick(*b));
            *token = join(&parts);
        }
        Mutation::DuplicateSegment { segment } => {
            let mut parts = segments(token);
            let i = pick(*segment);
            parts.insert(i, parts[i].clone());
            *token = join(&parts);
        }
        Mutation::RemoveSegment { segment } => {
            let mut parts = segments(token);
            parts.remove(pick(*segment));
            *token = join(&parts);
        }
        Mutation::Splice { segment, other } => {
            let mut parts = segments(token);
            let i = pick(*segment);
            let other = &originals[*other as usize % originals.len()];
            if let Some(replacement) = other.token.split('.').nth(i) {
                parts[i] = replacement.as_bytes().to_vec();
                *token = join(&parts);
            }
        }
        Mutation::SetAlg(name) => edit_header(token, |map| {
            map.insert("alg".to_owned(), name.value());
        }),
        Mutation::SetHeaderMember { name, value } => edit_header(token, |map| {
            map.insert(name.name().to_owned(), value.value());
        }),
        Mutation::RemoveHeaderMember(name) => edit_header(token, |map| {
            map.remove(name.name());
        }),
        Mutation::RawHeader(bytes) => {
            let mut parts = segments(token);
            parts[0] = b64::encode(bytes).into_bytes();
            *token = join(&parts);
        }
        Mutation::RawSignature(bytes) => {
            let mut parts = segments(token);
            let last = parts.len() - 1;
            parts[last] = b64::encode(bytes).into_bytes();
            *token = join(&parts);
        }
        Mutation::Reencode { segment, padding, standard } => {
            let mut parts = segments(token);
            let i = pick(*segment);
            if let Some(bytes) = decode_lenient(&parts[i]) {
                parts[i] = encode_flavour(&bytes, *padding, *standard).into_bytes();
                *token = join(&parts);
            }
        }
        Mutation::Insert { at, byte } => {
            let at = *at as usize % (token.len() + 1);
            token.insert(at, *byte);
        }
        Mutation::Delete { at } => {
            if !token.is_empty() {
                let at = *at as usize % token.len();
                token.remove(at);
            }
        }
        Mutation::Truncate { len } => token.truncate(*len as usize),
        Mutation::AppendWhitespace(which) => token.push([b' ', b'\n', b'\r', b'\t'][*which as usize % 4]),
    }
}

fn check(verifier: &Verifier, token: &[u8], originals: &[Original]) {
    let result = verifier.verify(token);
    match &result {
        Err(error) => check_jose_error(error),
        Ok(verified) => {
            let Some(original) = originals.iter().find(|o| o.token.as_bytes() == token) else {
                panic!("accepted a token that is not one of the valid originals: {:?}", String::from_utf8_lossy(token));
            };
            assert!(verifier.algorithms().contains(original.alg), "accepted {} outside the allowed set", original.alg);
            assert_eq!(verified.header.alg, original.alg);
            assert_eq!(verified.payload, original.payload);
            let (header, payload) =
                decode_unverified(&original.token, &Limits::DEFAULT).expect("a token that verifies decodes");
            assert_eq!(header, verified.header);
            assert_eq!(payload, verified.payload);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        check(&fixture.verifier, rest, &fixture.originals);
        return;
    }
    let Ok(plan) = Plan::arbitrary_take_rest(Unstructured::new(rest)) else { return };
    let original = &fixture.originals[plan.base as usize % fixture.originals.len()];
    let mut token = original.token.as_bytes().to_vec();
    for mutation in plan.mutations.iter().take(8) {
        apply(&mut token, mutation, &fixture.originals);
    }
    let verifier = match plan.algorithms {
        None => fixture.verifier.clone(),
        Some(bits) => Verifier::new(fixture.keys.clone(), AlgorithmSet::from_bits(bits)),
    };
    check(&verifier, &token, &fixture.originals);
});
