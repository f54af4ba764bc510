//! The playground's interface in plain Rust: text in, one JSON document out.
//!
//! Every function answers with a JSON object whose `ok` says whether it could do its job; when
//! it could not, `error` says why in a sentence and, for problems in the policy, `diagnostics`
//! lists them. Positions are given twice: 1-based `line`/`column` (characters, as the CLI shows
//! them) and `from`/`to`, offsets in UTF-16 code units, as JavaScript strings and editors such
//! as CodeMirror count them. The policy is one file, named `policy.cg`.
//!
//! Nothing here does I/O: the clocks come from the caller ([`Clock`]), keys come from the policy
//! or from the JWK Set given with the input, and that JWK Set belongs to one provider, as keys do
//! everywhere in claimgate (the provider named in the options, else the named role's, else the
//! only one).

use std::sync::Arc;

use claimgate::decision::{Decision, Denial, Evaluation, FailedCheck, Outcome};
use claimgate::payload::Scratch;
use claimgate::program::Program;
use claimgate::vm::{Options, ProviderKeys};
use claimgate::{FileId, Policy, SourceMap, Span};
use claimgate_jose::KeySet;
use serde_json::{Value, json};

/// The name the playground's policy has in diagnostics.
pub const POLICY_FILE: &str = "policy.cg";

/// The longest input (claims or token) and key text taken, before any parsing.
const MAX_INPUT_BYTES: usize = 1 << 20;

/// How long the timing loop of [`evaluate`] runs, at most, and how many decisions it makes.
const TIMING_WINDOW_MS: f64 = 5.0;
const TIMING_MAX_RUNS: u32 = 10_000;

/// The clocks of the host: the browser's in the wasm build, the system's in tests.
pub trait Clock {
    /// Seconds since the Unix epoch: "now" when the options do not pin it.
    fn unix_seconds(&self) -> i64;
    /// A monotonic time in milliseconds, to time evaluations.
    fn millis(&self) -> f64;
}

/// The claimgate version compiled in.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// `{"ok": false, "error": message}`, plus any other members given.
fn failure(message: impl Into<String>, more: Value) -> Value {
    let mut out = json!({ "ok": false, "error": message.into() });
    if let (Some(out), Value::Object(more)) = (out.as_object_mut(), more) {
        out.extend(more);
    }
    out
}

/// Where a span is, for the editor and for people.
fn location(sources: &SourceMap, file: FileId, span: Span) -> Value {
    let source = sources.get(file);
    let start = source.line_col(span.start as usize);
    let end = source.line_col(span.end as usize);
    let utf16 = |offset: u32| {
        let text = &source.text;
        let offset = (offset as usize).min(text.len());
        // Spans fall on character boundaries; should one not, count up to the one before it.
        let boundary = (0..=offset).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text[..boundary].encode_utf16().count()
    };
    json!({
        "line": start.line,
        "column": start.column,
        "end_line": end.line,
        "end_column": end.column,
        "from": utf16(span.start),
        "to": utf16(span.end),
    })
}

fn diagnostics_json(diagnostics: &[claimgate::Diagnostic], sources: &SourceMap) -> Value {
    let mut all = claimgate::diagnostic::to_json(diagnostics, sources);
    if let Value::Array(items) = &mut all {
        for (item, diagnostic) in items.iter_mut().zip(diagnostics) {
            if let (Value::Object(item), Value::Object(at)) =
                (item, location(sources, diagnostic.file, diagnostic.span))
            {
                item.insert("from".into(), at["from"].clone());
                item.insert("to".into(), at["to"].clone());
            }
        }
    }
    all
}

fn load(source: &str) -> Policy {
    Policy::from_sources([(POLICY_FILE, source)])
}

/// Checks a policy: `{"ok": true|false, "errors": n, "warnings": n, "diagnostics": [...],
/// "rendered": "..."}`, `ok` being false when there are errors. Each diagnostic has `code`,
/// `severity`, `message`, `label`, `help`, `related` and its position. `rendered` is the
/// diagnostics as text; the wasm build leaves out the language crate's `fancy-diagnostics`
/// feature, so it is miette's plain narratable form rather than the CLI's drawing.
pub fn check(source: &str) -> Value {
    let policy = load(source);
    let diagnostics = policy.diagnostics();
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    json!({
        "ok": errors == 0,
        "errors": errors,
        "warnings": diagnostics.len() - errors,
        "diagnostics": diagnostics_json(&diagnostics, policy.sources()),
        "rendered": policy.render_diagnostics(false),
    })
}

/// Formats a policy in the canonical layout: `{"ok": true, "formatted": "..."}`, or the syntax
/// errors that keep it from being formatted.
pub fn format(source: &str) -> Value {
    match claimgate::format_source(POLICY_FILE, source) {
        Ok(formatted) => json!({ "ok": true, "formatted": formatted }),
        Err(error) => failure(
            "the policy does not parse, so it cannot be formatted",
            json!({ "diagnostics": diagnostics_json(error.diagnostics(), error.sources()) }),
        ),
    }
}

/// What [`evaluate`] is asked, from its options.
struct EvalOptions {
    now: Option<i64>,
    role: Option<String>,
    jwks: Option<String>,
    provider: Option<String>,
}

fn eval_options(options: &str) -> Result<EvalOptions, String> {
    let options = options.trim();
    if options.is_empty() {
        return Ok(EvalOptions { now: None, role: None, jwks: None, provider: None });
    }
    let value = claimgate_jose::json::parse_object(options.as_bytes(), 8)
        .map_err(|e| format!("the options are not a JSON object: {e}"))?;
    let mut out = EvalOptions { now: None, role: None, jwks: None, provider: None };
    for (name, value) in value {
        let text = |what: &str| match &value {
            Value::Null => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(format!("option `{name}` must be {what}")),
        };
        match name.as_str() {
            "now" => {
                out.now = match &value {
                    Value::Null => None,
                    Value::Number(n) => {
                        Some(n.as_i64().ok_or("option `now` must be whole seconds since the Unix epoch")?)
                    }
                    Value::String(s) if s.trim().is_empty() => None,
                    Value::String(s) => Some(
                        s.trim().parse::<i64>().ok().or_else(|| claimgate::check::parse_rfc3339(s.trim())).ok_or_else(
                            || format!("option `now` (`{s}`) is neither seconds since the epoch nor an RFC 3339 time"),
                        )?,
                    ),
                    _ => return Err("option `now` must be seconds since the epoch or an RFC 3339 time".into()),
                }
            }
            "role" => out.role = text("a role's name")?,
            "provider" => out.provider = text("a provider's name")?,
            "jwks" => {
                out.jwks = match &value {
                    Value::Object(_) => Some(value.to_string()),
                    _ => text("a JWK Set (as text or an object), a JWK or PEM keys")?,
                }
            }
            other => {
                return Err(format!("unknown option `{other}` (options: now, role, provider, jwks)"));
            }
        }
    }
    Ok(out)
}

/// Decides on `input`: the token's claims as a JSON object (taken as given: no signature is
/// checked), or a compact token whose signature is verified first with its provider's keys.
///
/// `options` is a JSON object, every member optional: `now` (seconds or RFC 3339; the clock
/// otherwise), `role` (automatic selection otherwise), `jwks` (keys for a token: a JWK Set, a JWK
/// or PEM, as text or object) and `provider` (whose keys `jwks` are).
///
/// The answer: `decision` (`allow` or `deny`), `grant` or `denial` (`code`, `message`, `role`,
/// the failing `condition` with its position, the `actual` value), `trace` (every role tried,
/// every check with its `outcome` and the value `seen`), `signature` (for a token: whether and
/// with which provider's key it verified), `now`, and `time` (microseconds per decision, over
/// repeated runs).
pub fn evaluate(source: &str, input: &str, options: &str, clock: &dyn Clock) -> Value {
    let options = match eval_options(options) {
        Ok(options) => options,
        Err(message) => return failure(message, json!({ "stage": "options" })),
    };
    let policy = load(source);
    if policy.has_errors() {
        return failure(
            "the policy has errors; fix them first",
            json!({ "stage": "policy", "diagnostics": diagnostics_json(&policy.diagnostics(), policy.sources()) }),
        );
    }
    let program = match policy.compile() {
        Ok(program) => program,
        Err(message) => return failure(format!("internal error: {message}"), json!({ "stage": "policy" })),
    };
    if input.len() > MAX_INPUT_BYTES || options.jwks.as_ref().is_some_and(|k| k.len() > MAX_INPUT_BYTES) {
        return failure("the input is larger than 1 MiB", json!({ "stage": "input" }));
    }
    let now = options.now.unwrap_or_else(|| clock.unix_seconds());
    let role = options.role.as_deref();
    let input = input.trim();
    let mut scratch = Scratch::default();
    let explain = Options::default().explain(true);
    let quiet = Options::default();

    let (evaluation, signature, runs, elapsed) = if input.starts_with('{') {
        if options.jwks.is_some() {
            return failure(
                "keys were given with claims; keys verify a token, paste the token instead",
                json!({ "stage": "input" }),
            );
        }
        // Decided on the bytes as given (after a check that they are one JSON object), as a
        // service decides on a token's payload: numbers keep their exact text.
        if let Err(e) = claimgate_jose::json::parse_object(input.as_bytes(), 64) {
            return failure(format!("the claims are not a JSON object: {e}"), json!({ "stage": "input" }));
        }
        let evaluation = program.evaluate(input.as_bytes(), role, now, &explain, &mut scratch);
        let (runs, elapsed) = time(clock, || {
            program.evaluate(input.as_bytes(), role, now, &quiet, &mut scratch);
        });
        (evaluation, Value::Null, runs, elapsed)
    } else {
        if input.is_empty() {
            return failure("paste claims (a JSON object) or a token", json!({ "stage": "input" }));
        }
        let keys = match given_keys(&program, &options) {
            Ok(keys) => keys,
            Err(message) => return failure(message, json!({ "stage": "keys" })),
        };
        let token = input.as_bytes();
        let result = program.decide_token(token, &keys, role, now, &explain, &mut scratch);
        let (runs, elapsed) = time(clock, || {
            program.decide_token(token, &keys, role, now, &quiet, &mut scratch);
        });
        let signature = json!({
            "verified": result.verified().is_some(),
            "provider": result.verified().map(|v| v.provider()).or(result.provider()),
            "kid": result.kid(),
            "alg": result.verified().map(|v| v.header().alg.to_string()),
            "key": result.verified().map(|v| match &v.key().kid {
                Some(kid) => format!("key `{kid}`"),
                None => format!("key {}", v.key().index),
            }),
        });
        (result.into_evaluation(), signature, runs, elapsed)
    };

    let sources = policy.sources();
    let (decision, role, grant, denial) = match evaluation.decision() {
        Decision::Allow(grant) => {
            ("allow", Some(grant.role()), serde_json::to_value(grant).unwrap_or_default(), Value::Null)
        }
        Decision::Deny(denial) => ("deny", denial.role(), Value::Null, denial_json(denial, sources)),
    };
    json!({
        "ok": true,
        "decision": decision,
        "role": role,
        "grant": grant,
        "denial": denial,
        "trace": trace_json(&evaluation, sources),
        "signature": signature,
        "now": now,
        "time": {
            "micros_per_decision": if runs == 0 { 0.0 } else { elapsed * 1000.0 / f64::from(runs) },
            "runs": runs,
        },
    })
}

/// Runs `decide` repeatedly for up to [`TIMING_WINDOW_MS`]: browsers coarsen their clock (to
/// 0.1 ms or more), far above one decision's time, so one run alone would measure nothing.
fn time(clock: &dyn Clock, mut decide: impl FnMut()) -> (u32, f64) {
    let start = clock.millis();
    let mut runs = 0;
    loop {
        decide();
        runs += 1;
        let elapsed = clock.millis() - start;
        if elapsed >= TIMING_WINDOW_MS || runs >= TIMING_MAX_RUNS {
            return (runs, elapsed.max(0.0));
        }
    }
}

/// The JWK Set given with a token, bound to one provider.
fn given_keys(program: &Program, options: &EvalOptions) -> Result<ProviderKeys, String> {
    let mut keys = ProviderKeys::new();
    let Some(text) = &options.jwks else { return Ok(keys) };
    let names: Vec<&str> = program.providers.iter().map(|p| program.string(p.name)).collect();
    let role_provider = options.role.as_deref().and_then(|role| {
        let index = program.role_index(role)?;
        let provider = program.roles.get(index as usize)?.provider;
        Some(program.string(program.providers.get(provider as usize)?.name))
    });
    let provider = match (&options.provider, role_provider, names.as_slice()) {
        (Some(name), _, _) if names.contains(&name.as_str()) => name.as_str(),
        (Some(name), _, _) => {
            return Err(format!("no provider is named `{name}` (providers: {})", names.join(", ")));
        }
        (None, Some(provider), _) => provider,
        (None, None, [only]) => only,
        (None, None, _) => {
            return Err(format!(
                "the policy has {} providers; say whose keys these are (providers: {})",
                names.len(),
                names.join(", ")
            ));
        }
    };
    let set = KeySet::from_any(text.as_bytes()).map_err(|e| format!("the keys are not usable: {e}"))?;
    keys.insert(provider, Arc::new(set));
    Ok(keys)
}

fn check_json(check: &FailedCheck, sources: &SourceMap) -> Value {
    let mut out = json!({
        "text": check.text(),
        "path": check.path(),
        "message": check.message(),
    });
    if let (Value::Object(out), Value::Object(at)) = (&mut out, location(sources, check.file(), check.span())) {
        out.extend(at);
    }
    out
}

fn denial_json(denial: &Denial, sources: &SourceMap) -> Value {
    json!({
        "code": denial.code().as_str(),
        "message": denial.message(),
        "role": denial.role(),
        "condition": denial.condition().map(|c| check_json(c, sources)),
        "actual": denial.actual(),
        "seen": denial.seen(),
    })
}

fn trace_json(evaluation: &Evaluation, sources: &SourceMap) -> Value {
    evaluation
        .trace()
        .iter()
        .map(|role| {
            let steps: Vec<Value> = role
                .steps()
                .iter()
                .map(|step| {
                    let mut out = check_json(step.check(), sources);
                    out["outcome"] = serde_json::to_value(step.outcome()).unwrap_or_default();
                    out["passed"] = (step.outcome() == Outcome::Pass).into();
                    out["seen"] = step.seen().cloned().unwrap_or(Value::Null);
                    out["depth"] = step.depth().into();
                    out
                })
                .collect();
            json!({ "role": role.role(), "allowed": role.allowed(), "steps": steps })
        })
        .collect()
}

/// Decodes a compact token *without verifying it*, for display: `header` and `payload` as JSON
/// (or `null` where a part is not valid base64url JSON), the signature's length, and `problem`:
/// what the signature core refuses in the token's structure or header before any key is tried
/// (`alg: none`, an HMAC algorithm, bad base64url...), `null` when nothing.
pub fn decode(token: &str) -> Value {
    let token = token.trim();
    if token.len() > MAX_INPUT_BYTES {
        return failure("the token is larger than 1 MiB", Value::Null);
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return failure(
            format!("a compact token has three parts separated by dots; this has {}", parts.len()),
            Value::Null,
        );
    }
    let part = |text: &str| -> Value {
        claimgate_jose::b64::decode(text.as_bytes())
            .ok()
            .and_then(|bytes| claimgate_jose::json::parse_object(&bytes, 64).ok())
            .map_or(Value::Null, Value::Object)
    };
    let signature_bytes = claimgate_jose::b64::decode(parts[2].as_bytes()).map(|s| s.len()).ok();
    let problem = match claimgate_jose::decode_unverified(token, &claimgate_jose::Limits::DEFAULT) {
        Ok(_) => Value::Null,
        Err(e) => json!({ "code": e.code(), "message": e.to_string() }),
    };
    json!({
        "ok": true,
        "header": part(parts[0]),
        "payload": part(parts[1]),
        "signature_bytes": signature_bytes,
        "problem": problem,
    })
}

/// The inline tests of a policy, to offer each as an example: `name`, `role` (or `null` for
/// automatic selection), `now`, `claims` (the JSON text as written), `expect` (`allow` or
/// `deny`), the expected `code` if the test names one, and its position.
pub fn tests(source: &str) -> Value {
    let policy = load(source);
    if policy.has_errors() {
        return failure(
            "the policy has errors",
            json!({ "diagnostics": diagnostics_json(&policy.diagnostics(), policy.sources()) }),
        );
    }
    let set = policy.set();
    let tests: Vec<Value> = set
        .tests
        .iter()
        .map(|test| {
            let role = match test.role {
                claimgate::model::RoleChoice::Auto => None,
                claimgate::model::RoleChoice::Named(index) => set.roles.get(index).map(|r| r.name.to_string()),
            };
            let (expect, code) = match &test.expect {
                claimgate::model::Expectation::Allow(_) => ("allow", None),
                claimgate::model::Expectation::Deny(deny) => ("deny", deny.code.as_ref().map(|c| c.to_string())),
            };
            let mut out = json!({
                "name": test.name.as_str(),
                "role": role,
                "now": test.now,
                "claims": test.claims.value.as_str(),
                "expect": expect,
                "code": code,
            });
            if let (Value::Object(out), Value::Object(at)) =
                (&mut out, location(policy.sources(), test.file, test.span))
            {
                out.extend(at);
            }
            out
        })
        .collect();
    json!({ "ok": true, "tests": tests })
}
