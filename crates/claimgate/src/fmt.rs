//! The formatter: one canonical layout for policy files, so that reviews are about meaning.
//!
//! Layout: two-space indentation, one item per line, `name = value`, one blank line between
//! top-level blocks, blank lines inside blocks kept (at most one), comments kept where they were
//! (on their own line before an item, or at the end of the item's line). The printer works from
//! the syntax tree, never from the original text, so it cannot change meaning: values are printed
//! from what they mean (strings are re-escaped canonically, multi-line strings re-indented with
//! their block), and `fmt(fmt(x)) == fmt(x)`.

use crate::ast::*;

const INDENT: &str = "  ";
const MAX_WIDTH: usize = 100;

/// Formats a parsed file. `source` is the text it was parsed from, used only to place comments
/// and keep blank lines; pass `""` for a tree that was built rather than parsed.
pub fn format_file(file: &PolicyFile, source: &str) -> String {
    let mut printer =
        Printer { out: String::new(), source, comments: &file.comments, next_comment: 0, last_end: 0, indent: 0 };
    for (i, item) in file.items.iter().enumerate() {
        if i > 0 && !printer.out.ends_with("\n\n") {
            printer.out.push('\n');
        }
        printer.leading_comments(item.span.start, true);
        if printer.blank_line_before(item.span.start) && !printer.out.is_empty() && !printer.out.ends_with("\n\n") {
            printer.out.push('\n');
        }
        printer.top_item(item);
    }
    printer.leading_comments(u32::MAX, !file.items.is_empty());
    printer.out
}

/// A condition on one line, as the compiler records it and as tests may name it:
/// `claims.ref == "main"`, `not claims.actor glob "dependabot*"`, `any { claims.a exists claims.b exists }`.
pub fn condition_text(condition: &Condition) -> String {
    let mut out = String::new();
    write_condition_inline(&mut out, condition);
    out
}

/// A claim path in canonical notation: `claims.a."b.c"[0]`.
pub fn path_text(path: &ClaimPath) -> String {
    let mut out = String::from("claims");
    for segment in &path.segments {
        match segment {
            Segment::Key(key) if is_bare_key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Segment::Key(key) => {
                out.push('.');
                write_quoted(&mut out, key);
            }
            Segment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Whether a claim key can be written without quotes (and is not read back as a keyword).
fn is_bare_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

struct Printer<'a> {
    out: String,
    source: &'a str,
    comments: &'a [Comment],
    next_comment: usize,
    /// Source offset of the end of the last item or comment printed, for blank-line detection.
    last_end: u32,
    indent: usize,
}

impl Printer<'_> {
    fn pad(&mut self) {
        for _ in 0..self.indent {
            self.out.push_str(INDENT);
        }
    }

    /// Whether the source had a blank line between the last printed thing and `start`.
    fn blank_line_before(&self, start: u32) -> bool {
        let from = (self.last_end as usize).min(self.source.len());
        let to = (start as usize).min(self.source.len()).max(from);
        self.source[from..to].matches('\n').count() >= 2
    }

    /// Prints the comments that stand before `before`, each on its own line.
    fn leading_comments(&mut self, before: u32, keep_blank: bool) {
        while let Some(comment) = self.comments.get(self.next_comment) {
            if comment.span.start >= before {
                break;
            }
            if keep_blank
                && self.blank_line_before(comment.span.start)
                && !self.out.ends_with("{\n")
                && !self.out.ends_with("\n\n")
                && !self.out.is_empty()
            {
                self.out.push('\n');
            }
            self.pad();
            self.out.push_str(&comment.text);
            self.out.push('\n');
            self.last_end = comment.span.end;
            self.next_comment += 1;
        }
    }

    /// Prints a comment that stands on the same source line right after `end`, then ends the line.
    fn end_line(&mut self, end: u32) {
        if let Some(comment) = self.comments.get(self.next_comment) {
            let gap = self.source.get(end as usize..comment.span.start as usize);
            if comment.span.start >= end && gap.is_some_and(|g| !g.contains('\n')) {
                self.out.push(' ');
                self.out.push_str(&comment.text);
                self.last_end = comment.span.end;
                self.next_comment += 1;
                self.out.push('\n');
                return;
            }
        }
        self.last_end = self.last_end.max(end);
        self.out.push('\n');
    }

    /// Starts an item inside a block: its leading comments and at most one blank line.
    fn begin_item(&mut self, start: u32) {
        self.leading_comments(start, true);
        if self.blank_line_before(start) && !self.out.ends_with("{\n") && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
        self.pad();
    }

    /// Prints the comments left before a closing brace, then the brace.
    fn close_block(&mut self, close: u32) {
        self.indent += 1;
        self.leading_comments(close, true);
        self.indent -= 1;
        self.pad();
        self.out.push('}');
    }

    fn top_item(&mut self, item: &TopItem) {
        self.out.push_str(item.kind.keyword());
        self.out.push(' ');
        if item.kind == TopKind::Test {
            write_quoted(&mut self.out, &item.name.name);
        } else {
            self.out.push_str(&item.name.name);
        }
        self.out.push(' ');
        self.body(&item.body);
        self.end_line(item.span.end);
    }

    fn body(&mut self, body: &Body) {
        if body.items.is_empty() && !self.has_comment_before(body.close().start) {
            self.out.push_str("{}");
            return;
        }
        self.out.push_str("{\n");
        self.last_end = body.span.start + 1;
        self.indent += 1;
        for item in &body.items {
            self.item(item);
        }
        self.indent -= 1;
        self.close_block(body.close().start);
    }

    fn has_comment_before(&self, offset: u32) -> bool {
        self.comments.get(self.next_comment).is_some_and(|c| c.span.start < offset)
    }

    fn item(&mut self, item: &Item) {
        self.begin_item(item.span().start);
        match item {
            Item::Setting(setting) => {
                self.out.push_str(&setting.name.name);
                self.out.push_str(" = ");
                self.value(&setting.value);
            }
            Item::Block(block) => {
                self.out.push_str(&block.name.name);
                if let Some(label) = &block.label {
                    self.out.push(' ');
                    self.out.push_str(&label.name);
                }
                self.out.push(' ');
                self.body(&block.body);
            }
            Item::Require(require) => {
                self.out.push_str("require ");
                self.conditions(&require.conditions, require.span, require.close().start);
            }
        }
        self.end_line(item.span().end);
    }

    fn conditions(&mut self, conditions: &[Condition], span: crate::source::Span, close: u32) {
        if conditions.is_empty() && !self.has_comment_before(close) {
            self.out.push_str("{}");
            return;
        }
        self.out.push_str("{\n");
        self.last_end = span.start;
        self.indent += 1;
        for condition in conditions {
            self.begin_item(condition.span.start);
            self.condition(condition);
            self.end_line(condition.span.end);
        }
        self.indent -= 1;
        self.close_block(close);
    }

    fn condition(&mut self, condition: &Condition) {
        match &condition.kind {
            ConditionKind::Compare(comparison) => write_comparison(&mut self.out, comparison),
            ConditionKind::Not(inner) => {
                self.out.push_str("not ");
                self.condition(inner);
            }
            ConditionKind::Group(group) => {
                self.out.push_str(group.kind.keyword());
                self.out.push(' ');
                let close = crate::source::Span { start: group.span.end.saturating_sub(1), end: group.span.end };
                self.conditions(&group.conditions, group.span, close.start);
            }
        }
        if let Some(message) = &condition.message {
            self.out.push_str(" message ");
            write_string(&mut self.out, message, self.indent);
        }
    }

    fn value(&mut self, value: &Value) {
        for (i, term) in value.terms.iter().enumerate() {
            if i > 0 {
                self.out.push_str(" + ");
            }
            self.term(term);
        }
    }

    fn term(&mut self, term: &Term) {
        match term {
            Term::List(list) => {
                let mut one_line = String::new();
                write_list_inline(&mut one_line, list, self.indent);
                let column = self.out.len() - self.out.rfind('\n').map_or(0, |i| i + 1);
                if column + one_line.len() <= MAX_WIDTH && !one_line.contains('\n') {
                    self.out.push_str(&one_line);
                } else {
                    self.out.push_str("[\n");
                    self.indent += 1;
                    for item in &list.items {
                        self.pad();
                        write_term(&mut self.out, item, self.indent);
                        self.out.push_str(",\n");
                    }
                    self.indent -= 1;
                    self.pad();
                    self.out.push(']');
                }
            }
            other => write_term(&mut self.out, other, self.indent),
        }
    }
}

fn write_term(out: &mut String, term: &Term, indent: usize) {
    match term {
        Term::Str(s) => write_string(out, s, indent),
        Term::Number(n) => out.push_str(&n.text),
        Term::Bool(b) => out.push_str(if b.value { "true" } else { "false" }),
        Term::Duration(d) => out.push_str(&d.text),
        Term::Ident(word) => out.push_str(&word.name),
        Term::Path(path) => out.push_str(&path_text(path)),
        Term::Optional(path, _) => {
            out.push_str("optional ");
            out.push_str(&path_text(path));
        }
        Term::List(list) => write_list_inline(out, list, indent),
    }
}

fn write_list_inline(out: &mut String, list: &List, indent: usize) {
    out.push('[');
    for (i, item) in list.items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_term(out, item, indent);
    }
    out.push(']');
}

fn write_comparison(out: &mut String, comparison: &Comparison) {
    out.push_str(&path_text(&comparison.path));
    if comparison.words {
        out.push_str(" words");
    }
    let mut operator = |op: &str| {
        out.push(' ');
        out.push_str(op);
    };
    match &comparison.op {
        Op::Eq(_) => operator("=="),
        Op::Ne(_) => operator("!="),
        Op::Lt(_) => operator("<"),
        Op::Le(_) => operator("<="),
        Op::Gt(_) => operator(">"),
        Op::Ge(_) => operator(">="),
        Op::In(_) => operator("in"),
        Op::Glob(_) => operator("glob"),
        Op::Matches(_) => operator("matches"),
        Op::Contains(_) => operator("contains"),
        Op::ContainsAny(_) => operator("contains any"),
        Op::ContainsAll(_) => operator("contains all"),
        Op::ContainsGlob(_) => operator("contains glob"),
        Op::ContainsMatches(_) => operator("contains matches"),
        Op::Exists => operator("exists"),
        Op::Is(t) => {
            operator("is");
            operator(t.name());
        }
        Op::Absent => operator("absent"),
    }
    match &comparison.op {
        Op::Eq(s) | Op::Ne(s) | Op::Contains(s) => {
            out.push(' ');
            write_scalar(out, s);
        }
        Op::Lt(n) | Op::Le(n) | Op::Gt(n) | Op::Ge(n) => {
            out.push(' ');
            out.push_str(&n.text);
        }
        Op::In(list) | Op::ContainsAny(list) | Op::ContainsAll(list) => {
            out.push_str(" [");
            for (i, item) in list.items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_scalar(out, item);
            }
            out.push(']');
        }
        Op::Glob(s) | Op::Matches(s) | Op::ContainsGlob(s) | Op::ContainsMatches(s) => {
            out.push(' ');
            write_quoted(out, &s.value);
        }
        Op::Exists | Op::Absent | Op::Is(_) => {}
    }
}

fn write_scalar(out: &mut String, scalar: &Scalar) {
    match scalar {
        Scalar::Str(s) => write_quoted(out, &s.value),
        Scalar::Number(n) => out.push_str(&n.text),
        Scalar::Bool(b) => out.push_str(if b.value { "true" } else { "false" }),
    }
}

fn write_condition_inline(out: &mut String, condition: &Condition) {
    match &condition.kind {
        ConditionKind::Compare(comparison) => write_comparison(out, comparison),
        ConditionKind::Not(inner) => {
            out.push_str("not ");
            write_condition_inline(out, inner);
        }
        ConditionKind::Group(group) => {
            out.push_str(group.kind.keyword());
            out.push_str(" {");
            for inner in &group.conditions {
                out.push(' ');
                write_condition_inline(out, inner);
            }
            out.push_str(" }");
        }
    }
}

/// Prints a string: multi-line strings as `"""` blocks indented one level deeper than `indent`
/// when their text allows it, everything else as a `"..."` literal with canonical escapes.
fn write_string(out: &mut String, s: &StrLit, indent: usize) {
    if s.multiline && can_be_raw_line(&s.value) {
        out.push_str("\"\"\"");
        out.push_str(&s.value);
        out.push_str("\"\"\"");
    } else if s.multiline && can_be_multiline(&s.value) {
        let pad = INDENT.repeat(indent + 1);
        out.push_str("\"\"\"\n");
        for line in s.value.split('\n') {
            if !line.is_empty() {
                out.push_str(&pad);
                out.push_str(line);
            }
            out.push('\n');
        }
        out.push_str(&pad);
        out.push_str("\"\"\"");
    } else {
        write_quoted(out, &s.value);
    }
}

/// A one-line `"""` string is read back exactly unless it would end the quotes early.
fn can_be_raw_line(value: &str) -> bool {
    !value.is_empty() && !value.contains(['\n', '\r']) && !value.contains("\"\"\"") && !value.ends_with('"')
}

/// A `"""` string reads its lines back exactly unless a line is only white space (read as empty),
/// has a carriage return, or the text contains the closing quotes.
fn can_be_multiline(value: &str) -> bool {
    !value.contains("\"\"\"")
        && !value.contains('\r')
        && value.split('\n').all(|line| line.is_empty() || !line.trim().is_empty())
}

fn write_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
