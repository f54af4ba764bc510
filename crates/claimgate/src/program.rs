//! The compiled form of a policy set: constant pools, the claim-path table, precompiled globs,
//! regexes and sets, one instruction sequence per role, an index from issuer and audience to
//! candidate roles, and the versioned binary file format. `docs/architecture.md` describes it
//! in full; [`crate::compiler`] builds it and [`crate::vm`] runs it.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::glob::Glob;
use crate::model::TokenSettings;
use crate::number::Number;
use crate::payload::{PathSegment, PathTable};

#[doc(hidden)]
/// Index into [`Program::strings`].
pub type StrId = u32;
#[doc(hidden)]
/// Index into [`Program::paths`] (also the payload slot of that path).
pub type PathId = u32;

/// A compiled policy set, ready to decide: built with [`crate::compiler::compile`] or loaded
/// with [`Program::from_bytes`], validated and prepared (patterns compiled, indexes built). It is
/// immutable: its parts can be read ([`ProgramParts`], through `Deref`) but never changed, so a
/// `Program` can never be inconsistent with its indexes, and is shared by any number of threads.
/// To craft a set (tests of the loader), take [`Program::into_parts`], change them, and load
/// [`ProgramParts::to_bytes`] again: the loader validates everything.
#[derive(Debug)]
pub struct Program {
    parts: ProgramParts,
    pub(crate) runtime: Runtime,
}

#[doc(hidden)]
impl std::ops::Deref for Program {
    type Target = ProgramParts;

    fn deref(&self) -> &ProgramParts {
        &self.parts
    }
}

#[doc(hidden)]
/// The stored form of a compiled policy set: what the binary format encodes. Plain data; only
/// [`Program::from_bytes`] (which validates it) turns it into a [`Program`].
#[derive(Debug, Serialize, Deserialize)]
pub struct ProgramParts {
    /// Interned strings: names, literals, patterns, condition texts.
    pub strings: Vec<Box<str>>,
    /// Number literals.
    pub numbers: Vec<Number>,
    /// Claim paths, deduplicated; path `i` is payload slot `i`.
    pub paths: Vec<Vec<PathSegment>>,
    /// Glob patterns (string ids), compiled when the program is built or loaded.
    pub glob_patterns: Vec<StrId>,
    /// Regular expressions (string ids), compiled anchored when the program is built or loaded.
    pub regex_patterns: Vec<StrId>,
    /// Literal sets for `in`, `contains any` and `contains all`.
    pub sets: Vec<ScalarSet>,
    /// Policy file names, for source locations.
    pub files: Vec<Box<str>>,
    pub providers: Vec<ProviderCode>,
    pub roles: Vec<RoleCode>,
    /// Well-known paths every program reads.
    pub well_known: WellKnown,
}

impl ProgramParts {
    /// Encodes the parts in the binary format (magic, version, length, SHA-256, payload).
    pub fn to_bytes(&self) -> Vec<u8> {
        frame(&postcard::to_stdvec(self).unwrap_or_default())
    }
}

/// Derived at build or load time, never stored: compiled patterns and lookup indexes.
#[derive(Debug, Default)]
pub(crate) struct Runtime {
    pub(crate) table: Option<PathTable>,
    pub(crate) globs: Vec<Glob>,
    pub(crate) regexes: Vec<crate::check::ClaimRegex>,
    /// `iss` value → provider.
    pub(crate) issuers: HashMap<Box<str>, u32>,
    /// Role name → role.
    pub(crate) role_names: HashMap<Box<str>, u32>,
    /// Per provider: its roles in order, the roles with `audience = any`, and the roles bound to
    /// each audience (each list in policy-set order).
    pub(crate) candidates: Vec<Candidates>,
    /// Per provider: its inline keys, parsed and validated (`None` for keys from elsewhere).
    pub(crate) inline_keys: Vec<Option<std::sync::Arc<claimgate_jose::KeySet>>>,
    /// Provider name → provider.
    pub(crate) provider_names: HashMap<Box<str>, u32>,
    /// Unique per prepared program in this process: a [`crate::vm::VerifiedToken`] made by one
    /// program is refused by every other.
    pub(crate) id: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Candidates {
    pub(crate) all: Vec<u32>,
    pub(crate) any_audience: Vec<u32>,
    pub(crate) by_audience: HashMap<Box<str>, Vec<u32>>,
}

#[doc(hidden)]
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct WellKnown {
    pub iss: PathId,
    pub aud: PathId,
    pub exp: PathId,
    pub nbf: PathId,
    pub iat: PathId,
}

#[doc(hidden)]
/// A place in a policy file: byte offsets, and the 1-based line and column of the start, so
/// that a compiled set can point at its sources without carrying them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loc {
    pub file: u32,
    pub start: u32,
    pub end: u32,
    pub line: u32,
    pub column: u32,
}

#[doc(hidden)]
#[derive(Debug, Serialize, Deserialize)]
pub struct ProviderCode {
    pub name: StrId,
    pub loc: Loc,
    pub issuers: Vec<StrId>,
    pub clock_skew: u64,
    pub require_exp: bool,
    pub require_nbf: bool,
    pub require_iat: bool,
    pub max_token_age: Option<u64>,
    pub max_lifetime: Option<u64>,
    /// Texts of the five time checks, as the trace shows them.
    pub time_texts: [StrId; 5],
    /// Allowed algorithms as `claimgate_jose::AlgorithmSet` bits (for the signature core).
    pub algorithms: u16,
    pub typ: Option<StrId>,
    /// Where this provider's verification keys come from. Only these keys ever verify a token
    /// that this provider decides.
    pub keys: KeysCode,
    /// `verbose_logging = true`: log the claims of this provider's tokens.
    pub verbose_logging: bool,
}

#[doc(hidden)]
/// A provider's key source, as compiled. Inline keys travel inside the program (and its file)
/// and are parsed and validated when the program is built or loaded; the other sources are
/// resolved by the caller (the engine fetches URLs and reads files) and handed to
/// [`Program::decide_token`] through a [`crate::vm::KeyLookup`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeysCode {
    /// PEM blocks (SPKI public keys, PKCS#1 RSA public keys, X.509 certificates), one string each.
    Pem(Vec<StrId>),
    /// One JWK, as JSON text.
    Jwk(StrId),
    /// A JWK Set, as JSON text.
    Jwks(StrId),
    /// A JWK Set file: the path as written, relative to the policy file `file` (an index into
    /// [`Program::files`]).
    JwksFile { path: StrId, file: u32 },
    /// A JWK Set fetched over HTTPS.
    JwksUrl { url: StrId, fetch: FetchCode },
    /// An OpenID Connect discovery document that names the JWK Set.
    Discovery { url: StrId, fetch: FetchCode },
}

impl KeysCode {
    /// Whether the keys are part of the program itself.
    pub fn is_inline(&self) -> bool {
        matches!(self, KeysCode::Pem(_) | KeysCode::Jwk(_) | KeysCode::Jwks(_))
    }
}

#[doc(hidden)]
/// How a remote key set is fetched and cached (seconds), as the policy's `keys` block says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchCode {
    pub refresh: u64,
    pub timeout: u64,
    pub cache_max_age: u64,
    /// A pinned CA: its PEM text, or a path relative to the policy file.
    pub ca: Option<CaCode>,
}

#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaCode {
    Pem(StrId),
    File { path: StrId, file: u32 },
}

#[doc(hidden)]
#[derive(Debug, Serialize, Deserialize)]
pub struct RoleCode {
    pub name: StrId,
    pub loc: Loc,
    pub provider: u32,
    /// `None`: `audience = any`.
    pub audience: Option<u32>,
    pub audience_loc: Loc,
    pub code: Vec<Instr>,
    /// The conditions (and groups) of the role, referred to by instructions.
    pub checks: Vec<Check>,
    pub grant: GrantCode,
    /// `verbose_logging = true`: log the claims of tokens decided for this role.
    pub verbose_logging: bool,
}

#[doc(hidden)]
/// One condition node: what the trace and a denial say about it, and the comparison it runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct Check {
    /// Canonical text of the condition.
    pub text: StrId,
    /// The path the condition reads (its operand's under `not`; none for groups).
    pub path: Option<PathId>,
    pub loc: Loc,
    pub message: Option<StrId>,
    pub cmp: Option<Cmp>,
}

#[doc(hidden)]
/// A comparison of the value at `path` with literals.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Cmp {
    pub path: PathId,
    pub op: CmpOp,
    /// `words`: a string claim is read as its space-separated words (for the `contains` ops).
    pub words: bool,
}

#[doc(hidden)]
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum CmpOp {
    Eq(Const),
    Ne(Const),
    Lt(u32),
    Le(u32),
    Gt(u32),
    Ge(u32),
    In(u32),
    Glob(u32),
    Matches(u32),
    Contains(Const),
    ContainsAny(u32),
    ContainsAll(u32),
    /// Index into the globs.
    ContainsGlob(u32),
    /// Index into the regexes.
    ContainsMatches(u32),
    Exists,
    Absent,
    Is(crate::ast::JsonType),
}

impl CmpOp {
    /// The `contains` family: the operators that read a list's items (or, with `words`, a
    /// string's words).
    pub fn is_contains(self) -> bool {
        matches!(
            self,
            CmpOp::Contains(_)
                | CmpOp::ContainsAny(_)
                | CmpOp::ContainsAll(_)
                | CmpOp::ContainsGlob(_)
                | CmpOp::ContainsMatches(_)
        )
    }
}

#[doc(hidden)]
/// A scalar literal.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Const {
    Str(StrId),
    Num(u32),
    Bool(bool),
}

#[doc(hidden)]
/// A set of scalar literals. Strings are sorted by their text, for binary search.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ScalarSet {
    pub strings: Vec<StrId>,
    pub numbers: Vec<u32>,
    pub has_true: bool,
    pub has_false: bool,
}

#[doc(hidden)]
/// The instruction set. A role's code evaluates its conditions with one outcome register `r`
/// (pass, fail or missing) and a stack of `any` accumulators; `Require` ends each top-level
/// condition and denies when `r` is not pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Instr {
    /// `r` = comparison of check `n`.
    Test(u32),
    /// Starts check `n` (a `not` or a group) in the trace.
    Open(u32),
    /// Ends the innermost open check with outcome `r`.
    Close,
    /// `r` = not `r` (missing stays missing).
    Not,
    /// Pushes an `any` accumulator, initially "fail".
    AnyStart,
    /// After a child of `any`: when `r` is pass, the accumulator becomes pass and control jumps
    /// to the `AnyEnd` at the target; a missing child makes the accumulator missing (three-valued
    /// logic: a missing claim never becomes a pass, even under `not`).
    AnyNext(u32),
    /// `r` = the accumulator, popped.
    AnyEnd,
    /// After a child of `all`: when `r` is not pass, jump to the target (the group's end).
    AllNext(u32),
    /// A top-level condition (check `n`) must have passed.
    Require(u32),
}

#[doc(hidden)]
#[derive(Debug, Serialize, Deserialize)]
pub enum Part {
    Literal(StrId),
    Claim(PathId),
}

#[doc(hidden)]
#[derive(Debug, Serialize, Deserialize)]
pub struct GrantCode {
    pub identity: Vec<Part>,
    pub identity_loc: Loc,
    pub user: Option<(PathId, Loc)>,
    /// The groups claim, its location, and whether it may be missing.
    pub groups: Option<(PathId, Loc, bool)>,
    /// (name, path, optional, location).
    pub metadata: Vec<(StrId, PathId, bool, Loc)>,
    /// The role's `policies`, in the order written.
    pub policies: Vec<PolicyCode>,
    pub token: TokenSettings,
}

/// One term of a grant's policies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PolicyCode {
    /// A fixed policy name.
    Name(StrId),
    /// A claim holding names: (path, location, optional).
    Claim(PathId, Loc, bool),
}

// -------------------------------------------------------------------------------------------
// Binary format

#[doc(hidden)]
/// The first bytes of every compiled policy set file.
pub const MAGIC: [u8; 8] = *b"CLMGATE\0";
#[doc(hidden)]
/// Bumped whenever the encoding changes; a build reads only its own version.
pub const FORMAT_VERSION: u32 = 4;
const HEADER_LEN: usize = 8 + 4 + 8 + 32;

#[doc(hidden)]
/// A payload with the file header in front: magic, format version, payload length, SHA-256 of the
/// payload. [`Program::to_bytes`] frames its encoding; the loader's fuzz target frames arbitrary
/// bytes, so that they reach the decoder instead of stopping at the checksum.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let digest = ring::digest::digest(&ring::digest::SHA256, payload);
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(digest.as_ref());
    out.extend_from_slice(payload);
    out
}

/// Why a compiled policy set could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The bytes do not start with the format's magic bytes.
    #[error("not a compiled claimgate policy set (wrong magic bytes)")]
    NotCompiled,
    /// Another version of the format.
    #[error("compiled with format version {found}; this build reads version {expected}: compile the policies again")]
    Version {
        /// The file's version.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
    /// The length recorded does not match the bytes.
    #[error("the file is truncated or corrupted (length does not match)")]
    Length,
    /// The checksum does not match the bytes.
    #[error("the file is corrupted (checksum mismatch)")]
    Checksum,
    /// The contents break a rule of the format (a reference out of range, an unsorted set...).
    #[error("the file is corrupted: {0}")]
    Corrupted(String),
}

impl Program {
    /// Encodes the program: magic, format version, payload length, SHA-256 of the payload, and
    /// the payload (postcard).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.parts.to_bytes()
    }

    #[doc(hidden)]
    /// The program's parts, for crafting a variant (load it again with `from_bytes`).
    pub fn into_parts(self) -> ProgramParts {
        self.parts
    }

    /// Validates and prepares parts (the compiler's output, or a decoded file).
    pub(crate) fn from_parts(parts: ProgramParts) -> Result<Program, String> {
        let mut program = Program { parts, runtime: Runtime::default() };
        program.validate()?;
        program.prepare()?;
        Ok(program)
    }

    /// Decodes and validates a compiled policy set. Every index is checked, so a crafted file
    /// is an error, never a panic at evaluation time.
    pub fn from_bytes(bytes: &[u8]) -> Result<Program, LoadError> {
        if bytes.len() < 8 || bytes[..8] != MAGIC {
            return Err(LoadError::NotCompiled);
        }
        if bytes.len() < HEADER_LEN {
            return Err(LoadError::Length);
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().map_err(|_| LoadError::Length)?);
        if version != FORMAT_VERSION {
            return Err(LoadError::Version { found: version, expected: FORMAT_VERSION });
        }
        let length = u64::from_le_bytes(bytes[12..20].try_into().map_err(|_| LoadError::Length)?);
        let payload = &bytes[HEADER_LEN..];
        if payload.len() as u64 != length {
            return Err(LoadError::Length);
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, payload);
        if digest.as_ref() != &bytes[20..52] {
            return Err(LoadError::Checksum);
        }
        let parts: ProgramParts =
            postcard::from_bytes(payload).map_err(|e| LoadError::Corrupted(format!("cannot decode: {e}")))?;
        Program::from_parts(parts).map_err(LoadError::Corrupted)
    }

    /// Checks that every index in the program is in range and every jump stays in its role.
    fn validate(&self) -> Result<(), String> {
        let strings = self.strings.len();
        let s = |id: StrId, what: &str| {
            if (id as usize) < strings { Ok(()) } else { Err(format!("{what} refers to string {id} of {strings}")) }
        };
        let p = |id: PathId| {
            if (id as usize) < self.paths.len() { Ok(()) } else { Err(format!("path {id} out of range")) }
        };
        let loc = |l: &Loc| {
            if (l.file as usize) < self.files.len() && l.start <= l.end {
                Ok(())
            } else {
                Err("bad location".to_string())
            }
        };
        if let Some(bad) = self.numbers.iter().find(|n| !n.is_valid()) {
            return Err(format!("number literal {:?} is not a JSON number within range", bad.to_text()));
        }
        for id in self.glob_patterns.iter().chain(&self.regex_patterns) {
            s(*id, "pattern")?;
        }
        for set in &self.sets {
            for id in &set.strings {
                s(*id, "set")?;
            }
            // Looked up by binary search: an unsorted set would miss members (and `not in`
            // would then hold).
            if set.strings.windows(2).any(|w| self.strings[w[0] as usize] >= self.strings[w[1] as usize]) {
                return Err("a literal set is not sorted".to_string());
            }
            if set.numbers.iter().any(|n| *n as usize >= self.numbers.len()) {
                return Err("set number out of range".to_string());
            }
        }
        let w = self.well_known;
        for id in [w.iss, w.aud, w.exp, w.nbf, w.iat] {
            p(id)?;
        }
        // Names and issuers are unique, as the checker makes them: key lookups go by provider
        // name and selection by issuer, so a crafted file must not give two providers one name
        // or one issuer (compared by text: a crafted string pool may repeat a string).
        let text = |id: StrId| self.strings.get(id as usize).map(|t| &**t);
        let (mut provider_names, mut issuers, mut role_names) =
            (std::collections::HashSet::new(), std::collections::HashSet::new(), std::collections::HashSet::new());
        for provider in &self.providers {
            s(provider.name, "provider name")?;
            loc(&provider.loc)?;
            if !provider_names.insert(text(provider.name)) {
                return Err("two providers have the same name".to_string());
            }
            for issuer in &provider.issuers {
                s(*issuer, "issuer")?;
                if !issuers.insert(text(*issuer)) {
                    return Err("two providers accept the same issuer".to_string());
                }
            }
            for id in provider.issuers.iter().chain(&provider.time_texts).chain(provider.typ.iter()) {
                s(*id, "provider")?;
            }
            let file = |f: u32| {
                if (f as usize) < self.files.len() { Ok(()) } else { Err("key file location out of range".to_string()) }
            };
            let fetch = |f: &FetchCode| match &f.ca {
                None => Ok(()),
                Some(CaCode::Pem(id)) => s(*id, "ca"),
                Some(CaCode::File { path, file: f }) => s(*path, "ca").and_then(|_| file(*f)),
            };
            match &provider.keys {
                KeysCode::Pem(blocks) => blocks.iter().try_for_each(|id| s(*id, "keys"))?,
                KeysCode::Jwk(id) | KeysCode::Jwks(id) => s(*id, "keys")?,
                KeysCode::JwksFile { path, file: f } => {
                    s(*path, "keys")?;
                    file(*f)?;
                }
                KeysCode::JwksUrl { url, fetch: f } | KeysCode::Discovery { url, fetch: f } => {
                    s(*url, "keys")?;
                    fetch(f)?;
                }
            }
        }
        let constant = |c: &Const| match c {
            Const::Str(id) => s(*id, "literal"),
            Const::Num(n) if (*n as usize) < self.numbers.len() => Ok(()),
            Const::Num(_) => Err("number out of range".to_string()),
            Const::Bool(_) => Ok(()),
        };
        for role in &self.roles {
            s(role.name, "role name")?;
            if !role_names.insert(text(role.name)) {
                return Err("two roles have the same name".to_string());
            }
            loc(&role.loc)?;
            loc(&role.audience_loc)?;
            if role.provider as usize >= self.providers.len() {
                return Err("role provider out of range".to_string());
            }
            if role.audience.is_some_and(|a| a as usize >= self.sets.len()) {
                return Err("audience set out of range".to_string());
            }
            for check in &role.checks {
                s(check.text, "check")?;
                loc(&check.loc)?;
                if let Some(m) = check.message {
                    s(m, "message")?;
                }
                if let Some(path) = check.path {
                    p(path)?;
                }
                if let Some(cmp) = &check.cmp {
                    p(cmp.path)?;
                    if cmp.words && !cmp.op.is_contains() {
                        return Err("`words` on an operator other than contains".to_string());
                    }
                    let in_range = |n: u32, len: usize| {
                        if (n as usize) < len { Ok(()) } else { Err("operand out of range".to_string()) }
                    };
                    match &cmp.op {
                        CmpOp::Eq(c) | CmpOp::Ne(c) | CmpOp::Contains(c) => constant(c)?,
                        CmpOp::Lt(n) | CmpOp::Le(n) | CmpOp::Gt(n) | CmpOp::Ge(n) => in_range(*n, self.numbers.len())?,
                        CmpOp::In(n) | CmpOp::ContainsAny(n) | CmpOp::ContainsAll(n) => in_range(*n, self.sets.len())?,
                        CmpOp::Glob(n) | CmpOp::ContainsGlob(n) => in_range(*n, self.glob_patterns.len())?,
                        CmpOp::Matches(n) | CmpOp::ContainsMatches(n) => in_range(*n, self.regex_patterns.len())?,
                        CmpOp::Exists | CmpOp::Absent | CmpOp::Is(_) => {}
                    }
                }
            }
            validate_code(&role.code, role.checks.len())?;
            let g = &role.grant;
            loc(&g.identity_loc)?;
            for part in &g.identity {
                match part {
                    Part::Literal(id) => s(*id, "identity")?,
                    Part::Claim(path) => p(*path)?,
                }
            }
            for (path, l) in g.user.iter().copied().chain(g.groups.iter().map(|(p, l, _)| (*p, *l))).chain(
                g.policies.iter().filter_map(|term| match term {
                    PolicyCode::Claim(p, l, _) => Some((*p, *l)),
                    PolicyCode::Name(_) => None,
                }),
            ) {
                p(path)?;
                loc(&l)?;
            }
            for (name, path, _, l) in &g.metadata {
                s(*name, "metadata")?;
                p(*path)?;
                loc(l)?;
            }
            for term in &g.policies {
                if let PolicyCode::Name(id) = term {
                    s(*id, "policy")?;
                }
            }
        }
        Ok(())
    }

    /// Compiles patterns and builds the lookup indexes.
    fn prepare(&mut self) -> Result<(), String> {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let mut runtime = Runtime {
            table: Some(PathTable::new(&self.paths)),
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ..Runtime::default()
        };
        for id in &self.glob_patterns {
            runtime.globs.push(Glob::new(&self.strings[*id as usize]).map_err(|e| e.to_string())?);
        }
        for id in &self.regex_patterns {
            runtime.regexes.push(crate::check::compile_regex(&self.strings[*id as usize], 1 << 20)?);
        }
        for (index, provider) in self.providers.iter().enumerate() {
            for issuer in &provider.issuers {
                runtime.issuers.insert(self.strings[*issuer as usize].clone(), index as u32);
            }
            runtime.provider_names.insert(self.strings[provider.name as usize].clone(), index as u32);
            runtime.inline_keys.push(self.inline_keys(provider)?);
        }
        runtime.candidates = (0..self.providers.len()).map(|_| Candidates::default()).collect();
        for (index, role) in self.roles.iter().enumerate() {
            let index = index as u32;
            runtime.role_names.insert(self.strings[role.name as usize].clone(), index);
            let candidates = &mut runtime.candidates[role.provider as usize];
            candidates.all.push(index);
            match role.audience {
                None => candidates.any_audience.push(index),
                Some(set) => {
                    for id in &self.sets[set as usize].strings {
                        let list = candidates.by_audience.entry(self.strings[*id as usize].clone()).or_default();
                        if list.last() != Some(&index) {
                            list.push(index);
                        }
                    }
                }
            }
        }
        self.runtime = runtime;
        Ok(())
    }

    /// Parses a provider's inline keys with the default key limits. An inline key source that
    /// holds no usable key fails the load: the checker refuses such a policy, so only a crafted
    /// file gets here.
    fn inline_keys(&self, provider: &ProviderCode) -> Result<Option<std::sync::Arc<claimgate_jose::KeySet>>, String> {
        use claimgate_jose::KeySet;
        let limits = claimgate_jose::KeyLimits::default();
        let loaded = match &provider.keys {
            KeysCode::Pem(blocks) => {
                let text: Vec<&str> = blocks.iter().map(|id| self.string(*id)).collect();
                KeySet::from_pem_with_limits(&text.join("\n"), &limits)
            }
            KeysCode::Jwk(id) => KeySet::from_jwk_json_with_limits(self.string(*id).as_bytes(), &limits),
            KeysCode::Jwks(id) => KeySet::from_jwks_json_with_limits(self.string(*id).as_bytes(), &limits),
            _ => return Ok(None),
        };
        let name = self.string(provider.name);
        loaded.map(|keys| Some(std::sync::Arc::new(keys))).map_err(|e| format!("provider `{name}`: its keys: {e}"))
    }

    #[doc(hidden)]
    /// The keys written inside the policy for provider `index`, parsed and validated.
    pub fn inline_key_set(&self, provider: u32) -> Option<&std::sync::Arc<claimgate_jose::KeySet>> {
        self.runtime.inline_keys.get(provider as usize)?.as_ref()
    }

    #[doc(hidden)]
    /// The index of the provider named `name`.
    pub fn provider_index(&self, name: &str) -> Option<u32> {
        self.runtime.provider_names.get(name).copied()
    }

    #[doc(hidden)]
    /// The provider that accepts `iss`.
    pub fn provider_for_issuer(&self, iss: &str) -> Option<u32> {
        self.runtime.issuers.get(iss).copied()
    }

    #[doc(hidden)]
    pub fn string(&self, id: StrId) -> &str {
        &self.strings[id as usize]
    }

    #[doc(hidden)]
    pub fn role_index(&self, name: &str) -> Option<u32> {
        self.runtime.role_names.get(name).copied()
    }

    pub(crate) fn table(&self) -> &PathTable {
        self.runtime.table.as_ref().expect("programs are prepared when built or loaded")
    }

    /// A readable listing of the whole program, for review and snapshot tests.
    pub fn disassemble(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "; claimgate program, format {FORMAT_VERSION}");
        let _ = writeln!(
            out,
            "; {} strings, {} numbers, {} paths, {} sets",
            self.strings.len(),
            self.numbers.len(),
            self.paths.len(),
            self.sets.len()
        );
        let _ = writeln!(out, "\npaths:");
        for i in 0..self.paths.len() {
            let _ = writeln!(out, "  p{i} = {}", self.path_text(i as u32));
        }
        if !self.sets.is_empty() {
            let _ = writeln!(out, "\nsets:");
            for (i, set) in self.sets.iter().enumerate() {
                let _ = writeln!(out, "  s{i} = {}", self.set_text(set));
            }
        }
        for (i, provider) in self.providers.iter().enumerate() {
            let _ =
                writeln!(out, "\nprovider {} (#{i}) at {}", self.string(provider.name), self.loc_text(provider.loc));
            let issuers: Vec<String> = provider.issuers.iter().map(|s| format!("{:?}", self.string(*s))).collect();
            let _ = writeln!(out, "  issuers {}", issuers.join(", "));
            let _ = writeln!(
                out,
                "  time skew={}s require exp={} nbf={} iat={} max_token_age={:?} max_lifetime={:?}",
                provider.clock_skew,
                provider.require_exp,
                provider.require_nbf,
                provider.require_iat,
                provider.max_token_age,
                provider.max_lifetime
            );
            let _ = writeln!(out, "  algorithms {:#06x}", provider.algorithms);
            let keys = match &provider.keys {
                KeysCode::Pem(blocks) if blocks.len() == 1 => "pem (1 block)".to_string(),
                KeysCode::Pem(blocks) => format!("pem ({} blocks)", blocks.len()),
                KeysCode::Jwk(_) => "jwk (inline)".to_string(),
                KeysCode::Jwks(_) => "jwks (inline)".to_string(),
                KeysCode::JwksFile { path, file } => {
                    format!("jwks_file {:?} (relative to {})", self.string(*path), self.files[*file as usize])
                }
                KeysCode::JwksUrl { url, fetch } => format!("jwks_url {:?} {}", self.string(*url), fetch_text(fetch)),
                KeysCode::Discovery { url, fetch } => {
                    format!("discovery_url {:?} {}", self.string(*url), fetch_text(fetch))
                }
            };
            let _ = writeln!(out, "  keys {keys}");
        }
        for (i, role) in self.roles.iter().enumerate() {
            let provider = &self.providers[role.provider as usize];
            let _ = writeln!(out, "\nrole {} (#{i}) at {}", self.string(role.name), self.loc_text(role.loc));
            let _ = writeln!(out, "  provider {}", self.string(provider.name));
            match role.audience {
                None => {
                    let _ = writeln!(out, "  audience any");
                }
                Some(set) => {
                    let _ = writeln!(out, "  audience in s{set}");
                }
            }
            for (pc, instr) in role.code.iter().enumerate() {
                let comment = match instr {
                    Instr::Test(n) | Instr::Open(n) | Instr::Require(n) => {
                        let check = &role.checks[*n as usize];
                        format!("; {}  @{}", self.string(check.text), self.loc_text(check.loc))
                    }
                    _ => String::new(),
                };
                let text = match instr {
                    Instr::Test(n) => {
                        format!("test      c{n} {}", self.cmp_text(role.checks[*n as usize].cmp.as_ref()))
                    }
                    Instr::Open(n) => format!("open      c{n}"),
                    Instr::Close => "close".to_string(),
                    Instr::Not => "not".to_string(),
                    Instr::AnyStart => "any.start".to_string(),
                    Instr::AnyNext(t) => format!("any.next  -> {t:04}"),
                    Instr::AnyEnd => "any.end".to_string(),
                    Instr::AllNext(t) => format!("all.next  -> {t:04}"),
                    Instr::Require(n) => format!("require   c{n}"),
                };
                let line = format!("  {pc:04}  {text:<48}{comment}");
                let _ = writeln!(out, "{}", line.trim_end());
            }
            let grant = &role.grant;
            let identity: Vec<String> = grant
                .identity
                .iter()
                .map(|part| match part {
                    Part::Literal(s) => format!("{:?}", self.string(*s)),
                    Part::Claim(p) => format!("p{p}"),
                })
                .collect();
            let _ = writeln!(out, "  grant identity = {}", identity.join(" + "));
            if let Some((p, _)) = grant.user {
                let _ = writeln!(out, "  grant user = p{p}");
            }
            if let Some((p, _, optional)) = grant.groups {
                let _ = writeln!(out, "  grant groups = {}p{p}", if optional { "optional " } else { "" });
            }
            for (name, p, optional, _) in &grant.metadata {
                let _ = writeln!(
                    out,
                    "  grant metadata {} = {}p{p}",
                    self.string(*name),
                    if *optional { "optional " } else { "" }
                );
            }
            let policies: Vec<String> = grant
                .policies
                .iter()
                .map(|term| match term {
                    PolicyCode::Name(s) => format!("{:?}", self.string(*s)),
                    PolicyCode::Claim(p, _, optional) => format!("{}p{p}", if *optional { "optional " } else { "" }),
                })
                .collect();
            if !policies.is_empty() {
                let _ = writeln!(out, "  grant policies = {}", policies.join(" + "));
            }
        }
        out
    }

    #[doc(hidden)]
    pub fn path_text(&self, path: PathId) -> String {
        let mut out = String::from("claims");
        for segment in &self.paths[path as usize] {
            match segment {
                PathSegment::Key(k) => {
                    let bare = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        let _ = write!(out, ".{k}");
                    } else {
                        let _ = write!(out, ".{k:?}");
                    }
                }
                PathSegment::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
            }
        }
        out
    }

    #[doc(hidden)]
    /// `file:line:col` of a location.
    pub fn loc_text(&self, loc: Loc) -> String {
        format!("{}:{}:{}", self.files[loc.file as usize], loc.line, loc.column)
    }

    fn const_text(&self, c: &Const) -> String {
        match c {
            Const::Str(s) => format!("{:?}", self.string(*s)),
            Const::Num(n) => self.numbers[*n as usize].to_text(),
            Const::Bool(b) => b.to_string(),
        }
    }

    fn set_text(&self, set: &ScalarSet) -> String {
        let mut items: Vec<String> = set.strings.iter().map(|s| format!("{:?}", self.string(*s))).collect();
        items.extend(set.numbers.iter().map(|n| self.numbers[*n as usize].to_text()));
        if set.has_false {
            items.push("false".to_string());
        }
        if set.has_true {
            items.push("true".to_string());
        }
        format!("{{{}}}", items.join(", "))
    }

    fn cmp_text(&self, cmp: Option<&Cmp>) -> String {
        let Some(cmp) = cmp else { return String::new() };
        let operand = match &cmp.op {
            CmpOp::Eq(c) => format!("eq {}", self.const_text(c)),
            CmpOp::Ne(c) => format!("ne {}", self.const_text(c)),
            CmpOp::Lt(n) => format!("lt {}", self.numbers[*n as usize].to_text()),
            CmpOp::Le(n) => format!("le {}", self.numbers[*n as usize].to_text()),
            CmpOp::Gt(n) => format!("gt {}", self.numbers[*n as usize].to_text()),
            CmpOp::Ge(n) => format!("ge {}", self.numbers[*n as usize].to_text()),
            CmpOp::In(s) => format!("in s{s}"),
            CmpOp::Glob(g) => format!("glob {:?}", self.string(self.glob_patterns[*g as usize])),
            CmpOp::Matches(r) => format!("matches {:?}", self.string(self.regex_patterns[*r as usize])),
            CmpOp::Contains(c) => format!("contains {}", self.const_text(c)),
            CmpOp::ContainsAny(s) => format!("contains.any s{s}"),
            CmpOp::ContainsAll(s) => format!("contains.all s{s}"),
            CmpOp::ContainsGlob(g) => format!("contains.glob {:?}", self.string(self.glob_patterns[*g as usize])),
            CmpOp::ContainsMatches(r) => {
                format!("contains.matches {:?}", self.string(self.regex_patterns[*r as usize]))
            }
            CmpOp::Exists => "exists".to_string(),
            CmpOp::Is(t) => format!("is {}", t.name()),
            CmpOp::Absent => "absent".to_string(),
        };
        let words = if cmp.words { " words" } else { "" };
        format!("p{}{words} {operand}", cmp.path)
    }
}

fn fetch_text(fetch: &FetchCode) -> String {
    let ca = match &fetch.ca {
        None => "",
        Some(CaCode::Pem(_)) => " ca=pem",
        Some(CaCode::File { .. }) => " ca=file",
    };
    format!("refresh={}s timeout={}s cache_max_age={}s{ca}", fetch.refresh, fetch.timeout, fetch.cache_max_age)
}

/// Every instruction refers to an existing check, every jump lands inside the code, and the
/// `any` accumulator stack never underflows on any path (checked by a linear walk: the compiler
/// only emits forward jumps to an `AnyEnd` at the same stack depth, or past a group's end).
fn validate_code(code: &[Instr], checks: usize) -> Result<(), String> {
    let mut depth: usize = 0;
    let mut opened: usize = 0;
    for (pc, instr) in code.iter().enumerate() {
        match *instr {
            Instr::Test(n) | Instr::Open(n) | Instr::Require(n) if n as usize >= checks => {
                return Err(format!("instruction {pc} refers to check {n} of {checks}"));
            }
            Instr::AnyNext(target) => {
                if target as usize <= pc || target as usize >= code.len() || code[target as usize] != Instr::AnyEnd {
                    return Err(format!("instruction {pc} jumps to {target}, which is not a later `any.end`"));
                }
                if depth == 0 {
                    return Err(format!("instruction {pc} outside `any`"));
                }
            }
            Instr::AllNext(target) if target as usize <= pc || target as usize > code.len() => {
                return Err(format!("instruction {pc} jumps out of the code"));
            }
            _ => {}
        }
        match *instr {
            Instr::AnyStart => depth += 1,
            Instr::AnyEnd => {
                depth = depth.checked_sub(1).ok_or(format!("instruction {pc}: `any.end` without start"))?
            }
            Instr::Open(_) => opened += 1,
            Instr::Close => opened = opened.checked_sub(1).ok_or(format!("instruction {pc}: `close` without open"))?,
            _ => {}
        }
    }
    if depth != 0 || opened != 0 {
        return Err("unbalanced code".to_string());
    }
    Ok(())
}
