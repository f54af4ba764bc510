//! The token payload, parsed once into what the compiled program reads.
//!
//! A compiled policy set knows every claim path its conditions, identity and mappings read (the
//! path table). This parser walks the JSON text once, validating all of it (strict JSON, valid
//! UTF-8, no duplicate key in any object at any depth, bounded size and depth) and recording
//! only the values that sit at a known path, in a slot per path. Values nobody reads are checked
//! but never materialised, so the cost of a decision grows with what the policy reads, not with
//! the size of the token. Strings are borrowed from the input unless they contain escapes.
//!
//! The parser allocates nothing per request once its [`Scratch`] buffers have grown to the size
//! of the largest token seen; keep a `Scratch` per thread and reuse it.

use std::fmt;

use crate::number::NumRef;

/// Bounds on the payload, checked before and while parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadLimits {
    /// Largest payload, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of objects and arrays (the top-level object is depth 1).
    pub max_depth: usize,
    /// Most members in one object or elements in one array.
    pub max_entries: usize,
    /// Longest string (key or value), in bytes as written.
    pub max_string_bytes: usize,
}

impl Default for PayloadLimits {
    fn default() -> Self {
        PayloadLimits { max_bytes: 64 * 1024, max_depth: 32, max_entries: 4096, max_string_bytes: 8 * 1024 }
    }
}

/// Why a payload was refused. Messages never quote the payload.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the payload is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("the payload is nested more than {limit} deep")]
    TooDeep { limit: usize },
    #[error("an object or array in the payload has more than {limit} entries")]
    TooManyEntries { limit: usize },
    #[error("a string in the payload is longer than {limit} bytes")]
    StringTooLong { limit: usize },
    #[error("the payload is not valid UTF-8")]
    NotUtf8,
    #[error("the payload is not a JSON object")]
    NotAnObject,
    #[error("the payload has the key `{key}` twice in one object")]
    DuplicateKey { key: String },
    #[error("the payload is not valid JSON ({problem} at byte {offset})")]
    Syntax { problem: &'static str, offset: usize },
}

impl PayloadError {
    /// A stable code for logs and clients.
    pub fn code(&self) -> &'static str {
        match self {
            PayloadError::TooLarge { .. }
            | PayloadError::TooDeep { .. }
            | PayloadError::TooManyEntries { .. }
            | PayloadError::StringTooLong { .. } => "payload_too_large",
            _ => "payload_invalid",
        }
    }
}

/// A node of the path trie: the slot of the path ending here, and the children by key or index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Node {
    slot: Option<u32>,
    /// (hash of the key, key, child). The parser hashes every key anyway (for duplicate
    /// detection), so children are found through `table`, an open-addressing index into `keys`
    /// (entry + 1; 0 is empty) with at least twice as many entries as keys.
    keys: Vec<(u64, Box<str>, u32)>,
    table: Vec<u32>,
    /// Sorted by index.
    indexes: Vec<(u32, u32)>,
}

/// One segment of a claim path as the program stores it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum PathSegment {
    Key(Box<str>),
    Index(u32),
}

impl fmt::Display for PathSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSegment::Key(k) => write!(f, "{k:?}"),
            PathSegment::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// The claim paths a program reads, as a trie the parser walks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTable {
    nodes: Vec<Node>,
    slots: usize,
}

impl PathTable {
    /// Builds the trie; path `i` of `paths` gets slot `i`.
    pub fn new(paths: &[Vec<PathSegment>]) -> PathTable {
        let mut nodes = vec![Node::default()];
        for (slot, path) in paths.iter().enumerate() {
            let mut at = 0usize;
            for segment in path {
                let existing = match segment {
                    PathSegment::Key(k) => nodes[at].keys.iter().find(|(_, key, _)| key == k).map(|(_, _, n)| *n),
                    PathSegment::Index(i) => nodes[at].indexes.iter().find(|(index, _)| index == i).map(|(_, n)| *n),
                };
                at = match existing {
                    Some(next) => next as usize,
                    None => {
                        nodes.push(Node::default());
                        let next = (nodes.len() - 1) as u32;
                        match segment {
                            PathSegment::Key(k) => nodes[at].keys.push((key_hash(k.as_bytes()), k.clone(), next)),
                            PathSegment::Index(i) => nodes[at].indexes.push((*i, next)),
                        }
                        next as usize
                    }
                };
            }
            if !path.is_empty() {
                nodes[at].slot = Some(slot as u32);
            }
        }
        for node in &mut nodes {
            node.indexes.sort();
            if !node.keys.is_empty() {
                let size = (node.keys.len() * 2).next_power_of_two();
                node.table = vec![0; size];
                for (entry, (hash, _, _)) in node.keys.iter().enumerate() {
                    let mut i = (*hash as usize) & (size - 1);
                    while node.table[i] != 0 {
                        i = (i + 1) & (size - 1);
                    }
                    node.table[i] = entry as u32 + 1;
                }
            }
        }
        PathTable { nodes, slots: paths.len() }
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    fn key_child(&self, node: u32, hash: u64, key: &[u8]) -> Option<u32> {
        let node = &self.nodes[node as usize];
        let mask = node.table.len().checked_sub(1)?;
        let mut i = (hash as usize) & mask;
        loop {
            let entry = *node.table.get(i)?;
            let (h, k, child) = node.keys.get(entry.checked_sub(1)? as usize)?;
            if *h == hash && k.as_bytes() == key {
                return Some(*child);
            }
            i = (i + 1) & mask;
        }
    }

    fn index_child(&self, node: u32, index: usize) -> Option<u32> {
        let indexes = &self.nodes[node as usize].indexes;
        let index = u32::try_from(index).ok()?;
        indexes.binary_search_by(|(i, _)| i.cmp(&index)).ok().map(|i| indexes[i].1)
    }

    fn wants_elements(&self, node: u32) -> bool {
        self.nodes[node as usize].slot.is_some()
    }
}

/// A JSON number as read: a 64-bit integer when it is one, otherwise the place of its text in
/// the payload, so that it is compared by its exact value ([`crate::number`]), never rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Num {
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// Any other number (a fraction, an exponent, an integer beyond 64 bits): its text.
    Dec {
        start: u32,
        len: u32,
    },
}

/// Where a string's text lives: in the payload (no escapes) or decoded in the scratch buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrRef {
    start: u32,
    len: u32,
    decoded: bool,
}

/// A value found at a known path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Num(Num),
    Str(StrRef),
    /// The scalar elements of an array at a known path are kept (`start..start+len` in the
    /// element buffer); elements that are arrays or objects are kept as [`Val::Other`].
    Array {
        start: u32,
        len: u32,
    },
    Object,
    /// An array or object inside an array.
    Other,
}

/// Reusable buffers for parsing; one per thread.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Per path: the value and the byte range of its JSON text (for explanations).
    slots: Vec<Option<(Val, u32, u32)>>,
    elements: Vec<Val>,
    /// Decoded text of strings that had escapes.
    text: String,
    /// Keys of the objects being parsed, with a hash of each, for duplicate detection.
    keys: Vec<(u64, StrRef)>,
}

/// A parsed payload: the values at the program's paths.
#[derive(Debug)]
pub struct Claims<'a> {
    input: &'a str,
    scratch: &'a Scratch,
}

impl<'a> Claims<'a> {
    /// The value at path slot `slot`, or `None` when the token does not have it.
    pub fn get(&self, slot: u32) -> Option<Val> {
        self.scratch.slots.get(slot as usize).copied().flatten().map(|(v, _, _)| v)
    }

    /// The JSON value at a path, exactly as the token has it (allocates: for explanations and
    /// denials only, never on the allow path).
    pub fn json(&self, slot: u32) -> Option<serde_json::Value> {
        let (_, start, end) = self.scratch.slots.get(slot as usize).copied().flatten()?;
        serde_json::from_str(&self.input[start as usize..end as usize]).ok()
    }

    /// A number, for exact comparison.
    pub fn number(&self, n: Num) -> NumRef<'a> {
        match n {
            Num::Int(i) => NumRef::Int(i),
            Num::UInt(u) => NumRef::UInt(u),
            Num::Dec { start, len } => NumRef::Text(&self.input[start as usize..(start + len) as usize]),
        }
    }

    pub fn str(&self, s: StrRef) -> &'a str {
        let range = s.start as usize..(s.start + s.len) as usize;
        if s.decoded { &self.scratch.text[range] } else { &self.input[range] }
    }

    pub fn elements(&self, start: u32, len: u32) -> &'a [Val] {
        &self.scratch.elements[start as usize..(start + len) as usize]
    }

    /// The value as JSON, for explanations (allocates; never on the decision path).
    pub fn to_json(&self, value: Val) -> serde_json::Value {
        match value {
            Val::Null => serde_json::Value::Null,
            Val::Bool(b) => b.into(),
            Val::Num(n) => crate::number::to_json(self.number(n)),
            Val::Str(s) => self.str(s).into(),
            Val::Array { start, len } => self.elements(start, len).iter().map(|v| self.to_json(*v)).collect(),
            Val::Object => serde_json::json!({}),
            Val::Other => serde_json::Value::Null,
        }
    }
}

/// Parses `input` (the decoded JWS payload) against the path table.
pub fn parse<'a>(
    input: &'a [u8],
    table: &PathTable,
    limits: &PayloadLimits,
    scratch: &'a mut Scratch,
) -> Result<Claims<'a>, PayloadError> {
    // Offsets are 32-bit: whatever the configured bound, nothing larger is read.
    let max_bytes = limits.max_bytes.min(u32::MAX as usize);
    if input.len() > max_bytes {
        return Err(PayloadError::TooLarge { size: input.len(), limit: max_bytes });
    }
    let text = std::str::from_utf8(input).map_err(|_| PayloadError::NotUtf8)?;
    scratch.slots.clear();
    scratch.slots.resize(table.slots(), None);
    scratch.elements.clear();
    scratch.text.clear();
    scratch.keys.clear();
    let mut parser = Parser { bytes: input, at: 0, table, limits, scratch };
    parser.skip_ws();
    if parser.peek() != Some(b'{') {
        return Err(PayloadError::NotAnObject);
    }
    parser.value(Some(0), 1, false).map_err(|e| *e)?;
    parser.skip_ws();
    if parser.at != input.len() {
        return Err(*parser.error("trailing characters"));
    }
    Ok(Claims { input: text, scratch })
}

struct Parser<'p> {
    bytes: &'p [u8],
    at: usize,
    table: &'p PathTable,
    limits: &'p PayloadLimits,
    scratch: &'p mut Scratch,
}

impl Parser<'_> {
    /// Errors are boxed so that the success path of every parsing function stays small.
    fn error(&self, problem: &'static str) -> Box<PayloadError> {
        Box::new(PayloadError::Syntax { problem, offset: self.at })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8, problem: &'static str) -> Result<(), Box<PayloadError>> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(problem))
        }
    }

    /// Parses one value. `node` is its place in the path trie (`None`: nobody reads it);
    /// `element` says it is an element of an array whose elements are kept.
    fn value(&mut self, node: Option<u32>, depth: usize, element: bool) -> Result<Val, Box<PayloadError>> {
        let start = self.at;
        let value = match self.peek() {
            // Inside an array, a nested array or object nobody reads by index is only `Other`:
            // it can never equal a literal, and keeping it whole would cost for nothing.
            Some(b'{') => {
                self.object(node, depth)?;
                if element && node.is_none() { Val::Other } else { Val::Object }
            }
            Some(b'[') => {
                let value = self.array(node, depth)?;
                if element && node.is_none() { Val::Other } else { value }
            }
            Some(b'"') => Val::Str(self.string()?),
            Some(b't') => self.literal(b"true", Val::Bool(true))?,
            Some(b'f') => self.literal(b"false", Val::Bool(false))?,
            Some(b'n') => self.literal(b"null", Val::Null)?,
            Some(b'-' | b'0'..=b'9') => Val::Num(self.number()?),
            Some(_) => return Err(self.error("unexpected character")),
            None => return Err(self.error("unexpected end")),
        };
        if let Some(node) = node
            && let Some(slot) = self.table.nodes[node as usize].slot
        {
            self.scratch.slots[slot as usize] = Some((value, start as u32, self.at as u32));
        }
        Ok(value)
    }

    fn literal(&mut self, word: &[u8], value: Val) -> Result<Val, Box<PayloadError>> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("invalid literal"))
        }
    }

    fn object(&mut self, node: Option<u32>, depth: usize) -> Result<(), Box<PayloadError>> {
        if depth > self.limits.max_depth {
            return Err(Box::new(PayloadError::TooDeep { limit: self.limits.max_depth }));
        }
        self.at += 1; // `{`
        let keys_start = self.scratch.keys.len();
        let mut seen = [0u64; 4];
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key"));
            }
            let key = self.string()?;
            let hash = key_hash(self.key_bytes(key));
            // A 256-bit filter of the hashes seen in this object: only a key whose bit is
            // already set is compared with the keys before it.
            let (word, bit) = ((hash >> 6) as usize & 3, 1u64 << (hash & 63));
            if seen[word] & bit != 0 {
                self.check_duplicate(keys_start, hash, key)?;
            }
            seen[word] |= bit;
            self.scratch.keys.push((hash, key));
            if self.scratch.keys.len() - keys_start > self.limits.max_entries {
                return Err(Box::new(PayloadError::TooManyEntries { limit: self.limits.max_entries }));
            }
            let child = node.and_then(|n| self.table.key_child(n, hash, self.key_bytes(key)));
            self.skip_ws();
            self.expect(b':', "expected `:`")?;
            self.skip_ws();
            self.value(child, depth + 1, false)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    break;
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
        self.scratch.keys.truncate(keys_start);
        Ok(())
    }

    fn key_bytes(&self, key: StrRef) -> &[u8] {
        let range = key.start as usize..(key.start + key.len) as usize;
        if key.decoded { &self.scratch.text.as_bytes()[range] } else { &self.bytes[range] }
    }

    /// A claim must not mean two things: refuses a key already seen in this object (hashes
    /// first, then the keys themselves).
    fn check_duplicate(&self, keys_start: usize, hash: u64, key: StrRef) -> Result<(), Box<PayloadError>> {
        let new = self.key_bytes(key);
        for (seen_hash, seen) in &self.scratch.keys[keys_start..] {
            if *seen_hash == hash && self.key_bytes(*seen) == new {
                let key: String = String::from_utf8_lossy(new).chars().take(32).collect();
                return Err(Box::new(PayloadError::DuplicateKey { key: key.escape_debug().to_string() }));
            }
        }
        Ok(())
    }

    fn array(&mut self, node: Option<u32>, depth: usize) -> Result<Val, Box<PayloadError>> {
        if depth > self.limits.max_depth {
            return Err(Box::new(PayloadError::TooDeep { limit: self.limits.max_depth }));
        }
        self.at += 1; // `[`
        let keep = node.is_some_and(|n| self.table.wants_elements(n));
        // Kept elements go straight into the element buffer, unless a path also reads inside
        // an element (`groups` and `groups[1]`): then a nested array could append its own
        // elements in between, so this array's are gathered aside first (rare; allocates).
        let direct = keep && node.is_some_and(|n| self.table.nodes[n as usize].indexes.is_empty());
        let start = self.scratch.elements.len();
        let mut aside: Vec<Val> = Vec::new();
        let mut count = 0usize;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.at += 1;
        } else {
            loop {
                self.skip_ws();
                let child = node.and_then(|n| self.table.index_child(n, count));
                let value = self.value(child, depth + 1, true)?;
                if direct {
                    self.scratch.elements.push(value);
                } else if keep {
                    aside.push(value);
                }
                count += 1;
                if count > self.limits.max_entries {
                    return Err(Box::new(PayloadError::TooManyEntries { limit: self.limits.max_entries }));
                }
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.at += 1,
                    Some(b']') => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(self.error("expected `,` or `]`")),
                }
            }
        }
        if direct {
            return Ok(Val::Array { start: start as u32, len: (self.scratch.elements.len() - start) as u32 });
        }
        let start = self.scratch.elements.len() as u32;
        self.scratch.elements.extend_from_slice(&aside);
        Ok(Val::Array { start, len: aside.len() as u32 })
    }

    fn string(&mut self) -> Result<StrRef, Box<PayloadError>> {
        let string = self.string_unbounded()?;
        if string.len as usize > self.limits.max_string_bytes {
            return Err(Box::new(PayloadError::StringTooLong { limit: self.limits.max_string_bytes }));
        }
        Ok(string)
    }

    fn string_unbounded(&mut self) -> Result<StrRef, Box<PayloadError>> {
        self.at += 1; // opening quote
        let start = self.at;
        // Fast path: scan to the closing quote, an escape or a control character, one table
        // lookup per byte (strings in tokens are short; this beats a vectorised search's setup).
        let rest = &self.bytes[start..];
        let Some(end) = rest.iter().position(|b| STRING_STOP[*b as usize]) else {
            self.at = self.bytes.len();
            return Err(self.error("unterminated string"));
        };
        if rest[end] < 0x20 {
            self.at = start + end;
            return Err(self.error("control character in a string"));
        }
        self.at = start + end;
        if self.bytes[self.at] == b'"' {
            self.at += 1;
            return Ok(StrRef { start: start as u32, len: end as u32, decoded: false });
        }
        // Slow path: decode into the scratch text.
        let decoded_start = self.scratch.text.len();
        let before = std::str::from_utf8(&self.bytes[start..self.at]).map_err(|_| Box::new(PayloadError::NotUtf8))?;
        self.scratch.text.push_str(before);
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    let len = self.scratch.text.len() - decoded_start;
                    return Ok(StrRef { start: decoded_start as u32, len: len as u32, decoded: true });
                }
                Some(b'\\') => {
                    self.at += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.at += 1;
                            let c = self.unicode_escape()?;
                            self.scratch.text.push(c);
                            continue;
                        }
                        _ => return Err(self.error("invalid escape")),
                    };
                    self.at += 1;
                    self.scratch.text.push(c);
                }
                Some(0..=0x1f) => return Err(self.error("control character in a string")),
                Some(_) => {
                    // Copy a run of plain bytes at once (the input is valid UTF-8 and the run
                    // stops at ASCII bytes only, so it is whole characters).
                    let run_start = self.at;
                    while let Some(b) = self.peek() {
                        if b == b'"' || b == b'\\' || b < 0x20 {
                            break;
                        }
                        self.at += 1;
                    }
                    let run = std::str::from_utf8(&self.bytes[run_start..self.at])
                        .map_err(|_| Box::new(PayloadError::NotUtf8))?;
                    self.scratch.text.push_str(run);
                }
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, Box<PayloadError>> {
        let digits = self.bytes.get(self.at..self.at + 4).ok_or_else(|| self.error("short unicode escape"))?;
        let mut value = 0u32;
        for d in digits {
            let v = (*d as char).to_digit(16).ok_or_else(|| self.error("invalid unicode escape"))?;
            value = value * 16 + v;
        }
        self.at += 4;
        Ok(value)
    }

    /// `\uXXXX`, with UTF-16 surrogate pairs; a lone surrogate is refused.
    fn unicode_escape(&mut self) -> Result<char, Box<PayloadError>> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.bytes[self.at..].starts_with(b"\\u") {
                    return Err(self.error("lone surrogate in a unicode escape"));
                }
                self.at += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("lone surrogate in a unicode escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone surrogate in a unicode escape")),
            other => other,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid unicode escape"))
    }

    fn number(&mut self) -> Result<Num, Box<PayloadError>> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.at += 1;
                }
            }
            _ => return Err(self.error("invalid number")),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            integer = false;
            self.at += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.at += 1;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            integer = false;
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.at += 1;
            }
        }
        // The bytes are ASCII digits and signs, so this cannot fail.
        let text = std::str::from_utf8(&self.bytes[start..self.at]).map_err(|_| self.error("invalid number"))?;
        // `-0` stays text, so that it reads back as written (it equals 0 all the same).
        if integer && text != "-0" {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Num::Int(i));
            }
            if let Ok(u) = text.parse::<u64>() {
                return Ok(Num::UInt(u));
            }
        }
        // Kept as text and compared exactly; but a number no 64-bit float can hold (`1e400`) is
        // refused, as every other JSON reader here refuses it.
        if !crate::number::fits_f64(text) {
            self.at = start;
            return Err(self.error("number is beyond the range of a 64-bit float"));
        }
        Ok(Num::Dec { start: start as u32, len: (self.at - start) as u32 })
    }
}

/// Bytes that end the fast scan of a string: the closing quote, an escape, a control character.
static STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// A fast hash of a key, eight bytes at a time (FxHash's mixing step), for finding path children
/// and duplicate keys. Not for security: equal hashes are always confirmed by comparing keys,
/// and an attacker who forces collisions only makes their own token slower to refuse.
fn key_hash(key: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut hash = key.len() as u64;
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        hash = (hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut word = [0u8; 8];
        word[..tail.len()].copy_from_slice(tail);
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    // Spread the high bits into the low ones, which index the tables.
    hash ^ (hash >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> PathSegment {
        PathSegment::Key(k.into())
    }

    fn table() -> PathTable {
        PathTable::new(&[
            vec![key("ref")],
            vec![key("kubernetes.io"), key("pod"), key("name")],
            vec![key("groups")],
            vec![key("groups"), PathSegment::Index(1)],
            vec![key("n")],
        ])
    }

    #[test]
    fn records_values_at_known_paths_only() {
        let input = br#"{"ref":"main","other":{"x":[1,2,{"y":null}]},"kubernetes.io":{"pod":{"name":"api"}},"groups":["a","b",["c"]],"n":-1.5e2}"#;
        let mut scratch = Scratch::default();
        let claims = parse(input, &table(), &PayloadLimits::default(), &mut scratch).unwrap();
        let Some(Val::Str(s)) = claims.get(0) else { panic!() };
        assert_eq!(claims.str(s), "main");
        let Some(Val::Str(s)) = claims.get(1) else { panic!() };
        assert_eq!(claims.str(s), "api");
        let Some(Val::Array { start, len }) = claims.get(2) else { panic!() };
        assert_eq!(len, 3);
        assert_eq!(claims.elements(start, len)[2], Val::Other);
        let Some(Val::Str(s)) = claims.get(3) else { panic!() };
        assert_eq!(claims.str(s), "b");
        let Some(Val::Num(n)) = claims.get(4) else { panic!() };
        assert!(crate::number::equal(claims.number(n), crate::number::NumRef::Int(-150)));
    }

    #[test]
    fn escapes_are_decoded_and_compared_decoded() {
        let input = br#"{"r\u0065f":"ma\u0069n\n\ud83d\ude00"}"#;
        let mut scratch = Scratch::default();
        let claims = parse(input, &table(), &PayloadLimits::default(), &mut scratch).unwrap();
        let Some(Val::Str(s)) = claims.get(0) else { panic!() };
        assert_eq!(claims.str(s), "main\n😀");
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth_even_when_spelled_differently() {
        let mut scratch = Scratch::default();
        for input in [&br#"{"ref":"a","ref":"b"}"#[..], br#"{"x":{"k":1,"k":2}}"#, br#"{"x":[{"k":1,"\u006b":2}]}"#] {
            let error = parse(input, &table(), &PayloadLimits::default(), &mut scratch).unwrap_err();
            assert!(matches!(error, PayloadError::DuplicateKey { .. }), "{error}");
        }
        // The same key in sibling objects is fine.
        parse(br#"{"a":{"k":1},"b":{"k":2}}"#, &table(), &PayloadLimits::default(), &mut scratch).unwrap();
    }

    #[test]
    fn strict_json() {
        let mut scratch = Scratch::default();
        for bad in [
            &b""[..],
            b"[]",
            b"{",
            b"{}x",
            br#"{"a":01}"#,
            br#"{"a":1.}"#,
            br#"{"a":.5}"#,
            br#"{"a":+1}"#,
            br#"{"a":tru}"#,
            br#"{"a":"\x"}"#,
            b"{\"a\":\"\x01\"}",
            br#"{"a":"\ud800"}"#,
            br#"{"a":1,}"#,
            br#"{'a':1}"#,
            br#"{"a":1e999}"#,
            b"{\"a\":\"\xff\"}",
        ] {
            assert!(
                parse(bad, &table(), &PayloadLimits::default(), &mut scratch).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn numbers_keep_integers_exact() {
        let mut scratch = Scratch::default();
        let claims =
            parse(br#"{"n":18446744073709551615}"#, &table(), &PayloadLimits::default(), &mut scratch).unwrap();
        assert_eq!(claims.get(4), Some(Val::Num(Num::UInt(18_446_744_073_709_551_615))));
        let claims =
            parse(br#"{"n":-9223372036854775808}"#, &table(), &PayloadLimits::default(), &mut scratch).unwrap();
        assert_eq!(claims.get(4), Some(Val::Num(Num::Int(-9_223_372_036_854_775_808))));
        let claims = parse(br#"{"n":9007199254740993.0}"#, &table(), &PayloadLimits::default(), &mut scratch).unwrap();
        let Some(Val::Num(n)) = claims.get(4) else { panic!() };
        assert!(matches!(claims.number(n), crate::number::NumRef::Text("9007199254740993.0")));
        let error = parse(br#"{"n":1e400}"#, &table(), &PayloadLimits::default(), &mut scratch).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the payload is not valid JSON (number is beyond the range of a 64-bit float at byte 5)"
        );
    }

    #[test]
    fn limits() {
        let mut scratch = Scratch::default();
        let limits = PayloadLimits { max_bytes: 10, ..PayloadLimits::default() };
        assert!(matches!(
            parse(br#"{"aaaaaaaaaa":1}"#, &table(), &limits, &mut scratch),
            Err(PayloadError::TooLarge { .. })
        ));
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
        assert!(matches!(
            parse(deep.as_bytes(), &table(), &PayloadLimits::default(), &mut scratch),
            Err(PayloadError::TooDeep { .. })
        ));
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(9000));
        assert!(matches!(
            parse(long.as_bytes(), &table(), &PayloadLimits::default(), &mut scratch),
            Err(PayloadError::StringTooLong { .. })
        ));
        let wide = format!("{{\"a\":[{}1]}}", "1,".repeat(5000));
        assert!(matches!(
            parse(wide.as_bytes(), &table(), &PayloadLimits::default(), &mut scratch),
            Err(PayloadError::TooManyEntries { .. })
        ));
    }
}
