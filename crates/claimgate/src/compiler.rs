//! The compiler: from the checked model to a [`Program`].
//!
//! Strings and numbers are interned into constant pools, claim paths deduplicated into the path
//! table, literal lists turned into sets, globs and regexes compiled once, and each role's
//! conditions flattened into one instruction sequence with forward jumps for `any` and `all`.
//! Every condition keeps its canonical text and source location, so a denial from the VM names
//! the same condition, at the same place, as the reference interpreter.

use std::collections::HashMap;

use crate::ast::{ClaimPath, Condition, ConditionKind, GroupKind, Op, Scalar, Segment};
use crate::fmt::condition_text;
use crate::model::{Audience, CaSource, Fetch, KeySource, PolicySet, PolicyTerm, TemplatePart};
use crate::number::Number;
use crate::payload::PathSegment;
use crate::program::*;
use crate::source::{SourceMap, Span};

/// Compiles a checked policy set (one without errors). `sources` names the files for locations.
/// Fails only if a pattern the checker accepted does not compile, which would be a bug.
pub fn compile(set: &PolicySet, sources: &SourceMap) -> Result<Program, String> {
    let mut c = Compiler { sources: Some(sources), ..Compiler::default() };
    let files: Vec<Box<str>> = sources.iter().map(|(_, f)| f.name.as_str().into()).collect();
    let well_known = WellKnown {
        iss: c.path_of(&["iss"]),
        aud: c.path_of(&["aud"]),
        exp: c.path_of(&["exp"]),
        nbf: c.path_of(&["nbf"]),
        iat: c.path_of(&["iat"]),
    };
    let providers = set
        .providers
        .iter()
        .map(|p| {
            let skew = crate::reference::seconds_text(p.clock_skew);
            let age = p.max_token_age.map(crate::reference::seconds_text).unwrap_or_default();
            let life = p.max_lifetime.map(crate::reference::seconds_text).unwrap_or_default();
            ProviderCode {
                name: c.string(&p.name),
                loc: c.loc(p.file.0, p.span),
                issuers: p.issuers.iter().map(|i| c.string(&i.value)).collect(),
                clock_skew: p.clock_skew,
                require_exp: p.required_time_claims.exp,
                require_nbf: p.required_time_claims.nbf,
                require_iat: p.required_time_claims.iat,
                max_token_age: p.max_token_age,
                max_lifetime: p.max_lifetime,
                time_texts: [
                    c.string(&format!("now < claims.exp + {skew}")),
                    c.string(&format!("now >= claims.nbf - {skew}")),
                    c.string(&format!("now >= claims.iat - {skew}")),
                    c.string(&format!("now <= claims.iat + {age} + {skew}")),
                    c.string(&format!("claims.exp - claims.iat <= {life}")),
                ],
                algorithms: p.algorithms.bits(),
                typ: p.typ.as_deref().map(|t| c.string(t)),
                keys: c.keys(&p.keys, p.file.0),
                verbose_logging: p.verbose_logging,
            }
        })
        .collect();
    let roles = set.roles.iter().map(|role| c.role(role, &set.providers[role.provider])).collect();
    let parts = ProgramParts {
        strings: c.strings,
        numbers: c.numbers,
        paths: c.paths,
        glob_patterns: c.globs,
        regex_patterns: c.regexes,
        sets: c.sets,
        files,
        providers,
        roles,
        well_known,
    };
    // Validated like a loaded file: the compiler's output meets the loader's rules.
    Program::from_parts(parts)
}

#[derive(Default)]
struct Compiler<'s> {
    sources: Option<&'s SourceMap>,
    strings: Vec<Box<str>>,
    string_ids: HashMap<Box<str>, StrId>,
    numbers: Vec<Number>,
    paths: Vec<Vec<PathSegment>>,
    path_ids: HashMap<Vec<PathSegment>, PathId>,
    globs: Vec<StrId>,
    regexes: Vec<StrId>,
    sets: Vec<ScalarSet>,
}

/// A role being compiled: its checks and code.
struct RoleBuilder {
    file: u32,
    checks: Vec<Check>,
    code: Vec<Instr>,
}

impl Compiler<'_> {
    fn loc(&self, file: u32, span: Span) -> Loc {
        let at = self.sources.map(|s| s.get(crate::source::FileId(file)).line_col(span.start as usize));
        Loc {
            file,
            start: span.start,
            end: span.end,
            line: at.map_or(0, |a| a.line as u32),
            column: at.map_or(0, |a| a.column as u32),
        }
    }

    fn keys(&mut self, keys: &KeySource, file: u32) -> KeysCode {
        let fetch = |c: &mut Compiler, f: &Fetch| FetchCode {
            refresh: f.refresh,
            timeout: f.timeout,
            cache_max_age: f.cache_max_age,
            ca: f.ca.as_ref().map(|ca| match ca {
                CaSource::Pem(text) => CaCode::Pem(c.string(&text.value)),
                CaSource::File(path) => CaCode::File { path: c.string(&path.value), file },
            }),
        };
        match keys {
            KeySource::Pem(blocks) => KeysCode::Pem(blocks.iter().map(|b| self.string(&b.value)).collect()),
            KeySource::Jwk(text) => KeysCode::Jwk(self.string(&text.value)),
            KeySource::Jwks(text) => KeysCode::Jwks(self.string(&text.value)),
            KeySource::JwksFile(path) => KeysCode::JwksFile { path: self.string(&path.value), file },
            KeySource::JwksUrl(url, f) => KeysCode::JwksUrl { url: self.string(&url.value), fetch: fetch(self, f) },
            KeySource::Discovery(url, f) => KeysCode::Discovery { url: self.string(&url.value), fetch: fetch(self, f) },
        }
    }

    fn string(&mut self, text: &str) -> StrId {
        if let Some(id) = self.string_ids.get(text) {
            return *id;
        }
        let id = self.strings.len() as StrId;
        self.strings.push(text.into());
        self.string_ids.insert(text.into(), id);
        id
    }

    fn number(&mut self, literal: &crate::ast::NumLit) -> u32 {
        let num = Number::from_literal(&literal.value, &literal.text);
        if let Some(i) = self.numbers.iter().position(|n| n == &num) {
            return i as u32;
        }
        self.numbers.push(num);
        (self.numbers.len() - 1) as u32
    }

    fn path_segments(&mut self, segments: Vec<PathSegment>) -> PathId {
        if let Some(id) = self.path_ids.get(&segments) {
            return *id;
        }
        let id = self.paths.len() as PathId;
        self.paths.push(segments.clone());
        self.path_ids.insert(segments, id);
        id
    }

    fn path_of(&mut self, keys: &[&str]) -> PathId {
        self.path_segments(keys.iter().map(|k| PathSegment::Key((*k).into())).collect())
    }

    fn path(&mut self, path: &ClaimPath) -> PathId {
        let segments = path
            .segments
            .iter()
            .map(|s| match s {
                Segment::Key(k) => PathSegment::Key(k.as_str().into()),
                Segment::Index(i) => PathSegment::Index(*i),
            })
            .collect();
        self.path_segments(segments)
    }

    fn constant(&mut self, scalar: &Scalar) -> Const {
        match scalar {
            Scalar::Str(s) => Const::Str(self.string(&s.value)),
            Scalar::Number(n) => Const::Num(self.number(n)),
            Scalar::Bool(b) => Const::Bool(b.value),
        }
    }

    fn set(&mut self, items: &[Scalar]) -> u32 {
        let mut set = ScalarSet::default();
        for item in items {
            match self.constant(item) {
                Const::Str(id) => set.strings.push(id),
                Const::Num(n) => set.numbers.push(n),
                Const::Bool(true) => set.has_true = true,
                Const::Bool(false) => set.has_false = true,
            }
        }
        set.strings.sort_by(|a, b| self.strings[*a as usize].cmp(&self.strings[*b as usize]));
        set.strings.dedup();
        set.numbers.dedup();
        self.sets.push(set);
        (self.sets.len() - 1) as u32
    }

    fn role(&mut self, role: &crate::model::Role, provider: &crate::model::Provider) -> RoleCode {
        // The provider's own conditions first, located in the provider's file, then the role's.
        let mut b = RoleBuilder { file: provider.file.0, checks: Vec::new(), code: Vec::new() };
        for condition in &provider.conditions {
            let check = self.condition(&mut b, condition);
            b.code.push(Instr::Require(check));
        }
        b.file = role.file.0;
        for condition in &role.conditions {
            let check = self.condition(&mut b, condition);
            b.code.push(Instr::Require(check));
        }
        let (audience, audience_loc) = match &role.audience {
            Audience::Any(span) => (None, self.loc(role.file.0, *span)),
            Audience::OneOf(list) => {
                let items: Vec<Scalar> = list
                    .iter()
                    .map(|t| Scalar::Str(crate::ast::StrLit { value: t.value.clone(), multiline: false, span: t.span }))
                    .collect();
                let span = list.first().map_or(role.span, |t| t.span);
                (Some(self.set(&items)), self.loc(role.file.0, span))
            }
        };
        let file = role.file.0;
        let grant = GrantCode {
            identity: role
                .identity
                .parts
                .iter()
                .map(|part| match part {
                    TemplatePart::Literal(text) => Part::Literal(self.string(text)),
                    TemplatePart::Claim(path) => Part::Claim(self.path(path)),
                })
                .collect(),
            identity_loc: self.loc(file, role.identity.span),
            user: role.user.as_ref().map(|p| (self.path(p), self.loc(file, p.span))),
            groups: role.groups.as_ref().map(|(p, optional)| (self.path(p), self.loc(file, p.span), *optional)),
            metadata: role
                .metadata
                .iter()
                .map(|m| (self.string(&m.name), self.path(&m.path), m.optional, self.loc(file, m.span)))
                .collect(),
            policies: role
                .policies
                .terms
                .iter()
                .map(|term| match term {
                    PolicyTerm::Name(t) => PolicyCode::Name(self.string(&t.value)),
                    PolicyTerm::Claim(p, optional) => {
                        PolicyCode::Claim(self.path(p), self.loc(file, p.span), *optional)
                    }
                })
                .collect(),
            token: role.token.clone(),
        };
        RoleCode {
            name: self.string(&role.name),
            loc: self.loc(file, role.span),
            provider: role.provider as u32,
            audience,
            audience_loc,
            code: b.code,
            checks: b.checks,
            grant,
            verbose_logging: role.verbose_logging,
        }
    }

    /// Emits the code of one condition (leaving its outcome in `r`) and returns its check id.
    fn condition(&mut self, b: &mut RoleBuilder, condition: &Condition) -> u32 {
        let id = b.checks.len() as u32;
        let path = condition_path(condition).map(|p| self.path(p));
        let text = self.string(&condition_text(condition));
        let message = condition.message.as_ref().map(|m| self.string(&m.value));
        b.checks.push(Check { text, path, loc: self.loc(b.file, condition.check_span()), message, cmp: None });
        match &condition.kind {
            ConditionKind::Compare(comparison) => {
                let path = self.path(&comparison.path);
                let op = match &comparison.op {
                    Op::Eq(s) => CmpOp::Eq(self.constant(s)),
                    Op::Ne(s) => CmpOp::Ne(self.constant(s)),
                    Op::Lt(n) => CmpOp::Lt(self.number(n)),
                    Op::Le(n) => CmpOp::Le(self.number(n)),
                    Op::Gt(n) => CmpOp::Gt(self.number(n)),
                    Op::Ge(n) => CmpOp::Ge(self.number(n)),
                    Op::In(list) => CmpOp::In(self.set(&list.items)),
                    Op::Glob(pattern) => {
                        let id = self.string(&pattern.value);
                        self.globs.push(id);
                        CmpOp::Glob((self.globs.len() - 1) as u32)
                    }
                    Op::Matches(pattern) => {
                        let id = self.string(&pattern.value);
                        self.regexes.push(id);
                        CmpOp::Matches((self.regexes.len() - 1) as u32)
                    }
                    Op::Contains(s) => CmpOp::Contains(self.constant(s)),
                    Op::ContainsAny(list) => CmpOp::ContainsAny(self.set(&list.items)),
                    Op::ContainsAll(list) => CmpOp::ContainsAll(self.set(&list.items)),
                    Op::ContainsGlob(pattern) => {
                        let id = self.string(&pattern.value);
                        self.globs.push(id);
                        CmpOp::ContainsGlob((self.globs.len() - 1) as u32)
                    }
                    Op::ContainsMatches(pattern) => {
                        let id = self.string(&pattern.value);
                        self.regexes.push(id);
                        CmpOp::ContainsMatches((self.regexes.len() - 1) as u32)
                    }
                    Op::Exists => CmpOp::Exists,
                    Op::Is(t) => CmpOp::Is(*t),
                    Op::Absent => CmpOp::Absent,
                };
                b.checks[id as usize].cmp = Some(Cmp { path, op, words: comparison.words });
                b.code.push(Instr::Test(id));
            }
            ConditionKind::Not(inner) => {
                b.code.push(Instr::Open(id));
                self.condition(b, inner);
                b.code.push(Instr::Not);
                b.code.push(Instr::Close);
            }
            ConditionKind::Group(group) => {
                b.code.push(Instr::Open(id));
                match group.kind {
                    GroupKind::Any => {
                        b.code.push(Instr::AnyStart);
                        let mut jumps = Vec::new();
                        for inner in &group.conditions {
                            self.condition(b, inner);
                            jumps.push(b.code.len());
                            b.code.push(Instr::AnyNext(0));
                        }
                        let end = b.code.len() as u32;
                        b.code.push(Instr::AnyEnd);
                        for at in jumps {
                            b.code[at] = Instr::AnyNext(end);
                        }
                    }
                    GroupKind::All => {
                        let mut jumps = Vec::new();
                        for (i, inner) in group.conditions.iter().enumerate() {
                            self.condition(b, inner);
                            if i + 1 < group.conditions.len() {
                                jumps.push(b.code.len());
                                b.code.push(Instr::AllNext(0));
                            }
                        }
                        let end = b.code.len() as u32;
                        for at in jumps {
                            b.code[at] = Instr::AllNext(end);
                        }
                    }
                }
                b.code.push(Instr::Close);
            }
        }
        id
    }
}

/// The path a condition reads: its own, or its operand's under `not`; none for groups.
fn condition_path(condition: &Condition) -> Option<&ClaimPath> {
    match &condition.kind {
        ConditionKind::Compare(c) => Some(&c.path),
        ConditionKind::Not(inner) => condition_path(inner),
        ConditionKind::Group(_) => None,
    }
}
