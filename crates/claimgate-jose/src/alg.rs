//! The signature algorithms this core verifies, and the set type providers
//! use to narrow them.
//!
//! Only asymmetric algorithms exist here. `none` and the HMAC family are not
//! "disabled options": they have no variant at all, so no configuration can
//! turn them on. Parsing their names yields a distinct [`AlgorithmError`] so
//! that callers can tell an attack (`none`) from a misconfigured issuer (HS*).

use std::fmt;
use std::str::FromStr;

use crate::error::snippet;

/// An asymmetric JWS algorithm (RFC 7518 sec. 3, RFC 8037 for `EdDSA`).
///
/// The declaration order is [`Algorithm::ALL`]'s and fixes each algorithm's bit in
/// [`AlgorithmSet::bits`], which compiled policy sets store: a new algorithm is appended (ES512
/// comes after EdDSA), never inserted, so stored bits keep their meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256 (MGF1 SHA-256, 32-byte salt).
    PS256,
    /// RSASSA-PSS with SHA-384 (MGF1 SHA-384, 48-byte salt).
    PS384,
    /// RSASSA-PSS with SHA-512 (MGF1 SHA-512, 64-byte salt).
    PS512,
    /// ECDSA on P-256 with SHA-256, fixed-length r||s signatures.
    ES256,
    /// ECDSA on P-384 with SHA-384, fixed-length r||s signatures.
    ES384,
    /// Ed25519 (the only `EdDSA` curve accepted).
    EdDSA,
    /// ECDSA on P-521 with SHA-512, fixed-length r||s signatures (132 bytes). ring has no
    /// P-521: RustCrypto's `p521` verifies it.
    ES512,
}

/// The family of key an algorithm needs; a key only ever verifies for
/// algorithms of its own family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Rsa,
    P256,
    P384,
    P521,
    Ed25519,
}

impl Algorithm {
    /// Every supported algorithm, in a stable order.
    pub const ALL: [Algorithm; 10] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::ES512,
    ];

    /// The registered JOSE name (`"RS256"`, ..., `"EdDSA"`, `"ES512"`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES512 => "ES512",
        }
    }

    pub(crate) fn family(self) -> Family {
        match self {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Family::Rsa,
            Algorithm::ES256 => Family::P256,
            Algorithm::ES384 => Family::P384,
            Algorithm::ES512 => Family::P521,
            Algorithm::EdDSA => Family::Ed25519,
        }
    }

    /// The exact signature length for algorithms whose signatures have a
    /// fixed size (ECDSA r||s and Ed25519). RSA signatures are as long as the
    /// key's modulus, so they are checked per key.
    pub fn fixed_signature_len(self) -> Option<usize> {
        match self {
            Algorithm::ES256 | Algorithm::EdDSA => Some(64),
            Algorithm::ES384 => Some(96),
            // Two 66-byte big-endian integers: P-521's order needs 521 bits.
            Algorithm::ES512 => Some(132),
            _ => None,
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an algorithm name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlgorithmError {
    /// `none` in any casing: an unsigned token.
    #[error("the `none` algorithm is refused: tokens must be signed")]
    None,
    /// An HMAC algorithm. Holds the (registered, so safe to show) name.
    #[error("symmetric algorithms are refused: {0} needs a shared secret, configure an asymmetric key instead")]
    Symmetric(&'static str),
    /// A name this core does not know. Holds an escaped, length-bounded
    /// copy of the name (never the raw input).
    #[error("unknown algorithm \"{0}\"")]
    Unknown(String),
}

impl AlgorithmError {
    /// A stable, machine-readable code: `alg_none`, `alg_symmetric` or
    /// `alg_unknown`.
    pub fn code(&self) -> &'static str {
        match self {
            AlgorithmError::None => "alg_none",
            AlgorithmError::Symmetric(_) => "alg_symmetric",
            AlgorithmError::Unknown(_) => "alg_unknown",
        }
    }
}

impl FromStr for Algorithm {
    type Err = AlgorithmError;

    /// Parses a registered name. Names are case-sensitive (RFC 7515 sec. 4.1.1)
    /// except that `none` is recognised in every casing, so that `NONE` is
    /// reported as the attack it is rather than as an unknown name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            "RS512" => Algorithm::RS512,
            "PS256" => Algorithm::PS256,
            "PS384" => Algorithm::PS384,
            "PS512" => Algorithm::PS512,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            "EdDSA" => Algorithm::EdDSA,
            "ES512" => Algorithm::ES512,
            "HS256" => return Err(AlgorithmError::Symmetric("HS256")),
            "HS384" => return Err(AlgorithmError::Symmetric("HS384")),
            "HS512" => return Err(AlgorithmError::Symmetric("HS512")),
            _ if s.eq_ignore_ascii_case("none") => return Err(AlgorithmError::None),
            _ => return Err(AlgorithmError::Unknown(snippet(s))),
        })
    }
}

/// A set of [`Algorithm`]s, as a bitset. The default holds all ten.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlgorithmSet(u16);

impl AlgorithmSet {
    /// The empty set.
    pub const EMPTY: AlgorithmSet = AlgorithmSet(0);
    /// All supported algorithms.
    pub const ALL: AlgorithmSet = AlgorithmSet((1 << Algorithm::ALL.len()) - 1);

    /// Whether `alg` is in the set.
    pub fn contains(self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }

    /// Adds `alg`; returns whether it was newly added.
    pub fn insert(&mut self, alg: Algorithm) -> bool {
        let fresh = !self.contains(alg);
        self.0 |= alg.bit();
        fresh
    }

    /// Removes `alg`; returns whether it was present.
    pub fn remove(&mut self, alg: Algorithm) -> bool {
        let present = self.contains(alg);
        self.0 &= !alg.bit();
        present
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of algorithms in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The algorithms in the set, in [`Algorithm::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL.into_iter().filter(move |a| self.contains(*a))
    }

    /// The raw bits (bit i = `Algorithm::ALL[i]`).
    pub fn bits(self) -> u16 {
        self.0
    }

    /// Builds a set from raw bits (bit i = `Algorithm::ALL[i]`); bits that
    /// name no algorithm are dropped.
    pub fn from_bits(bits: u16) -> AlgorithmSet {
        AlgorithmSet(bits & AlgorithmSet::ALL.0)
    }
}

impl Default for AlgorithmSet {
    fn default() -> Self {
        AlgorithmSet::ALL
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        let mut set = AlgorithmSet::EMPTY;
        for alg in iter {
            set.insert(alg);
        }
        set
    }
}

impl From<Algorithm> for AlgorithmSet {
    fn from(alg: Algorithm) -> Self {
        AlgorithmSet(alg.bit())
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, alg) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(alg.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.name().parse::<Algorithm>(), Ok(alg));
            assert_eq!(alg.to_string(), alg.name());
        }
    }

    #[test]
    fn none_any_casing_is_none() {
        for s in ["none", "None", "NONE", "nOnE"] {
            assert_eq!(s.parse::<Algorithm>(), Err(AlgorithmError::None));
        }
    }

    #[test]
    fn symmetric_and_unknown_are_distinct() {
        assert_eq!("HS256".parse::<Algorithm>(), Err(AlgorithmError::Symmetric("HS256")));
        assert!(matches!("rs256".parse::<Algorithm>(), Err(AlgorithmError::Unknown(_))));
        assert!(matches!("es512".parse::<Algorithm>(), Err(AlgorithmError::Unknown(_))));
        assert!(matches!("ES521".parse::<Algorithm>(), Err(AlgorithmError::Unknown(_))));
        let err = "\u{1b}]evil".parse::<Algorithm>().unwrap_err();
        assert_eq!(err.to_string(), "unknown algorithm \"\\u{1b}]evil\"");
    }

    #[test]
    fn set_operations() {
        let mut set = AlgorithmSet::EMPTY;
        assert!(set.is_empty());
        assert!(set.insert(Algorithm::ES256));
        assert!(!set.insert(Algorithm::ES256));
        assert!(set.contains(Algorithm::ES256));
        assert!(!set.contains(Algorithm::RS256));
        assert_eq!(set.len(), 1);
        assert!(set.remove(Algorithm::ES256));
        assert!(set.is_empty());
        assert_eq!(AlgorithmSet::default().len(), 10);
        assert_eq!(AlgorithmSet::default().iter().collect::<Vec<_>>(), Algorithm::ALL.to_vec());
        assert_eq!(AlgorithmSet::from_bits(u16::MAX), AlgorithmSet::ALL);
        assert_eq!(AlgorithmSet::from_bits(1).iter().collect::<Vec<_>>(), [Algorithm::RS256]);
        let set: AlgorithmSet = [Algorithm::EdDSA, Algorithm::RS256].into_iter().collect();
        assert_eq!(set.to_string(), "RS256, EdDSA");
    }

    /// Compiled policy sets store `AlgorithmSet::bits`: the nine algorithms that existed before
    /// ES512 keep their bits, and ES512 took the next free one.
    #[test]
    fn bits_are_stable() {
        let bits: Vec<(Algorithm, u16)> = Algorithm::ALL.iter().map(|a| (*a, AlgorithmSet::from(*a).bits())).collect();
        assert_eq!(
            bits,
            [
                (Algorithm::RS256, 0x001),
                (Algorithm::RS384, 0x002),
                (Algorithm::RS512, 0x004),
                (Algorithm::PS256, 0x008),
                (Algorithm::PS384, 0x010),
                (Algorithm::PS512, 0x020),
                (Algorithm::ES256, 0x040),
                (Algorithm::ES384, 0x080),
                (Algorithm::EdDSA, 0x100),
                (Algorithm::ES512, 0x200),
            ]
        );
        assert_eq!(AlgorithmSet::ALL.bits(), 0x3ff);
        assert_eq!(Algorithm::ES512.fixed_signature_len(), Some(132));
        assert_eq!(Algorithm::ES512.to_string(), "ES512");
    }
}
