//! From text to syntax tree: the pest grammar in `grammar/claimgate.pest`, the bounds checked
//! before pest runs, the wording of syntax errors, and the lowering of pest's parse tree into
//! [`crate::ast`] (the one place that knows both).

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use compact_str::CompactString;
use pest::Parser as _;
use pest::iterators::{Pair, Pairs};

use crate::ast::*;
use crate::diagnostic::{Code, Diagnostic};
use crate::source::{FileId, Span};

#[derive(pest_derive::Parser)]
#[grammar = "../../../grammar/claimgate.pest"]
struct Grammar;

/// Bounds applied to untrusted policy text before and while it is parsed.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest policy file accepted, in bytes.
    pub max_file_bytes: usize,
    /// Deepest nesting of `{ }` and `[ ]`; bounds recursion in the parser and everything after it.
    pub max_nesting: usize,
    /// pest's call limit (rule invocations per parse of one top-level block), a guard against
    /// pathological backtracking, scaled with the block's size: `call_limit_base +
    /// call_limit_per_byte * len`. The grammar needs 1 to 6 calls per byte on large blocks of
    /// conditions, lists, groups or comments, so the default leaves a wide margin.
    pub call_limit_per_byte: usize,
    /// The part of the call limit every block gets, whatever its size.
    pub call_limit_base: usize,
    /// How many top-level blocks one pest call parses at most. Not a bound but a speed setting
    /// (16 takes about an eighth off pest's time on a large set against 1); the result is the
    /// same for any value of at least 1, which the tests check.
    pub blocks_per_parse: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 16 * 1024 * 1024,
            max_nesting: 32,
            call_limit_per_byte: 64,
            call_limit_base: 100_000,
            blocks_per_parse: 16,
        }
    }
}

/// The result of parsing one file: the items that parsed, and a diagnostic for each that did not.
#[derive(Debug)]
pub struct Parsed {
    pub ast: PolicyFile,
    pub diagnostics: Vec<Diagnostic>,
    /// Names of top-level blocks that failed to parse, so that the checker does not also report
    /// every reference to them as unknown.
    pub unparsed_names: Vec<(TopKind, String)>,
}

impl Parsed {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses one policy file. Never panics; every problem is a diagnostic.
pub fn parse(file: FileId, text: &str, limits: &Limits) -> Parsed {
    let mut parsed = Parsed {
        ast: PolicyFile { file, items: Vec::new(), comments: Vec::new() },
        diagnostics: Vec::new(),
        unparsed_names: Vec::new(),
    };
    if text.len() > limits.max_file_bytes {
        parsed.diagnostics.push(
            Diagnostic::error(
                Code::LimitExceeded,
                file,
                Span::new(0, 0),
                format!("policy file is {} bytes, more than the limit of {}", text.len(), limits.max_file_bytes),
            )
            .help("split the policy set into several files"),
        );
        return parsed;
    }
    if let Some(diagnostic) = check_nesting(file, text, limits.max_nesting) {
        parsed.diagnostics.push(diagnostic);
        return parsed;
    }
    scan(
        text,
        |_, _| {},
        |start, end| {
            parsed
                .ast
                .comments
                .push(Comment { text: text[start..end].trim_end().to_string(), span: Span::new(start, end) });
        },
    );
    // Comments come out of the scan in order, so their ends are sorted for binary search.
    let comment_starts = parsed.ast.comments.iter().map(|c| (c.span.end as usize, c.span.start as usize)).collect();
    let mut lower = Lower { file, text: "", offset: 0, comment_starts, diagnostics: Vec::new() };
    // Top-level blocks are parsed a group at a time: pest's token queue then stays small and warm
    // in the cache, which makes large policy sets much faster to parse than one pass over the
    // file, and its fixed costs per parse are shared by the group. A group with a block that does
    // not parse is parsed again one block at a time, so that errors are exactly those of parsing
    // each block alone.
    for group in top_level_chunks(text).chunks(limits.blocks_per_parse.max(1)) {
        if group.len() > 1 && parse_group(&mut parsed, &mut lower, text, group, limits) {
            continue;
        }
        for &(chunk_start, chunk) in group {
            parse_block(&mut parsed, &mut lower, text, chunk_start, chunk, limits);
        }
    }
    parsed.diagnostics.append(&mut lower.diagnostics);
    parsed
}

fn is_top_item(rule: Rule) -> bool {
    matches!(rule, Rule::provider | Rule::role | Rule::test)
}

/// pest's call limit for a text of `len` bytes.
fn call_limit(limits: &Limits, len: usize) -> usize {
    limits.call_limit_per_byte.saturating_mul(len).saturating_add(limits.call_limit_base)
}

/// Parses consecutive top-level blocks with one pest call and lowers them, if every block parses
/// as a top-level item that ends exactly where [`top_level_chunks`] ended its chunk: then each
/// item is what parsing its block alone gives (an item never looks past its closing brace).
/// Returns false, having changed nothing, otherwise (a broken block, a limit, a disagreement
/// about where a block ends), and the caller parses the blocks one at a time.
fn parse_group<'t>(
    parsed: &mut Parsed,
    lower: &mut Lower<'t>,
    text: &'t str,
    group: &[(usize, &'t str)],
    limits: &Limits,
) -> bool {
    let (Some(&(start, _)), Some(&(last_start, last))) = (group.first(), group.last()) else { return false };
    let group_text = &text[start..last_start + last.len()];
    let Ok(pairs) = run_pest(Rule::policy_file, group_text, call_limit(limits, group_text.len()), false) else {
        return false;
    };
    let Some(root) = pairs.into_iter().next() else { return false };
    let items: Vec<Pair<'_, Rule>> = root.into_inner().filter(|pair| pair.as_rule() != Rule::EOI).collect();
    // Every chunk but a trailing one of comments ends with the `}` that closes its block.
    let block_ends = group
        .iter()
        .filter(|(_, chunk)| chunk.ends_with('}'))
        .map(|(chunk_start, chunk)| chunk_start + chunk.len() - start);
    let aligned =
        items.iter().map(|pair| is_top_item(pair.as_rule()).then(|| pair.as_span().end())).eq(block_ends.map(Some));
    if !aligned {
        return false;
    }
    lower.text = group_text;
    lower.offset = start;
    // Aligned: every item is a provider, role or test.
    for pair in items {
        parsed.ast.items.push(lower.top_item(pair));
    }
    true
}

/// Parses one top-level block (with the white space and comments before it), reporting a
/// syntax error with pest's detailed expectations if it does not parse.
fn parse_block<'t>(
    parsed: &mut Parsed,
    lower: &mut Lower<'t>,
    text: &str,
    chunk_start: usize,
    chunk: &'t str,
    limits: &Limits,
) {
    let file = lower.file;
    let call_limit = call_limit(limits, chunk.len());
    let pairs = match run_pest(Rule::policy_file, chunk, call_limit, false) {
        Ok(pairs) => pairs,
        Err(error) => {
            parsed.diagnostics.push(syntax_error(file, text, chunk_start, &error));
            return;
        }
    };
    lower.text = chunk;
    lower.offset = chunk_start;
    let Some(root) = pairs.into_iter().next() else { return };
    for pair in root.into_inner() {
        match pair.as_rule() {
            rule if is_top_item(rule) => parsed.ast.items.push(lower.top_item(pair)),
            Rule::broken_item => {
                let start = chunk_start + pair.as_span().start();
                let broken = pair.as_str();
                if let Some(name) = unparsed_name(broken) {
                    parsed.unparsed_names.push(name);
                }
                let reparsed = run_pest(Rule::single_item, broken, call_limit, true);
                match reparsed {
                    Err(error) => parsed.diagnostics.push(syntax_error(file, text, start, &error)),
                    // The block parses alone but not in place: only possible at a boundary the
                    // resynchronisation chose badly. Say so rather than accept it silently.
                    Ok(_) => parsed.diagnostics.push(Diagnostic::error(
                        Code::Syntax,
                        file,
                        Span::new(start, start + broken.trim_end().len()),
                        "this block could not be parsed in place",
                    )),
                }
            }
            _ => {}
        }
    }
}

/// Runs pest on `text` with a call limit and with or without detailed error reports.
///
/// pest keeps both settings in process-wide statics, read when a parse starts. Setting them and
/// parsing under one lock is what makes them per parse: without it, a thread parsing a small
/// block could lower the call limit under a thread about to parse a large one, which would then
/// fail with a spurious "too complex". The lock is held for one top-level block at a time
/// (microseconds), so concurrent loads interleave block by block.
///
/// Detailed reports (which tokens were expected) cost a lot on every rule: blocks are parsed
/// without them, and only a block that failed is parsed again with them.
fn run_pest(rule: Rule, text: &str, call_limit: usize, detail: bool) -> Result<Pairs<'_, Rule>, Box<PestError>> {
    static PEST_SETTINGS: Mutex<()> = Mutex::new(());
    // A panic cannot happen while the lock is held (pest reports errors as values); if one ever
    // did, the settings are rewritten before the next parse anyway, so a poisoned lock is fine.
    let _settings = PEST_SETTINGS.lock().unwrap_or_else(PoisonError::into_inner);
    pest::set_error_detail(detail);
    pest::set_call_limit(NonZeroUsize::new(call_limit));
    Grammar::parse(rule, text).map_err(Box::new)
}

type PestError = pest::error::Error<Rule>;

/// Checks brace and bracket nesting without recursion, skipping strings and comments, so that a
/// hostile file cannot exhaust the stack of the recursive-descent parser.
fn check_nesting(file: FileId, text: &str, max: usize) -> Option<Diagnostic> {
    let mut depth = 0usize;
    let mut too_deep = None;
    scan(
        text,
        |i, b| match b {
            b'{' | b'[' => {
                depth += 1;
                if depth > max && too_deep.is_none() {
                    too_deep = Some(i);
                }
            }
            _ => depth = depth.saturating_sub(1),
        },
        |_, _| {},
    );
    too_deep.map(|i| {
        Diagnostic::error(
            Code::LimitExceeded,
            file,
            Span::new(i, i + 1),
            format!("blocks are nested more than {max} deep"),
        )
        .label("too deep")
        .help("flatten the conditions: `all { }` inside `require { }` is implied")
    })
}

/// Splits a file after every `}` that closes a top-level block (strings and comments skipped),
/// so that each chunk holds one block and the text around it. Unbalanced braces leave the rest
/// of the file in one chunk, where the parser reports them.
fn top_level_chunks(text: &str) -> Vec<(usize, &str)> {
    let mut chunks = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    scan(
        text,
        |i, b| match b {
            b'{' | b'[' => depth += 1,
            _ => {
                depth = depth.saturating_sub(1);
                if depth == 0 && b == b'}' {
                    chunks.push((start, &text[start..=i]));
                    start = i + 1;
                }
            }
        },
        |_, _| {},
    );
    if !text[start..].trim().is_empty() {
        chunks.push((start, &text[start..]));
    }
    chunks
}

/// `role deploy-prod {` → (Role, "deploy-prod"), for a block that did not parse.
fn unparsed_name(chunk: &str) -> Option<(TopKind, String)> {
    let mut words = chunk.split_whitespace();
    let kind = match words.next()? {
        "provider" => TopKind::Provider,
        "role" => TopKind::Role,
        "test" => TopKind::Test,
        _ => return None,
    };
    let name = words.next()?.trim_end_matches('{');
    let name = name.trim_matches('"');
    (!name.is_empty()).then(|| (kind, name.to_string()))
}

fn inner(pair: Pair<'_, Rule>) -> pest::iterators::Pairs<'_, Rule> {
    pair.into_inner()
}

// ---------------------------------------------------------------------------------------------
// Syntax errors

/// Words for a grammar rule, as a policy author would say them. `None` hides the rule.
fn describe(rule: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        policy_file | single_item | top_keyword => "`provider`, `role` or `test`",
        provider | kw_provider => "`provider`",
        role | kw_role => "`role`",
        test | kw_test => "`test`",
        body => "`{`",
        setting => "a setting",
        block => "a block",
        require | kw_require => "`require`",
        condition | comparison => "a condition",
        message | kw_message => "`message`",
        negation | kw_not => "`not`",
        group | group_kind => "`any` or `all`",
        path => "a claim path such as `claims.sub`",
        compare_eq
        | compare_ne
        | compare_ord
        | ord_op
        | compare_in
        | kw_in
        | compare_glob
        | kw_glob
        | compare_matches
        | kw_matches
        | compare_contains_any
        | compare_contains_all
        | compare_contains
        | compare_contains_glob
        | compare_contains_matches
        | kw_contains
        | kw_words
        | compare_exists
        | kw_exists
        | compare_absent
        | kw_absent
        | compare_is
        | kw_is => {
            "an operator (`==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `glob`, `matches`, `contains`, `words contains`, `exists`, `absent`, `is`)"
        }
        json_type => "a type (`string`, `number`, `bool`, `list` or `object`)",
        kw_any => "`any`",
        kw_all => "`all`",
        field => "a claim name",
        quoted_field => "a quoted claim name",
        index => "an array index",
        value => "a value",
        optional | kw_optional => "`optional`",
        list => "a list",
        duration => "a duration such as `90s`",
        duration_unit => "a duration unit (`d`, `h`, `m` or `s`)",
        number => "a number",
        boolean => "`true` or `false`",
        string | quoted_string | multiline_string => "a string",
        escape => "an escape (`\\\"`, `\\\\`, `\\n`, `\\r`, `\\t` or `\\u{...}`)",
        name | ident => "a name",
        EOI => "end of file",
        broken_item | WHITESPACE | top_item | item | segment | term | list_item | scalar | ident_start | ident_char
        | not_newline | plain_char => return None,
    })
}

/// Literal tokens worth naming in an error; the rest (characters inside numbers, strings or
/// names) would only be noise next to the rule that wanted them.
const STRUCTURAL_TOKENS: &[&str] = &["=", "{", "}", "[", "]", ",", "+", "."];

fn syntax_error(file: FileId, text: &str, offset: usize, error: &pest::error::Error<Rule>) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let location = match error.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    if let ErrorVariant::CustomError { message } = &error.variant {
        // The only custom error pest raises by itself is the call limit.
        let at = offset + location;
        return Diagnostic::error(Code::LimitExceeded, file, Span::new(at, at), "the policy is too complex to parse")
            .help(format!("pest stopped: {message}; split the file or simplify it"));
    }
    let attempts = error.parse_attempts();
    let position = offset + attempts.as_ref().map_or(location, |a| a.max_position.max(location));
    let mut expected = BTreeSet::new();
    if let ErrorVariant::ParsingError { positives, .. } = &error.variant {
        expected.extend(positives.iter().filter_map(|r| describe(*r)));
    }
    if let Some(attempts) = &attempts {
        for token in attempts.expected_tokens() {
            // pest does not export its token type; its Display is the literal text.
            let token = token.to_string();
            if let Some(known) = STRUCTURAL_TOKENS.iter().find(|t| **t == token) {
                expected.insert(match *known {
                    "=" => "`=`",
                    "{" => "`{`",
                    "}" => "`}`",
                    "[" => "`[`",
                    "]" => "`]`",
                    "," => "`,`",
                    "+" => "`+`",
                    _ => "`.`",
                });
            }
        }
    }
    // Where a condition may start, say so rather than listing how conditions start.
    if ["`not`", "`any` or `all`", "a claim path such as `claims.sub`"].iter().all(|d| expected.contains(d)) {
        for start in ["`not`", "`any` or `all`", "a claim path such as `claims.sub`"] {
            expected.remove(start);
        }
        expected.insert("a condition");
    }
    // Where any kind of value may come, say "a value" rather than listing every kind.
    const VALUE_KINDS: [&str; 8] = [
        "a string",
        "a claim path such as `claims.sub`",
        "a list",
        "a duration such as `90s`",
        "a number",
        "`optional`",
        "`true` or `false`",
        "a name",
    ];
    if expected.contains("a duration such as `90s`") && expected.contains("a list") {
        for kind in VALUE_KINDS {
            expected.remove(kind);
        }
        expected.insert("a value");
    }
    if ["a number", "`true` or `false`", "a string"].iter().all(|d| expected.contains(d)) {
        for d in ["a number", "`true` or `false`", "a string"] {
            expected.remove(d);
        }
        expected.insert("a string, number or boolean");
    }
    if expected.contains("`require`") && expected.remove("a name") {
        // Inside a body a name starts a setting or a block; say which things can come here.
        expected.insert("a setting");
        expected.insert("a block");
    }
    let (found, end) = found_at(text, position);
    let message = if expected.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {}, found {found}", join_or(expected.iter().copied()))
    };
    if let Some(quote) = unterminated_quote(text, position) {
        let line_end = text[quote..].find('\n').map_or(text.len(), |i| quote + i);
        return Diagnostic::error(Code::Syntax, file, Span::new(quote, line_end), "unterminated string")
            .label("this string is not closed on its line")
            .help("a `\"` string ends on the line it starts; use `\"\"\"` for text over several lines");
    }
    let mut diagnostic = Diagnostic::error(Code::Syntax, file, Span::new(position, end), message);
    if let Some(help) = likely_mistake(text, position) {
        diagnostic = diagnostic.help(help);
    }
    if position >= text.len()
        && let Some(open) = unclosed_brace(text)
    {
        diagnostic = diagnostic.related(file, Span::new(open, open + 1), "this block is not closed");
    }
    diagnostic
}

/// Help for the syntax errors people make most often in conditions.
fn likely_mistake(text: &str, position: usize) -> Option<&'static str> {
    let rest = text.get(position..)?;
    let before = text.get(..position)?.trim_end();
    let word_before = before.rsplit(|c: char| c.is_whitespace() || c == '{').next().unwrap_or("");
    if rest.starts_with("claim.") {
        return Some("claim paths start with `claims.` (plural): did you mean `claims.`?");
    }
    if rest.starts_with("not ") || rest.starts_with("not\t") {
        if word_before == "not" {
            return Some("`not not` would mean the condition itself: write the condition without `not`");
        }
        return Some(
            "`not` goes before a whole condition: write `not claims.x in [...]` (or `not claims.x glob \"...\"`)",
        );
    }
    None
}

/// The opening quote of a `"` string that is still open at `position` on its line, if any.
fn unterminated_quote(text: &str, position: usize) -> Option<usize> {
    let position = position.min(text.len());
    let line_start = text[..position].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[position..].find('\n').map_or(text.len(), |i| position + i);
    let line = &text[line_start..line_end];
    if line.contains("\"\"\"") {
        return None;
    }
    let mut open = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if open.is_some() => escaped = true,
            '"' => open = if open.is_some() { None } else { Some(line_start + i) },
            '#' if open.is_none() => break,
            _ => {}
        }
    }
    open.filter(|&q| q <= position)
}

/// The last `{` left open at the end of the text (strings and comments skipped).
fn unclosed_brace(text: &str) -> Option<usize> {
    let mut stack = Vec::new();
    scan(
        text,
        |i, b| match b {
            b'{' => stack.push(i),
            b'}' => {
                stack.pop();
            }
            _ => {}
        },
        |_, _| {},
    );
    stack.last().copied()
}

/// A linear scan that knows strings and comments as the grammar does: calls `brace` with the
/// offset of every brace and bracket outside strings and comments, and `comment` with the range of
/// every comment. It finds comments for the formatter (the grammar skips them, which keeps the
/// parse tree small) and bounds nesting before the recursive parser runs.
fn scan(text: &str, mut brace: impl FnMut(usize, u8), mut comment: impl FnMut(usize, usize)) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                let start = i;
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                comment(start, i);
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += 1;
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b @ (b'{' | b'[' | b'}' | b']') => brace(i, b),
            _ => {}
        }
        i += 1;
    }
}

/// A short description of the text at `position` and where it ends.
fn found_at(text: &str, position: usize) -> (String, usize) {
    let rest = text.get(position..).unwrap_or("");
    let Some(first) = rest.chars().next() else { return ("end of file".to_string(), position) };
    let word_len = if first.is_ascii_alphanumeric() || first == '_' {
        rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len())
    } else if first == '"' {
        let close = rest[1..].find(['"', '\n']).map_or(rest.len(), |i| i + 2);
        close.min(rest.len())
    } else {
        first.len_utf8()
    };
    let word = &rest[..word_len];
    let shown = if first == '\n' {
        "end of line".to_string()
    } else if word.chars().count() > 24 {
        format!("`{}…`", word.chars().take(24).collect::<String>())
    } else {
        format!("`{word}`")
    };
    (shown, position + word_len)
}

fn join_or<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    match items.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

// ---------------------------------------------------------------------------------------------
// Lowering: pest pairs → ast

struct Lower<'t> {
    file: FileId,
    /// The chunk being lowered, and where it starts in the file: pest's positions are relative
    /// to the chunk, spans are absolute.
    text: &'t str,
    offset: usize,
    /// Start of each comment, by its end offset.
    comment_starts: Vec<(usize, usize)>,
    diagnostics: Vec<Diagnostic>,
}

impl Lower<'_> {
    /// The span of a pair without the white space and comments that pest's implicit whitespace
    /// leaves at the end of rules ending in a repetition (`value`, `condition`, ...), so that
    /// underlines stop at the last character and the formatter sees trailing comments.
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let start = pair.as_span().start();
        let mut end = pair.as_span().end();
        loop {
            let trimmed = self.text[start..end].trim_end().len() + start;
            let comment = self.comment_starts.binary_search_by_key(&(trimmed + self.offset), |(end, _)| *end);
            match comment.map(|i| self.comment_starts[i].1) {
                Ok(comment_start) if comment_start >= start + self.offset => end = comment_start - self.offset,
                _ => return Span::new(start + self.offset, trimmed + self.offset),
            }
        }
    }

    fn error(&self, code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(code, self.file, span, message)
    }

    fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn top_item(&mut self, pair: Pair<'_, Rule>) -> TopItem {
        let kind = match pair.as_rule() {
            Rule::provider => TopKind::Provider,
            Rule::role => TopKind::Role,
            _ => TopKind::Test,
        };
        let item_span = self.span(&pair);
        let mut children = inner(pair).skip(1); // the keyword
        let name_pair = children.next().expect("grammar: name");
        let name = if matches!(name_pair.as_rule(), Rule::quoted_string | Rule::multiline_string) {
            let s = self.string(name_pair);
            Ident { name: s.value, span: s.span }
        } else {
            self.ident(name_pair)
        };
        let body = self.body(children.next().expect("grammar: body"));
        TopItem { kind, name, body, span: item_span }
    }

    fn ident(&mut self, pair: Pair<'_, Rule>) -> Ident {
        Ident { name: CompactString::from(pair.as_str()), span: self.span(&pair) }
    }

    fn body(&mut self, pair: Pair<'_, Rule>) -> Body {
        let body_span = self.span(&pair);
        let items = inner(pair)
            .map(|item| match item.as_rule() {
                Rule::setting => {
                    let item_span = self.span(&item);
                    let mut children = inner(item);
                    let name = self.ident(children.next().expect("grammar: setting name"));
                    let terms: Vec<Term> = children.map(|t| self.term(t)).collect();
                    let span = match (terms.first(), terms.last()) {
                        (Some(first), Some(last)) => first.span().to(last.span()),
                        _ => item_span,
                    };
                    Item::Setting(Setting { name, value: Value { terms, span }, span: item_span })
                }
                Rule::block => {
                    let item_span = self.span(&item);
                    let mut children = inner(item).peekable();
                    let name = self.ident(children.next().expect("grammar: block name"));
                    let label = match children.peek().map(|p| p.as_rule()) {
                        Some(Rule::ident) => children.next().map(|p| self.ident(p)),
                        _ => None,
                    };
                    let body = self.body(children.next().expect("grammar: block body"));
                    Item::Block(Block { name, label, body, span: item_span })
                }
                _ => {
                    let item_span = self.span(&item);
                    let conditions = self.conditions(inner(item).skip(1));
                    Item::Require(Require { conditions, span: item_span })
                }
            })
            .collect();
        Body { items, span: body_span }
    }

    /// Conditions in a `require` or group body: each a comparison, negation or group, possibly
    /// followed by the `message` that belongs to it.
    fn conditions<'p>(&mut self, pairs: impl Iterator<Item = Pair<'p, Rule>>) -> Vec<Condition> {
        let mut conditions: Vec<Condition> = Vec::new();
        for pair in pairs {
            if pair.as_rule() == Rule::message {
                let message_span = self.span(&pair);
                let string = self.string(inner(pair).nth(1).expect("grammar: message string"));
                if let Some(condition) = conditions.last_mut() {
                    condition.span = condition.span.to(message_span);
                    condition.message = Some(string);
                }
                continue;
            }
            let span = self.span(&pair);
            let kind = self.condition_kind(pair);
            conditions.push(Condition { kind, message: None, span });
        }
        conditions
    }

    fn condition_kind(&mut self, pair: Pair<'_, Rule>) -> ConditionKind {
        match pair.as_rule() {
            Rule::negation => {
                let negation_span = self.span(&pair);
                let target = inner(pair).nth(1).expect("grammar: negated condition");
                let target_span = self.span(&target);
                let kind = self.condition_kind(target);
                let inner = Condition { kind, message: None, span: target_span };
                let _ = negation_span;
                ConditionKind::Not(Box::new(inner))
            }
            Rule::group => {
                let group_span = self.span(&pair);
                let mut children = inner(pair);
                let kind = match children.next().map(|k| k.as_str()) {
                    Some("all") => GroupKind::All,
                    _ => GroupKind::Any,
                };
                let conditions = self.conditions(children);
                ConditionKind::Group(Group { kind, conditions, span: group_span })
            }
            _ => ConditionKind::Compare(self.comparison(pair)),
        }
    }

    fn comparison(&mut self, pair: Pair<'_, Rule>) -> Comparison {
        let comparison_span = self.span(&pair);
        let mut children = inner(pair);
        let path = self.path(children.next().expect("grammar: path"));
        let op_pair = children.next().expect("grammar: operator");
        let rule = op_pair.as_rule();
        // `words` comes first when present; the operands are found after the keywords.
        let words = inner(op_pair.clone()).next().is_some_and(|p| p.as_rule() == Rule::kw_words);
        let mut parts = inner(op_pair).skip(usize::from(words));
        let op = match rule {
            Rule::compare_eq => Op::Eq(self.scalar(parts.next().expect("grammar: scalar"))),
            Rule::compare_ne => Op::Ne(self.scalar(parts.next().expect("grammar: scalar"))),
            Rule::compare_ord => {
                let op = parts.next().expect("grammar: ord_op").as_str();
                let number = self.number(parts.next().expect("grammar: number"));
                match op {
                    "<" => Op::Lt(number),
                    "<=" => Op::Le(number),
                    ">" => Op::Gt(number),
                    _ => Op::Ge(number),
                }
            }
            Rule::compare_in => Op::In(self.scalar_list(parts.nth(1).expect("grammar: list"))),
            Rule::compare_glob => Op::Glob(self.string(parts.nth(1).expect("grammar: glob"))),
            Rule::compare_matches => Op::Matches(self.string(parts.nth(1).expect("grammar: regex"))),
            Rule::compare_contains_any => Op::ContainsAny(self.scalar_list(parts.nth(2).expect("grammar: list"))),
            Rule::compare_contains_all => Op::ContainsAll(self.scalar_list(parts.nth(2).expect("grammar: list"))),
            Rule::compare_contains => Op::Contains(self.scalar(parts.nth(1).expect("grammar: scalar"))),
            Rule::compare_contains_glob => Op::ContainsGlob(self.string(parts.nth(2).expect("grammar: glob"))),
            Rule::compare_contains_matches => Op::ContainsMatches(self.string(parts.nth(2).expect("grammar: regex"))),
            Rule::compare_exists => Op::Exists,
            Rule::compare_is => match parts.nth(1).map(|p| p.as_str()) {
                Some("string") => Op::Is(JsonType::String),
                Some("number") => Op::Is(JsonType::Number),
                Some("bool") => Op::Is(JsonType::Bool),
                Some("list") => Op::Is(JsonType::List),
                _ => Op::Is(JsonType::Object),
            },
            _ => Op::Absent,
        };
        Comparison { path, words, op, span: comparison_span }
    }

    fn path(&mut self, pair: Pair<'_, Rule>) -> ClaimPath {
        let path_span = self.span(&pair);
        let segments = inner(pair)
            .map(|segment| match segment.as_rule() {
                Rule::field => Segment::Key(CompactString::from(segment.as_str())),
                Rule::quoted_field => {
                    let string = self.string(inner(segment).next().expect("grammar: quoted field"));
                    Segment::Key(string.value)
                }
                _ => {
                    let text = segment.as_str();
                    match text.parse::<u32>() {
                        Ok(i) => Segment::Index(i),
                        Err(_) => {
                            let d = self.error(Code::InvalidNumber, self.span(&segment), "array index is too large");
                            self.report(d.label("at most 4294967295"));
                            Segment::Index(u32::MAX)
                        }
                    }
                }
            })
            .collect();
        ClaimPath { segments, span: path_span }
    }

    fn scalar_list(&mut self, pair: Pair<'_, Rule>) -> ScalarList {
        let list_span = self.span(&pair);
        let mut items = Vec::new();
        for item in inner(pair) {
            if item.as_rule() == Rule::ident {
                let s = self.span(&item);
                let d = self.error(
                    Code::WrongType,
                    s,
                    format!("expected a string, number or boolean, found `{}`", item.as_str()),
                );
                self.report(d.help(format!("to compare with the text, quote it: \"{}\"", item.as_str())));
                continue;
            }
            items.push(self.scalar(item));
        }
        ScalarList { items, span: list_span }
    }

    fn scalar(&mut self, pair: Pair<'_, Rule>) -> Scalar {
        match pair.as_rule() {
            Rule::number => Scalar::Number(self.number(pair)),
            Rule::boolean => Scalar::Bool(BoolLit { value: pair.as_str() == "true", span: self.span(&pair) }),
            _ => Scalar::Str(self.string(pair)),
        }
    }

    fn term(&mut self, pair: Pair<'_, Rule>) -> Term {
        match pair.as_rule() {
            Rule::quoted_string | Rule::multiline_string => Term::Str(self.string(pair)),
            Rule::number => Term::Number(self.number(pair)),
            Rule::boolean => Term::Bool(BoolLit { value: pair.as_str() == "true", span: self.span(&pair) }),
            Rule::duration => Term::Duration(self.duration(pair)),
            Rule::path => Term::Path(self.path(pair)),
            Rule::optional => {
                let optional_span = self.span(&pair);
                let path = self.path(inner(pair).nth(1).expect("grammar: optional path"));
                Term::Optional(path, optional_span)
            }
            Rule::list => {
                let list_span = self.span(&pair);
                let items = inner(pair).map(|t| self.term(t)).collect();
                Term::List(List { items, span: list_span })
            }
            _ => Term::Ident(self.ident(pair)),
        }
    }

    fn number(&mut self, pair: Pair<'_, Rule>) -> NumLit {
        let text = pair.as_str();
        let number_span = self.span(&pair);
        let is_integer = !text.contains(['.', 'e', 'E']);
        let exponent_too_large =
            crate::number::exponent(text).is_some_and(|e| e.abs() > crate::number::MAX_LITERAL_EXPONENT);
        let value = match serde_json::from_str::<serde_json::Number>(text) {
            // serde_json reads `-0` as the float -0.0; as an integer literal it is plain 0.
            Ok(_) if is_integer && text.trim_start_matches('-').bytes().all(|b| b == b'0') => {
                serde_json::Number::from(0)
            }
            Ok(n) if !exponent_too_large && (!is_integer || n.is_i64() || n.is_u64()) => n,
            _ => {
                let digits = text.trim_start_matches('-');
                let message = if digits.len() > 1 && digits.starts_with('0') && digits.as_bytes()[1].is_ascii_digit() {
                    "a number cannot start with a leading zero (JSON numbers do not)"
                } else if is_integer {
                    "integer does not fit in 64 bits"
                } else {
                    "number is out of range"
                };
                self.report(self.error(Code::InvalidNumber, number_span, message));
                serde_json::Number::from(0)
            }
        };
        NumLit { text: CompactString::from(text), value, span: number_span }
    }

    fn duration(&mut self, pair: Pair<'_, Rule>) -> DurationLit {
        let text = pair.as_str();
        let duration_span = self.span(&pair);
        match parse_duration(text) {
            Ok(seconds) => DurationLit { text: CompactString::from(text), seconds, span: duration_span },
            Err(problem) => {
                let d = self.error(Code::InvalidDuration, duration_span, problem);
                self.report(d.help("write units from largest to smallest, each once: `1d`, `8h`, `1h30m`, `90s`"));
                DurationLit { text: CompactString::from(text), seconds: 0, span: duration_span }
            }
        }
    }

    fn string(&mut self, pair: Pair<'_, Rule>) -> StrLit {
        let string_span = self.span(&pair);
        let multiline = pair.as_rule() == Rule::multiline_string;
        let text = pair.as_str();
        let result = if multiline {
            unindent_multiline(&text[3..text.len() - 3]).map(CompactString::from)
        } else {
            unescape(&text[1..text.len() - 1]).map_err(|(offset, len, message)| {
                let start = string_span.start as usize + 1 + offset;
                (Span::new(start, start + len), message)
            })
        };
        match result {
            Ok(value) => StrLit { value, multiline, span: string_span },
            Err((problem_span, message)) => {
                let problem_span = if problem_span.is_empty() { string_span } else { problem_span };
                let mut diagnostic = self.error(Code::InvalidString, problem_span, message);
                if multiline {
                    diagnostic = diagnostic.help(
                        "put the text on the lines after `\"\"\"` and the closing `\"\"\"` on its own line; \
                         its indentation is removed from every line",
                    );
                }
                self.report(diagnostic);
                StrLit { value: CompactString::default(), multiline, span: string_span }
            }
        }
    }
}

/// Parses `1h30m` into seconds. Units must be in decreasing order, each at most once.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let mut total: u64 = 0;
    let mut last_unit = u64::MAX;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(format!("`{c}` is not a duration unit")),
        };
        if unit >= last_unit {
            return Err(format!("duration `{text}` repeats a unit or lists units out of order"));
        }
        last_unit = unit;
        let amount: u64 = digits.parse().map_err(|_| format!("duration `{text}` is too long"))?;
        total = amount
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .filter(|s| *s <= MAX_DURATION_SECONDS)
            .ok_or_else(|| format!("duration `{text}` is too long"))?;
        digits.clear();
    }
    Ok(total)
}

/// The longest duration accepted anywhere: 100 years, far beyond any sensible token setting,
/// and small enough that adding it to a timestamp cannot overflow.
pub const MAX_DURATION_SECONDS: u64 = 100 * 365 * 86_400;

/// Resolves the escapes of a `"..."` string. Errors carry the byte offset and length of the bad
/// escape inside the literal's contents.
fn unescape(raw: &str) -> Result<CompactString, (usize, usize, String)> {
    if !raw.contains('\\') {
        return Ok(CompactString::from(raw));
    }
    let mut out = CompactString::with_capacity(raw.len());
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some((_, '"')) => out.push('"'),
            Some((_, '\\')) => out.push('\\'),
            Some((_, 'n')) => out.push('\n'),
            Some((_, 'r')) => out.push('\r'),
            Some((_, 't')) => out.push('\t'),
            Some((_, 'u')) if is_code_point_escape(&raw[i..]) => {
                let close = raw[i..].find('}').map_or(raw.len(), |j| i + j);
                let hex = raw.get(i + 3..close).unwrap_or("");
                let code = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                match code {
                    Some(ch) => out.push(ch),
                    None => {
                        return Err((i, close + 1 - i, format!("`\\u{{{hex}}}` is not a unicode character")));
                    }
                }
                for (j, _) in chars.by_ref() {
                    if j >= close {
                        break;
                    }
                }
            }
            Some((_, 'u')) => {
                // Underline up to a nearby `}` (`\u{12345678}`), else the `\u` alone.
                let end = raw[i..].char_indices().take(12).find(|(_, c)| *c == '}').map_or(2, |(j, _)| j + 1);
                return Err((i, end, "`\\u` takes 1 to 6 hex digits in braces, such as \\u{1F600}".to_string()));
            }
            Some((_, other)) => {
                let shown: String = if other.is_control() { other.escape_debug().collect() } else { other.to_string() };
                return Err((
                    i,
                    1 + other.len_utf8(),
                    format!("`\\{shown}` is not an escape: write \\\", \\\\, \\n, \\r, \\t or \\u{{HEX}}"),
                ));
            }
            None => return Err((i, 1, "a string cannot end with a lone `\\`".to_string())),
        }
    }
    Ok(out)
}

/// Whether `text` (from a `\`) is `\u{` 1-6 hex digits `}`, the one escape with a body.
fn is_code_point_escape(text: &str) -> bool {
    let Some(body) = text.strip_prefix("\\u{") else { return false };
    let digits = body.bytes().take_while(u8::is_ascii_hexdigit).count();
    (1..=6).contains(&digits) && body.as_bytes().get(digits) == Some(&b'}')
}

/// The contents of a `"""` string. On one line it is taken as written. Over several lines, the
/// line break after the opening quotes is dropped, and the indentation of the closing quotes
/// (which must stand on a line of their own) is removed from every line, so a PEM block can be
/// indented with the policy around it.
fn unindent_multiline(raw: &str) -> Result<String, (Span, String)> {
    if !raw.contains('\n') {
        // `"""{"a": 1}"""`: a raw string on one line, handy for JSON.
        return Ok(raw.to_string());
    }
    let Some(body) = raw.strip_prefix('\n').or_else(|| raw.strip_prefix("\r\n")) else {
        return Err((Span::default(), "text of a `\"\"\"` string starts on the line after the quotes".to_string()));
    };
    let (content, indent) = match body.rfind('\n') {
        Some(last) if body[last + 1..].chars().all(|c| c == ' ' || c == '\t') => (&body[..last], &body[last + 1..]),
        _ if body.chars().all(|c| c == ' ' || c == '\t') => ("", body),
        _ => return Err((Span::default(), "the closing `\"\"\"` must be on a line of its own".to_string())),
    };
    if content.is_empty() && !body.contains('\n') {
        return Ok(String::new());
    }
    let mut out = String::with_capacity(content.len());
    for (n, line) in content.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        match line.strip_prefix(indent) {
            Some(rest) => out.push_str(rest),
            None => {
                return Err((
                    Span::default(),
                    format!("line {} of the string is indented less than the closing `\"\"\"`", n + 1),
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("1d"), Ok(86_400));
        assert!(parse_duration("30m1h").is_err());
        assert!(parse_duration("1h1h").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
        assert!(parse_duration("36600d").is_err());
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(r#"a\"b\\c\n\t\u{1F600}"#).unwrap(), "a\"b\\c\n\t😀");
        assert!(unescape(r"\u{D800}").is_err());
    }

    #[test]
    fn multiline_strings_strip_the_closing_indentation() {
        assert_eq!(unindent_multiline("\n    a\n      b\n\n    c\n    ").unwrap(), "a\n  b\n\nc");
        assert_eq!(unindent_multiline("\nx\n").unwrap(), "x");
        assert!(unindent_multiline("x\n").is_err());
        assert_eq!(unindent_multiline(r#"{"a": "\n"}"#).unwrap(), r#"{"a": "\n"}"#);
        assert!(unindent_multiline("\n  a\n b\n  ").is_err());
        assert!(unindent_multiline("\n  a").is_err());
    }
}
