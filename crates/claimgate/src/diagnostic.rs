//! Diagnostics: what the parser and the checker say about a policy, and how it is shown.
//!
//! The wording follows one style everywhere: a lowercase message with no final period that names
//! the problem in the policy author's terms (never a Rust type or a grammar rule), an underline
//! under the offending text with a short label, a `help:` line when there is something to do, and
//! a stable code (`E0203`) that tools and documentation can refer to. `docs/language.md` lists
//! every code.

use std::fmt;

use miette::{LabeledSpan, NamedSource, SourceCode};
use serde::Serialize;

use crate::source::{FileId, SourceMap, Span};

/// Stable diagnostic codes. The number never changes meaning once released; new problems get
/// new numbers (so a `match` needs a wildcard arm).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// The text is not in the language's syntax.
    Syntax,
    /// A file exceeds a configured size or nesting limit.
    LimitExceeded,
    /// A provider, role or test name is defined twice in the policy set.
    DuplicateName,
    /// A name refers to a provider or role that does not exist.
    UnknownName,
    /// Two providers accept the same issuer, so selection by issuer would be ambiguous.
    DuplicateIssuer,
    /// A setting or block that does not exist where it is written.
    UnknownSetting,
    /// The same setting or block is written twice.
    DuplicateSetting,
    /// A setting that must be present is not.
    MissingSetting,
    /// Settings that cannot be used together.
    ConflictingSettings,
    /// A value of the wrong kind for its setting.
    WrongType,
    /// A role says nothing about audiences.
    NoAudience,
    /// A duration that is malformed, out of range or inconsistent with another.
    InvalidDuration,
    /// A glob pattern that cannot be matched as written.
    InvalidGlob,
    /// A regular expression that does not compile.
    InvalidRegex,
    /// A string literal with an invalid escape or layout.
    InvalidString,
    /// A number that is out of range or not allowed here.
    InvalidNumber,
    /// A PEM or JWK key that does not parse or cannot verify signatures.
    InvalidKey,
    /// An algorithm that is refused (`none`, HMAC) or unknown.
    RefusedAlgorithm,
    /// A malformed or insecure URL.
    InvalidUrl,
    /// A malformed CIDR block.
    InvalidCidr,
    /// An inline test that is malformed (claims, time, expectation).
    InvalidTest,
    /// Warning: `contains` on a claim that tokens carry as a space-separated string.
    StringAsList,
    /// Warning: a condition that can never hold for a registered claim's type (`claims.exp glob`,
    /// `claims.iss contains`), or `claims.aud ==` where `aud` may be a list.
    NeverHolds,
    /// Warning: conditions that contradict each other where all must hold (`== "a"` and
    /// `== "b"` on one claim, `exists` and `absent`).
    Contradiction,
    /// Warning: `audience = any` and no condition at all: every token of the provider logs in.
    AcceptsEverything,
    /// Warning: an unquoted dotted path that looks like a domain (`claims.kubernetes.io.x`).
    DomainLikePath,
    /// Warning: an `any` group that always holds (`exists` or `absent`; `== "a"` or `!= "a"`).
    Tautology,
    /// Warning: a `message` on a condition inside a group, which no denial shows (a denial
    /// names the group).
    MessageNeverShown,
}

impl Code {
    /// Every code, in the order of the documentation's table.
    pub const ALL: [Code; 28] = [
        Code::Syntax,
        Code::LimitExceeded,
        Code::DuplicateName,
        Code::UnknownName,
        Code::DuplicateIssuer,
        Code::UnknownSetting,
        Code::DuplicateSetting,
        Code::MissingSetting,
        Code::ConflictingSettings,
        Code::WrongType,
        Code::NoAudience,
        Code::InvalidDuration,
        Code::InvalidGlob,
        Code::InvalidRegex,
        Code::InvalidString,
        Code::InvalidNumber,
        Code::InvalidKey,
        Code::RefusedAlgorithm,
        Code::InvalidUrl,
        Code::InvalidCidr,
        Code::InvalidTest,
        Code::StringAsList,
        Code::NeverHolds,
        Code::Contradiction,
        Code::AcceptsEverything,
        Code::DomainLikePath,
        Code::Tautology,
        Code::MessageNeverShown,
    ];

    /// The code as printed, e.g. `E0203`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "E0001",
            Code::LimitExceeded => "E0002",
            Code::DuplicateName => "E0101",
            Code::UnknownName => "E0102",
            Code::DuplicateIssuer => "E0103",
            Code::UnknownSetting => "E0201",
            Code::DuplicateSetting => "E0202",
            Code::MissingSetting => "E0203",
            Code::ConflictingSettings => "E0204",
            Code::WrongType => "E0205",
            Code::NoAudience => "E0206",
            Code::InvalidDuration => "E0301",
            Code::InvalidGlob => "E0302",
            Code::InvalidRegex => "E0303",
            Code::InvalidString => "E0304",
            Code::InvalidNumber => "E0305",
            Code::InvalidKey => "E0401",
            Code::RefusedAlgorithm => "E0402",
            Code::InvalidUrl => "E0403",
            Code::InvalidCidr => "E0404",
            Code::InvalidTest => "E0501",
            Code::StringAsList => "W0101",
            Code::NeverHolds => "W0102",
            Code::Contradiction => "W0103",
            Code::AcceptsEverything => "W0104",
            Code::DomainLikePath => "W0105",
            Code::Tautology => "W0106",
            Code::MessageNeverShown => "W0107",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The policy set cannot be loaded.
    Error,
    /// Probably a mistake; the set still loads.
    Warning,
}

/// Another place that explains a diagnostic, possibly in another file ("first defined here").
#[derive(Clone, Debug, Serialize)]
pub struct Related {
    /// The file of the other place.
    pub file: FileId,
    /// Where in that file.
    pub span: Span,
    /// What the other place has to do with the diagnostic.
    pub message: String,
}

/// One problem found in a policy set.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnostic {
    /// The stable code (`E0102`), documented in docs/language.md (Diagnostics).
    pub code: Code,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in one lowercase sentence.
    pub message: String,
    /// The file it is in.
    pub file: FileId,
    /// Where in that file.
    pub span: Span,
    /// Short text shown under the underline.
    pub label: Option<String>,
    /// What to do about it.
    pub help: Option<String>,
    /// Other places that explain it.
    pub related: Vec<Related>,
}

impl Diagnostic {
    /// A problem that stops the policy set from loading.
    pub fn error(code: Code, file: FileId, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            file,
            span,
            label: None,
            help: None,
            related: Vec::new(),
        }
    }

    /// A finding that does not stop the policy from loading (`claimgate check` reports it).
    pub fn warning(code: Code, file: FileId, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, file, span, message) }
    }

    /// Sets the text shown under the underline.
    pub fn label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    /// Sets the help line: what to do about it.
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Adds another place that explains the diagnostic.
    pub fn related(mut self, file: FileId, span: Span, message: impl Into<String>) -> Diagnostic {
        self.related.push(Related { file, span, message: message.into() });
        self
    }

    /// Whether it stops the policy set from loading.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// How [`render`] draws diagnostics.
#[derive(Clone, Copy, Debug)]
pub struct RenderOptions {
    /// ANSI colours (for a terminal).
    pub color: bool,
    /// The width to wrap messages at, in columns.
    pub width: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions { color: false, width: 100 }
    }
}

/// The drawing: miette's graphical handler (source lines, underlines, wrapped to the width), or
/// without the `fancy-diagnostics` feature (the playground's wasm, which shows diagnostics in
/// its editor and has no use for text art) miette's narratable handler, plain lines that name
/// the same file, line, column, message, code and help.
#[cfg(feature = "fancy-diagnostics")]
fn report_handler(options: RenderOptions) -> miette::GraphicalReportHandler {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    let theme = if options.color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    GraphicalReportHandler::new_themed(theme).with_width(options.width).with_links(false)
}

#[cfg(not(feature = "fancy-diagnostics"))]
fn report_handler(_options: RenderOptions) -> miette::NarratableReportHandler {
    miette::NarratableReportHandler::new()
}

/// Renders diagnostics like a compiler: `file:line:col`, the source line, an underline, the
/// message, the code and a help line.
pub fn render(diagnostics: &[Diagnostic], sources: &SourceMap, options: RenderOptions) -> String {
    let handler = report_handler(options);
    let mut out = String::new();
    for diagnostic in diagnostics {
        let view = View::new(diagnostic, sources);
        // Writing into a String cannot fail.
        let _ = handler.render_report(&mut out, &view);
    }
    out
}

/// Renders a denial like a compiler diagnostic: the failing condition underlined in its policy
/// file, labelled with the value the token had, under the denial's code and message.
pub fn render_denial(denial: &crate::decision::Denial, sources: &SourceMap, options: RenderOptions) -> String {
    let handler = report_handler(options);
    let Some(check) = &denial.condition else {
        return format!("denied ({}): {}\n", denial.code.as_str(), denial.message);
    };
    let file = sources.get(check.file);
    let seen = denial.seen();
    let view = if drawable(file, check.span) {
        View {
            code: Some(denial.code.as_str()),
            severity: miette::Severity::Error,
            message: format!("denied: {}", denial.message),
            help: check.message.is_none().then(|| format!("the failing check is `{}`", check.text)),
            labels: vec![LabeledSpan::new_primary_with_span(Some(seen), check.span.range())],
            source: Some(NamedSource::new(file.name.clone(), file.text.clone())),
            related: Vec::new(),
        }
    } else {
        View {
            code: Some(denial.code.as_str()),
            severity: miette::Severity::Error,
            message: format!("denied: {} (at {}; {seen})", denial.message, place(file, check.span)),
            help: check.message.is_none().then(|| format!("the failing check is `{}`", check.text)),
            labels: Vec::new(),
            source: None,
            related: Vec::new(),
        }
    };
    let mut out = String::new();
    let _ = handler.render_report(&mut out, &view);
    out
}

/// A diagnostic as JSON for editors and CI annotations: positions are 1-based line/column
/// (characters) plus byte offsets.
pub fn to_json(diagnostics: &[Diagnostic], sources: &SourceMap) -> serde_json::Value {
    let located = |file: FileId, span: Span| {
        let source = sources.get(file);
        let start = source.line_col(span.start as usize);
        let end = source.line_col(span.end as usize);
        serde_json::json!({
            "file": source.name,
            "line": start.line,
            "column": start.column,
            "end_line": end.line,
            "end_column": end.column,
            "offset": span.start,
            "length": span.len(),
        })
    };
    serde_json::Value::Array(
        diagnostics
            .iter()
            .map(|d| {
                let mut value = located(d.file, d.span);
                value["code"] = d.code.as_str().into();
                value["severity"] = serde_json::to_value(d.severity).unwrap_or_default();
                value["message"] = d.message.clone().into();
                value["label"] = d.label.clone().into();
                value["help"] = d.help.clone().into();
                value["related"] = d
                    .related
                    .iter()
                    .map(|r| {
                        let mut v = located(r.file, r.span);
                        v["message"] = r.message.clone().into();
                        v
                    })
                    .collect();
                value
            })
            .collect(),
    )
}

/// A diagnostic joined with its source text, in the shape miette draws. Related places in the
/// same file become secondary underlines; places in other files become related reports.
struct View {
    code: Option<&'static str>,
    severity: miette::Severity,
    message: String,
    help: Option<String>,
    labels: Vec<LabeledSpan>,
    /// `None` when a label lies too far right to draw (see [`drawable`]).
    source: Option<NamedSource<std::sync::Arc<str>>>,
    related: Vec<View>,
}

/// The farthest column a label may be drawn at. The renderer pads underlines with format
/// widths, which Rust limits to 65,535; a policy with one very long line would otherwise make
/// it panic. Beyond this, a report names the place as `file:line:col` instead of drawing it.
const MAX_DRAWN_COLUMN: usize = 4096;

fn drawable(file: &crate::source::SourceFile, span: Span) -> bool {
    file.line_col(span.end as usize).column <= MAX_DRAWN_COLUMN
        && file.line_col(span.start as usize).column <= MAX_DRAWN_COLUMN
}

/// `file:line:col` of a place, for reports that cannot draw it.
fn place(file: &crate::source::SourceFile, span: Span) -> String {
    let at = file.line_col(span.start as usize);
    format!("{}:{}:{}", file.name, at.line, at.column)
}

impl View {
    fn new(d: &Diagnostic, sources: &SourceMap) -> View {
        let file = sources.get(d.file);
        let mut labels = vec![LabeledSpan::new_primary_with_span(d.label.clone(), d.span.range())];
        let mut related = Vec::new();
        for r in &d.related {
            if r.file == d.file {
                labels.push(LabeledSpan::new_with_span(Some(r.message.clone()), r.span.range()));
            } else {
                let other = sources.get(r.file);
                let (message, labels, source) = if drawable(other, r.span) {
                    (
                        format!("see {}", other.name),
                        vec![LabeledSpan::new_primary_with_span(Some(r.message.clone()), r.span.range())],
                        Some(NamedSource::new(other.name.clone(), other.text.clone())),
                    )
                } else {
                    (format!("see {}: {}", place(other, r.span), r.message), Vec::new(), None)
                };
                related.push(View {
                    code: None,
                    severity: miette::Severity::Advice,
                    message,
                    help: None,
                    labels,
                    source,
                    related: Vec::new(),
                });
            }
        }
        labels.sort_by_key(|l| l.offset());
        let draw =
            drawable(file, d.span) && d.related.iter().filter(|r| r.file == d.file).all(|r| drawable(file, r.span));
        let (message, labels, source) = if draw {
            (d.message.clone(), labels, Some(NamedSource::new(file.name.clone(), file.text.clone())))
        } else {
            (format!("{} (at {})", d.message, place(file, d.span)), Vec::new(), None)
        };
        View {
            code: Some(d.code.as_str()),
            severity: match d.severity {
                Severity::Error => miette::Severity::Error,
                Severity::Warning => miette::Severity::Warning,
            },
            message,
            help: d.help.clone(),
            labels,
            source,
            related,
        }
    }
}

impl fmt::Debug for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for View {}

impl miette::Diagnostic for View {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.code.map(|c| Box::new(c) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic)))
        }
    }
}
