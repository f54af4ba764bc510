//! `claimgate test`, `claimgate eval` and `claimgate compile`: decisions on claims, with
//! explanations, by the compiled program and its VM (the same code services run).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use claimgate::decision::{Decision, Denial, DenyCode, Evaluation, FailedCheck, Outcome, Step, short_json};
use claimgate::diagnostic::{self, RenderOptions};
use claimgate::payload::Scratch;
use claimgate::program::{KeysCode, Program};
use claimgate::vm::{Options, ProviderKeys};
use claimgate::{Policy, SourceMap, Span};
use claimgate_jose::KeySet;

use crate::output::text;
use crate::{Format, Output, UsageError, load};

/// Loads a policy set for running it; problems in the policies end the command with exit 1.
fn load_clean(paths: &[PathBuf], output: &Output) -> Result<Result<Policy, ExitCode>, UsageError> {
    let policy = load(paths)?;
    if policy.has_errors() {
        output.diagnostics(&policy.diagnostics(), policy.sources());
        eprintln!("error: the policies have problems; fix them first (`claimgate check`)");
        return Ok(Err(ExitCode::from(1)));
    }
    Ok(Ok(policy))
}

/// `file:line:col` with the sources at hand, `file@offset` from a compiled set alone.
fn location(program: &Program, sources: Option<&SourceMap>, file: claimgate::FileId, span: Span) -> String {
    match sources {
        Some(sources) => {
            let source = sources.get(file);
            let at = source.line_col(span.start as usize);
            format!("{}:{}:{}", source.name, at.line, at.column)
        }
        None => {
            let name = program.files.get(file.0 as usize).map_or("?", |f| f.as_ref());
            format!("{name}@{}", span.start)
        }
    }
}

pub(crate) fn test(paths: &[PathBuf], output: &Output) -> Result<ExitCode, UsageError> {
    let policy = match load_clean(paths, output)? {
        Ok(policy) => policy,
        Err(code) => return Ok(code),
    };
    let set = policy.set();
    let program = policy.compile().map_err(|e| UsageError(format!("internal error: {e}")))?;
    let options = Options::default().explain(true);
    let results = claimgate::testing::run_tests(set, |request| program.evaluate_request(request, &options));
    let failed = results.iter().filter(|r| !r.passed()).count();
    match output.format {
        Format::Human => {
            for result in &results {
                let mark = if result.passed() { "ok  " } else { "FAIL" };
                let at = location(&program, Some(policy.sources()), result.test.file, result.test.span);
                out!("{mark} {}  ({at})", text(&result.test.name));
                for difference in &result.differences {
                    out!("       {}", text(difference));
                }
                if !result.passed() {
                    print_trace(&result.evaluation, &program, Some(policy.sources()), "       ");
                }
            }
        }
        Format::Json => {
            let json: Vec<serde_json::Value> = results
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "name": r.test.name,
                        "location": location(&program, Some(policy.sources()), r.test.file, r.test.span),
                        "passed": r.passed(),
                        "differences": r.differences,
                        "decision": r.evaluation.decision(),
                    })
                })
                .collect();
            // One JSON document: the summary is part of it.
            let summary = serde_json::json!({ "tests": json, "passed": results.len() - failed, "failed": failed });
            out!("{}", crate::output::json(&summary));
        }
    }
    if output.format == Format::Human {
        out!("{} passed, {failed} failed", results.len() - failed);
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Parses `--now`: whole seconds since the epoch, or an RFC 3339 time.
fn parse_now(now: Option<&str>) -> Result<i64, UsageError> {
    match now {
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .map_err(|_| UsageError("the system clock is before 1970".to_string())),
        Some(text) => text.parse::<i64>().ok().or_else(|| claimgate::check::parse_rfc3339(text)).ok_or_else(|| {
            UsageError(format!("--now `{text}` is neither seconds since the epoch nor an RFC 3339 time"))
        }),
    }
}

/// The largest claims file read (a token's payload is bounded far below this).
const MAX_CLAIMS_FILE: u64 = 1 << 20;

/// The claims file's bytes, as a token's payload would be: what they hold (duplicate keys, a
/// number beyond a 64-bit float, no JSON at all) is the decision's to judge, as `payload_invalid`
/// with the payload parser's located message, the same answer the token would get.
fn read_claims_bytes(path: &Path) -> Result<Vec<u8>, UsageError> {
    claimgate_engine::read_bounded(path, MAX_CLAIMS_FILE).map_err(UsageError)
}

/// What `eval` decides on: claims taken as given, or a token whose signature is verified first.
pub(crate) enum Input {
    Claims(PathBuf),
    /// `keys`: the `--keys` values, `PROVIDER=FILE` or a bare `FILE`.
    Token {
        token: String,
        keys: Vec<String>,
    },
}

/// The keys `eval --token` verifies with, looked up for the one provider the token selects:
/// `--keys` overrides, then the provider's own source: inline keys (in the program), its
/// `jwks_file` (read relative to its policy file, as `claimgate check` reads it), or its
/// `jwks_url` / `discovery_url`, fetched once. What could not be loaded is remembered, to explain
/// a `keys_unavailable` denial.
struct EvalKeys<'p> {
    program: &'p Program,
    given: ProviderKeys,
    loaded: std::cell::RefCell<std::collections::HashMap<String, Option<std::sync::Arc<KeySet>>>>,
    problems: std::cell::RefCell<Vec<(String, String)>>,
}

impl claimgate::vm::KeyLookup for EvalKeys<'_> {
    fn keys(&self, provider: &str) -> Option<std::sync::Arc<KeySet>> {
        if let Some(keys) = self.given.get(provider) {
            return Some(keys.clone());
        }
        if let Some(loaded) = self.loaded.borrow().get(provider) {
            return loaded.clone();
        }
        let loaded = match self.load(provider) {
            Ok(keys) => keys.map(std::sync::Arc::new),
            Err(problem) => {
                self.problems.borrow_mut().push((provider.to_string(), problem));
                None
            }
        };
        self.loaded.borrow_mut().insert(provider.to_string(), loaded.clone());
        loaded
    }
}

impl EvalKeys<'_> {
    /// The provider's own keys when they live outside the program; `Ok(None)` for inline keys.
    fn load(&self, provider: &str) -> Result<Option<KeySet>, String> {
        let program = self.program;
        let Some(index) = program.provider_index(provider) else { return Ok(None) };
        match &program.providers[index as usize].keys {
            KeysCode::JwksFile { path, file } => {
                let policy_file = program.files.get(*file as usize).map_or("", |f| f.as_ref());
                let base = Path::new(policy_file).parent().unwrap_or(Path::new("."));
                let path = base.join(program.string(*path));
                let limits = claimgate_jose::KeyLimits::default();
                let bytes = claimgate_engine::read_bounded(&path, limits.max_bytes as u64)?;
                KeySet::from_jwks_json(&bytes)
                    .map(Some)
                    .map_err(|e| format!("`{}` is not a usable JWK Set: {e}", path.display()))
            }
            KeysCode::JwksUrl { .. } | KeysCode::Discovery { .. } => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the key fetch: {e}"))?;
                let limits = claimgate_jose::KeyLimits::default();
                match runtime.block_on(claimgate_engine::fetch_provider_keys(program, provider, &limits)) {
                    Some(Ok(keys)) => Ok(Some(keys)),
                    Some(Err(problem)) => Err(format!("{problem} (or pass --keys {provider}=FILE)")),
                    None => Ok(None),
                }
            }
            _ => Ok(None),
        }
    }
}

/// `--keys` values: `PROVIDER=FILE`, or a bare `FILE` when there is one provider.
fn given_keys(program: &Program, overrides: &[String]) -> Result<ProviderKeys, UsageError> {
    let mut keys = ProviderKeys::new();
    let names: Vec<&str> = program.providers.iter().map(|p| program.string(p.name)).collect();
    for value in overrides {
        let (provider, file) = match value.split_once('=') {
            Some((name, file)) if names.contains(&name) => (name.to_string(), file),
            Some((name, _)) if !Path::new(value).exists() => {
                return Err(UsageError(format!(
                    "--keys {value}: no provider is named `{name}` (providers: {})",
                    names.join(", ")
                )));
            }
            _ => match names.as_slice() {
                [only] => (only.to_string(), value.as_str()),
                _ => {
                    return Err(UsageError(format!(
                        "--keys {value}: the policies have {} providers; say whose keys these are with \
                         --keys PROVIDER=FILE (providers: {})",
                        names.len(),
                        names.join(", ")
                    )));
                }
            },
        };
        let max = claimgate_jose::KeyLimits::default().max_bytes as u64;
        let bytes = claimgate_engine::read_bounded(Path::new(file), max).map_err(UsageError)?;
        let set = KeySet::from_any(&bytes).map_err(|e| UsageError(format!("`{file}` holds no usable key: {e}")))?;
        if keys.insert(provider.clone(), set).is_some() {
            return Err(UsageError(format!("--keys names provider `{provider}` twice")));
        }
    }
    Ok(keys)
}

pub(crate) fn eval(
    paths: &[PathBuf],
    role: Option<&str>,
    input: Input,
    now: Option<&str>,
    explain: bool,
    output: &Output,
) -> Result<ExitCode, UsageError> {
    let now = parse_now(now)?;
    // A compiled set (`*.cgb`) runs without its sources; policies are parsed, checked, compiled.
    let (program, policy) = match paths {
        [path] if path.extension().is_some_and(|e| e == "cgb") => {
            let bytes = claimgate_engine::read_bounded(path, 64 << 20).map_err(UsageError)?;
            let program = Program::from_bytes(&bytes)
                .map_err(|e| UsageError(format!("cannot load `{}`: {e}", path.display())))?;
            (program, None)
        }
        _ => {
            let policy = match load_clean(paths, output)? {
                Ok(policy) => policy,
                Err(code) => return Ok(code),
            };
            let program = policy.compile().map_err(|e| UsageError(format!("internal error: {e}")))?;
            (program, Some(policy))
        }
    };
    // Always traced: a denial by an `any`/`all` group shows its branches even without --explain.
    let options = Options::default().explain(true);
    let mut scratch = Scratch::default();
    let on_token = matches!(input, Input::Token { .. });
    let (evaluation, verified) = match input {
        Input::Claims(path) => {
            // Decided on the bytes as given, as a service decides on a token's payload: what they
            // hold is judged by the payload parser (payload_invalid), numbers keep their text.
            let bytes = read_claims_bytes(&path)?;
            (program.evaluate(&bytes, role, now, &options, &mut scratch), None)
        }
        Input::Token { token, keys } => {
            let token = crate::token::read_token(Some(&token))?;
            let keys = EvalKeys {
                program: &program,
                given: given_keys(&program, &keys)?,
                loaded: Default::default(),
                problems: Default::default(),
            };
            let result = program.decide_token(token.as_bytes(), &keys, role, now, &options, &mut scratch);
            if let Decision::Deny(denial) = result.evaluation().decision()
                && denial.code() == DenyCode::KeysUnavailable
            {
                for (provider, problem) in keys.problems.borrow().iter() {
                    eprintln!("note: provider `{provider}`: {problem}");
                }
            }
            let used = result.verified().map(|v| {
                let key = v.key().kid.as_ref().map_or(format!("key {}", v.key().index), |kid| format!("key `{kid}`"));
                format!("{key} of provider `{}`", v.provider())
            });
            (result.into_evaluation(), used)
        }
    };
    let allowed = evaluation.decision().is_allow();
    match output.format {
        Format::Json => {
            let mut json = serde_json::json!({
                "signature_checked": verified.is_some(),
                "verified_with": verified,
                "now": now,
                "decision": evaluation.decision(),
            });
            if explain {
                json["trace"] = serde_json::to_value(evaluation.trace()).unwrap_or_default();
            }
            out!("{}", crate::output::json(&json));
        }
        Format::Human => {
            let sources = policy.as_ref().map(|p| p.sources());
            print_evaluation(&evaluation, &program, sources, (on_token, verified.as_deref()), explain, output.color)
        }
    }
    Ok(if allowed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub(crate) fn compile(
    paths: &[PathBuf],
    out: Option<&Path>,
    disasm: bool,
    output: &Output,
) -> Result<ExitCode, UsageError> {
    let policy = match load_clean(paths, output)? {
        Ok(policy) => policy,
        Err(code) => return Ok(code),
    };
    let program = policy.compile().map_err(|e| UsageError(format!("internal error: {e}")))?;
    if disasm {
        out_raw!("{}", program.disassemble());
    }
    let bytes = program.to_bytes();
    match out {
        Some(path) => {
            std::fs::write(path, &bytes).map_err(|e| UsageError(format!("cannot write `{}`: {e}", path.display())))?;
            eprintln!("compiled {} into {} ({} bytes)", roles(program.roles.len()), path.display(), bytes.len());
        }
        None if !disasm => {
            eprintln!("compiled {} ({} bytes); write them with -o FILE", roles(program.roles.len()), bytes.len())
        }
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn print_evaluation(
    evaluation: &Evaluation,
    program: &Program,
    sources: Option<&SourceMap>,
    (on_token, verified): (bool, Option<&str>),
    explain: bool,
    color: bool,
) {
    match verified {
        Some(key) => eprintln!("note: the signature was verified with {}", text(key)),
        None if on_token => eprintln!("note: the token was refused before its signature was verified"),
        None => eprintln!("note: the claims were taken as given; no signature was checked"),
    }
    if explain {
        print_trace(evaluation, program, sources, "");
    }
    match evaluation.decision() {
        Decision::Allow(grant) => {
            out!("allow: role `{}`", text(grant.role()));
            out!("  identity  {}", text(grant.identity()));
            if let Some(user) = grant.user() {
                out!("  user      {}", text(user));
            }
            if !grant.groups().is_empty() {
                out!("  groups    {}", text(&grant.groups().join(", ")));
            }
            if !grant.policies().is_empty() {
                out!("  policies  {}", text(&grant.policies().join(", ")));
            }
            for (name, value) in grant.metadata() {
                out!("  metadata  {} = \"{}\"", text(name), text(value));
            }
            let token = grant.token();
            let durations = [
                ("ttl", token.ttl),
                ("max_ttl", token.max_ttl),
                ("explicit_max_ttl", token.explicit_max_ttl),
                ("period", token.period),
            ];
            for (name, value) in durations {
                if let Some(seconds) = value {
                    out!("  token     {name} = {seconds}s");
                }
            }
        }
        Decision::Deny(denial) => {
            out!("deny ({}): {}", denial.code().as_str(), text(denial.message()));
            if let (Some(sources), Some(_)) = (sources, denial.condition()) {
                let rendered =
                    diagnostic::render_denial(denial, sources, RenderOptions { color, ..RenderOptions::default() });
                out_raw!("{}", crate::output::rendered(&rendered));
            } else if let Some(check) = denial.condition() {
                let at = location(program, None, check.file(), check.span());
                out!("  failing check `{}` at {at}; {}", text(check.text()), text(&denial.seen()));
            }
            if !explain {
                print_group_branches(evaluation, denial, program, sources);
            }
            if !explain && denial.role().is_none() {
                out!("(--explain shows every role tried and every check)");
            }
        }
    }
}

fn print_trace(evaluation: &Evaluation, program: &Program, sources: Option<&SourceMap>, indent: &str) {
    for trace in evaluation.trace() {
        let (role, steps, allowed) = (trace.role(), trace.steps(), trace.allowed());
        out!("{indent}role `{}`: {}", text(role), if allowed { "allows" } else { "denies" });
        for step in steps {
            print_step(step, program, sources, indent, 0);
        }
    }
}

/// One trace line: the outcome, the check, the value seen and where the check is; indented by
/// its depth below `base`.
fn print_step(step: &Step, program: &Program, sources: Option<&SourceMap>, indent: &str, base: usize) {
    let mark = match step.outcome() {
        Outcome::Pass => "✓",
        Outcome::Fail => "✗",
        Outcome::Missing => "✗ (missing)",
        Outcome::TypeMismatch => "✗ (wrong type)",
        _ => "✗",
    };
    let seen = match (step.seen(), step.check().path()) {
        (Some(value), _) => format!("  — token has {}", short_json(value)),
        (None, Some(_)) => "  — token has no such claim".to_string(),
        (None, None) => String::new(),
    };
    let pad = "  ".repeat(step.depth().saturating_sub(base));
    let at = location(program, sources, step.check().file(), step.check().span());
    out!("{indent}  {pad}{mark} {}{}  [{at}]", text(step.check().text()), text(&seen));
}

/// For a denial by an `any`/`all` group, each of its branches with its outcome and the value
/// seen (the lines of the trace under the group's own step).
fn print_group_branches(evaluation: &Evaluation, denial: &Denial, program: &Program, sources: Option<&SourceMap>) {
    let Some(check) = denial.condition().filter(|c| c.path().is_none()) else { return };
    let Some(trace) = evaluation.trace().iter().find(|t| Some(t.role()) == denial.role()) else { return };
    let steps = trace.steps();
    let same_place = |c: &FailedCheck| {
        c.file() == check.file() && c.span().start == check.span().start && c.span().end == check.span().end
    };
    let Some(at) = steps.iter().position(|s| same_place(s.check())) else { return };
    let depth = steps[at].depth();
    out!("  the group's branches:");
    for step in steps[at + 1..].iter().take_while(|s| s.depth() > depth) {
        print_step(step, program, sources, "  ", depth + 1);
    }
}

/// "1 role", "2 roles".
fn roles(n: usize) -> String {
    if n == 1 { "1 role".to_string() } else { format!("{n} roles") }
}
