//! PEM armour and just enough DER to find a public key.
//!
//! Accepted blocks: `PUBLIC KEY` (SubjectPublicKeyInfo), `RSA PUBLIC KEY`
//! (PKCS#1 RSAPublicKey) and `CERTIFICATE` (X.509, for its
//! SubjectPublicKeyInfo only). A certificate is treated purely as a container
//! for a key: its signature, validity period and extensions are *not*
//! checked, because trust comes from the operator having configured it, not
//! from a chain. Any block whose label ends in `PRIVATE KEY` fails the load;
//! other labels are skipped and reported.
//!
//! The DER reader is deliberately tiny: single-byte tags, definite
//! minimal-length encodings only, every length checked against what remains,
//! no recursion beyond the fixed structures we walk. RustCrypto's `der` /
//! `spki` / `x509-cert` would do the job too, but for the five fields we read
//! a hundred audited lines cost less than a dependency tree.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::alg::Family;
use crate::error::{KeyError, SkippedKey, snippet};
use crate::key::{Key, KeyLimits, KeySet, Material};

impl KeySet {
    /// Loads every key found in PEM text (one or more blocks; text between
    /// blocks is ignored). PEM keys have no `kid` and no `alg`: they are
    /// candidates for every algorithm of their key type, and are reported
    /// by block position (0-based, counting every block).
    pub fn from_pem(text: &str) -> Result<KeySet, KeyError> {
        KeySet::from_pem_with_limits(text, &KeyLimits::default())
    }

    /// [`KeySet::from_pem`] with limits other than the defaults: the text size is checked before
    /// parsing, the number of blocks (keys or not) before any block is decoded.
    pub fn from_pem_with_limits(text: &str, limits: &KeyLimits) -> Result<KeySet, KeyError> {
        limits.check_size(text.len())?;
        // Counted before any block is decoded, with the test `parse_blocks` uses for a block.
        limits.check_count(text.lines().filter(|line| begin_label(line).is_some()).count())?;
        let blocks = parse_blocks(text)?;
        if blocks.is_empty() {
            return Err(KeyError::Malformed("no pem block found".to_owned()));
        }
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (index, block) in blocks.into_iter().enumerate() {
            let material = match block.label.as_str() {
                "PUBLIC KEY" => spki(&block.der),
                "RSA PUBLIC KEY" => pkcs1(&block.der).map(|m| (m, false)),
                "CERTIFICATE" => certificate_spki(&block.der).and_then(spki),
                label if label.ends_with("PRIVATE KEY") => {
                    return Err(KeyError::PrivateKey { index });
                }
                other => Err(format!("unsupported pem block \"{}\"", snippet(other))),
            };
            match material {
                Ok((material, pss_only)) => keys.push(Key { index, kid: None, alg: None, pss_only, material }),
                Err(reason) => skipped.push(SkippedKey { index, kid: None, reason }),
            }
        }
        KeySet::build(keys, skipped)
    }
}

struct Block {
    label: String,
    der: Vec<u8>,
}

/// The label of a `-----BEGIN LABEL-----` line.
fn begin_label(line: &str) -> Option<&str> {
    line.trim().strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----"))
}

/// Splits PEM text into blocks (RFC 7468 "lax" parsing: any whitespace
/// inside the base64 body, text outside blocks ignored). Encapsulated
/// headers (`Proc-Type:` and friends, i.e. legacy encrypted keys) are refused.
fn parse_blocks(text: &str) -> Result<Vec<Block>, KeyError> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = begin_label(line) else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for line in lines.by_ref() {
            let line = line.trim();
            if line == end {
                closed = true;
                break;
            }
            if line.starts_with("-----") {
                break;
            }
            if line.contains(':') {
                return Err(KeyError::Malformed(format!(
                    "pem block \"{}\" has encapsulated headers (encrypted or legacy pem)",
                    snippet(label)
                )));
            }
            body.extend(line.chars().filter(|c| !c.is_ascii_whitespace()));
        }
        if !closed {
            return Err(KeyError::Malformed(format!("pem block \"{}\" has no matching end line", snippet(label))));
        }
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|_| KeyError::Malformed(format!("pem block \"{}\" is not valid base64", snippet(label))))?;
        blocks.push(Block { label: label.to_owned(), der });
    }
    Ok(blocks)
}

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_VERSION: u8 = 0xa0;

// DER contents (without tag/length) of the object identifiers we know.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// A cursor over DER bytes.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// Reads one TLV, returning its tag and contents.
    fn any(&mut self) -> Result<(u8, &'a [u8]), String> {
        let bad = || "truncated or invalid der".to_owned();
        let (&tag, rest) = self.0.split_first().ok_or_else(bad)?;
        if tag & 0x1f == 0x1f {
            return Err("der high tag numbers are not supported".to_owned());
        }
        let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 3 {
                // 0x80 is BER's indefinite length; > 3 bytes is > 16 MiB.
                return Err("der length is indefinite or too long".to_owned());
            }
            let (len_bytes, after) = rest.split_at_checked(count).ok_or_else(bad)?;
            rest = after;
            let len = len_bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            // Minimal encoding: long form only for >= 128, no leading zero.
            if len < 0x80 || len_bytes.first() == Some(&0) {
                return Err("der length is not minimally encoded".to_owned());
            }
            len
        };
        let (contents, after) = rest.split_at_checked(len).ok_or_else(bad)?;
        self.0 = after;
        Ok((tag, contents))
    }

    fn expect_tag(&mut self, tag: u8) -> Result<&'a [u8], String> {
        match self.any()? {
            (t, contents) if t == tag => Ok(contents),
            _ => Err("unexpected der structure".to_owned()),
        }
    }

    fn finish(&self) -> Result<(), String> {
        if self.is_empty() { Ok(()) } else { Err("trailing data after der structure".to_owned()) }
    }
}

/// A DER INTEGER that must be positive; returns the magnitude bytes.
fn positive_integer(contents: &[u8]) -> Result<&[u8], String> {
    match contents {
        [] => Err("empty der integer".to_owned()),
        [0, next, ..] if *next < 0x80 => Err("der integer is not minimally encoded".to_owned()),
        [0, rest @ ..] => Ok(rest),
        [first, ..] if *first >= 0x80 => Err("der integer is negative".to_owned()),
        _ => Ok(contents),
    }
}

/// PKCS#1 RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
fn pkcs1(der: &[u8]) -> Result<Material, String> {
    let mut outer = Der(der);
    let mut seq = Der(outer.expect_tag(TAG_SEQUENCE)?);
    outer.finish()?;
    let n = positive_integer(seq.expect_tag(TAG_INTEGER)?)?;
    let e = positive_integer(seq.expect_tag(TAG_INTEGER)?)?;
    seq.finish()?;
    Material::rsa(n, e)
}

/// SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier,
///                                     subjectPublicKey BIT STRING }
///
/// Returns the key and whether it is an RSASSA-PSS key (PS256/384/512 only).
fn spki(der: &[u8]) -> Result<(Material, bool), String> {
    let mut outer = Der(der);
    let mut seq = Der(outer.expect_tag(TAG_SEQUENCE)?);
    outer.finish()?;
    let mut alg_id = Der(seq.expect_tag(TAG_SEQUENCE)?);
    let bits = seq.expect_tag(TAG_BIT_STRING)?;
    seq.finish()?;
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err("public key bit string has unused bits".to_owned()),
    };
    let oid = alg_id.expect_tag(TAG_OID)?;
    match oid {
        OID_RSA => {
            // Parameters must be NULL (RFC 3279); tolerate their absence.
            if !alg_id.is_empty() {
                let null = alg_id.expect_tag(TAG_NULL)?;
                if !null.is_empty() {
                    return Err("rsa algorithm parameters are not null".to_owned());
                }
            }
            alg_id.finish()?;
            pkcs1(key).map(|m| (m, false))
        }
        OID_EC => {
            if alg_id.peek_tag() != Some(TAG_OID) {
                return Err("ec keys with explicit curve parameters are not supported".to_owned());
            }
            let curve = alg_id.expect_tag(TAG_OID)?;
            alg_id.finish()?;
            let family = match curve {
                OID_P256 => Family::P256,
                OID_P384 => Family::P384,
                OID_P521 => Family::P521,
                _ => return Err("unsupported ec curve".to_owned()),
            };
            Material::ec_sec1(family, key).map(|m| (m, false))
        }
        OID_ED25519 => {
            alg_id.finish()?;
            Material::ed25519(key).map(|m| (m, false))
        }
        // RFC 4055: an RSASSA-PSS key without parameters (what `openssl genpkey -algorithm
        // RSA-PSS` writes) verifies PS256, PS384 and PS512. Parameters would restrict it to one
        // hash and salt length; such keys are refused rather than half-honoured.
        OID_RSA_PSS if alg_id.is_empty() => pkcs1(key).map(|m| (m, true)),
        OID_RSA_PSS => {
            Err("rsa-pss keys restricted by parameters are not supported; export the key without restrictions"
                .to_owned())
        }
        _ => Err("unsupported public key algorithm".to_owned()),
    }
}

/// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
/// TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber,
///     signature, issuer, validity, subject, subjectPublicKeyInfo, ... }
///
/// Returns the whole DER of subjectPublicKeyInfo (tag and length included).
fn certificate_spki(der: &[u8]) -> Result<&[u8], String> {
    let mut outer = Der(der);
    let mut cert = Der(outer.expect_tag(TAG_SEQUENCE)?);
    outer.finish()?;
    let mut tbs = Der(cert.expect_tag(TAG_SEQUENCE)?);
    if tbs.peek_tag() == Some(TAG_VERSION) {
        tbs.any()?;
    }
    tbs.expect_tag(TAG_INTEGER)?; // serialNumber
    tbs.expect_tag(TAG_SEQUENCE)?; // signature algorithm
    tbs.expect_tag(TAG_SEQUENCE)?; // issuer
    tbs.expect_tag(TAG_SEQUENCE)?; // validity
    tbs.expect_tag(TAG_SEQUENCE)?; // subject
    let before = tbs.0;
    tbs.expect_tag(TAG_SEQUENCE)?; // subjectPublicKeyInfo
    let used = before.len() - tbs.0.len();
    before.get(..used).ok_or_else(|| "truncated or invalid der".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_are_strict() {
        assert!(Der(&[0x30, 0x80, 0, 0]).any().is_err());
        assert!(Der(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0]).any().is_err());
        assert!(Der(&[0x30, 0x82, 0x00, 0x80]).any().is_err());
        assert!(Der(&[0x30, 0x03, 0, 0]).any().is_err());
        assert!(Der(&[0x1f, 0x00]).any().is_err());
        assert_eq!(Der(&[0x30, 0x01, 7]).any(), Ok((0x30, &[7u8][..])));
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([0u8; 0x80]);
        assert_eq!(Der(&long).any().map(|(_, c)| c.len()), Ok(0x80));
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(positive_integer(&[0x00, 0x80]), Ok(&[0x80u8][..]));
        assert!(positive_integer(&[0x00, 0x7f]).is_err());
        assert!(positive_integer(&[0x80]).is_err());
        assert!(positive_integer(&[]).is_err());
        assert_eq!(positive_integer(&[0x01]), Ok(&[0x01u8][..]));
    }

    #[test]
    fn pem_blocks() {
        let text = "junk\n-----BEGIN FOO-----\nAAEC\nAw==\n-----END FOO-----\ntrailer";
        let blocks = parse_blocks(text).unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].label, "FOO");
        assert_eq!(blocks[0].der, vec![0, 1, 2, 3]);
        assert!(parse_blocks("-----BEGIN FOO-----\nAAEC\n").is_err());
        assert!(parse_blocks("-----BEGIN FOO-----\nProc-Type: 4\n-----END FOO-----").is_err());
        assert!(parse_blocks("-----BEGIN FOO-----\nA*EC\n-----END FOO-----").is_err());
        let err = KeySet::from_pem("-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----").unwrap_err();
        assert_eq!(err, KeyError::PrivateKey { index: 0 });
        assert_eq!(KeySet::from_pem("hello").unwrap_err().code(), "key_malformed");
    }
}
