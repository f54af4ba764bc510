//! Prepared public keys and the [`KeySet`] that holds them.
//!
//! Every check that can be done once is done here, at load time, so a bad key
//! is reported when the configuration is read rather than when the first
//! token arrives: RSA moduli of 2048..=8192 bits with an odd exponent of at
//! least 3 (and no ROCA fingerprint), EC points on their curve, Ed25519 keys
//! that decode to a point of large order. The per-token path only hands the
//! prepared bytes to ring, or, for ES512, the prepared key to RustCrypto's
//! `p521` (ring has no P-521).

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

use crate::alg::{Algorithm, Family};
use crate::error::{KeyError, SkippedKey, snippet};

/// Smallest RSA modulus accepted, in bits (ring's verify floor as well).
pub const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (ring's verify ceiling).
pub const RSA_MAX_BITS: usize = 8192;

/// What kind of key a [`KeySet`] entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// An RSA key; serves RS256/384/512 and PS256/384/512.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
    /// An EC key on P-256; serves ES256.
    P256,
    /// An EC key on P-384; serves ES384.
    P384,
    /// An EC key on P-521; serves ES512.
    P521,
    /// An Ed25519 key; serves EdDSA.
    Ed25519,
}

/// A read-only view of one loaded key, for listing and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo<'a> {
    /// Position of the key in its input (JWKS array index or PEM block).
    pub index: usize,
    /// The key's `kid`, if any.
    pub kid: Option<&'a str>,
    /// The key type.
    pub kind: KeyKind,
    /// The single algorithm the key is bound to, if its JWK named one.
    pub alg: Option<Algorithm>,
}

#[derive(Debug, Clone)]
pub(crate) enum Material {
    /// Modulus and exponent without leading zeros, as ring wants them;
    /// `len` is the modulus length in bytes (= the signature length).
    Rsa { components: RsaPublicKeyComponents<Vec<u8>>, bits: usize },
    /// Uncompressed SEC1 point `04 || x || y`, validated.
    P256(Vec<u8>),
    /// Uncompressed SEC1 point `04 || x || y`, validated.
    P384(Vec<u8>),
    /// A P-521 point, validated, prepared for RustCrypto's verifier.
    P521(P521Key),
    /// The 32-byte encoded point, validated.
    Ed25519(Vec<u8>),
}

impl Material {
    pub(crate) fn family(&self) -> Family {
        match self {
            Material::Rsa { .. } => Family::Rsa,
            Material::P256(_) => Family::P256,
            Material::P384(_) => Family::P384,
            Material::P521(_) => Family::P521,
            Material::Ed25519(_) => Family::Ed25519,
        }
    }

    pub(crate) fn kind(&self) -> KeyKind {
        match self {
            Material::Rsa { bits, .. } => KeyKind::Rsa { bits: *bits },
            Material::P256(_) => KeyKind::P256,
            Material::P384(_) => KeyKind::P384,
            Material::P521(_) => KeyKind::P521,
            Material::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Material::Rsa { .. } => "an rsa key",
            Material::P256(_) => "an ec p-256 key",
            Material::P384(_) => "an ec p-384 key",
            Material::P521(_) => "an ec p-521 key",
            Material::Ed25519(_) => "an ed25519 key",
        }
    }

    /// Builds an RSA key from big-endian modulus and exponent.
    ///
    /// Leading zero octets are stripped rather than refused: RFC 7518 asks
    /// issuers for minimal encodings, some do not comply, and the zeros do
    /// not change the value.
    pub(crate) fn rsa(n: &[u8], e: &[u8]) -> Result<Material, String> {
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        let bits = bit_len(n);
        if bits < RSA_MIN_BITS {
            return Err(format!("rsa modulus is {bits} bits, at least {RSA_MIN_BITS} are required"));
        }
        if bits > RSA_MAX_BITS {
            return Err(format!("rsa modulus is {bits} bits, at most {RSA_MAX_BITS} are supported"));
        }
        if n.last().is_none_or(|b| b & 1 == 0) {
            return Err("rsa modulus is even".to_owned());
        }
        // ring accepts exponents in [3, 2^33 - 1]; anything else (e = 1 makes
        // the "signature" the message itself) is refused here, at load time.
        let mut e_value: u64 = 0;
        if e.len() > 5 {
            return Err("rsa public exponent is too large".to_owned());
        }
        for &b in e {
            e_value = (e_value << 8) | u64::from(b);
        }
        if e_value < 3 {
            return Err(format!("rsa public exponent {e_value} is too small"));
        }
        if e_value & 1 == 0 {
            return Err("rsa public exponent must be odd".to_owned());
        }
        if e_value >= 1 << 33 {
            return Err("rsa public exponent is too large".to_owned());
        }
        if has_roca_fingerprint(n) {
            return Err(
                "rsa modulus has the roca fingerprint (cve-2017-15361): its private key is recoverable".to_owned()
            );
        }
        Ok(Material::Rsa { components: RsaPublicKeyComponents { n: n.to_vec(), e: e.to_vec() }, bits })
    }

    /// Builds an EC key from big-endian affine coordinates, which must be
    /// exactly the field size and satisfy the curve equation.
    pub(crate) fn ec(family: Family, x: &[u8], y: &[u8]) -> Result<Material, String> {
        let curve = match family {
            Family::P256 => &curves::P256,
            Family::P384 => &curves::P384,
            Family::P521 => &curves::P521,
            _ => return Err("not an ec curve".to_owned()),
        };
        if x.len() != curve.size || y.len() != curve.size {
            return Err(format!("ec coordinates for {} must be {} bytes each", curve.name, curve.size));
        }
        if !curves::on_weierstrass_curve(curve, x, y) {
            return Err(format!("ec point is not on {}", curve.name));
        }
        let mut point = Vec::with_capacity(1 + 2 * curve.size);
        point.push(4);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        Ok(match family {
            Family::P256 => Material::P256(point),
            Family::P384 => Material::P384(point),
            // p521 validates the point again (coordinates below p, on the curve, not the
            // identity); after the check above it cannot refuse, but if it ever did the key
            // would be refused here, at load, not when a token arrives.
            _ => Material::P521(P521Key(
                p521::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                    .map_err(|_| format!("ec point is not on {}", curve.name))?,
            )),
        })
    }

    /// Builds an EC key from an uncompressed SEC1 point (`04 || x || y`).
    pub(crate) fn ec_sec1(family: Family, point: &[u8]) -> Result<Material, String> {
        let size = match family {
            Family::P256 => curves::P256.size,
            Family::P384 => curves::P384.size,
            Family::P521 => curves::P521.size,
            _ => return Err("not an ec curve".to_owned()),
        };
        match point.split_first() {
            Some((4, xy)) if xy.len() == 2 * size => {
                let (x, y) = xy.split_at(size);
                Material::ec(family, x, y)
            }
            Some((2 | 3, _)) => Err("compressed ec points are not supported".to_owned()),
            _ => Err("ec point is not an uncompressed point of the right size".to_owned()),
        }
    }

    /// Builds an Ed25519 key from its 32-byte encoding (RFC 8032 5.1.3).
    pub(crate) fn ed25519(x: &[u8]) -> Result<Material, String> {
        if x.len() != 32 {
            return Err(format!("ed25519 public key must be 32 bytes, got {}", x.len()));
        }
        curves::check_ed25519(x)?;
        Ok(Material::Ed25519(x.to_vec()))
    }

    /// Verifies `sig` over `msg` for `alg`. The caller has already checked
    /// that the key's family fits `alg`; a mismatch here just fails.
    pub(crate) fn verify(&self, alg: Algorithm, msg: &[u8], sig: &[u8]) -> bool {
        match (self, alg) {
            (Material::Rsa { components, .. }, _) => {
                let params: &signature::RsaParameters = match alg {
                    Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                    Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                // A signature of another length can never verify; skip the
                // modular arithmetic.
                if sig.len() != components.n.len() {
                    return false;
                }
                components.verify(params, msg, sig).is_ok()
            }
            (Material::P256(point), Algorithm::ES256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(msg, sig).is_ok()
            }
            (Material::P384(point), Algorithm::ES384) => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point).verify(msg, sig).is_ok()
            }
            // `Signature::from_slice` takes exactly 132 bytes (the verifier has already refused
            // any other length) and refuses r or s outside [1, n-1]: zero, n and anything above
            // never reach the arithmetic.
            (Material::P521(key), Algorithm::ES512) => {
                use p521::ecdsa::signature::Verifier as _;
                match p521::ecdsa::Signature::from_slice(sig) {
                    Ok(sig) => key.0.verify(msg, &sig).is_ok(),
                    Err(_) => false,
                }
            }
            (Material::Ed25519(point), Algorithm::EdDSA) => {
                UnparsedPublicKey::new(&signature::ED25519, point).verify(msg, sig).is_ok()
            }
            _ => false,
        }
    }

    /// The signature length this key produces for RSA (modulus bytes).
    pub(crate) fn rsa_signature_len(&self) -> Option<usize> {
        match self {
            Material::Rsa { components, .. } => Some(components.n.len()),
            _ => None,
        }
    }
}

/// A P-521 public key, parsed once at load into RustCrypto's verifying key (its affine point).
#[derive(Clone)]
pub(crate) struct P521Key(p521::ecdsa::VerifyingKey);

impl P521Key {
    /// The point as `04 || x || y` (133 bytes).
    #[cfg(test)]
    pub(crate) fn sec1_uncompressed(&self) -> Vec<u8> {
        self.0.to_encoded_point(false).as_bytes().to_vec()
    }
}

impl std::fmt::Debug for P521Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("P521Key").field(&self.0.to_encoded_point(false).as_bytes()).finish()
    }
}

/// One loaded key.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub(crate) index: usize,
    pub(crate) kid: Option<String>,
    /// The JWK `alg`, if present: the only algorithm this key verifies.
    pub(crate) alg: Option<Algorithm>,
    /// An RSA key published under the RSASSA-PSS OID (RFC 4055): it verifies PS256/384/512
    /// only, never PKCS#1 v1.5.
    pub(crate) pss_only: bool,
    pub(crate) material: Material,
}

impl Key {
    /// Whether this key may verify a token signed with `alg`: same family,
    /// and if the key names an algorithm, exactly that one.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        self.material.family() == alg.family()
            && self.alg.is_none_or(|a| a == alg)
            && (!self.pss_only || matches!(alg, Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512))
    }

    /// Explains why [`Key::fits`] is false, for error messages.
    pub(crate) fn misfit_reason(&self, alg: Algorithm) -> String {
        match self.alg {
            Some(bound) if self.material.family() == alg.family() => {
                format!("the key is bound to {} and cannot verify {}", bound.name(), alg.name())
            }
            None if self.pss_only && self.material.family() == alg.family() => {
                format!("the key is an rsa-pss key and cannot verify {}", alg.name())
            }
            _ => format!("the key is {} and cannot verify {}", self.material.describe(), alg.name()),
        }
    }
}

/// Bounds on key input (a JWK, a JWK Set, PEM text), each checked before the work it bounds: the
/// size before any parsing, the number of keys before any key is decoded. A JWK Set fetched from
/// an issuer is input from the network; an issuer (or whoever sits between it and us) should not
/// be able to make a key refresh parse megabytes or validate thousands of RSA moduli.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLimits {
    /// Largest input, in bytes (default 1 MiB; real JWK Sets are a few KiB).
    pub max_bytes: usize,
    /// Most keys: entries of a JWK Set's `keys` array or PEM blocks, counted whether usable or
    /// not (default 100; issuers publish a handful, a few more during key rotation).
    pub max_keys: usize,
}

impl Default for KeyLimits {
    fn default() -> Self {
        KeyLimits { max_bytes: 1 << 20, max_keys: 100 }
    }
}

impl KeyLimits {
    pub(crate) fn check_size(&self, len: usize) -> Result<(), KeyError> {
        if len > self.max_bytes { Err(KeyError::TooLarge { len, max: self.max_bytes }) } else { Ok(()) }
    }

    pub(crate) fn check_count(&self, count: usize) -> Result<(), KeyError> {
        if count > self.max_keys { Err(KeyError::TooManyKeys { count, max: self.max_keys }) } else { Ok(()) }
    }
}

/// A set of verification keys, parsed and validated once and shared by every
/// verification afterwards. `Send + Sync`: put it in an `Arc` and verify from
/// as many threads as you like.
#[derive(Debug, Clone)]
pub struct KeySet {
    pub(crate) keys: Vec<Key>,
    pub(crate) skipped: Vec<SkippedKey>,
}

impl KeySet {
    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false for a successfully loaded set (an empty one is an error),
    /// provided for symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keys present in the input but left out, with reasons.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// The usable keys, in input order.
    pub fn iter(&self) -> impl Iterator<Item = KeyInfo<'_>> {
        self.keys.iter().map(|k| KeyInfo { index: k.index, kid: k.kid.as_deref(), kind: k.material.kind(), alg: k.alg })
    }

    /// Loads keys from whatever `input` looks like: a JWK Set (`{"keys":...}`),
    /// a single JWK (another JSON object) or PEM text. Convenient for CLIs
    /// and config files that accept any of the three.
    pub fn from_any(input: &[u8]) -> Result<KeySet, KeyError> {
        KeySet::from_any_with_limits(input, &KeyLimits::default())
    }

    /// [`KeySet::from_any`] with limits other than the defaults.
    pub fn from_any_with_limits(input: &[u8], limits: &KeyLimits) -> Result<KeySet, KeyError> {
        limits.check_size(input.len())?;
        let first = input.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'{') {
            // Parsed once, then read as a set or as a single key.
            let object = crate::jwk::parse(input, limits)?;
            if object.contains_key("keys") {
                KeySet::from_jwks_object(&object, limits)
            } else {
                KeySet::from_jwk_object(&object)
            }
        } else {
            let text = std::str::from_utf8(input)
                .map_err(|_| KeyError::Malformed("key input is neither json nor pem".to_owned()))?;
            KeySet::from_pem_with_limits(text, limits)
        }
    }

    /// Finishes a load: refuses duplicate kids among usable keys and an empty
    /// result.
    pub(crate) fn build(keys: Vec<Key>, skipped: Vec<SkippedKey>) -> Result<KeySet, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::NoUsableKeys(skipped));
        }
        for (i, a) in keys.iter().enumerate() {
            let Some(kid) = a.kid.as_deref() else { continue };
            if let Some(b) = keys.iter().skip(i + 1).find(|b| b.kid.as_deref() == Some(kid)) {
                return Err(KeyError::DuplicateKid { kid: snippet(kid), first: a.index, second: b.index });
            }
        }
        Ok(KeySet { keys, skipped })
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn bit_len(be: &[u8]) -> usize {
    match be.first() {
        None => 0,
        Some(&top) => (be.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

/// The ROCA test (Nemec et al., CCS 2017): Infineon's generator made primes
/// `p = k*M + (65537^a mod M)`, so for every small prime `r` dividing `M`,
/// `n mod r` lies in the subgroup generated by 65537 modulo `r`. Random
/// moduli pass all of these checks with negligible probability.
fn has_roca_fingerprint(n: &[u8]) -> bool {
    const PRIMES: [u32; 38] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107,
        109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
    ];
    PRIMES.iter().all(|&r| {
        let residue = n.iter().fold(0u32, |acc, &b| (acc * 256 + u32::from(b)) % r);
        let g = 65537 % r;
        let mut x = 1u32;
        // Walk the cyclic subgroup <g>; its order divides r - 1.
        for _ in 0..r {
            if x == residue {
                return true;
            }
            x = x * g % r;
            if x == 1 {
                break;
            }
        }
        false
    })
}

/// Load-time point validation with a tiny big-integer helper.
///
/// ring validates public points only when it verifies, and reports every
/// failure as the same opaque error, so it cannot tell "bad key" from "bad
/// signature". We check the curve equation ourselves instead. This is not
/// constant time and need not be: public keys are public.
mod curves {
    use std::cmp::Ordering;

    pub(super) struct Weierstrass {
        pub(super) name: &'static str,
        pub(super) size: usize,
        p: &'static [u8],
        b: &'static [u8],
    }

    // y^2 = x^3 - 3x + b over GF(p), FIPS 186-4 D.1.2.3 and D.1.2.4.
    pub(super) static P256: Weierstrass = Weierstrass {
        name: "p-256",
        size: 32,
        p: &hex32("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"),
        b: &hex32("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b"),
    };

    pub(super) static P384: Weierstrass = Weierstrass {
        name: "p-384",
        size: 48,
        p: &hex48("fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff"),
        b: &hex48("b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef"),
    };

    // FIPS 186-4 D.1.2.5: p = 2^521 - 1, coordinates in 66 bytes (the top 7 bits always zero).
    pub(super) static P521: Weierstrass = Weierstrass {
        name: "p-521",
        size: 66,
        p: &hex66(
            "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        ),
        b: &hex66(
            "0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00",
        ),
    };

    const fn hex_digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("bad hex constant"),
        }
    }

    const fn hex<const N: usize>(s: &str) -> [u8; N] {
        let s = s.as_bytes();
        assert!(s.len() == 2 * N);
        let mut out = [0u8; N];
        let mut i = 0;
        while i < N {
            out[i] = hex_digit(s[2 * i]) << 4 | hex_digit(s[2 * i + 1]);
            i += 1;
        }
        out
    }

    const fn hex32(s: &str) -> [u8; 32] {
        hex::<32>(s)
    }

    const fn hex48(s: &str) -> [u8; 48] {
        hex::<48>(s)
    }

    const fn hex66(s: &str) -> [u8; 66] {
        hex::<66>(s)
    }

    /// Little-endian u64 limbs of a fixed width.
    type Big = Vec<u64>;

    fn from_be(bytes: &[u8], limbs: usize) -> Big {
        let mut out = vec![0u64; limbs];
        for (i, &b) in bytes.iter().rev().enumerate() {
            if let Some(limb) = out.get_mut(i / 8) {
                *limb |= u64::from(b) << ((i % 8) * 8);
            }
        }
        out
    }

    fn cmp(a: &[u64], b: &[u64]) -> Ordering {
        for (x, y) in a.iter().rev().zip(b.iter().rev()) {
            match x.cmp(y) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        Ordering::Equal
    }

    /// a -= b, assuming a >= b and equal widths.
    fn sub_assign(a: &mut [u64], b: &[u64]) {
        let mut borrow = false;
        for (x, &y) in a.iter_mut().zip(b) {
            let (d1, b1) = x.overflowing_sub(y);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            *x = d2;
            borrow = b1 || b2;
        }
    }

    /// (a * b) mod p by schoolbook multiply and bitwise long division.
    fn mul_mod(a: &[u64], b: &[u64], p: &[u64]) -> Big {
        let n = p.len();
        let mut prod = vec![0u64; 2 * n];
        for (i, &x) in a.iter().enumerate() {
            let mut carry = 0u128;
            for (j, &y) in b.iter().enumerate() {
                if let Some(slot) = prod.get_mut(i + j) {
                    let t = u128::from(*slot) + u128::from(x) * u128::from(y) + carry;
                    *slot = t as u64;
                    carry = t >> 64;
                }
            }
            if let Some(slot) = prod.get_mut(i + n) {
                *slot = carry as u64;
            }
        }
        reduce(&prod, p)
    }

    fn reduce(x: &[u64], p: &[u64]) -> Big {
        let n = p.len();
        let mut pe = p.to_vec();
        pe.push(0);
        let mut r = vec![0u64; n + 1];
        for limb in x.iter().rev() {
            for bit in (0..64).rev() {
                // r = 2r + bit
                let mut carry = (limb >> bit) & 1;
                for w in r.iter_mut() {
                    let next = *w >> 63;
                    *w = (*w << 1) | carry;
                    carry = next;
                }
                if cmp(&r, &pe) != Ordering::Less {
                    sub_assign(&mut r, &pe);
                }
            }
        }
        r.truncate(n);
        r
    }

    fn add_mod(a: &[u64], b: &[u64], p: &[u64]) -> Big {
        let mut wide: Big = a.to_vec();
        wide.push(0);
        let mut carry = false;
        for (x, &y) in wide.iter_mut().zip(b) {
            let (s1, c1) = x.overflowing_add(y);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *x = s2;
            carry = c1 || c2;
        }
        if let Some(top) = wide.last_mut() {
            *top = u64::from(carry);
        }
        reduce(&wide, p)
    }

    fn sub_mod(a: &[u64], b: &[u64], p: &[u64]) -> Big {
        if cmp(a, b) != Ordering::Less {
            let mut r = a.to_vec();
            sub_assign(&mut r, b);
            r
        } else {
            // a + (p - b)
            let mut pb = p.to_vec();
            sub_assign(&mut pb, b);
            add_mod(a, &pb, p)
        }
    }

    /// The Jacobi symbol (a / n) for odd n > a >= 0, by the binary
    /// algorithm: only shifts, comparisons and subtractions, so it is cheap
    /// even in a debug build. For prime n it is the Legendre symbol.
    fn jacobi(a: &[u64], n: &[u64]) -> i8 {
        let mut a = a.to_vec();
        let mut n = n.to_vec();
        let mut t = 1i8;
        let is_zero = |x: &[u64]| x.iter().all(|w| *w == 0);
        let low = |x: &[u64]| x.first().copied().unwrap_or(0);
        while !is_zero(&a) {
            while low(&a) & 1 == 0 {
                shr1(&mut a);
                if matches!(low(&n) & 7, 3 | 5) {
                    t = -t;
                }
            }
            if cmp(&a, &n) == Ordering::Less {
                std::mem::swap(&mut a, &mut n);
                if low(&a) & 3 == 3 && low(&n) & 3 == 3 {
                    t = -t;
                }
            }
            sub_assign(&mut a, &n);
        }
        let mut one = vec![0u64; n.len()];
        if let Some(w) = one.first_mut() {
            *w = 1;
        }
        if cmp(&n, &one) == Ordering::Equal { t } else { 0 }
    }

    fn shr1(x: &mut [u64]) {
        let mut carry = 0u64;
        for w in x.iter_mut().rev() {
            let next = *w & 1;
            *w = (*w >> 1) | (carry << 63);
            carry = next;
        }
    }

    /// Whether (x, y) is a point of the curve: both coordinates reduced and
    /// y^2 = x^3 - 3x + b (mod p). The three curves have cofactor 1, so every
    /// such point generates the full prime-order group.
    pub(super) fn on_weierstrass_curve(c: &Weierstrass, x: &[u8], y: &[u8]) -> bool {
        let limbs = c.size.div_ceil(8);
        let p = from_be(c.p, limbs);
        let b = from_be(c.b, limbs);
        let x = from_be(x, limbs);
        let y = from_be(y, limbs);
        if cmp(&x, &p) != Ordering::Less || cmp(&y, &p) != Ordering::Less {
            return false;
        }
        let lhs = mul_mod(&y, &y, &p);
        let x3 = mul_mod(&mul_mod(&x, &x, &p), &x, &p);
        let three_x = add_mod(&add_mod(&x, &x, &p), &x, &p);
        let rhs = add_mod(&sub_mod(&x3, &three_x, &p), &b, &p);
        cmp(&lhs, &rhs) == Ordering::Equal
    }

    /// RFC 8032 5.1.3 decoding, plus a refusal of the eight small-order
    /// points: with a small-order public key, signatures can be forged for
    /// any message by anyone.
    pub(super) fn check_ed25519(enc: &[u8]) -> Result<(), String> {
        // p = 2^255 - 19 and d = -121665/121666, big-endian.
        const P: [u8; 32] = hex32("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed");
        const D: [u8; 32] = hex32("52036cee2b6ffe738cc740797779e89800700a4d4141d8ab75eb4dca135978a3");
        // y coordinates of the points of order 8 (the others are y = 0, 1, p-1).
        const ORDER8_Y: [[u8; 32]; 2] = [
            hex32("05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826"),
            hex32("7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7"),
        ];
        let mut y_be: Vec<u8> = enc.iter().rev().copied().collect();
        let sign = y_be.first().is_some_and(|b| b & 0x80 != 0);
        if let Some(top) = y_be.first_mut() {
            *top &= 0x7f;
        }
        let p = from_be(&P, 4);
        let y = from_be(&y_be, 4);
        if cmp(&y, &p) != Ordering::Less {
            return Err("ed25519 public key is not canonically encoded".to_owned());
        }
        let one = from_be(&[1], 4);
        let zero = from_be(&[], 4);
        let p_minus_1 = sub_mod(&zero, &one, &p);
        let small = cmp(&y, &zero) == Ordering::Equal
            || cmp(&y, &one) == Ordering::Equal
            || cmp(&y, &p_minus_1) == Ordering::Equal
            || ORDER8_Y.iter().any(|o| cmp(&y, &from_be(o, 4)) == Ordering::Equal);
        if small {
            return Err("ed25519 public key is a small-order point".to_owned());
        }
        let d = from_be(&D, 4);
        let y2 = mul_mod(&y, &y, &p);
        let u = sub_mod(&y2, &one, &p);
        let v = add_mod(&mul_mod(&d, &y2, &p), &one, &p);
        // x^2 = u / v has a root iff u*v is a square (v is never zero because
        // d is not a square). u = 0 means x = 0, whose sign bit must be clear.
        if cmp(&u, &zero) == Ordering::Equal {
            return if sign { Err("ed25519 public key is not canonically encoded".to_owned()) } else { Ok(()) };
        }
        let uv = mul_mod(&u, &v, &p);
        if jacobi(&uv, &p) == 1 { Ok(()) } else { Err("ed25519 public key is not a point on the curve".to_owned()) }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn generators_are_on_their_curves() {
            let gx = hex32("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
            let gy = hex32("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
            assert!(on_weierstrass_curve(&P256, &gx, &gy));
            let mut bad = gy;
            bad[31] ^= 1;
            assert!(!on_weierstrass_curve(&P256, &gx, &bad));
            // x = p is out of range even though it is congruent to 0.
            assert!(!on_weierstrass_curve(&P256, P256.p, &gy));
            let gx = hex48(
                "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
            );
            let gy = hex48(
                "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
            );
            assert!(on_weierstrass_curve(&P384, &gx, &gy));
            assert!(!on_weierstrass_curve(&P384, &gy, &gx));
            let gx = hex66(
                "00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66",
            );
            let gy = hex66(
                "011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650",
            );
            assert!(on_weierstrass_curve(&P521, &gx, &gy));
            assert!(!on_weierstrass_curve(&P521, &gy, &gx));
            let mut bad = gy;
            bad[65] ^= 1;
            assert!(!on_weierstrass_curve(&P521, &gx, &bad));
            // x = p is out of range, and so is anything with bits above 2^521.
            assert!(!on_weierstrass_curve(&P521, P521.p, &gy));
            let mut high = gx;
            high[0] |= 0x02;
            assert!(!on_weierstrass_curve(&P521, &high, &gy));
        }

        #[test]
        fn ed25519_small_order_points_are_refused() {
            let mut identity = [0u8; 32];
            identity[0] = 1;
            assert!(check_ed25519(&identity).is_err());
            assert!(check_ed25519(&[0u8; 32]).is_err());
            for y in [
                "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
                "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
                "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            ] {
                let le = hex32(y);
                assert!(check_ed25519(&le).is_err(), "{y}");
            }
            // y = p (non-canonical zero)
            let p_le = hex32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
            assert!(check_ed25519(&p_le).is_err());
        }

        #[test]
        fn modular_helpers() {
            let p = from_be(&[0, 0, 0, 0, 0, 0, 0, 97], 1);
            let a = from_be(&[50], 1);
            let b = from_be(&[60], 1);
            assert_eq!(add_mod(&a, &b, &p), vec![13]);
            assert_eq!(sub_mod(&a, &b, &p), vec![87]);
            assert_eq!(mul_mod(&a, &b, &p), vec![3000 % 97]);
            // Squares mod 97 have symbol 1, non-squares -1.
            for x in 1u64..97 {
                let is_square = (1u64..97).any(|r| r * r % 97 == x);
                let expected = if is_square { 1 } else { -1 };
                assert_eq!(jacobi(&[x], &p), expected, "{x}");
            }
            assert_eq!(jacobi(&[0], &p), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roca_check_is_quiet_on_ordinary_numbers() {
        // A prime-looking odd number: n mod 3 = 2 is outside <65537 mod 3> = {1}.
        assert!(!has_roca_fingerprint(&[0xff; 256]));
        // n = 1 is congruent to g^0 everywhere: the test is about structure.
        assert!(has_roca_fingerprint(&[0x01]));
    }

    #[test]
    fn keyset_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<KeySet>();
    }

    #[test]
    fn rsa_limits() {
        let mut n = vec![0xffu8; 256];
        n[255] = 0xfd;
        assert!(Material::rsa(&n, &[1, 0, 1]).is_ok());
        assert!(Material::rsa(&n, &[1]).unwrap_err().contains("too small"));
        assert!(Material::rsa(&n, &[4]).unwrap_err().contains("odd"));
        assert!(Material::rsa(&n, &[4, 0, 0, 0, 1]).unwrap_err().contains("too large"));
        assert!(Material::rsa(&n[1..], &[3]).unwrap_err().contains("2040 bits"));
        let mut even = n.clone();
        even[255] = 0xfe;
        assert!(Material::rsa(&even, &[3]).unwrap_err().contains("even"));
        let mut padded = vec![0u8];
        padded.extend_from_slice(&n);
        assert!(Material::rsa(&padded, &[0, 1, 0, 1]).is_ok());
    }
}
