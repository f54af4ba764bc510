//! claimgate: a policy language for workload JWT logins.
//!
//! A policy set says which identity providers are trusted and which roles a token may log in
//! as. This crate holds the language, one module per stage:
//!
//! | stage | module | what it does |
//! |---|---|---|
//! | grammar | `grammar/claimgate.pest` (repository root) | the syntax, in pest |
//! | parser | [`parser`] | bounds the input, runs pest, words syntax errors, lowers to [`ast`] |
//! | syntax tree | [`ast`] | the file as written, every node with a [`source::Span`] |
//! | checker | [`check`] | names, settings, values, keys → the checked [`model`] |
//! | formatter | [`fmt`] | the canonical layout, comments kept |
//! | diagnostics | [`diagnostic`] | coded, located errors, rendered like a compiler's |
//! | decisions | [`decision`] | allow with a grant, or deny with a code, the failing check and the value seen |
//! | reference interpreter | [`reference`] | the semantics, evaluated directly on the model |
//! | inline tests | [`testing`] | runs the `test` blocks of a policy set |
//! | compiler | [`compiler`] | the checked model → a [`program::Program`] (pools, path table, code per role) |
//! | program | [`program`] | the compiled form, its disassembly and its binary file format |
//! | payload | [`payload`] | the token payload parsed once into the program's path slots |
//! | VM | [`vm`] | runs a program on a payload: decisions and explanations |
//!
//! The signature core lives in the `claimgate-jose` crate; the compiler to bytecode and the
//! evaluator build on [`model::PolicySet`].
//!
//! ```
//! use claimgate::{PolicySet, Policy};
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
//! }
//! "#;
//! let policy = Policy::from_sources([("deploy.cg", text)]);
//! assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
//! let set: &PolicySet = policy.set();
//! assert_eq!(set.roles[0].name, "deploy");
//! ```

// pest is built without its `std` feature (see the workspace Cargo.toml); the parser it derives
// then names `::alloc`.
extern crate alloc;

pub mod ast;
pub mod check;
pub mod compiler;
pub mod decision;
pub mod diagnostic;
pub mod fmt;
pub mod glob;
pub mod model;
pub mod number;
pub mod parser;
pub mod payload;
pub mod program;
pub mod reference;
pub mod source;
pub mod testing;
pub mod vm;

pub use check::{CheckLimits, Checked};
pub use diagnostic::{Code, Diagnostic, RenderOptions, Severity};
pub use model::PolicySet;
pub use parser::{Limits, Parsed};
pub use source::{FileId, SourceMap, Span};

/// A policy set loaded from source text: its files, the checked set and every diagnostic. File
/// order is the order given; callers that read a directory sort by path. The syntax trees are
/// dropped once checked (the formatter and other tools parse on their own).
#[derive(Debug)]
pub struct Policy {
    pub sources: SourceMap,
    /// Syntax errors and other problems found while parsing, file by file.
    pub parse_diagnostics: Vec<Diagnostic>,
    pub checked: Checked,
    /// The limits the set was checked with; [`Policy::check_key_files`] applies their key limits.
    pub check_limits: CheckLimits,
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

    pub fn set(&self) -> &PolicySet {
        &self.checked.set
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

    pub fn has_errors(&self) -> bool {
        self.parse_diagnostics.iter().any(Diagnostic::is_error) || self.checked.has_errors()
    }

    /// Compiles the checked set (call only when [`Policy::has_errors`] is false).
    pub fn compile(&self) -> Result<program::Program, String> {
        compiler::compile(self.set(), &self.sources)
    }

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
