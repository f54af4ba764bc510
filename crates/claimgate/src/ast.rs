//! The syntax tree of a policy file, as written.
//!
//! The parser lowers pest's parse tree into these types in one place (`parser.rs`); the checker
//! (`check.rs`) turns them into the checked model (`model.rs`) that the compiler consumes, and the
//! formatter (`fmt.rs`) prints them back. The tree is generic about settings (`name = value`):
//! which settings exist is the checker's business, so an unknown setting is a located semantic
//! error, not a syntax error, and the formatter can print any file that parses.
//!
//! Every node has a [`Span`]. Spans compare equal regardless of position, so two trees are equal
//! exactly when they mean the same; this is what the formatter round-trip tests rely on.

use compact_str::CompactString;

use crate::source::{FileId, Span};

/// A parsed policy file.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyFile {
    pub file: FileId,
    pub items: Vec<TopItem>,
    /// Every `# comment` in the file, in order, for the formatter.
    pub comments: Vec<Comment>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    /// The comment text including the leading `#`, without the line break.
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TopKind {
    Provider,
    Role,
    Test,
}

impl TopKind {
    pub fn keyword(self) -> &'static str {
        match self {
            TopKind::Provider => "provider",
            TopKind::Role => "role",
            TopKind::Test => "test",
        }
    }
}

/// `provider NAME { ... }`, `role NAME { ... }` or `test "NAME" { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct TopItem {
    pub kind: TopKind,
    /// Providers and roles are named by identifiers, tests by strings.
    pub name: Ident,
    pub body: Body,
    pub span: Span,
}

/// An identifier (`gitlab`, `deploy-production`, `ttl`) or a test's string name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ident {
    pub name: CompactString,
    pub span: Span,
}

/// `{ item* }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Body {
    pub items: Vec<Item>,
    pub span: Span,
}

impl Body {
    /// The span of the closing brace, for comments that sit before it.
    pub fn close(&self) -> Span {
        Span { start: self.span.end.saturating_sub(1), end: self.span.end }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Setting(Setting),
    Block(Block),
    Require(Require),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Setting(s) => s.span,
            Item::Block(b) => b.span,
            Item::Require(r) => r.span,
        }
    }
}

/// `name = value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub name: Ident,
    pub value: Value,
    pub span: Span,
}

/// `name [label] { ... }`, e.g. `keys { ... }` or `expect allow { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub name: Ident,
    pub label: Option<Ident>,
    pub body: Body,
    pub span: Span,
}

/// `require { condition* }`: every condition must hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Require {
    pub conditions: Vec<Condition>,
    pub span: Span,
}

impl Require {
    pub fn close(&self) -> Span {
        Span { start: self.span.end.saturating_sub(1), end: self.span.end }
    }
}

/// One or more terms joined by `+`.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub terms: Vec<Term>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    Str(StrLit),
    Number(NumLit),
    Bool(BoolLit),
    Duration(DurationLit),
    /// A bare word: a provider or role name, `any`, `auto`, an algorithm name.
    Ident(Ident),
    Path(ClaimPath),
    /// `optional claims.x`: a metadata mapping that may be missing.
    Optional(ClaimPath, Span),
    List(List),
}

impl Term {
    pub fn span(&self) -> Span {
        match self {
            Term::Str(s) => s.span,
            Term::Number(n) => n.span,
            Term::Bool(b) => b.span,
            Term::Duration(d) => d.span,
            Term::Ident(i) => i.span,
            Term::Path(p) => p.span,
            Term::Optional(_, span) => *span,
            Term::List(l) => l.span,
        }
    }
}

/// `[item, item, ...]`; items are strings, numbers, booleans or bare words.
#[derive(Clone, Debug, PartialEq)]
pub struct List {
    pub items: Vec<Term>,
    pub span: Span,
}

/// A string literal, already unescaped. Two literals are equal when their values are: whether
/// one was written as `"""..."""` is layout, like its span.
#[derive(Clone, Debug, Eq)]
pub struct StrLit {
    pub value: CompactString,
    /// Written as `"""..."""`; the formatter keeps multi-line strings multi-line.
    pub multiline: bool,
    pub span: Span,
}

impl PartialEq for StrLit {
    fn eq(&self, other: &StrLit) -> bool {
        self.value == other.value
    }
}

impl std::hash::Hash for StrLit {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

/// A number literal. `text` is kept so that the formatter prints it as written; `value` is what
/// it means, with JSON's distinction between integers and floats (42 is not 42.9).
#[derive(Clone, Debug, PartialEq)]
pub struct NumLit {
    pub text: CompactString,
    pub value: serde_json::Number,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoolLit {
    pub value: bool,
    pub span: Span,
}

/// `90s`, `15m`, `8h`, `1d`, `1h30m`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationLit {
    pub text: CompactString,
    pub seconds: u64,
    pub span: Span,
}

/// A claim path: `claims.a."b.c"[0]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClaimPath {
    pub segments: Vec<Segment>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// An object key.
    Key(CompactString),
    /// An array index.
    Index(u32),
}

/// A condition inside `require { }`, `any { }` or `all { }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub kind: ConditionKind,
    /// `message "..."`: what a denial says instead of the generated explanation.
    pub message: Option<StrLit>,
    pub span: Span,
}

impl Condition {
    /// The condition's own text, without its `message "..."`: what a trace step or a denial
    /// points at (the editor highlights exactly the condition).
    pub fn check_span(&self) -> Span {
        let end = match &self.kind {
            ConditionKind::Compare(comparison) => comparison.span.end,
            ConditionKind::Group(group) => group.span.end,
            ConditionKind::Not(inner) => inner.check_span().end,
        };
        Span { start: self.span.start, end: end.clamp(self.span.start, self.span.end) }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ConditionKind {
    Compare(Comparison),
    Group(Group),
    /// `not <comparison or group>`; the inner condition never has a message of its own.
    Not(Box<Condition>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupKind {
    /// At least one condition holds.
    Any,
    /// Every condition holds.
    All,
}

impl GroupKind {
    pub fn keyword(self) -> &'static str {
        match self {
            GroupKind::Any => "any",
            GroupKind::All => "all",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub kind: GroupKind,
    pub conditions: Vec<Condition>,
    pub span: Span,
}

/// `claims.path <op> operand`.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub path: ClaimPath,
    /// `claims.scope words contains ...`: a space-separated string claim taken as its words
    /// (only with `contains`, `contains any` and `contains all`).
    pub words: bool,
    pub op: Op,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Eq(Scalar),
    Ne(Scalar),
    Lt(NumLit),
    Le(NumLit),
    Gt(NumLit),
    Ge(NumLit),
    In(ScalarList),
    Glob(StrLit),
    Matches(StrLit),
    Contains(Scalar),
    ContainsAny(ScalarList),
    ContainsAll(ScalarList),
    /// `contains glob "..."`: some string element matches the glob.
    ContainsGlob(StrLit),
    /// `contains matches "..."`: some string element matches the regular expression.
    ContainsMatches(StrLit),
    Exists,
    Absent,
    /// `is string` / `number` / `bool` / `list` / `object`.
    Is(JsonType),
}

impl Op {
    /// The `contains` family: the operators that read a list's items (or, with `words`, a
    /// string's words).
    pub fn is_contains(&self) -> bool {
        matches!(
            self,
            Op::Contains(_) | Op::ContainsAny(_) | Op::ContainsAll(_) | Op::ContainsGlob(_) | Op::ContainsMatches(_)
        )
    }
}

/// A JSON type, for `is`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum JsonType {
    String,
    Number,
    Bool,
    List,
    Object,
}

impl JsonType {
    pub fn name(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Number => "number",
            JsonType::Bool => "bool",
            JsonType::List => "list",
            JsonType::Object => "object",
        }
    }
}

/// A literal a claim is compared with.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Str(StrLit),
    Number(NumLit),
    Bool(BoolLit),
}

impl Scalar {
    pub fn span(&self) -> Span {
        match self {
            Scalar::Str(s) => s.span,
            Scalar::Number(n) => n.span,
            Scalar::Bool(b) => b.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScalarList {
    pub items: Vec<Scalar>,
    pub span: Span,
}
