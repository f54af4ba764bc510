//! The reference interpreter: evaluates the checked model directly, written to be read, not to
//! be fast. It is the executable statement of the semantics in `docs/language.md`; the bytecode
//! VM must agree with it on every decision and every failing condition.
//!
//! Order of checks for one role: the issuer, the time claims (provider settings), the audience,
//! the role's conditions in the order written (stopping at the first that does not hold), then the
//! grant (identity, user, groups, metadata, policies). `any`, `all` and the list of conditions
//! short-circuit, so the trace shows exactly the checks that decided.

// Written for clarity: denials travel by value in `Result`s, as the semantics read.
#![allow(clippy::result_large_err)]

use serde_json::{Map, Number, Value};

use crate::ast::{ClaimPath, Comparison, Condition, ConditionKind, GroupKind, JsonType, NumLit, Op, Scalar, Segment};
use crate::check::compile_regex;
use crate::decision::*;
use crate::fmt::{condition_text, path_text};
use crate::glob::Glob;
use crate::model::{Audience, PolicySet, PolicyTerm, Provider, Role, TemplatePart};
use crate::source::Span;

/// The size limit used when the interpreter compiles a `matches` pattern (the checker has
/// already refused larger ones).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Evaluates one request against a checked policy set.
pub fn evaluate(set: &PolicySet, request: &Request<'_>) -> Evaluation {
    let mut evaluation = Evaluation { decision: Decision::Deny(Denial::no_role_matched()), trace: Vec::new() };
    let issuer = request.claims.get("iss").and_then(Value::as_str);
    match request.role {
        Some(name) => {
            let Some(role) = set.roles.iter().find(|r| r.name == name) else {
                evaluation.decision = Decision::Deny(Denial {
                    code: DenyCode::UnknownRole,
                    role: None,
                    message: "the requested role does not exist".to_string(),
                    condition: None,
                    actual: None,
                });
                return evaluation;
            };
            let (decision, trace) = try_role(set, role, request);
            evaluation.decision = decision;
            evaluation.trace.push(trace);
        }
        None => {
            let provider =
                set.providers.iter().position(|p| issuer.is_some_and(|i| p.issuers.iter().any(|t| t.value == i)));
            let Some(provider) = provider else {
                evaluation.decision = Decision::Deny(Denial {
                    code: DenyCode::UnknownIssuer,
                    role: None,
                    message: "the token's issuer is not trusted".to_string(),
                    condition: None,
                    actual: request.claims.get("iss").cloned(),
                });
                return evaluation;
            };
            let candidates: Vec<&Role> = set.roles.iter().filter(|r| r.provider == provider).collect();
            let mut denials = Vec::new();
            for role in &candidates {
                let (decision, trace) = try_role(set, role, request);
                evaluation.trace.push(trace);
                match decision {
                    Decision::Allow(grant) => {
                        evaluation.decision = Decision::Allow(grant);
                        return evaluation;
                    }
                    Decision::Deny(denial) => {
                        // A failure of the issuer or the time claims fails every role alike.
                        let stop = denial.code.is_provider_level();
                        denials.push(denial);
                        if stop {
                            break;
                        }
                    }
                }
            }
            let denial = match denials.first() {
                Some(first) if candidates.len() == 1 || first.code.is_provider_level() => {
                    let mut denial = denials.swap_remove(0);
                    if candidates.len() > 1 || denial.code.is_provider_level() {
                        denial.role = None;
                    }
                    denial
                }
                _ => Denial::no_role_matched(),
            };
            evaluation.decision = Decision::Deny(denial);
        }
    }
    evaluation
}

/// Resolves a claim path in the claims. `None` when any segment is missing or of the wrong kind.
pub fn resolve<'v>(claims: &'v Map<String, Value>, path: &ClaimPath) -> Option<&'v Value> {
    let mut segments = path.segments.iter();
    let mut value = match segments.next()? {
        Segment::Key(key) => claims.get(key.as_str())?,
        Segment::Index(_) => return None,
    };
    for segment in segments {
        value = match (segment, value) {
            (Segment::Key(key), Value::Object(map)) => map.get(key.as_str())?,
            (Segment::Index(i), Value::Array(items)) => items.get(*i as usize)?,
            _ => return None,
        };
    }
    Some(value)
}

/// One role, start to finish, with its trace.
struct Attempt<'a> {
    role: &'a Role,
    provider: &'a Provider,
    claims: &'a Map<String, Value>,
    steps: Vec<Step>,
    /// The file of the condition being evaluated (the provider's or the role's).
    file: crate::source::FileId,
    /// The token's header, when known: its `alg` and `typ` are checked against the provider.
    header: Option<&'a claimgate_jose::Header>,
}

fn try_role(set: &PolicySet, role: &Role, request: &Request<'_>) -> (Decision, RoleTrace) {
    let provider = &set.providers[role.provider];
    let mut attempt =
        Attempt { role, provider, claims: request.claims, steps: Vec::new(), file: role.file, header: request.header };
    let decision = match attempt.run(request.now) {
        Ok(grant) => Decision::Allow(grant),
        Err(denial) => Decision::Deny(denial),
    };
    let trace = RoleTrace { role: role.name.to_string(), steps: attempt.steps, allowed: decision.is_allow() };
    (decision, trace)
}

impl Attempt<'_> {
    fn run(&mut self, now: i64) -> Result<Grant, Denial> {
        self.issuer()?;
        self.header()?;
        self.time_claims(now)?;
        self.audience_form()?;
        self.audience()?;
        // The provider's conditions (every role of the provider must satisfy them), then the
        // role's own; a check is located in the file it is written in.
        let provider_conditions = self.provider.conditions.iter().map(|c| (c, self.provider.file));
        let role_conditions = self.role.conditions.iter().map(|c| (c, self.role.file));
        for (condition, file) in provider_conditions.chain(role_conditions) {
            self.file = file;
            let outcome = self.condition(condition, 0);
            if !outcome.passed() {
                let check = self.check_of(condition);
                let actual = condition_value(condition).and_then(|p| resolve(self.claims, p)).cloned();
                let code = outcome.denial_code();
                let expected = match &condition.kind {
                    ConditionKind::Compare(comparison) if comparison.words => Some("a string of words or a list"),
                    ConditionKind::Compare(comparison) => Some(expected_type(&comparison.op)),
                    _ => None,
                };
                let message = crate::vm::condition_message(&check, code, expected, &self.role.name);
                return Err(self.deny(code, message, check, actual));
            }
        }
        self.grant()
    }

    fn deny(&self, code: DenyCode, message: String, check: FailedCheck, actual: Option<Value>) -> Denial {
        Denial { code, role: Some(self.role.name.to_string()), message, condition: Some(check), actual }
    }

    /// A provider check on `claim`, located at the provider's name.
    fn provider_check(&self, claim: &str) -> FailedCheck {
        self.provider_check_text(claim, format!("claims.{claim}"))
    }

    fn provider_check_text(&self, claim: &str, text: String) -> FailedCheck {
        FailedCheck {
            text,
            path: Some(format!("claims.{claim}")),
            file: self.provider.file,
            span: self.provider.span,
            message: None,
        }
    }

    fn step(&mut self, check: FailedCheck, outcome: Outcome, seen: Option<&Value>, depth: usize) {
        self.steps.push(Step { check, outcome, seen: seen.cloned(), depth });
    }

    fn issuer(&mut self) -> Result<(), Denial> {
        let iss = self.claims.get("iss");
        let accepted = iss.and_then(Value::as_str).is_some_and(|i| self.provider.issuers.iter().any(|t| t.value == i));
        let outcome = if iss.is_none_or(Value::is_null) {
            Outcome::Missing
        } else if accepted {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        let check = self.provider_check("iss");
        self.step(check.clone(), outcome, iss, 0);
        if accepted {
            return Ok(());
        }
        let message = format!("the token's issuer is not accepted by role `{}`", self.role.name);
        Err(self.deny(DenyCode::IssuerMismatch, message, check, iss.cloned()))
    }

    /// The token's algorithm and `typ` against the provider's, when the header is known (no
    /// trace step: the header is not a claim).
    fn header(&self) -> Result<(), Denial> {
        let Some(header) = self.header else { return Ok(()) };
        let provider = self.provider;
        let refusal = crate::vm::header_refusal(&provider.name, provider.algorithms, provider.typ.as_deref(), header);
        match refusal {
            None => Ok(()),
            Some(refusal) => {
                let check = FailedCheck {
                    text: refusal.text,
                    path: None,
                    file: provider.file,
                    span: provider.span,
                    message: None,
                };
                Err(self.deny(refusal.code, refusal.message, check, refusal.actual))
            }
        }
    }

    /// Reads a time claim: `Ok(None)` when absent, an error when present but not a number.
    fn time_claim(&mut self, name: &str, required: bool) -> Result<Option<f64>, Denial> {
        let value = self.claims.get(name);
        let check = self.provider_check(name);
        match value {
            None if required => {
                self.step(check.clone(), Outcome::Missing, value, 0);
                Err(self.deny(DenyCode::TimeClaimMissing, format!("the token has no `{name}` claim"), check, None))
            }
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => {
                self.step(check.clone(), Outcome::Fail, value, 0);
                let message = format!("the token's `{name}` claim is not a number");
                Err(self.deny(DenyCode::TimeClaimInvalid, message, check, Some(other.clone())))
            }
        }
    }

    /// Time checks: a token is expired from `exp + skew` on (RFC 7519 4.1.4: "on or after"); the
    /// other boundaries are inclusive.
    fn time_claims(&mut self, now: i64) -> Result<(), Denial> {
        let provider = self.provider;
        let required = provider.required_time_claims;
        let now = now as f64;
        let skew = provider.clock_skew as f64;
        let exp = self.time_claim("exp", required.exp || provider.max_lifetime.is_some())?;
        let nbf = self.time_claim("nbf", required.nbf)?;
        let iat = self
            .time_claim("iat", required.iat || provider.max_token_age.is_some() || provider.max_lifetime.is_some())?;
        let skew_text = seconds_text(provider.clock_skew);
        let age = provider.max_token_age.map(seconds_text).unwrap_or_default();
        let life = provider.max_lifetime.map(seconds_text).unwrap_or_default();
        let checks: [(&str, bool, String, bool, DenyCode, &str); 5] = [
            (
                "exp",
                exp.is_some(),
                format!("now < claims.exp + {skew_text}"),
                exp.is_some_and(|exp| now - skew >= exp),
                DenyCode::TokenExpired,
                "the token has expired",
            ),
            (
                "nbf",
                nbf.is_some(),
                format!("now >= claims.nbf - {skew_text}"),
                nbf.is_some_and(|nbf| now + skew < nbf),
                DenyCode::TokenNotYetValid,
                "the token is not valid yet",
            ),
            (
                "iat",
                iat.is_some(),
                format!("now >= claims.iat - {skew_text}"),
                iat.is_some_and(|iat| now + skew < iat),
                DenyCode::IssuedInFuture,
                "the token was issued in the future",
            ),
            (
                "iat",
                iat.is_some() && provider.max_token_age.is_some(),
                format!("now <= claims.iat + {age} + {skew_text}"),
                matches!((iat, provider.max_token_age), (Some(iat), Some(age)) if now - skew > iat + age as f64),
                DenyCode::TokenTooOld,
                "the token is too old",
            ),
            (
                "exp",
                exp.is_some() && iat.is_some() && provider.max_lifetime.is_some(),
                format!("claims.exp - claims.iat <= {life}"),
                matches!((exp, iat, provider.max_lifetime), (Some(exp), Some(iat), Some(life)) if exp - iat > life as f64),
                DenyCode::LifetimeTooLong,
                "the token's lifetime is longer than allowed",
            ),
        ];
        for (name, applies, text, failed, code, message) in checks {
            if !applies {
                continue;
            }
            let check = self.provider_check_text(name, text);
            let seen = self.claims.get(name).cloned();
            self.step(check.clone(), if failed { Outcome::Fail } else { Outcome::Pass }, seen.as_ref(), 0);
            if failed {
                return Err(self.deny(code, message.to_string(), check, seen));
            }
        }
        Ok(())
    }

    /// `aud` is a string or a list of strings (RFC 7519 4.1.3), whatever the role accepts.
    fn audience_form(&mut self) -> Result<(), Denial> {
        let aud = self.claims.get("aud");
        let valid = match aud {
            None | Some(Value::String(_)) => true,
            Some(Value::Array(items)) => items.iter().all(Value::is_string),
            Some(_) => false,
        };
        if valid {
            return Ok(());
        }
        let check = self.provider_check_text("aud", crate::vm::AUD_FORM_TEXT.to_string());
        self.step(check.clone(), Outcome::TypeMismatch, aud, 0);
        let message = "the token's `aud` is neither a string nor a list of strings".to_string();
        Err(self.deny(DenyCode::AudienceInvalid, message, check, aud.cloned()))
    }

    fn audience(&mut self) -> Result<(), Denial> {
        let aud = self.claims.get("aud");
        let (accepted, span) = match &self.role.audience {
            Audience::Any(span) => (true, *span),
            Audience::OneOf(audiences) => {
                let has = |a: &str| audiences.iter().any(|t| t.value == a);
                let accepted = match aud {
                    Some(Value::String(a)) => has(a),
                    Some(Value::Array(items)) => items.iter().any(|i| i.as_str().is_some_and(has)),
                    _ => false,
                };
                (accepted, audiences.first().map_or(self.role.span, |t| t.span))
            }
        };
        let check = FailedCheck {
            text: "claims.aud".to_string(),
            path: Some("claims.aud".to_string()),
            file: self.role.file,
            span,
            message: None,
        };
        let outcome = match (accepted, aud) {
            (true, _) => Outcome::Pass,
            (false, None | Some(Value::Null)) => Outcome::Missing,
            (false, _) => Outcome::Fail,
        };
        self.step(check.clone(), outcome, aud, 0);
        if accepted {
            return Ok(());
        }
        let message = format!("the token's audience is not accepted by role `{}`", self.role.name);
        Err(self.deny(DenyCode::AudienceMismatch, message, check, aud.cloned()))
    }

    fn check_of(&self, condition: &Condition) -> FailedCheck {
        FailedCheck {
            text: condition_text(condition),
            path: condition_value(condition).map(path_text),
            file: self.file,
            span: condition.check_span(),
            message: condition.message.as_ref().map(|m| m.value.to_string()),
        }
    }

    /// Evaluates a condition, recording it (and what it contains) in the trace.
    fn condition(&mut self, condition: &Condition, depth: usize) -> Outcome {
        let index = self.steps.len();
        let check = self.check_of(condition);
        let seen = condition_value(condition).and_then(|p| resolve(self.claims, p));
        self.step(check, Outcome::Fail, seen, depth);
        let outcome = match &condition.kind {
            ConditionKind::Compare(comparison) => compare(comparison, seen),
            ConditionKind::Not(inner) => self.condition(inner, depth + 1).negate(),
            ConditionKind::Group(group) => {
                let mut outcomes = Vec::new();
                for inner in &group.conditions {
                    let outcome = self.condition(inner, depth + 1);
                    outcomes.push(outcome);
                    let decided = match group.kind {
                        GroupKind::Any => outcome.passed(),
                        GroupKind::All => !outcome.passed(),
                    };
                    if decided {
                        break;
                    }
                }
                // Three-valued (Kleene) logic, so that a missing claim or one of the wrong type
                // can never turn a denial into an allow, even under `not`: `any` is its first
                // unknown child when no child passed; `all` is its first child that did not pass.
                match group.kind {
                    GroupKind::Any if outcomes.iter().any(|o| o.passed()) => Outcome::Pass,
                    GroupKind::Any => outcomes.into_iter().find(|o| o.is_unknown()).unwrap_or(Outcome::Fail),
                    GroupKind::All => outcomes.into_iter().find(|o| !o.passed()).unwrap_or(Outcome::Pass),
                }
            }
        };
        self.steps[index].outcome = outcome;
        outcome
    }

    fn grant(&mut self) -> Result<Grant, Denial> {
        let role = self.role;
        let mut identity = String::new();
        for part in &role.identity.parts {
            match part {
                TemplatePart::Literal(text) => identity.push_str(text),
                TemplatePart::Claim(path) => match resolve(self.claims, path) {
                    Some(Value::String(s)) => identity.push_str(s),
                    other => {
                        return Err(self.unavailable(
                            DenyCode::IdentityUnavailable,
                            "identity",
                            path,
                            role.identity.span,
                            other,
                        ));
                    }
                },
            }
        }
        if identity.is_empty() {
            let check = FailedCheck {
                text: "identity".to_string(),
                path: None,
                file: role.file,
                span: role.identity.span,
                message: None,
            };
            let message = "the identity built from the token is empty".to_string();
            return Err(self.deny(DenyCode::IdentityUnavailable, message, check, None));
        }
        let user = match &role.user {
            None => None,
            Some(path) => match resolve(self.claims, path) {
                Some(Value::String(s)) => Some(s.clone()),
                other => return Err(self.unavailable(DenyCode::IdentityUnavailable, "user", path, path.span, other)),
            },
        };
        // A list of strings, or one string (as Vault accepts); missing only when optional.
        let groups = match &role.groups {
            None => Vec::new(),
            Some((path, true)) if resolve(self.claims, path).is_none_or(Value::is_null) => Vec::new(),
            Some((path, _)) if resolve(self.claims, path).is_some_and(Value::is_string) => {
                vec![resolve(self.claims, path).and_then(Value::as_str).unwrap_or_default().to_string()]
            }
            Some((path, _)) => match resolve(self.claims, path).and_then(string_list) {
                Some(groups) => groups,
                None => {
                    let value = resolve(self.claims, path);
                    return Err(self.unavailable(DenyCode::IdentityUnavailable, "groups", path, path.span, value));
                }
            },
        };
        let mut metadata = Vec::new();
        for mapping in &role.metadata {
            match resolve(self.claims, &mapping.path) {
                None | Some(Value::Null) if mapping.optional => {}
                Some(value) if scalar_text(value).is_some() => {
                    metadata.push((mapping.name.to_string(), scalar_text(value).unwrap_or_default()));
                }
                other => {
                    let what = format!("metadata `{}`", mapping.name);
                    return Err(self.unavailable(
                        DenyCode::MappingUnavailable,
                        &what,
                        &mapping.path,
                        mapping.span,
                        other,
                    ));
                }
            }
        }
        let mut policies: Vec<String> = Vec::new();
        // Empty names are dropped, as Vault drops them.
        let mut add = |name: &str| {
            if !name.is_empty() && !policies.iter().any(|p| p == name) {
                policies.push(name.to_string());
            }
        };
        for term in &role.policies.terms {
            let (path, optional) = match term {
                PolicyTerm::Name(name) => {
                    add(&name.value);
                    continue;
                }
                PolicyTerm::Claim(path, optional) => (path, optional),
            };
            match resolve(self.claims, path) {
                None | Some(Value::Null) if *optional => {}
                Some(Value::String(name)) => add(name),
                value => match value.and_then(string_list) {
                    Some(names) => names.iter().for_each(|n| add(n)),
                    None => {
                        return Err(self.unavailable(DenyCode::MappingUnavailable, "policies", path, path.span, value));
                    }
                },
            }
        }
        Ok(Grant { role: role.name.to_string(), identity, user, groups, metadata, policies, token: role.token.clone() })
    }

    fn unavailable(&self, code: DenyCode, what: &str, path: &ClaimPath, span: Span, value: Option<&Value>) -> Denial {
        let path_text = path_text(path);
        let kind =
            if code == DenyCode::MappingUnavailable && what != "policies" { "a scalar" } else { "of the right type" };
        let message = match value {
            None | Some(Value::Null) => format!("the token has no `{path_text}` claim, needed for the {what}"),
            Some(_) => format!("the token's `{path_text}` is not {kind}, as the {what} needs"),
        };
        let check =
            FailedCheck { text: path_text.clone(), path: Some(path_text), file: self.role.file, span, message: None };
        self.deny(code, message, check, value.cloned())
    }
}

/// `90s`, `15m`, `1h30m`: a duration as the language writes it.
pub(crate) fn seconds_text(seconds: u64) -> String {
    if seconds == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = seconds;
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// The claim path a condition reads: its own for a comparison, its operand's under `not`.
fn condition_value(condition: &Condition) -> Option<&ClaimPath> {
    match &condition.kind {
        ConditionKind::Compare(comparison) => Some(&comparison.path),
        ConditionKind::Not(inner) => condition_value(inner),
        ConditionKind::Group(_) => None,
    }
}

/// One comparison on the value found (or not) at its path.
fn compare(comparison: &Comparison, value: Option<&Value>) -> Outcome {
    let value = match (&comparison.op, value) {
        (Op::Exists, v) => return if v.is_some_and(|v| !v.is_null()) { Outcome::Pass } else { Outcome::Fail },
        (Op::Absent, v) => return if v.is_none_or(Value::is_null) { Outcome::Pass } else { Outcome::Fail },
        (_, None | Some(Value::Null)) => return Outcome::Missing,
        (_, Some(v)) => v,
    };
    if comparison.words {
        return words_compare(comparison, value);
    }
    if !fits(&comparison.op, value) {
        return Outcome::TypeMismatch;
    }
    let holds = match &comparison.op {
        Op::Eq(s) => scalar_eq(value, s),
        Op::Ne(s) => !scalar_eq(value, s),
        Op::Lt(n) => number_cmp(value, n).is_some_and(|o| o.is_lt()),
        Op::Le(n) => number_cmp(value, n).is_some_and(|o| o.is_le()),
        Op::Gt(n) => number_cmp(value, n).is_some_and(|o| o.is_gt()),
        Op::Ge(n) => number_cmp(value, n).is_some_and(|o| o.is_ge()),
        Op::In(list) => list.items.iter().any(|s| scalar_eq(value, s)),
        Op::Glob(pattern) => {
            value.as_str().is_some_and(|s| Glob::new(&pattern.value).is_ok_and(|glob| glob.matches(s)))
        }
        Op::Matches(pattern) => value
            .as_str()
            .is_some_and(|s| compile_regex(&pattern.value, REGEX_SIZE_LIMIT).is_ok_and(|regex| regex.is_match(s))),
        Op::ContainsGlob(pattern) => value.as_array().is_some_and(|items| {
            items.iter().filter_map(Value::as_str).any(|s| Glob::new(&pattern.value).is_ok_and(|g| g.matches(s)))
        }),
        Op::ContainsMatches(pattern) => value.as_array().is_some_and(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .any(|s| compile_regex(&pattern.value, REGEX_SIZE_LIMIT).is_ok_and(|regex| regex.is_match(s)))
        }),
        Op::Contains(s) => value.as_array().is_some_and(|items| items.iter().any(|i| scalar_eq(i, s))),
        Op::ContainsAny(list) => {
            value.as_array().is_some_and(|items| list.items.iter().any(|s| items.iter().any(|i| scalar_eq(i, s))))
        }
        Op::ContainsAll(list) => {
            value.as_array().is_some_and(|items| list.items.iter().all(|s| items.iter().any(|i| scalar_eq(i, s))))
        }
        Op::Is(t) => match t {
            JsonType::String => value.is_string(),
            JsonType::Number => value.is_number(),
            JsonType::Bool => value.is_boolean(),
            JsonType::List => value.is_array(),
            JsonType::Object => value.is_object(),
        },
        Op::Exists | Op::Absent => unreachable!("handled above"),
    };
    if holds { Outcome::Pass } else { Outcome::Fail }
}

/// `words contains ...`: a string claim as its space-separated words, a list as its elements.
fn words_compare(comparison: &Comparison, value: &Value) -> Outcome {
    let text = match value {
        Value::String(text) => text,
        Value::Array(_) => {
            let plain = Comparison { words: false, ..comparison.clone() };
            return compare(&plain, Some(value));
        }
        _ => return Outcome::TypeMismatch,
    };
    let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
    let is_word = |s: &Scalar| matches!(s, Scalar::Str(lit) if words.contains(&lit.value.as_str()));
    let holds = match &comparison.op {
        Op::Contains(s) => is_word(s),
        Op::ContainsAny(list) => list.items.iter().any(is_word),
        Op::ContainsAll(list) => list.items.iter().all(is_word),
        Op::ContainsGlob(pattern) => words.iter().any(|w| Glob::new(&pattern.value).is_ok_and(|g| g.matches(w))),
        Op::ContainsMatches(pattern) => {
            words.iter().any(|w| compile_regex(&pattern.value, REGEX_SIZE_LIMIT).is_ok_and(|regex| regex.is_match(w)))
        }
        _ => false,
    };
    if holds { Outcome::Pass } else { Outcome::Fail }
}

/// Whether a present, non-null value has a JSON type the operator can compare (see
/// `docs/language.md`, "Types"): otherwise the comparison is neither true nor false.
fn fits(op: &Op, value: &Value) -> bool {
    let same_type = |s: &Scalar| {
        matches!(
            (s, value),
            (Scalar::Str(_), Value::String(_))
                | (Scalar::Number(_), Value::Number(_))
                | (Scalar::Bool(_), Value::Bool(_))
        )
    };
    match op {
        Op::Eq(s) | Op::Ne(s) => same_type(s),
        Op::Lt(_) | Op::Le(_) | Op::Gt(_) | Op::Ge(_) => value.is_number(),
        Op::In(list) => list.items.iter().any(same_type),
        Op::Glob(_) | Op::Matches(_) => value.is_string(),
        Op::Contains(_) | Op::ContainsAny(_) | Op::ContainsAll(_) | Op::ContainsGlob(_) | Op::ContainsMatches(_) => {
            value.is_array()
        }
        Op::Exists | Op::Absent | Op::Is(_) => true,
    }
}

/// What an operator needs, for denial messages (the VM's `CmpOp::expected_type`).
fn expected_type(op: &Op) -> &'static str {
    let of = |s: &Scalar| match s {
        Scalar::Str(_) => "a string",
        Scalar::Number(_) => "a number",
        Scalar::Bool(_) => "a boolean",
    };
    match op {
        Op::Eq(s) | Op::Ne(s) => of(s),
        Op::Lt(_) | Op::Le(_) | Op::Gt(_) | Op::Ge(_) => "a number",
        Op::In(list) => {
            let mut kinds: Vec<&str> = list.items.iter().map(of).collect();
            kinds.sort_unstable();
            kinds.dedup();
            match kinds.as_slice() {
                [one] => one,
                _ => "a scalar of one of the list's types",
            }
        }
        Op::Glob(_) | Op::Matches(_) => "a string",
        Op::Contains(_) | Op::ContainsAny(_) | Op::ContainsAll(_) | Op::ContainsGlob(_) | Op::ContainsMatches(_) => {
            "a list"
        }
        Op::Exists | Op::Absent | Op::Is(_) => "any value",
    }
}

/// Equality without coercion: same JSON type and same value; numbers by value (42 == 42.0).
fn scalar_eq(value: &Value, scalar: &Scalar) -> bool {
    match (value, scalar) {
        (Value::String(a), Scalar::Str(b)) => *a == b.value,
        (Value::Bool(a), Scalar::Bool(b)) => *a == b.value,
        (Value::Number(a), Scalar::Number(b)) => number_order(a, b) == std::cmp::Ordering::Equal,
        _ => false,
    }
}

fn number_cmp(value: &Value, literal: &NumLit) -> Option<std::cmp::Ordering> {
    match value {
        Value::Number(n) => Some(number_order(n, literal)),
        _ => None,
    }
}

/// Orders a claim's number and a literal by their exact values: the claim as serde_json writes
/// it (its integer, or its text), the literal as written in the policy.
pub fn number_order(claim: &Number, literal: &NumLit) -> std::cmp::Ordering {
    use crate::number::{NumRef, compare};
    let text = claim.to_string();
    let claim = match (claim.as_i64(), claim.as_u64()) {
        (Some(i), _) => NumRef::Int(i),
        (_, Some(u)) => NumRef::UInt(u),
        _ => NumRef::Text(&text),
    };
    let value = crate::number::Number::from_literal(&literal.value, &literal.text);
    compare(claim, value.as_ref())
}

/// A list of strings (the form of `groups` and policies claims).
fn string_list(value: &Value) -> Option<Vec<String>> {
    value.as_array()?.iter().map(|v| v.as_str().map(str::to_string)).collect()
}

/// A scalar as metadata text: strings as they are, numbers and booleans as JSON writes them.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
