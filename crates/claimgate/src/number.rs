//! Exact comparison of JSON numbers.
//!
//! A claim such as `9007199254740993.0` or `18446744073709551616` cannot be read into an `f64`
//! (or a 64-bit integer) without changing its value, and a comparison made on the rounded value
//! can turn a deny into an allow (`== 9007199254740993` holding for `9007199254740992.0`). So
//! numbers are compared by their exact decimal value: integers that fit in 64 bits directly, and
//! every other number by its JSON text, digit by digit, without rounding and without allocating.
//! Every JSON number is comparable this way (`1e400` included); exponents are read with
//! saturation at ±2^40, far beyond any literal a policy may hold (the checker bounds literal
//! exponents), so the order against literals stays exact.

use std::cmp::Ordering;

/// A JSON number, borrowed: a 64-bit integer, or the text of any other JSON number (which must
/// follow JSON's number grammar: the payload parser and the policy parser both check it).
#[derive(Clone, Copy, Debug)]
pub enum NumRef<'a> {
    Int(i64),
    UInt(u64),
    Text(&'a str),
}

/// The exact order of two numbers. `-0` and `0`, and `1`, `1.0` and `10e-1`, are equal.
pub fn compare(a: NumRef<'_>, b: NumRef<'_>) -> Ordering {
    match (integer(a), integer(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => {
            let (mut da, mut db) = ([0u8; 20], [0u8; 20]);
            Decimal::of(a, &mut da).cmp(&Decimal::of(b, &mut db))
        }
    }
}

/// Whether two numbers have the same value.
pub fn equal(a: NumRef<'_>, b: NumRef<'_>) -> bool {
    compare(a, b) == Ordering::Equal
}

fn integer(n: NumRef<'_>) -> Option<i128> {
    match n {
        NumRef::Int(i) => Some(i.into()),
        NumRef::UInt(u) => Some(u.into()),
        NumRef::Text(_) => None,
    }
}

/// Whether a JSON number's text is within the range of an `f64` (it may still round).
pub fn fits_f64(text: &str) -> bool {
    text.parse::<f64>().is_ok_and(f64::is_finite)
}

/// The number as an `f64` (rounded), for time claims; `None` when out of range.
pub fn to_f64(n: NumRef<'_>) -> Option<f64> {
    match n {
        NumRef::Int(i) => Some(i as f64),
        NumRef::UInt(u) => Some(u as f64),
        NumRef::Text(text) => text.parse::<f64>().ok().filter(|f| f.is_finite()),
    }
}

/// The number as serde_json reads its text (for explanations).
pub fn to_json(n: NumRef<'_>) -> serde_json::Value {
    match n {
        NumRef::Int(i) => i.into(),
        NumRef::UInt(u) => u.into(),
        NumRef::Text(text) => serde_json::from_str(text).unwrap_or(serde_json::Value::Null),
    }
}

/// The number as text: integers in decimal, other numbers as written.
pub fn to_text(n: NumRef<'_>) -> String {
    match n {
        NumRef::Int(i) => i.to_string(),
        NumRef::UInt(u) => u.to_string(),
        NumRef::Text(text) => text.to_string(),
    }
}

/// A number literal of a compiled program: a 64-bit integer, or the literal's text.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Number {
    Int(i64),
    UInt(u64),
    Text(Box<str>),
}

impl Number {
    /// A policy literal: its value when it is a 64-bit integer, its text otherwise.
    pub fn from_literal(value: &serde_json::Number, text: &str) -> Number {
        match (value.as_i64(), value.as_u64()) {
            (Some(i), _) => Number::Int(i),
            (_, Some(u)) => Number::UInt(u),
            _ => Number::Text(text.into()),
        }
    }

    pub fn as_ref(&self) -> NumRef<'_> {
        match self {
            Number::Int(i) => NumRef::Int(*i),
            Number::UInt(u) => NumRef::UInt(*u),
            Number::Text(t) => NumRef::Text(t),
        }
    }

    pub fn to_text(&self) -> String {
        to_text(self.as_ref())
    }

    /// Whether the text is a JSON number within the exponent bound (for loading crafted files).
    pub fn is_valid(&self) -> bool {
        match self {
            Number::Int(_) | Number::UInt(_) => true,
            Number::Text(text) => {
                is_json_number(text) && exponent(text).is_none_or(|e| e.abs() <= MAX_LITERAL_EXPONENT)
            }
        }
    }
}

/// Largest exponent a policy literal may carry.
pub const MAX_LITERAL_EXPONENT: i64 = 1000;

/// JSON's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
pub fn is_json_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// Largest exponent magnitude kept; larger ones saturate.
const EXPONENT_BOUND: i64 = 1 << 40;

/// The exponent of a JSON number's text (`e-7` → -7), saturated at ±`EXPONENT_BOUND`; `None`
/// when the text has no exponent.
pub fn exponent(text: &str) -> Option<i64> {
    let at = text.find(['e', 'E'])?;
    let rest = &text[at + 1..];
    let (negative, digits) = match rest.as_bytes().first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let mut value: i64 = 0;
    for d in digits.bytes() {
        value = (value * 10 + i64::from(d - b'0')).min(EXPONENT_BOUND);
    }
    Some(if negative { -value } else { value })
}

/// A number as sign, significant digits and magnitude: the value is `0.d1d2d3... × 10^magnitude`
/// with `d1 != 0`, or zero. The digits are read in place from the integer and fraction parts.
struct Decimal<'a> {
    negative: bool,
    int: &'a [u8],
    frac: &'a [u8],
    /// Index of the first significant digit in `int ++ frac`.
    first: usize,
    /// Number of significant digits (no leading or trailing zeros); 0 for zero.
    len: usize,
    magnitude: i64,
}

impl<'a> Decimal<'a> {
    fn of(n: NumRef<'a>, buffer: &'a mut [u8; 20]) -> Decimal<'a> {
        match n {
            NumRef::Int(i) => Decimal::from_digits(i < 0, digits_of(i.unsigned_abs(), buffer), &[], 0),
            NumRef::UInt(u) => Decimal::from_digits(false, digits_of(u, buffer), &[], 0),
            NumRef::Text(text) => {
                let bytes = text.as_bytes();
                let (negative, rest) = match bytes.first() {
                    Some(b'-') => (true, &bytes[1..]),
                    _ => (false, bytes),
                };
                let mantissa_end = rest.iter().position(|b| matches!(b, b'e' | b'E')).unwrap_or(rest.len());
                let mantissa = &rest[..mantissa_end];
                let (int, frac) = match mantissa.iter().position(|b| *b == b'.') {
                    Some(dot) => (&mantissa[..dot], &mantissa[dot + 1..]),
                    None => (mantissa, &[][..]),
                };
                Decimal::from_digits(negative, int, frac, exponent(text).unwrap_or(0))
            }
        }
    }

    fn from_digits(negative: bool, int: &'a [u8], frac: &'a [u8], exponent: i64) -> Decimal<'a> {
        let total = int.len() + frac.len();
        let digit = |k: usize| if k < int.len() { int[k] } else { frac[k - int.len()] };
        let first = (0..total).find(|&k| digit(k) != b'0').unwrap_or(total);
        let last = (first..total).rev().find(|&k| digit(k) != b'0').map_or(first, |k| k + 1);
        let magnitude = int.len() as i64 - first as i64 + exponent;
        Decimal { negative, int, frac, first, len: last - first, magnitude }
    }

    fn digit(&self, k: usize) -> u8 {
        let k = self.first + k;
        if k < self.int.len() { self.int[k] } else { self.frac[k - self.int.len()] }
    }

    fn is_zero(&self) -> bool {
        self.len == 0
    }

    /// Order of the absolute values.
    fn cmp_magnitude(&self, other: &Decimal<'_>) -> Ordering {
        self.magnitude.cmp(&other.magnitude).then_with(|| {
            for k in 0..self.len.min(other.len) {
                match self.digit(k).cmp(&other.digit(k)) {
                    Ordering::Equal => {}
                    unequal => return unequal,
                }
            }
            self.len.cmp(&other.len)
        })
    }

    fn cmp(&self, other: &Decimal<'_>) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if other.negative {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, true) => {
                if self.negative {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, false) => match (self.negative, other.negative) {
                (false, true) => Ordering::Greater,
                (true, false) => Ordering::Less,
                (false, false) => self.cmp_magnitude(other),
                (true, true) => other.cmp_magnitude(self),
            },
        }
    }
}

/// The decimal digits of `value`, written at the end of `buffer`.
fn digits_of(mut value: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    &buffer[at..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use NumRef::{Int, Text, UInt};

    #[test]
    fn exact_order_at_the_edges_of_f64_and_64_bit_integers() {
        let cases: &[(NumRef<'_>, NumRef<'_>, Ordering)] = &[
            (Text("9007199254740992.0"), Int(9_007_199_254_740_993), Ordering::Less),
            (Text("9007199254740993.0"), Int(9_007_199_254_740_992), Ordering::Greater),
            (Text("9007199254740993.0"), Int(9_007_199_254_740_993), Ordering::Equal),
            (Text("18446744073709551616"), UInt(u64::MAX), Ordering::Greater),
            (Text("18446744073709551615.0"), UInt(u64::MAX), Ordering::Equal),
            (Text("-9223372036854775809"), Int(i64::MIN), Ordering::Less),
            (Text("-9223372036854775808.000"), Int(i64::MIN), Ordering::Equal),
            (Text("-0.0"), Int(0), Ordering::Equal),
            (Text("-0"), Text("0e5"), Ordering::Equal),
            (Text("1e400"), UInt(u64::MAX), Ordering::Greater),
            (Text("-1e400"), Int(i64::MIN), Ordering::Less),
            (Text("1e-400"), Int(0), Ordering::Greater),
            (Text("-1e-400"), Int(0), Ordering::Less),
            (Text("0.1"), Text("0.10"), Ordering::Equal),
            (Text("0.1"), Text("0.10000000000000000001"), Ordering::Less),
            (Text("12.5"), Text("1.25e1"), Ordering::Equal),
            (Text("100"), Text("1E2"), Ordering::Equal),
            (Text("99.999"), Int(100), Ordering::Less),
            (Text("-99.999"), Int(-100), Ordering::Greater),
            (Text("42.5"), Int(42), Ordering::Greater),
            (Text("0.00042"), Text("4.2e-4"), Ordering::Equal),
            (Text("1e99999999999999999999"), Text("1e1000"), Ordering::Greater),
            (Int(-1), UInt(0), Ordering::Less),
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare(*a, *b), *expected, "{a:?} vs {b:?}");
            assert_eq!(compare(*b, *a), expected.reverse(), "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn agrees_with_integers_and_exact_floats() {
        let values: [i64; 9] = [i64::MIN, -1_000_001, -42, -1, 0, 1, 42, 9_007_199_254_740_993, i64::MAX];
        for a in values {
            for b in values {
                let (ta, tb) = (format!("{a}.0"), format!("{b}e0"));
                assert_eq!(compare(Text(&ta), Text(&tb)), a.cmp(&b), "{ta} vs {tb}");
                assert_eq!(compare(Int(a), Text(&tb)), a.cmp(&b));
            }
        }
        for (a, b) in [(0.5f64, 0.25f64), (-2.75, 3.5), (1e-7, 1e-8), (123456.789, 123456.7891)] {
            let (ta, tb) = (format!("{a:e}"), format!("{b}"));
            assert_eq!(compare(Text(&ta), Text(&tb)), a.partial_cmp(&b).unwrap(), "{ta} vs {tb}");
        }
    }
}
