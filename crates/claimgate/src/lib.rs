//! claimgate: a policy language for workload JWT logins.
//!
//! A policy set says which identity providers are trusted and which roles a token may log in
//! as. This crate is the language: it loads and checks policies ([`Policy`], with located
//! [`Diagnostic`]s), formats them ([`format_source`]), compiles them to a [`Program`] (bytecode
//! with a versioned binary format, [`Program::to_bytes`] / [`Program::from_bytes`]) and decides
//! with it: on a signed token with [`Program::decide_token`], which verifies it with the keys of
//! the provider that decides it, or on claims already trusted with [`Program::decide`]. Every
//! decision is a [`Decision`]: allow with a [`Grant`], or deny with a [`Denial`] whose
//! [`DenyCode`] is stable, and, when asked ([`Options::explain`]), the trace of every check.
//!
//! The crate does no I/O (it builds for `wasm32-unknown-unknown`); the `claimgate-engine` crate
//! fetches keys, caches and reloads for services, and the signature core is `claimgate-jose`.
//! Modules hidden from this documentation (parser, checker, compiler, VM, ...) are internals
//! for claimgate's own tools, tests and fuzzers, with no stability promise; their map is in
//! docs/architecture.md.
//!
//! ```
//! use claimgate::{Decision, Policy, Scratch};
//!
//! let text = r#"
//! provider gitlab {
//!   issuer = "https://gitlab.example.com"
//!   keys {
//!     jwks_url = "https://gitlab.example.com/oauth/discovery/keys"
//!   }
//! }
//!
//! role deploy {
//!   provider = gitlab
//!   audience = "strongbox"
//!   require {
//!     claims.ref == "main"
//!   }
//!   identity = claims.sub
//! }
//! "#;
//! let policy = Policy::from_sources([("deploy.cg", text)]);
//! assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
//! let program = policy.compile().expect("a checked policy compiles");
//!
//! // Claims that are already trusted (a token's signature is checked by `decide_token`).
//! let claims = br#"{"iss": "https://gitlab.example.com", "aud": "strongbox", "sub": "project-7",
//!                   "ref": "main", "exp": 1700000600}"#;
//! match program.decide(claims, Some("deploy"), 1_700_000_000, &mut Scratch::default()) {
//!     Decision::Allow(grant) => assert_eq!(grant.identity(), "project-7"),
//!     Decision::Deny(denial) => panic!("denied: {}", denial.message()),
//! }
//! ```

#![warn(missing_docs)]

// pest is built without its `std` feature (see the workspace Cargo.toml); the parser it derives
// then names `::alloc`.
extern crate alloc;

pub mod decision;
pub mod diagnostic;
pub mod program;
pub mod source;

// The stages below are claimgate's internals: public for its own CLI, engine, tests, benchmarks
// and fuzzers, hidden from the documentation, and without any stability promise. Everything a
// caller needs is re-exported at the crate root.
#[doc(hidden)]
pub mod ast;
#[doc(hidden)]
pub mod check;
#[doc(hidden)]
pub mod compiler;
#[doc(hidden)]
pub mod fmt;
#[doc(hidden)]
pub mod glob;
#[doc(hidden)]
pub mod model;
#[doc(hidden)]
pub mod number;
#[doc(hidden)]
pub mod parser;
#[doc(hidden)]
pub mod payload;
#[doc(hidden)]
pub mod reference;
#[doc(hidden)]
pub mod testing;
#[doc(hidden)]
pub mod vm;

pub use check::CheckLimits;
use check::Checked;
pub use decision::{
    Decision, Denial, DenyCode, Evaluation, FailedCheck, Grant, Outcome, RoleTrace, Step, UnknownDenyCode,
};
pub use diagnostic::{Code, Diagnostic, RenderOptions, Severity};
use model::PolicySet;
pub use model::{TokenSettings, TokenType};
pub use parser::Limits;
use parser::Parsed;
pub use payload::{PayloadLimits, Scratch};
pub use program::{LoadError, Program};
pub use source::{FileId, LineCol, SourceFile, SourceMap, Span};
pub use vm::{KeyLookup, Options, ProviderKeys, TokenEvaluation, VerifiedToken, VerifiedWith};

/// A policy set loaded from source text: its files, the checked set and every diagnostic. File
/// order is the order given; callers that read a directory sort by path. The syntax trees are
/// dropped once checked (the formatter and other tools parse on their own).
#[derive(Debug)]
pub struct Policy {
    sources: SourceMap,
    /// Syntax errors and other problems found while parsing, file by file.
    parse_diagnostics: Vec<Diagnostic>,
    checked: Checked,
    /// The limits the set was checked with; [`Policy::check_key_files`] applies their key limits.
    check_limits: CheckLimits,
}

impl Policy {
    /// Parses and checks the given `(name, text)` files as one policy set with default limits.
    pub fn from_sources<N: Into<String>, T: AsRef<str>>(files: impl IntoIterator<Item = (N, T)>) -> Policy {
        let mut sources = SourceMap::new();
        for (name, text) in files {
            sources.add(name, text.as_ref());
        }
        Policy::load(sources, &Limits::default(), &CheckLimits::default())
    }

    /// Parses and checks every file of `sources`.
    pub fn load(sources: SourceMap, limits: &Limits, check_limits: &CheckLimits) -> Policy {
        let mut parsed: Vec<Parsed> = sources.iter().map(|(id, file)| parser::parse(id, &file.text, limits)).collect();
        let checked = check::check(&mut parsed, check_limits);
        let parse_diagnostics = parsed.iter_mut().flat_map(|p| std::mem::take(&mut p.diagnostics)).collect();
        Policy { sources, parse_diagnostics, checked, check_limits: *check_limits }
    }

    /// The checked policy set: providers, roles and tests (complete only without errors). An
    /// internal form, for claimgate's own tools.
    #[doc(hidden)]
    pub fn set(&self) -> &PolicySet {
        &self.checked.set
    }

    /// The policy files, by [`FileId`], to render diagnostics and denials against.
    pub fn sources(&self) -> &SourceMap {
        &self.sources
    }

    /// The limits the set was checked with.
    pub fn check_limits(&self) -> &CheckLimits {
        &self.check_limits
    }

    /// Every diagnostic, in file and position order. A checker finding about a value the parser
    /// already rejected (an empty placeholder for a malformed string, say) is left out: it would
    /// only repeat the first error in a more confusing way.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut all: Vec<Diagnostic> = self.parse_diagnostics.clone();
        let overlaps_parse_error = |d: &Diagnostic| {
            all.iter().any(|p| {
                p.file == d.file
                    && p.span.start < d.span.end.max(d.span.start + 1)
                    && d.span.start < p.span.end.max(p.span.start + 1)
            })
        };
        let checker: Vec<Diagnostic> =
            self.checked.diagnostics.iter().filter(|d| !overlaps_parse_error(d)).cloned().collect();
        all.extend(checker);
        all.sort_by_key(|d| (d.file, d.span.start));
        all
    }

    /// Every diagnostic as found, parse and checker alike, without [`Policy::diagnostics`]'s
    /// filtering (for the fuzzers).
    #[doc(hidden)]
    pub fn unfiltered_diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.parse_diagnostics.iter().chain(&self.checked.diagnostics)
    }

    /// Whether any diagnostic is an error (then the set must not be compiled or deployed).
    pub fn has_errors(&self) -> bool {
        self.parse_diagnostics.iter().any(Diagnostic::is_error) || self.checked.has_errors()
    }

    /// Compiles the checked set (call only when [`Policy::has_errors`] is false).
    pub fn compile(&self) -> Result<program::Program, String> {
        compiler::compile(self.set(), &self.sources)
    }

    /// Every diagnostic drawn like a compiler's (`file:line:col`, the source line, an
    /// underline, the message, the code and a help line), in colour if `color`.
    pub fn render_diagnostics(&self, color: bool) -> String {
        diagnostic::render(&self.diagnostics(), &self.sources, RenderOptions { color, ..RenderOptions::default() })
    }
}

/// Why [`format_source`] left a file as it was: the file does not parse (or, should the
/// formatter ever fail, the one diagnostic saying so).
#[derive(Debug)]
pub struct FormatError {
    sources: SourceMap,
    diagnostics: Vec<Diagnostic>,
}

impl FormatError {
    /// The file, to render the diagnostics against.
    pub fn sources(&self) -> &SourceMap {
        &self.sources
    }

    /// What keeps the file from being formatted.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
}

/// Formats one policy file's text in the canonical layout, comments kept (what `claimgate fmt`
/// writes). `name` is the file's name in diagnostics.
///
/// The result is parsed again and must give the same syntax tree: a formatting that would
/// change what a policy means is refused, never written.
pub fn format_source(name: &str, text: &str) -> Result<String, FormatError> {
    let mut sources = SourceMap::new();
    let id = sources.add(name, text);
    let parsed = parser::parse(id, text, &Limits::default());
    if parsed.has_errors() {
        return Err(FormatError { sources, diagnostics: parsed.diagnostics });
    }
    let formatted = fmt::format_file(&parsed.ast, text);
    // The formatter prints from the syntax tree, so this cannot fail; check anyway, because
    // rewriting someone's policy into something that means otherwise would be unforgivable.
    let again = parser::parse(id, &formatted, &Limits::default());
    if again.has_errors() || again.ast != parsed.ast {
        let message =
            format!("formatting `{name}` would change its meaning; the file was left as it is (please report this)");
        let diagnostic = Diagnostic::error(Code::Syntax, id, Span::new(0, 0), message);
        return Err(FormatError { sources, diagnostics: vec![diagnostic] });
    }
    Ok(formatted)
}

impl Policy {
    /// Reads and checks the JWK Set files that providers name with `jwks_file`, through `read`
    /// (given the naming policy file's name and the path as written), so that `claimgate check`
    /// catches a missing or broken key file before deployment. The library itself does no I/O.
    pub fn check_key_files(&mut self, read: impl Fn(&str, &str) -> Result<Vec<u8>, String>) {
        for provider in &self.checked.set.providers {
            let model::KeySource::JwksFile(path) = &provider.keys else { continue };
            let policy_file = &self.sources.get(provider.file).name;
            let problem = match read(policy_file, &path.value) {
                Err(error) => Some((Code::InvalidKey, format!("cannot read key file `{}`: {error}", path.value), None)),
                Ok(bytes) => {
                    match claimgate_jose::KeySet::from_jwks_json_with_limits(&bytes, &self.check_limits.keys) {
                        Err(error) => {
                            let code = check::key_error_code(&error);
                            let help = (code == Code::LimitExceeded).then(|| check::KEY_LIMIT_HELP.to_string());
                            Some((code, format!("key file `{}` is not a usable JWK set: {error}", path.value), help))
                        }
                        Ok(keys) if !keys.skipped().is_empty() => Some((
                            Code::InvalidKey,
                            format!(
                                "{} of the keys in `{}` cannot verify signatures",
                                keys.skipped().len(),
                                path.value
                            ),
                            Some(keys.skipped().iter().map(|s| s.to_string()).collect::<Vec<_>>().join("; ")),
                        )),
                        Ok(_) => None,
                    }
                }
            };
            if let Some((code, message, help)) = problem {
                let mut diagnostic = Diagnostic::error(code, provider.file, path.span, message);
                diagnostic.help = Some(help.unwrap_or_else(|| "paths are relative to the policy file".to_string()));
                self.checked.diagnostics.push(diagnostic);
            }
        }
    }
}
