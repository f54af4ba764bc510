//! A strict JSON reader: duplicate member names rejected at every depth,
//! nesting depth bounded, size bounded by the caller before we get here.
//!
//! `serde_json` on its own keeps the *last* of two equal member names. For a
//! JOSE header that is an attack surface (`{"alg":"RS256","alg":"none"}`
//! means different things to different parsers), so we deserialize through
//! our own visitor that builds a [`serde_json::Value`] and fails on the first
//! repeated name, comparing names after unescaping (`"alg"` and `"\u0061lg"`
//! are the same member). The same visitor counts depth and stops before the
//! configured bound, which also keeps recursion far below `serde_json`'s own
//! stack guard.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::snippet;

/// Why strict parsing failed. Messages never contain more than a short
/// escaped prefix of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON at all (or trailing garbage). Holds line and column.
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The document is nested deeper than allowed.
    TooDeep {
        /// The configured bound.
        max: usize,
    },
    /// A member name occurs twice in one object. Holds the escaped name.
    DuplicateKey(String),
    /// The top level is not an object.
    NotObject,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Syntax { line, column } => {
                write!(f, "invalid json at line {line} column {column}")
            }
            JsonError::TooDeep { max } => write!(f, "json nested deeper than {max} levels"),
            JsonError::DuplicateKey(k) => write!(f, "duplicate json member \"{k}\""),
            JsonError::NotObject => f.write_str("json is not an object"),
        }
    }
}

/// Parses `bytes` as a JSON object with unique member names at every level
/// and at most `max_depth` levels of nesting (the top-level object is 1).
pub fn parse_object(bytes: &[u8], max_depth: usize) -> Result<Map<String, Value>, JsonError> {
    match parse_value(bytes, max_depth)? {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotObject),
    }
}

/// Parses any JSON value under the same rules as [`parse_object`].
pub fn parse_value(bytes: &[u8], max_depth: usize) -> Result<Value, JsonError> {
    let failure = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Strict { depth: 0, max_depth, failure: &failure };
    let result = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match result {
        Ok(v) => Ok(v),
        Err(e) => Err(failure.take().unwrap_or(JsonError::Syntax { line: e.line(), column: e.column() })),
    }
}

/// The seed/visitor. `failure` is a side channel for our own errors so the
/// caller gets a typed reason instead of serde's formatted text.
#[derive(Clone, Copy)]
struct Strict<'a> {
    depth: usize,
    max_depth: usize,
    failure: &'a Cell<Option<JsonError>>,
}

impl Strict<'_> {
    fn fail<E: de::Error>(&self, err: JsonError) -> E {
        self.failure.set(Some(err));
        E::custom("strict json")
    }

    fn deeper<E: de::Error>(&self) -> Result<Self, E> {
        if self.depth >= self.max_depth {
            return Err(self.fail(JsonError::TooDeep { max: self.max_depth }));
        }
        Ok(Strict { depth: self.depth + 1, ..*self })
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON text cannot spell NaN or infinity; serde_json maps overflow to
        // an error before we get here, so `from_f64` only fails on those.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(self.fail(JsonError::DuplicateKey(snippet(&key))));
            }
            let value = map.next_value_seed(inner)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_objects() {
        let m = parse_object(br#"{"a":1,"b":[true,null,"x",1.5,-2],"c":{"d":{}}}"#, 8).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m["b"][3], serde_json::json!(1.5));
    }

    #[test]
    fn rejects_duplicates_at_every_depth() {
        assert_eq!(parse_object(br#"{"alg":"RS256","alg":"none"}"#, 8), Err(JsonError::DuplicateKey("alg".into())));
        assert_eq!(parse_object(br#"{"a":{"b":1,"b":2}}"#, 8), Err(JsonError::DuplicateKey("b".into())));
        assert_eq!(parse_object(br#"{"a":[{"c":1},{"c":1,"c":1}]}"#, 8), Err(JsonError::DuplicateKey("c".into())));
        // Escapes are compared after decoding.
        assert_eq!(parse_object(br#"{"alg":1,"\u0061lg":2}"#, 8), Err(JsonError::DuplicateKey("alg".into())));
    }

    #[test]
    fn bounds_depth() {
        assert!(parse_object(br#"{"a":{"b":{}}}"#, 3).is_ok());
        assert_eq!(parse_object(br#"{"a":{"b":{}}}"#, 2), Err(JsonError::TooDeep { max: 2 }));
        assert_eq!(parse_object(br#"{"a":[[[]]]}"#, 3), Err(JsonError::TooDeep { max: 3 }));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse_value(deep.as_bytes(), 32), Err(JsonError::TooDeep { max: 32 }));
    }

    #[test]
    fn rejects_non_objects_and_garbage() {
        assert_eq!(parse_object(b"[]", 8), Err(JsonError::NotObject));
        assert_eq!(parse_object(b"\"x\"", 8), Err(JsonError::NotObject));
        assert!(matches!(parse_object(b"{} x", 8), Err(JsonError::Syntax { .. })));
        assert!(matches!(parse_object(b"{\"a\":\xff}", 8), Err(JsonError::Syntax { .. })));
        assert!(matches!(parse_object(br#"{"a":"\ud800"}"#, 8), Err(JsonError::Syntax { .. })));
        assert!(matches!(parse_object(b"", 8), Err(JsonError::Syntax { .. })));
    }
}
