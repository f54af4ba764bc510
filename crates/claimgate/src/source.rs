//! Source files and byte spans.
//!
//! Every node of the syntax tree and of the checked model carries a [`Span`] into the file it came
//! from, so that diagnostics, the evaluator's explanations and the playground can all point at the
//! exact text of a policy.

use std::fmt;
use std::sync::Arc;

/// Index of a file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct FileId(
    /// The file's position in its map, from 0.
    pub u32,
);

/// A half-open byte range `start..end` in one source file.
///
/// Two spans always compare equal: a span is where something was written, not what it means, so
/// syntax trees that differ only in layout (for example before and after formatting) are equal.
/// Compare `start`/`end` directly where the position itself matters.
#[derive(Clone, Copy, Default, serde::Serialize)]
pub struct Span {
    /// The first byte.
    pub start: u32,
    /// The byte after the last.
    pub end: u32,
}

impl Span {
    /// `start..end`.
    pub fn new(start: usize, end: usize) -> Span {
        // Files are bounded well below 4 GiB by `Limits::max_file_bytes` before parsing starts.
        Span { start: start as u32, end: end as u32 }
    }

    /// The span as a range of byte offsets.
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    /// Its length in bytes (0 if `end` is before `start`).
    pub fn len(self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    /// Whether it covers no byte.
    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}
impl Eq for Span {}

impl std::hash::Hash for Span {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// One policy file: its name as the user gave it and its text.
#[derive(Debug)]
pub struct SourceFile {
    /// The name the file was given (its path, for files read from disk).
    pub name: String,
    /// Its text.
    pub text: Arc<str>,
    /// Byte offset of the start of every line, for offset to line/column conversion.
    line_starts: Vec<usize>,
}

/// A 1-based line and column (columns count characters, not bytes, as editors do).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LineCol {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub column: usize,
}

impl SourceFile {
    /// A file with its name and text.
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> SourceFile {
        let text = text.into();
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        SourceFile { name: name.into(), text, line_starts }
    }

    /// The line and column of a byte offset (offsets past the end give the end).
    pub fn line_col(&self, offset: usize) -> LineCol {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let column = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count()) + 1;
        LineCol { line: line + 1, column }
    }

    /// The text of a span (empty when the span is not inside the text).
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or("")
    }
}

/// The files of one policy set.
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    /// No files.
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    /// Adds a file, returning its id.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> FileId {
        self.files.push(SourceFile::new(name, text));
        FileId((self.files.len() - 1) as u32)
    }

    /// The file with this id. An id from another map that is out of this one's range gives an
    /// empty file named `<unknown file>`, never a panic.
    pub fn get(&self, id: FileId) -> &SourceFile {
        static UNKNOWN: std::sync::OnceLock<SourceFile> = std::sync::OnceLock::new();
        self.files.get(id.0 as usize).unwrap_or_else(|| UNKNOWN.get_or_init(|| SourceFile::new("<unknown file>", "")))
    }

    /// Every file with its id, in order.
    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, f)| (FileId(i as u32), f))
    }

    /// How many files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there are no files.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let f = SourceFile::new("a.cg", "ab\nçd\n\nx");
        assert_eq!(f.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(f.line_col(2), LineCol { line: 1, column: 3 });
        assert_eq!(f.line_col(3), LineCol { line: 2, column: 1 });
        assert_eq!(f.line_col(5), LineCol { line: 2, column: 2 });
        assert_eq!(f.line_col(7), LineCol { line: 3, column: 1 });
        assert_eq!(f.line_col(8), LineCol { line: 4, column: 1 });
        assert_eq!(f.line_col(100), LineCol { line: 4, column: 2 });
    }
}
