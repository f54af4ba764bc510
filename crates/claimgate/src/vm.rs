//! The evaluator: runs a compiled [`Program`] on a token payload.
//!
//! No I/O, no global state: a `Program` is shared by any number of threads, each with its own
//! [`Scratch`]. On the way to a decision nothing is allocated per condition (the grant and a
//! denial's explanation are the only allocations); the explain mode records every check.
//!
//! The VM follows the reference interpreter (`crate::reference`) step for step: the issuer, the
//! provider's time claims, the audience, the conditions in order, the grant. Automatic role
//! selection uses the issuer index to find the provider and, when not explaining, the audience
//! index to skip roles whose audience cannot match (they would be denied at their first check
//! anyway, so the first allowing role is the same).

use std::collections::HashMap;
use std::sync::Arc;

use claimgate_jose::KeySet;
use serde_json::Value;

use crate::decision::*;
use crate::payload::{self, Claims, PayloadLimits, Scratch, Val};
use crate::program::*;
use crate::source::{FileId, Span};

/// Nesting of `any` groups the VM tracks; the checker bounds nesting well below this.
const MAX_ANY_DEPTH: usize = 64;

/// Options of one evaluation: `Options::default()`, then the setters (`.explain(true)`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Record every check in [`Evaluation::trace`].
    pub explain: bool,
    pub limits: PayloadLimits,
    /// Most instructions executed for one decision, over every role tried: a bound on the work
    /// one token can cause, whatever the size of the policy set.
    pub max_steps: usize,
    /// Bounds on the token itself (size, header), for [`Program::decide_token`].
    pub token: claimgate_jose::Limits,
}

impl Options {
    /// Record every check in the evaluation's trace (slower; for tools and explanations).
    pub fn explain(mut self, explain: bool) -> Options {
        self.explain = explain;
        self
    }

    /// Bounds on the token's payload (size, depth, members).
    pub fn payload_limits(mut self, limits: PayloadLimits) -> Options {
        self.limits = limits;
        self
    }

    /// Most instructions executed for one decision, over every role tried.
    pub fn max_steps(mut self, max_steps: usize) -> Options {
        self.max_steps = max_steps;
        self
    }

    /// Bounds on the token itself (size, header).
    pub fn token_limits(mut self, limits: claimgate_jose::Limits) -> Options {
        self.token = limits;
        self
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            explain: false,
            limits: PayloadLimits::default(),
            max_steps: 1_000_000,
            token: claimgate_jose::Limits::DEFAULT,
        }
    }
}

impl Program {
    /// Decides on claims that are already trusted (JSON bytes): `role` names the role to log in
    /// as, or `None` selects the first role that allows.
    ///
    /// This checks no signature and binds no keys: it is for tests, tools and callers whose
    /// claims come from somewhere already authenticated. For a signed token use
    /// [`Program::decide_token`], which verifies it with the keys of the provider that decides
    /// it (verifying with a key set of your own and then calling `decide` would let one
    /// provider's key log in through another's roles).
    pub fn decide(&self, payload: &[u8], role: Option<&str>, now: i64, scratch: &mut Scratch) -> Decision {
        self.evaluate(payload, role, now, &Options::default(), scratch).decision
    }

    /// Like [`Program::decide`] (claims only, no signature), with the trace when
    /// `options.explain` is set.
    pub fn evaluate(
        &self,
        payload: &[u8],
        role: Option<&str>,
        now: i64,
        options: &Options,
        scratch: &mut Scratch,
    ) -> Evaluation {
        self.evaluate_with_header(payload, None, role, now, options, scratch)
    }

    fn evaluate_with_header(
        &self,
        payload: &[u8],
        header: Option<&claimgate_jose::Header>,
        role: Option<&str>,
        now: i64,
        options: &Options,
        scratch: &mut Scratch,
    ) -> Evaluation {
        match payload::parse(payload, self.table(), &options.limits, scratch) {
            Ok(claims) => self.run(&claims, header, None, role, now, options),
            Err(error) => Evaluation::denied(DenyCode::PayloadInvalid, error.to_string()),
        }
    }

    /// Decides on parsed claims. `verified_by` is the provider whose keys verified the token, when
    /// there is one: only that provider's roles may then decide.
    fn run(
        &self,
        claims: &Claims<'_>,
        header: Option<&claimgate_jose::Header>,
        verified_by: Option<u32>,
        role: Option<&str>,
        now: i64,
        options: &Options,
    ) -> Evaluation {
        let mut run = Run {
            program: self,
            claims,
            explain: options.explain,
            now,
            header,
            verified_by,
            budget: options.max_steps,
            steps: Vec::new(),
            trace: Vec::new(),
        };
        let decision = run.decide(role);
        Evaluation { decision, trace: run.trace }
    }

    /// Evaluates a request (as tests and tools have them) by way of its claims' JSON text: the
    /// text it was written in when there is one, so that numbers keep their exact value.
    pub fn evaluate_request(&self, request: &Request<'_>, options: &Options) -> Evaluation {
        let payload: std::borrow::Cow<'_, [u8]> = match request.claims_text {
            Some(text) => text.as_bytes().into(),
            None => serde_json::to_vec(request.claims).unwrap_or_default().into(),
        };
        let mut scratch = Scratch::default();
        self.evaluate_with_header(&payload, request.header, request.role, request.now, options, &mut scratch)
    }
}

struct Run<'a> {
    program: &'a Program,
    claims: &'a Claims<'a>,
    explain: bool,
    now: i64,
    /// The verified token's header, when deciding on a token: its algorithm and `typ` are
    /// checked against the provider.
    header: Option<&'a claimgate_jose::Header>,
    /// The provider whose keys verified the token, when deciding on a token.
    verified_by: Option<u32>,
    /// Instructions (and roles) left before the decision is cut off.
    budget: usize,
    /// Steps of the role being tried.
    steps: Vec<Step>,
    trace: Vec<RoleTrace>,
}

/// Denials travel boxed: the success path stays small and the box is only made when denying.
type Checked<T> = Result<T, Box<Denial>>;

impl<'a> Run<'a> {
    fn decide(&mut self, role: Option<&str>) -> Decision {
        let program = self.program;
        if let Some(name) = role {
            let Some(index) = program.role_index(name) else {
                return Decision::Deny(Denial {
                    code: DenyCode::UnknownRole,
                    role: None,
                    message: "the requested role does not exist".to_string(),
                    condition: None,
                    actual: None,
                });
            };
            let role = &program.roles[index as usize];
            let decision = self.try_role(role, true);
            return decision;
        }
        let issuer = match self.claims.get(program.well_known.iss) {
            Some(Val::Str(s)) => Some(self.claims.str(s)),
            _ => None,
        };
        let Some(provider) = issuer.and_then(|i| program.runtime.issuers.get(i).copied()) else {
            return Decision::Deny(Denial {
                code: DenyCode::UnknownIssuer,
                role: None,
                message: "the token's issuer is not trusted".to_string(),
                condition: None,
                actual: self.claims.json(program.well_known.iss),
            });
        };
        let candidates = &program.runtime.candidates[provider as usize];
        if candidates.all.is_empty() {
            return Decision::Deny(Denial::no_role_matched());
        }
        let single = candidates.all.len() == 1;
        if self.explain || single {
            // Every role in order, as the reference interpreter tries them.
            for &index in &candidates.all {
                match self.try_role(&program.roles[index as usize], true) {
                    Decision::Allow(grant) => return Decision::Allow(grant),
                    // The provider's own checks fail every role alike: no role is named, with
                    // one candidate as with many (docs/language.md, automatic selection).
                    Decision::Deny(mut denial) if denial.code.is_provider_level() => {
                        denial.role = None;
                        return Decision::Deny(denial);
                    }
                    Decision::Deny(denial) if single => return Decision::Deny(denial),
                    Decision::Deny(_) => {}
                }
            }
            return Decision::Deny(Denial::no_role_matched());
        }
        // Provider checks once, then only the roles whose audience can match, in order.
        let first = &program.roles[candidates.all[0] as usize];
        if let Err(mut denial) = self.provider_checks(first) {
            denial.role = None;
            return Decision::Deny(*denial);
        }
        let lists = self.audience_lists(candidates);
        let mut cursors = [0usize; 4];
        loop {
            // Merge the (sorted) candidate lists: the next role in policy-set order.
            let mut next: Option<u32> = None;
            for (list, cursor) in lists.iter().zip(cursors.iter()) {
                if let Some(&index) = list.get(*cursor)
                    && next.is_none_or(|n| index < n)
                {
                    next = Some(index);
                }
            }
            let Some(index) = next else { break };
            for (list, cursor) in lists.iter().zip(cursors.iter_mut()) {
                if list.get(*cursor) == Some(&index) {
                    *cursor += 1;
                }
            }
            match self.try_role(&program.roles[index as usize], false) {
                Decision::Allow(grant) => return Decision::Allow(grant),
                Decision::Deny(mut denial) if denial.code == DenyCode::LimitExceeded => {
                    denial.role = None;
                    return Decision::Deny(denial);
                }
                Decision::Deny(_) => {}
            }
        }
        Decision::Deny(Denial::no_role_matched())
    }

    /// The candidate lists for the token's audiences: the `audience = any` roles and the roles
    /// bound to each `aud` value (at most three values are indexed; a token with more audiences
    /// falls back to every role of the provider).
    fn audience_lists(&self, candidates: &'a crate::program::Candidates) -> [&'a [u32]; 4] {
        let empty: &[u32] = &[];
        let mut lists = [candidates.any_audience.as_slice(), empty, empty, empty];
        let lookup = |text: &str| candidates.by_audience.get(text).map_or(empty, Vec::as_slice);
        match self.claims.get(self.program.well_known.aud) {
            Some(Val::Str(s)) => lists[1] = lookup(self.claims.str(s)),
            Some(Val::Array { start, len }) if len <= 3 => {
                for (slot, value) in self.claims.elements(start, len).iter().enumerate() {
                    if let Val::Str(s) = value {
                        lists[slot + 1] = lookup(self.claims.str(*s));
                    }
                }
            }
            Some(Val::Array { .. }) => return [candidates.all.as_slice(), empty, empty, empty],
            _ => {}
        }
        lists
    }

    /// One role, start to finish. `provider` says whether to run the provider's checks (they
    /// have already passed when automatic selection skips them).
    fn try_role(&mut self, role: &RoleCode, provider: bool) -> Decision {
        self.steps.clear();
        let result = (|| {
            // Defence in depth: `decide_token` chose the provider from the same `iss`, so this
            // holds; a role of another provider must never decide on a token it did not verify.
            if self.verified_by.is_some_and(|p| p != role.provider) {
                return Err(Box::new(Denial::simple(
                    DenyCode::IssuerMismatch,
                    "the token was verified with the keys of another provider",
                )));
            }
            if provider {
                self.provider_checks(role)?;
            }
            self.audience(role)?;
            self.conditions(role)?;
            self.grant(role)
        })();
        if self.explain {
            self.trace.push(RoleTrace {
                role: self.program.string(role.name).to_string(),
                steps: std::mem::take(&mut self.steps),
                allowed: result.is_ok(),
            });
        }
        match result {
            Ok(grant) => Decision::Allow(grant),
            Err(mut denial) => {
                denial.role = Some(self.program.string(role.name).to_string());
                Decision::Deny(*denial)
            }
        }
    }

    fn deny(&self, code: DenyCode, message: String, check: FailedCheck, actual: Option<Value>) -> Box<Denial> {
        Box::new(Denial { code, role: None, message, condition: Some(check), actual })
    }

    fn failed_check(&self, loc: Loc, text: String, path: Option<String>, message: Option<String>) -> FailedCheck {
        FailedCheck { text, path, file: FileId(loc.file), span: Span { start: loc.start, end: loc.end }, message }
    }

    fn step(&mut self, check: impl FnOnce(&Self) -> FailedCheck, outcome: Outcome, path: Option<PathId>, depth: usize) {
        if self.explain {
            let check = check(self);
            let seen = path.and_then(|p| self.claims.json(p));
            self.steps.push(Step { check, outcome, seen, depth });
        }
    }

    fn provider_check(&self, provider: &ProviderCode, claim: &str, text: String) -> FailedCheck {
        let path = format!("claims.{claim}");
        self.failed_check(provider.loc, text, Some(path), None)
    }

    fn provider_checks(&mut self, role: &RoleCode) -> Checked<()> {
        let program = self.program;
        let provider = &program.providers[role.provider as usize];
        let role_name = program.string(role.name);
        // The issuer.
        let iss_path = program.well_known.iss;
        let iss = self.claims.get(iss_path);
        let accepted = match iss {
            Some(Val::Str(s)) => {
                let iss = self.claims.str(s);
                provider.issuers.iter().any(|i| program.string(*i) == iss)
            }
            _ => false,
        };
        let outcome = match (accepted, iss) {
            (true, _) => Outcome::Pass,
            (false, None | Some(Val::Null)) => Outcome::Missing,
            (false, _) => Outcome::Fail,
        };
        self.step(|r| r.provider_check(provider, "iss", "claims.iss".into()), outcome, Some(iss_path), 0);
        if !accepted {
            let check = self.provider_check(provider, "iss", "claims.iss".into());
            let message = format!("the token's issuer is not accepted by role `{role_name}`");
            return Err(self.deny(DenyCode::IssuerMismatch, message, check, self.claims.json(iss_path)));
        }
        // The token's algorithm and type, when there is a token.
        if let Some(header) = self.header {
            let algorithms = claimgate_jose::AlgorithmSet::from_bits(provider.algorithms);
            let typ = provider.typ.map(|t| program.string(t));
            if let Some(refusal) = header_refusal(program.string(provider.name), algorithms, typ, header) {
                let check = self.failed_check(provider.loc, refusal.text, None, None);
                return Err(self.deny(refusal.code, refusal.message, check, refusal.actual));
            }
        }
        // The time claims.
        let w = program.well_known;
        let exp = self.time_claim(provider, "exp", w.exp, provider.require_exp || provider.max_lifetime.is_some())?;
        let nbf = self.time_claim(provider, "nbf", w.nbf, provider.require_nbf)?;
        let iat_required = provider.require_iat || provider.max_token_age.is_some() || provider.max_lifetime.is_some();
        let iat = self.time_claim(provider, "iat", w.iat, iat_required)?;
        let now = self.now as f64;
        let skew = provider.clock_skew as f64;
        let checks = [
            (
                "exp",
                w.exp,
                exp.is_some(),
                exp.is_some_and(|exp| now - skew >= exp),
                DenyCode::TokenExpired,
                "the token has expired",
            ),
            (
                "nbf",
                w.nbf,
                nbf.is_some(),
                nbf.is_some_and(|nbf| now + skew < nbf),
                DenyCode::TokenNotYetValid,
                "the token is not valid yet",
            ),
            (
                "iat",
                w.iat,
                iat.is_some(),
                iat.is_some_and(|iat| now + skew < iat),
                DenyCode::IssuedInFuture,
                "the token was issued in the future",
            ),
            (
                "iat",
                w.iat,
                iat.is_some() && provider.max_token_age.is_some(),
                matches!((iat, provider.max_token_age), (Some(iat), Some(age)) if now - skew > iat + age as f64),
                DenyCode::TokenTooOld,
                "the token is too old",
            ),
            (
                "exp",
                w.exp,
                exp.is_some() && iat.is_some() && provider.max_lifetime.is_some(),
                matches!((exp, iat, provider.max_lifetime), (Some(exp), Some(iat), Some(life)) if exp - iat > life as f64),
                DenyCode::LifetimeTooLong,
                "the token's lifetime is longer than allowed",
            ),
        ];
        for (i, (name, path, applies, failed, code, message)) in checks.into_iter().enumerate() {
            if !applies {
                continue;
            }
            let text = provider.time_texts[i];
            let outcome = if failed { Outcome::Fail } else { Outcome::Pass };
            self.step(|r| r.provider_check(provider, name, r.program.string(text).to_string()), outcome, Some(path), 0);
            if failed {
                let check = self.provider_check(provider, name, program.string(text).to_string());
                return Err(self.deny(code, message.to_string(), check, self.claims.json(path)));
            }
        }
        // The audience's form (RFC 7519 4.1.3): a string or a list of strings, for every role.
        let aud_path = w.aud;
        let valid = match self.claims.get(aud_path) {
            // Absent is no audience; `null` is not a form RFC 7519 gives it (as for time claims).
            None | Some(Val::Str(_)) => true,
            Some(Val::Array { start, len }) => {
                self.claims.elements(start, len).iter().all(|v| matches!(v, Val::Str(_)))
            }
            Some(_) => false,
        };
        if !valid {
            let text = AUD_FORM_TEXT.to_string();
            self.step(|r| r.provider_check(provider, "aud", text.clone()), Outcome::TypeMismatch, Some(aud_path), 0);
            let check = self.provider_check(provider, "aud", text);
            let message = "the token's `aud` is neither a string nor a list of strings".to_string();
            return Err(self.deny(DenyCode::AudienceInvalid, message, check, self.claims.json(aud_path)));
        }
        Ok(())
    }

    fn time_claim(
        &mut self,
        provider: &ProviderCode,
        name: &str,
        path: PathId,
        required: bool,
    ) -> Checked<Option<f64>> {
        match self.claims.get(path) {
            None if required => {
                self.step(
                    |r| r.provider_check(provider, name, format!("claims.{name}")),
                    Outcome::Missing,
                    Some(path),
                    0,
                );
                let check = self.provider_check(provider, name, format!("claims.{name}"));
                Err(self.deny(DenyCode::TimeClaimMissing, format!("the token has no `{name}` claim"), check, None))
            }
            // `null` is present and no NumericDate (RFC 7519 2): refused below, never read as
            // absent, so that `"nbf": null` cannot skip the check a real `nbf` would face.
            None => Ok(None),
            // The payload parser refuses numbers beyond f64's range, so this always holds; an
            // out-of-range time would otherwise be refused below, never read as NaN.
            Some(Val::Num(n)) if crate::number::to_f64(self.claims.number(n)).is_some() => {
                Ok(crate::number::to_f64(self.claims.number(n)))
            }
            Some(_) => {
                self.step(|r| r.provider_check(provider, name, format!("claims.{name}")), Outcome::Fail, Some(path), 0);
                let check = self.provider_check(provider, name, format!("claims.{name}"));
                let message = format!("the token's `{name}` claim is not a number");
                Err(self.deny(DenyCode::TimeClaimInvalid, message, check, self.claims.json(path)))
            }
        }
    }

    fn audience(&mut self, role: &RoleCode) -> Checked<()> {
        let program = self.program;
        let path = program.well_known.aud;
        let aud = self.claims.get(path);
        let accepted = match role.audience {
            None => true,
            Some(set) => {
                let set = &program.sets[set as usize];
                match aud {
                    Some(Val::Str(s)) => self.set_has_str(set, self.claims.str(s)),
                    Some(Val::Array { start, len }) => self
                        .claims
                        .elements(start, len)
                        .iter()
                        .any(|v| matches!(v, Val::Str(s) if self.set_has_str(set, self.claims.str(*s)))),
                    _ => false,
                }
            }
        };
        let outcome = match (accepted, aud) {
            (true, _) => Outcome::Pass,
            (false, None | Some(Val::Null)) => Outcome::Missing,
            (false, _) => Outcome::Fail,
        };
        let check = |r: &Self| r.failed_check(role.audience_loc, "claims.aud".into(), Some("claims.aud".into()), None);
        self.step(check, outcome, Some(path), 0);
        if accepted {
            return Ok(());
        }
        let message = format!("the token's audience is not accepted by role `{}`", program.string(role.name));
        Err(self.deny(DenyCode::AudienceMismatch, message, check(self), self.claims.json(path)))
    }

    fn check_info(&self, role: &RoleCode, n: u32) -> FailedCheck {
        let check = &role.checks[n as usize];
        let program = self.program;
        self.failed_check(
            check.loc,
            program.string(check.text).to_string(),
            check.path.map(|p| program.path_text(p)),
            check.message.map(|m| program.string(m).to_string()),
        )
    }

    /// Runs the role's code.
    fn conditions(&mut self, role: &RoleCode) -> Checked<()> {
        let code = &role.code;
        let mut r = Outcome::Pass;
        let mut acc = [Outcome::Missing; MAX_ANY_DEPTH];
        let mut sp = 0usize;
        let mut depth = 0usize;
        let mut open: [usize; MAX_ANY_DEPTH] = [0; MAX_ANY_DEPTH];
        let mut opened = 0usize;
        let mut pc = 0usize;
        // Each role tried costs at least one step, so that scanning roles is bounded too.
        self.budget = self.budget.saturating_sub(1);
        while let Some(instr) = code.get(pc) {
            if self.budget == 0 {
                return Err(self.limit_denial());
            }
            self.budget -= 1;
            match *instr {
                Instr::Test(n) => {
                    r = self.test(role, n);
                    let path = role.checks[n as usize].path;
                    self.step(|s| s.check_info(role, n), r, path, depth);
                }
                Instr::Open(n) => {
                    if self.explain {
                        let path = role.checks[n as usize].path;
                        self.step(|s| s.check_info(role, n), Outcome::Fail, path, depth);
                        if opened < MAX_ANY_DEPTH {
                            open[opened] = self.steps.len() - 1;
                            opened += 1;
                        }
                    }
                    depth += 1;
                }
                Instr::Close => {
                    depth = depth.saturating_sub(1);
                    if self.explain && opened > 0 {
                        opened -= 1;
                        self.steps[open[opened]].outcome = r;
                    }
                }
                Instr::Not => r = r.negate(),
                Instr::AnyStart => {
                    if sp == MAX_ANY_DEPTH {
                        r = Outcome::Fail;
                        break;
                    }
                    acc[sp] = Outcome::Fail;
                    sp += 1;
                }
                Instr::AnyNext(target) => {
                    let Some(top) = sp.checked_sub(1) else {
                        r = Outcome::Fail;
                        break;
                    };
                    match r {
                        Outcome::Pass => {
                            acc[top] = Outcome::Pass;
                            pc = target as usize;
                            continue;
                        }
                        // The first unknown child (missing claim, wrong type) is the group's
                        // outcome unless a later child passes.
                        unknown if unknown.is_unknown() && acc[top] == Outcome::Fail => acc[top] = unknown,
                        _ => {}
                    }
                }
                Instr::AnyEnd => {
                    let Some(top) = sp.checked_sub(1) else {
                        r = Outcome::Fail;
                        break;
                    };
                    sp = top;
                    r = acc[top];
                }
                Instr::AllNext(target) => {
                    if r != Outcome::Pass {
                        pc = target as usize;
                        continue;
                    }
                }
                Instr::Require(n) => {
                    if r != Outcome::Pass {
                        return Err(self.condition_denial(role, n, r));
                    }
                }
            }
            pc += 1;
        }
        if r == Outcome::Pass { Ok(()) } else { Err(self.condition_denial(role, 0, r)) }
    }

    fn limit_denial(&self) -> Box<Denial> {
        Box::new(Denial {
            code: DenyCode::LimitExceeded,
            role: None,
            message: "the decision needed more evaluation steps than allowed".to_string(),
            condition: None,
            actual: None,
        })
    }

    fn condition_denial(&self, role: &RoleCode, n: u32, outcome: Outcome) -> Box<Denial> {
        let check = self.check_info(role, n);
        let path = role.checks.get(n as usize).and_then(|c| c.path);
        let actual = path.and_then(|p| self.claims.json(p));
        let code = outcome.denial_code();
        let role_name = self.program.string(role.name);
        let expected = role.checks.get(n as usize).and_then(|c| c.cmp).map(|c| match c.words {
            true => "a string of words or a list",
            false => c.op.expected_type(self.program),
        });
        let message = condition_message(&check, code, expected, role_name);
        self.deny(code, message, check, actual)
    }

    /// One comparison. A missing or null claim is `Missing` for everything but `exists` and
    /// `absent`.
    fn test(&self, role: &RoleCode, n: u32) -> Outcome {
        let Some(cmp) = role.checks.get(n as usize).and_then(|c| c.cmp) else { return Outcome::Fail };
        let value = self.claims.get(cmp.path);
        let value = match (cmp.op, value) {
            (CmpOp::Exists, v) => return pass(v.is_some_and(|v| v != Val::Null)),
            (CmpOp::Absent, v) => return pass(v.is_none_or(|v| v == Val::Null)),
            (_, None | Some(Val::Null)) => return Outcome::Missing,
            (_, Some(v)) => v,
        };
        let program = self.program;
        if cmp.words {
            return self.test_words(cmp, value);
        }
        if !cmp.op.fits(value, program) {
            return Outcome::TypeMismatch;
        }
        self.test_plain(cmp, value)
    }

    /// A comparison on a present value of a fitting type.
    fn test_plain(&self, cmp: Cmp, value: Val) -> Outcome {
        let program = self.program;
        let order = |n: u32| match value {
            Val::Num(v) => Some(crate::number::compare(self.claims.number(v), program.numbers[n as usize].as_ref())),
            _ => None,
        };
        pass(match cmp.op {
            CmpOp::Eq(c) => self.const_eq(value, c),
            CmpOp::Ne(c) => !self.const_eq(value, c),
            CmpOp::Lt(n) => order(n).is_some_and(|o| o.is_lt()),
            CmpOp::Le(n) => order(n).is_some_and(|o| o.is_le()),
            CmpOp::Gt(n) => order(n).is_some_and(|o| o.is_gt()),
            CmpOp::Ge(n) => order(n).is_some_and(|o| o.is_ge()),
            CmpOp::In(set) => self.set_has(&program.sets[set as usize], value),
            CmpOp::Glob(g) => {
                matches!(value, Val::Str(s) if program.runtime.globs[g as usize].matches(self.claims.str(s)))
            }
            CmpOp::Matches(m) => {
                matches!(value, Val::Str(s) if program.runtime.regexes[m as usize].is_match(self.claims.str(s)))
            }
            CmpOp::Contains(c) => self.elements(value).is_some_and(|items| items.iter().any(|v| self.const_eq(*v, c))),
            CmpOp::ContainsAny(set) => {
                let set = &program.sets[set as usize];
                self.elements(value).is_some_and(|items| items.iter().any(|v| self.set_has(set, *v)))
            }
            CmpOp::ContainsGlob(g) => self.elements(value).is_some_and(|items| {
                let glob = &program.runtime.globs[g as usize];
                items.iter().any(|v| matches!(v, Val::Str(s) if glob.matches(self.claims.str(*s))))
            }),
            CmpOp::ContainsMatches(m) => self.elements(value).is_some_and(|items| {
                let regex = &program.runtime.regexes[m as usize];
                items.iter().any(|v| matches!(v, Val::Str(s) if regex.is_match(self.claims.str(*s))))
            }),
            CmpOp::ContainsAll(set) => {
                let set = &program.sets[set as usize];
                self.elements(value).is_some_and(|items| {
                    set.strings.iter().all(|s| items.iter().any(|v| self.const_eq(*v, Const::Str(*s))))
                        && set.numbers.iter().all(|n| items.iter().any(|v| self.const_eq(*v, Const::Num(*n))))
                        && (!set.has_true || items.contains(&Val::Bool(true)))
                        && (!set.has_false || items.contains(&Val::Bool(false)))
                })
            }
            CmpOp::Is(t) => match t {
                crate::ast::JsonType::String => matches!(value, Val::Str(_)),
                crate::ast::JsonType::Number => matches!(value, Val::Num(_)),
                crate::ast::JsonType::Bool => matches!(value, Val::Bool(_)),
                crate::ast::JsonType::List => matches!(value, Val::Array { .. }),
                crate::ast::JsonType::Object => matches!(value, Val::Object),
            },
            CmpOp::Exists | CmpOp::Absent => unreachable!("answered above"),
        })
    }

    /// `words contains ...`: a string is its words (split at spaces, RFC 6749 3.3), a list its
    /// elements; any other type is a type mismatch. Words are strings, so only string literals
    /// can be among them.
    fn test_words(&self, cmp: Cmp, value: Val) -> Outcome {
        let program = self.program;
        let text = match value {
            Val::Str(s) => self.claims.str(s),
            Val::Array { .. } => {
                let plain = Cmp { words: false, ..cmp };
                return if plain.op.fits(value, program) {
                    self.test_plain(plain, value)
                } else {
                    Outcome::TypeMismatch
                };
            }
            _ => return Outcome::TypeMismatch,
        };
        let mut words = text.split(' ').filter(|w| !w.is_empty());
        // Empty words do not exist: `""` is never among them.
        let has = |word: &str| !word.is_empty() && text.split(' ').any(|w| w == word);
        pass(match cmp.op {
            CmpOp::Contains(Const::Str(id)) => has(program.string(id)),
            CmpOp::ContainsAny(set) => words.any(|w| self.set_has_str(&program.sets[set as usize], w)),
            CmpOp::ContainsAll(set) => {
                let set = &program.sets[set as usize];
                set.numbers.is_empty()
                    && !set.has_true
                    && !set.has_false
                    && set.strings.iter().all(|s| has(program.string(*s)))
            }
            CmpOp::ContainsGlob(g) => words.any(|w| program.runtime.globs[g as usize].matches(w)),
            CmpOp::ContainsMatches(m) => words.any(|w| program.runtime.regexes[m as usize].is_match(w)),
            _ => false,
        })
    }

    fn elements(&self, value: Val) -> Option<&'a [Val]> {
        match value {
            Val::Array { start, len } => Some(self.claims.elements(start, len)),
            _ => None,
        }
    }

    /// Equality without coercion.
    fn const_eq(&self, value: Val, c: Const) -> bool {
        match (value, c) {
            (Val::Str(s), Const::Str(id)) => self.claims.str(s) == self.program.string(id),
            (Val::Num(n), Const::Num(id)) => {
                crate::number::equal(self.claims.number(n), self.program.numbers[id as usize].as_ref())
            }
            (Val::Bool(b), Const::Bool(c)) => b == c,
            _ => false,
        }
    }

    fn set_has_str(&self, set: &ScalarSet, text: &str) -> bool {
        set.strings.binary_search_by(|id| self.program.string(*id).cmp(text)).is_ok()
    }

    fn set_has(&self, set: &ScalarSet, value: Val) -> bool {
        match value {
            Val::Str(s) => self.set_has_str(set, self.claims.str(s)),
            Val::Num(n) => set
                .numbers
                .iter()
                .any(|id| crate::number::equal(self.claims.number(n), self.program.numbers[*id as usize].as_ref())),
            Val::Bool(true) => set.has_true,
            Val::Bool(false) => set.has_false,
            _ => false,
        }
    }

    fn grant(&mut self, role: &RoleCode) -> Checked<Grant> {
        let program = self.program;
        let g = &role.grant;
        let mut identity = String::new();
        for part in &g.identity {
            match part {
                Part::Literal(s) => identity.push_str(program.string(*s)),
                Part::Claim(path) => match self.claims.get(*path) {
                    Some(Val::Str(s)) => identity.push_str(self.claims.str(s)),
                    _ => {
                        return Err(self.unavailable(
                            role,
                            DenyCode::IdentityUnavailable,
                            "identity",
                            *path,
                            g.identity_loc,
                        ));
                    }
                },
            }
        }
        if identity.is_empty() {
            let check = self.failed_check(g.identity_loc, "identity".to_string(), None, None);
            let message = "the identity built from the token is empty".to_string();
            return Err(self.deny(DenyCode::IdentityUnavailable, message, check, None));
        }
        let user = match g.user {
            None => None,
            Some((path, loc)) => match self.claims.get(path) {
                Some(Val::Str(s)) => Some(self.claims.str(s).to_string()),
                _ => return Err(self.unavailable(role, DenyCode::IdentityUnavailable, "user", path, loc)),
            },
        };
        // A list of strings, or one string (as Vault accepts); missing only when optional.
        let groups = match g.groups {
            None => Vec::new(),
            Some((path, loc, optional)) => match self.claims.get(path) {
                None | Some(Val::Null) if optional => Vec::new(),
                Some(Val::Str(s)) => vec![self.claims.str(s).to_string()],
                _ => match self.string_list(path) {
                    Some(groups) => groups,
                    None => return Err(self.unavailable(role, DenyCode::IdentityUnavailable, "groups", path, loc)),
                },
            },
        };
        let mut metadata = Vec::with_capacity(g.metadata.len());
        for (name, path, optional, loc) in &g.metadata {
            match self.claims.get(*path) {
                None | Some(Val::Null) if *optional => {}
                Some(Val::Str(s)) => metadata.push((program.string(*name).to_string(), self.claims.str(s).to_string())),
                Some(Val::Num(n)) => {
                    metadata.push((program.string(*name).to_string(), crate::number::to_text(self.claims.number(n))))
                }
                Some(Val::Bool(b)) => metadata.push((program.string(*name).to_string(), b.to_string())),
                _ => {
                    let what = format!("metadata `{}`", program.string(*name));
                    return Err(self.unavailable(role, DenyCode::MappingUnavailable, &what, *path, *loc));
                }
            }
        }
        let mut policies: Vec<String> = Vec::with_capacity(g.policies.len());
        // Empty names are dropped, as Vault drops them.
        let add = |policies: &mut Vec<String>, name: &str| {
            if !name.is_empty() && !policies.iter().any(|p| p == name) {
                policies.push(name.to_string());
            }
        };
        for term in &g.policies {
            let (path, loc, optional) = match term {
                PolicyCode::Name(id) => {
                    add(&mut policies, program.string(*id));
                    continue;
                }
                PolicyCode::Claim(path, loc, optional) => (path, loc, optional),
            };
            match self.claims.get(*path) {
                None | Some(Val::Null) if *optional => {}
                Some(Val::Str(s)) => add(&mut policies, self.claims.str(s)),
                _ => match self.string_list(*path) {
                    Some(names) => names.iter().for_each(|n| add(&mut policies, n)),
                    None => return Err(self.unavailable(role, DenyCode::MappingUnavailable, "policies", *path, *loc)),
                },
            }
        }
        Ok(Grant {
            role: program.string(role.name).to_string(),
            identity,
            user,
            groups,
            metadata,
            policies,
            token: g.token.clone(),
        })
    }

    fn string_list(&self, path: PathId) -> Option<Vec<String>> {
        match self.claims.get(path)? {
            Val::Array { start, len } => self
                .claims
                .elements(start, len)
                .iter()
                .map(|v| match v {
                    Val::Str(s) => Some(self.claims.str(*s).to_string()),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    fn unavailable(&self, _role: &RoleCode, code: DenyCode, what: &str, path: PathId, loc: Loc) -> Box<Denial> {
        let path_text = self.program.path_text(path);
        let kind =
            if code == DenyCode::MappingUnavailable && what != "policies" { "a scalar" } else { "of the right type" };
        let value = self.claims.json(path);
        let message = match &value {
            None | Some(Value::Null) => format!("the token has no `{path_text}` claim, needed for the {what}"),
            Some(_) => format!("the token's `{path_text}` is not {kind}, as the {what} needs"),
        };
        let check = self.failed_check(loc, path_text.clone(), Some(path_text), None);
        self.deny(code, message, check, value)
    }
}

fn pass(holds: bool) -> Outcome {
    if holds { Outcome::Pass } else { Outcome::Fail }
}

/// The text of the audience-form check, in traces and denials.
pub(crate) const AUD_FORM_TEXT: &str = "claims.aud is a string or a list of strings";

/// The message of a denial by a role condition; shared with the reference interpreter.
pub(crate) fn condition_message(
    check: &FailedCheck,
    code: DenyCode,
    expected: Option<&'static str>,
    role_name: &str,
) -> String {
    match (&check.message, &check.path) {
        (Some(message), _) => message.clone(),
        (None, Some(path)) if code == DenyCode::ClaimMissing => format!("the token has no `{path}` claim"),
        (None, Some(path)) if code == DenyCode::ClaimTypeMismatch => match expected {
            Some(expected) => format!("the token's `{path}` is not {expected}, as the condition needs"),
            None => format!("the token's `{path}` has the wrong type for the condition"),
        },
        (None, Some(path)) => format!("the token's `{path}` does not satisfy role `{role_name}`"),
        (None, None) => format!("the token does not satisfy role `{role_name}`"),
    }
}

impl CmpOp {
    /// Whether a present, non-null value has a JSON type the operator can compare: the type of
    /// the literal for `==`/`!=`, one of the list's types for `in`, a number for `<` and
    /// friends, a string for `glob`/`matches`, a list for `contains`. Anything else is a type
    /// mismatch: neither true nor false.
    fn fits(self, value: Val, program: &Program) -> bool {
        let scalar_of = |c: Const| {
            matches!(
                (c, value),
                (Const::Str(_), Val::Str(_)) | (Const::Num(_), Val::Num(_)) | (Const::Bool(_), Val::Bool(_))
            )
        };
        match self {
            CmpOp::Eq(c) | CmpOp::Ne(c) => scalar_of(c),
            CmpOp::Lt(_) | CmpOp::Le(_) | CmpOp::Gt(_) | CmpOp::Ge(_) => matches!(value, Val::Num(_)),
            CmpOp::In(set) => {
                let set = &program.sets[set as usize];
                match value {
                    Val::Str(_) => !set.strings.is_empty(),
                    Val::Num(_) => !set.numbers.is_empty(),
                    Val::Bool(_) => set.has_true || set.has_false,
                    _ => false,
                }
            }
            CmpOp::Glob(_) | CmpOp::Matches(_) => matches!(value, Val::Str(_)),
            CmpOp::Contains(_)
            | CmpOp::ContainsAny(_)
            | CmpOp::ContainsAll(_)
            | CmpOp::ContainsGlob(_)
            | CmpOp::ContainsMatches(_) => {
                matches!(value, Val::Array { .. })
            }
            CmpOp::Exists | CmpOp::Absent | CmpOp::Is(_) => true,
        }
    }

    /// What the operator needs, for denial messages: "a string", "a number", ...
    pub(crate) fn expected_type(self, program: &Program) -> &'static str {
        let of = |c: Const| match c {
            Const::Str(_) => "a string",
            Const::Num(_) => "a number",
            Const::Bool(_) => "a boolean",
        };
        match self {
            CmpOp::Eq(c) | CmpOp::Ne(c) => of(c),
            CmpOp::Lt(_) | CmpOp::Le(_) | CmpOp::Gt(_) | CmpOp::Ge(_) => "a number",
            CmpOp::In(set) => {
                let set = &program.sets[set as usize];
                let kinds = [!set.strings.is_empty(), !set.numbers.is_empty(), set.has_true || set.has_false];
                match kinds {
                    [true, false, false] => "a string",
                    [false, true, false] => "a number",
                    [false, false, true] => "a boolean",
                    _ => "a scalar of one of the list's types",
                }
            }
            CmpOp::Glob(_) | CmpOp::Matches(_) => "a string",
            CmpOp::Contains(_)
            | CmpOp::ContainsAny(_)
            | CmpOp::ContainsAll(_)
            | CmpOp::ContainsGlob(_)
            | CmpOp::ContainsMatches(_) => "a list",
            CmpOp::Exists | CmpOp::Absent | CmpOp::Is(_) => "any value",
        }
    }
}

/// Why a provider refuses a token's header: its `alg` is not one of the provider's algorithms,
/// or its `typ` is not the provider's.
pub(crate) struct HeaderRefusal {
    pub(crate) code: DenyCode,
    /// The failing check's text.
    pub(crate) text: String,
    pub(crate) message: String,
    /// The header's value.
    pub(crate) actual: Option<Value>,
}

/// The provider's verdict on a token's header, worded once for the VM and the reference
/// interpreter: `None` when its `alg` and `typ` are accepted.
pub(crate) fn header_refusal(
    provider: &str,
    algorithms: claimgate_jose::AlgorithmSet,
    typ: Option<&str>,
    header: &claimgate_jose::Header,
) -> Option<HeaderRefusal> {
    if !algorithms.contains(header.alg) {
        return Some(HeaderRefusal {
            code: DenyCode::AlgorithmNotAllowed,
            text: format!("alg in the algorithms of provider `{provider}`"),
            message: format!("the token's algorithm {} is not allowed for its issuer", header.alg.name()),
            actual: Some(Value::from(header.alg.name())),
        });
    }
    let expected = typ?;
    if header.typ.as_deref().is_some_and(|typ| claimgate_jose::typ_matches(typ, expected)) {
        return None;
    }
    Some(HeaderRefusal {
        code: DenyCode::TypMismatch,
        text: format!("typ == {expected:?}"),
        message: format!("the token's `typ` header is not `{expected}`"),
        actual: header.typ.clone().map(Value::from),
    })
}

/// Keys of the providers whose keys are not written inside the policy (`jwks_file`, `jwks_url`,
/// `discovery_url`), as the caller has loaded them: the engine's caches, a CLI's files.
///
/// [`Program::decide_token`] asks for the keys of exactly one provider, the one that the token's
/// issuer selects; keys given for another provider never verify it.
pub trait KeyLookup {
    /// The current keys of the provider named `provider`, or `None` when they are not loaded.
    fn keys(&self, provider: &str) -> Option<Arc<KeySet>>;
}

/// Keys by provider name: the simplest [`KeyLookup`]. Keys given here take the place of the
/// provider's own key source, inline keys included.
#[derive(Clone, Debug, Default)]
pub struct ProviderKeys {
    keys: HashMap<String, Arc<KeySet>>,
}

impl ProviderKeys {
    /// No keys: only providers with keys inside the policy can verify tokens.
    pub fn new() -> ProviderKeys {
        ProviderKeys::default()
    }

    /// Sets the keys of one provider, returning those it had.
    pub fn insert(&mut self, provider: impl Into<String>, keys: impl Into<Arc<KeySet>>) -> Option<Arc<KeySet>> {
        self.keys.insert(provider.into(), keys.into())
    }

    /// The keys given for `provider`.
    pub fn get(&self, provider: &str) -> Option<&Arc<KeySet>> {
        self.keys.get(provider)
    }
}

impl KeyLookup for ProviderKeys {
    fn keys(&self, provider: &str) -> Option<Arc<KeySet>> {
        self.keys.get(provider).cloned()
    }
}

/// A decision on a signed token, and which key verified it.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct TokenEvaluation {
    pub(crate) evaluation: Evaluation,
    /// The provider whose keys were used (or would have been): set once the token's issuer or
    /// named role chose one, whether or not the signature then verified.
    pub(crate) provider: Option<String>,
    /// The token's `kid`, when it had one (not authenticated unless `verified` is set).
    pub(crate) kid: Option<String>,
    /// Set when the signature verified: the provider whose keys verified it, the header and the key.
    pub(crate) verified: Option<VerifiedWith>,
}

/// Who verified a token's signature.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct VerifiedWith {
    /// The provider's name.
    pub(crate) provider: String,
    pub(crate) header: claimgate_jose::Header,
    pub(crate) key: claimgate_jose::KeyRef,
    /// The verified token itself, for a verified-token cache.
    token: VerifiedToken,
}

impl TokenEvaluation {
    /// The decision and its trace.
    pub fn evaluation(&self) -> &Evaluation {
        &self.evaluation
    }

    /// The decision and its trace, by value.
    pub fn into_evaluation(self) -> Evaluation {
        self.evaluation
    }

    /// The provider whose keys were used (or would have been): set once the token's issuer or
    /// named role chose one, whether or not the signature then verified.
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    /// The token's `kid`, when it had one (not authenticated unless [`Self::verified`] is set).
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Set when the signature verified: the provider whose keys verified it, the header and
    /// the key.
    pub fn verified(&self) -> Option<&VerifiedWith> {
        self.verified.as_ref()
    }
}

impl VerifiedWith {
    /// The provider whose keys verified the token.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The token's protected header, verified.
    pub fn header(&self) -> &claimgate_jose::Header {
        &self.header
    }

    /// The key that verified it.
    pub fn key(&self) -> &claimgate_jose::KeyRef {
        &self.key
    }

    /// The verified token, to decide on it again without verifying its signature again
    /// ([`Program::decide_verified`]).
    pub fn token(&self) -> &VerifiedToken {
        &self.token
    }
}

/// A token whose signature verified with the keys of the provider that decides it: what a
/// verified-token cache keeps. Only [`Program::decide_token`] makes one, and only the program
/// that made it accepts it back; the key set that verified it is kept so that a cache can drop
/// the entry when that provider's keys change.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    program: u64,
    provider: u32,
    header: claimgate_jose::Header,
    payload: Arc<[u8]>,
    keys: Arc<KeySet>,
}

impl VerifiedToken {
    /// The key set that verified the token.
    pub fn keys(&self) -> &Arc<KeySet> {
        &self.keys
    }

    /// The provider (index into the program's providers) that verified it.
    pub fn provider(&self) -> u32 {
        self.provider
    }

    /// Bytes held, for a cache's bound.
    pub fn size(&self) -> usize {
        let header = &self.header;
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        std::mem::size_of::<Self>() + self.payload.len() + text(&header.kid) + text(&header.typ) + text(&header.cty)
    }
}

impl Program {
    /// The whole path for a signed token, with keys bound to providers:
    ///
    /// 1. the token is split and decoded (strict base64url, the header's rules, size bounds);
    /// 2. its payload is parsed once, with the program's strict parser and limits;
    /// 3. the provider is chosen: the named role's, or the one that accepts the payload's `iss`;
    /// 4. the signature is verified with **that provider's keys only** (from `keys` when it has
    ///    them for the provider, otherwise the keys inside the policy) and its algorithms;
    /// 5. the decision is made on the same parsed payload, with the header's algorithm and
    ///    `typ` checked against the provider.
    ///
    /// A token signed by another provider's key is refused like any unknown key. A refusal at
    /// any step is a denial with its own code ([`DenyCode::TokenMalformed`],
    /// [`DenyCode::KeysUnavailable`], [`DenyCode::KeyNotFound`], [`DenyCode::SignatureInvalid`],
    /// [`DenyCode::AlgorithmNotAllowed`], or the policy's codes), in one code space.
    pub fn decide_token(
        &self,
        token: &[u8],
        keys: &dyn KeyLookup,
        role: Option<&str>,
        now: i64,
        options: &Options,
        scratch: &mut Scratch,
    ) -> TokenEvaluation {
        // Nothing decided before the signature verified may allow: these paths only ever deny
        // (unknown role or issuer, an issuer the named role's provider refuses), and this keeps
        // it so should the evaluator's selection ever drift from the choice made here.
        let unverified = |mut evaluation: Evaluation| {
            if evaluation.decision.is_allow() {
                debug_assert!(false, "an unverified token was allowed");
                evaluation.decision = Decision::Deny(Denial::simple(
                    DenyCode::KeyNotFound,
                    "the token's signature was not verified by its provider's keys",
                ));
            }
            TokenEvaluation { evaluation, provider: None, kid: None, verified: None }
        };
        // A role that does not exist is the request's mistake, answered before the token is read.
        if role.is_some_and(|name| self.role_index(name).is_none()) {
            return unverified(Evaluation::denied(DenyCode::UnknownRole, "the requested role does not exist"));
        }
        let parsed = match claimgate_jose::UnverifiedToken::parse(token, &options.token) {
            Ok(parsed) => parsed,
            Err(error) => return unverified(Evaluation::denied(jose_code(&error), error.to_string())),
        };
        let claims = match payload::parse(parsed.payload(), self.table(), &options.limits, scratch) {
            Ok(claims) => claims,
            Err(error) => return unverified(Evaluation::denied(DenyCode::PayloadInvalid, error.to_string())),
        };
        let iss = match claims.get(self.well_known.iss) {
            Some(Val::Str(s)) => Some(claims.str(s)),
            _ => None,
        };
        let provider = match role {
            Some(name) => self.role_index(name).map(|r| self.roles[r as usize].provider),
            None => iss.and_then(|iss| self.provider_for_issuer(iss)),
        };
        let Some(provider) = provider else {
            // Unknown role or issuer: the evaluator's own denial, with nothing verified.
            return unverified(self.run(&claims, None, None, role, now, options));
        };
        let code = &self.providers[provider as usize];
        if !iss.is_some_and(|iss| code.issuers.iter().any(|i| self.string(*i) == iss)) {
            // The named role's provider does not accept this issuer: denied before any key is used.
            return unverified(self.run(&claims, None, None, role, now, options));
        }
        let name = self.string(code.name);
        // A provider was chosen; nothing is verified yet, so these, too, may only deny.
        let chosen = |evaluation: Evaluation| TokenEvaluation {
            provider: Some(name.to_string()),
            kid: parsed.header().kid.clone(),
            ..unverified(evaluation)
        };
        let Some(key_set) = keys.keys(name).or_else(|| self.inline_key_set(provider).cloned()) else {
            let message = format!("the keys of provider `{name}` are not available");
            return chosen(Evaluation::denied(DenyCode::KeysUnavailable, message));
        };
        let algorithms = claimgate_jose::AlgorithmSet::from_bits(code.algorithms);
        let verifier = claimgate_jose::Verifier::new(key_set.clone(), algorithms).with_limits(options.token);
        let key = match verifier.verify_parsed(&parsed) {
            Ok(key) => key,
            Err(error) => return chosen(Evaluation::denied(jose_code(&error), error.to_string())),
        };
        let evaluation = self.run(&claims, Some(parsed.header()), Some(provider), role, now, options);
        let token = VerifiedToken {
            program: self.runtime.id,
            provider,
            header: parsed.header().clone(),
            payload: Arc::from(parsed.payload()),
            keys: key_set,
        };
        let verified = VerifiedWith { provider: name.to_string(), header: parsed.header().clone(), key, token };
        TokenEvaluation {
            evaluation,
            provider: Some(name.to_string()),
            kid: parsed.header().kid.clone(),
            verified: Some(verified),
        }
    }
}

impl Program {
    /// Whether this program verified `token` (a verified-token cache drops entries of other
    /// programs, such as the one before a reload).
    pub fn verified_this(&self, token: &VerifiedToken) -> bool {
        token.program == self.runtime.id
    }

    /// Decides again on a token this program verified before ([`VerifiedWith::token`]), without
    /// verifying its signature again: the time claims, the audience, the role's conditions and
    /// the grant are evaluated as on any other decision, at `now`. A token made by another
    /// program (before a reload, say) is refused (`keys_unavailable`: decide it afresh).
    pub fn decide_verified(
        &self,
        token: &VerifiedToken,
        role: Option<&str>,
        now: i64,
        options: &Options,
        scratch: &mut Scratch,
    ) -> Evaluation {
        if token.program != self.runtime.id {
            return Evaluation::denied(DenyCode::KeysUnavailable, "the token was verified by another policy set");
        }
        if role.is_some_and(|name| self.role_index(name).is_none()) {
            return Evaluation::denied(DenyCode::UnknownRole, "the requested role does not exist");
        }
        match payload::parse(&token.payload, self.table(), &options.limits, scratch) {
            Ok(claims) => self.run(&claims, Some(&token.header), Some(token.provider), role, now, options),
            Err(error) => Evaluation::denied(DenyCode::PayloadInvalid, error.to_string()),
        }
    }
}

/// The denial code of a token the signature core refused.
fn jose_code(error: &claimgate_jose::JoseError) -> DenyCode {
    match error.code() {
        "alg_none" | "alg_symmetric" | "alg_unknown" | "algorithm_not_allowed" => DenyCode::AlgorithmNotAllowed,
        "no_matching_key" | "key_unusable" => DenyCode::KeyNotFound,
        "bad_signature" => DenyCode::SignatureInvalid,
        "bad_payload" => DenyCode::PayloadInvalid,
        _ => DenyCode::TokenMalformed,
    }
}
