//! Strict base64url (RFC 7515 sec. 2, RFC 4648 sec. 5 without padding).
//!
//! Strictness matters for JWS because the signature covers the *encoded*
//! header and payload: a lenient decoder lets many different strings decode
//! to the same bytes, so a verifier and a downstream parser can disagree
//! about what was signed. We therefore accept exactly one encoding per byte
//! string: URL-safe alphabet only, no `=` padding, no whitespace, and the
//! unused low bits of the last character must be zero (base64's
//! `URL_SAFE_NO_PAD` engine enforces this by default; tests pin it).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The strict decode failed. Deliberately carries no input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError;

/// Decodes strict base64url into a new vector.
pub fn decode(input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = vec![0u8; decoded_len_upper(input.len())];
    let n = URL_SAFE_NO_PAD.decode_slice(input, &mut out).map_err(|_| DecodeError)?;
    out.truncate(n);
    Ok(out)
}

/// Encodes bytes as base64url without padding.
pub fn encode(input: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(input)
}

/// An upper bound on the decoded size of `encoded_len` base64 characters,
/// used to size buffers and to reject oversized parts before decoding.
pub fn decoded_len_upper(encoded_len: usize) -> usize {
    (encoded_len / 4).saturating_mul(3).saturating_add((encoded_len % 4) * 3 / 4 + 1)
}

/// The encoded length of `decoded_len` bytes (no padding).
pub fn encoded_len(decoded_len: usize) -> usize {
    (decoded_len / 3).saturating_mul(4).saturating_add((decoded_len % 3 * 4).div_ceil(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for len in 0..64 {
            let data: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
            let enc = encode(&data);
            assert_eq!(enc.len(), encoded_len(len));
            assert!(decoded_len_upper(enc.len()) >= len);
            assert_eq!(decode(enc.as_bytes()), Ok(data));
        }
    }

    #[test]
    fn length_helpers_saturate() {
        assert_eq!(encoded_len(usize::MAX), usize::MAX);
        assert_eq!(decoded_len_upper(usize::MAX), usize::MAX / 4 * 3 + 3);
    }

    #[test]
    fn rejects_padding() {
        assert_eq!(decode(b"Zm9v"), Ok(b"foo".to_vec()));
        assert_eq!(decode(b"Zm8"), Ok(b"fo".to_vec()));
        assert_eq!(decode(b"Zm8="), Err(DecodeError));
        assert_eq!(decode(b"Zg=="), Err(DecodeError));
    }

    #[test]
    fn rejects_standard_alphabet_and_junk() {
        assert_eq!(decode(b"-_-_"), Ok(vec![0xfb, 0xff, 0xbf]));
        assert_eq!(decode(b"+/+/"), Err(DecodeError));
        assert_eq!(decode(b"Zm9 v"), Err(DecodeError));
        assert_eq!(decode(b"Zm9v\n"), Err(DecodeError));
        assert_eq!(decode(b"Zm?9v"), Err(DecodeError));
        // A single leftover character can never encode a whole byte.
        assert_eq!(decode(b"Zm9vZ"), Err(DecodeError));
    }

    #[test]
    fn rejects_non_canonical_trailing_bits() {
        // "AA" is the canonical encoding of [0]; "AB".."AP" set unused bits.
        assert_eq!(decode(b"AA"), Ok(vec![0]));
        for c in b"BCDEFGHIJKLMNOP" {
            assert_eq!(decode(&[b'A', *c]), Err(DecodeError), "A{}", *c as char);
        }
        // Two bytes: 3 chars, the last carries 2 unused bits.
        assert_eq!(decode(b"AAA"), Ok(vec![0, 0]));
        assert_eq!(decode(b"AAB"), Err(DecodeError));
        assert_eq!(decode(b"AAE"), Ok(vec![0, 1]));
    }
}
