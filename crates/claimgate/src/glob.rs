//! Glob patterns for claim values: `*` matches any run of characters (including `/`, unlike
//! shell globs: claims such as `project_path` are not file paths), `?` matches exactly one
//! character, and `\` makes the next character literal. Nothing else is special, so `[` and `{`
//! match themselves. Matching is on Unicode characters and runs in O(pattern × text) time at worst,
//! without backtracking blow-up.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyChar,
    AnyRun,
}

/// A compiled glob pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    tokens: Vec<Token>,
    /// For patterns without `?` (most): the literal runs between the `*`s, so that matching is
    /// a prefix test, a suffix test and substring searches in between.
    literals: Option<Vec<String>>,
}

/// Why a pattern is not a glob; `offset` is the byte offset of the problem in the pattern.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GlobError {
    pub offset: usize,
    pub message: String,
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let mut tokens = Vec::with_capacity(pattern.len());
        let mut chars = pattern.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '*' => {
                    // `**` means the same as `*`; keep one so matching stays linear.
                    if tokens.last() != Some(&Token::AnyRun) {
                        tokens.push(Token::AnyRun);
                    }
                }
                '?' => tokens.push(Token::AnyChar),
                '\\' => match chars.next() {
                    Some((_, escaped)) => tokens.push(Token::Literal(escaped)),
                    None => {
                        return Err(GlobError { offset: i, message: "glob pattern ends with a lone `\\`".to_string() });
                    }
                },
                c => tokens.push(Token::Literal(c)),
            }
        }
        let literals = (!tokens.contains(&Token::AnyChar)).then(|| {
            let mut runs = vec![String::new()];
            for token in &tokens {
                match token {
                    Token::Literal(c) => runs.last_mut().expect("never empty").push(*c),
                    _ => runs.push(String::new()),
                }
            }
            runs
        });
        Ok(Glob { pattern: pattern.to_string(), tokens, literals })
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the pattern has no wildcard, so an equality test would do the same.
    pub fn is_literal(&self) -> bool {
        self.tokens.iter().all(|t| matches!(t, Token::Literal(_)))
    }

    pub fn matches(&self, text: &str) -> bool {
        if let Some(runs) = &self.literals {
            return match runs.as_slice() {
                [only] => text == only,
                [first, middle @ .., last] => {
                    if text.len() < first.len() + last.len()
                        || !text.starts_with(first.as_str())
                        || !text.ends_with(last.as_str())
                    {
                        return false;
                    }
                    // Leftmost matches of the middle runs, between the prefix and the suffix.
                    let mut rest = &text[first.len()..text.len() - last.len()];
                    for run in middle {
                        match rest.find(run.as_str()) {
                            Some(at) => rest = &rest[at + run.len()..],
                            None => return false,
                        }
                    }
                    true
                }
                [] => text.is_empty(),
            };
        }
        // Classic wildcard matching with one backtrack point: on a mismatch, retry from the
        // most recent `*` with one more character consumed by it. Positions are byte offsets
        // of character boundaries, so nothing is allocated.
        let char_at = |t: usize| text[t..].chars().next();
        let (mut t, mut p) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while let Some(c) = char_at(t) {
            match self.tokens.get(p) {
                Some(Token::AnyRun) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(Token::AnyChar) => {
                    t += c.len_utf8();
                    p += 1;
                }
                Some(Token::Literal(l)) if *l == c => {
                    t += c.len_utf8();
                    p += 1;
                }
                _ => match star {
                    Some((star_p, star_t)) => {
                        let skipped = char_at(star_t).map_or(1, char::len_utf8);
                        p = star_p + 1;
                        t = star_t + skipped;
                        star = Some((star_p, t));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|token| *token == Token::AnyRun)
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).unwrap().matches(text)
    }

    #[test]
    fn wildcards() {
        assert!(m("*", ""));
        assert!(m("*", "anything/at/all"));
        assert!(m("", ""));
        assert!(!m("", "x"));
        assert!(m("mygroup/*", "mygroup/sub/project"));
        assert!(!m("mygroup/*", "other/project"));
        assert!(m("release-?", "release-1"));
        assert!(!m("release-?", "release-10"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("*.example.com", "api.example.com"));
        assert!(m("??", "çé"));
    }

    #[test]
    fn escapes_make_wildcards_literal() {
        assert!(m(r"dependabot\[bot\]", "dependabot[bot]"));
        assert!(m(r"a\*", "a*"));
        assert!(!m(r"a\*", "ab"));
        assert!(m(r"a\?", "a?"));
        assert!(m(r"\\", "\\"));
        assert_eq!(Glob::new("abc\\").unwrap_err().offset, 3);
    }

    #[test]
    fn the_literal_fast_path_agrees_with_the_general_matcher() {
        let patterns = ["*", "", "a*", "*a", "a*b", "*a*b*", "ab*ba", "a**a", "x*y*z", r"\**", "aa*aa"];
        let texts = ["", "a", "aa", "aaa", "ab", "aba", "abba", "ba", "xyz", "xaybzc", "*", "**a", "aaaa"];
        for pattern in patterns {
            let fast = Glob::new(pattern).unwrap();
            let mut slow = fast.clone();
            slow.literals = None;
            for text in texts {
                assert_eq!(fast.matches(text), slow.matches(text), "{pattern:?} on {text:?}");
            }
        }
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = "*a".repeat(50) + "b";
        let text = "a".repeat(5000);
        assert!(!m(&pattern, &text));
    }
}
