//! Claim matching (after signature checking) against the engines a user would pick instead, for
//! the same three roles and the same JSON text (see `claimgate_benches::peers` for the roles in
//! every language and the shared claim sets):
//!
//! - `claimgate`: `Program::decide` from payload bytes to a decision (with the grant), one
//!   `Scratch` reused;
//! - `hand-written`: serde_json into borrowed structs plus if-statements, building the same grant
//!   (the floor);
//! - `regorus`: Rego compiled to regorus's RVM bytecode (`Engine::compile_with_entrypoint`, then
//!   `rvm Compiler::compile_from_policy`), one `RegoVM` reused; input parsed with
//!   `Value::from_json_str` each time;
//! - `regorus-interp`: the same compiled policy through the tree-walking interpreter
//!   (`CompiledPolicy::eval_with_input`), for reference;
//! - `cel`: `Program::compile` once, one `Context` reused; the claims parsed with serde_json and
//!   converted with `cel::to_value` each time;
//! - `cedar`: a parsed `PolicySet`, one `Authorizer`, empty `Entities`; the context built with
//!   `Context::from_json_str` from the same text each time, then `Request::new` and
//!   `is_authorized`.
//!
//! Before anything is timed, every variant must reach the expected decision on every shared
//! claim set (allow and deny), and the hand-written grants must equal claimgate's.
//!
//! Goals: claimgate at most 1.5x the hand-written floor, and at least 5x faster than the fastest
//! of regorus, cel and cedar.
//!
//! Run: cargo bench -p claimgate-benches --bench peers -- --warm-up-time 1 --measurement-time 3

use std::hint::black_box;
use std::str::FromStr;

use claimgate::Policy;
use claimgate::decision::Decision;
use claimgate::payload::Scratch;
use claimgate::program::Program;
use claimgate_benches::peers::{self, NOW, Scenario};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn claimgate_program() -> Program {
    let policy = Policy::from_sources([("peers.cg", peers::CLAIMGATE)]);
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    policy.compile().unwrap()
}

/// Rego on regorus, compiled to RVM bytecode.
struct Rego {
    vm: regorus::rvm::RegoVM,
    compiled: regorus::CompiledPolicy,
}

impl Rego {
    fn new(scenario: Scenario) -> Rego {
        let mut engine = regorus::Engine::new();
        engine.add_policy(format!("{}.rego", scenario.name()), scenario.rego().to_string()).unwrap();
        let entry = format!("data.{}.allow", scenario.name());
        let compiled = engine.compile_with_entrypoint(&entry.as_str().into()).unwrap();
        let program =
            regorus::languages::rego::compiler::Compiler::compile_from_policy(&compiled, &[entry.as_str()]).unwrap();
        let mut vm = regorus::rvm::RegoVM::new();
        vm.load_program(program);
        Rego { vm, compiled }
    }

    fn input(claims: &str) -> Option<regorus::Value> {
        let claims = regorus::Value::from_json_str(claims).ok()?;
        let mut input = regorus::Value::new_object();
        let object = input.as_object_mut().ok()?;
        object.insert(regorus::Value::from("now"), regorus::Value::from(NOW));
        object.insert(regorus::Value::from("claims"), claims);
        Some(input)
    }

    fn decide(&mut self, claims: &str) -> bool {
        let Some(input) = Rego::input(claims) else { return false };
        self.vm.set_input(input);
        self.vm.execute().is_ok_and(|v| v == regorus::Value::from(true))
    }

    fn decide_interpreted(&self, claims: &str) -> bool {
        let Some(input) = Rego::input(claims) else { return false };
        self.compiled.eval_with_input(input).is_ok_and(|v| v == regorus::Value::from(true))
    }
}

/// CEL on the `cel` crate.
struct Cel {
    program: cel::Program,
    context: cel::Context<'static, 'static>,
}

impl Cel {
    fn new(scenario: Scenario) -> Cel {
        let program = cel::Program::compile(scenario.cel()).unwrap();
        let mut context = cel::Context::default();
        context.add_variable_from_value("now", NOW);
        Cel { program, context }
    }

    fn decide(&mut self, claims: &str) -> bool {
        let Ok(json) = serde_json::from_str::<serde_json::Value>(claims) else { return false };
        let Ok(value) = cel::to_value(json) else { return false };
        self.context.add_variable_from_value("claims", value);
        self.program.execute(&self.context).is_ok_and(|v| v == cel::Value::Bool(true))
    }
}

/// Cedar on `cedar-policy`.
struct Cedar {
    policies: cedar_policy::PolicySet,
    authorizer: cedar_policy::Authorizer,
    entities: cedar_policy::Entities,
    principal: cedar_policy::EntityUid,
    action: cedar_policy::EntityUid,
    resource: cedar_policy::EntityUid,
}

impl Cedar {
    fn new(scenario: Scenario) -> Cedar {
        Cedar {
            policies: cedar_policy::PolicySet::from_str(scenario.cedar()).unwrap(),
            authorizer: cedar_policy::Authorizer::new(),
            entities: cedar_policy::Entities::empty(),
            principal: cedar_policy::EntityUid::from_str(r#"Workload::"token""#).unwrap(),
            action: cedar_policy::EntityUid::from_str(r#"Action::"login""#).unwrap(),
            resource: cedar_policy::EntityUid::from_str(&format!(r#"Role::"{}""#, scenario.role())).unwrap(),
        }
    }

    fn decide(&self, claims: &str) -> bool {
        let json = format!(r#"{{"now":{NOW},"claims":{claims}}}"#);
        let Ok(context) = cedar_policy::Context::from_json_str(&json, None) else { return false };
        let Ok(request) = cedar_policy::Request::new(
            self.principal.clone(),
            self.action.clone(),
            self.resource.clone(),
            context,
            None,
        ) else {
            return false;
        };
        self.authorizer.is_authorized(&request, &self.policies, &self.entities).decision()
            == cedar_policy::Decision::Allow
    }
}

/// Every variant reaches the expected decision on every shared claim set (all disagreements are
/// listed before failing).
fn assert_equivalent(program: &Program) {
    let mut scratch = Scratch::default();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for scenario in Scenario::ALL {
        let mut rego = Rego::new(scenario);
        let mut cel = Cel::new(scenario);
        let cedar = Cedar::new(scenario);
        for case in peers::cases().into_iter().filter(|c| c.scenario == scenario) {
            let what =
                format!("{} / {} (expected {})", scenario.name(), case.what, if case.allow { "allow" } else { "deny" });
            let decision = program.decide(case.claims.as_bytes(), Some(scenario.role()), NOW, &mut scratch);
            if decision.is_allow() != case.allow {
                wrong.push(format!("claimgate: {what}: {decision:?}"));
            }
            let floor = scenario.floor(case.claims.as_bytes());
            if floor.is_some() != case.allow {
                wrong.push(format!("hand-written: {what}"));
            }
            if let (Decision::Allow(grant), Some(floor)) = (&decision, &floor)
                && (grant.identity(), grant.user(), grant.metadata(), grant.policies())
                    != (floor.identity.as_str(), floor.user.as_deref(), &floor.metadata[..], &floor.policies[..])
            {
                wrong.push(format!("grants differ: {what}: {grant:?} {floor:?}"));
            }
            if rego.decide(&case.claims) != case.allow {
                wrong.push(format!("regorus: {what}"));
            }
            if rego.decide_interpreted(&case.claims) != case.allow {
                wrong.push(format!("regorus interpreter: {what}"));
            }
            if cel.decide(&case.claims) != case.allow {
                wrong.push(format!("cel: {what}: {:?}", cel.program.execute(&cel.context)));
            }
            if cedar.decide(&case.claims) != case.allow {
                wrong.push(format!("cedar: {what}"));
            }
            checked += 1;
        }
    }
    assert!(wrong.is_empty(), "variants disagree:\n{}", wrong.join("\n"));
    eprintln!("peers: all 6 variants agree on {checked} shared claim sets");
}

fn bench_peers(c: &mut Criterion) {
    let program = claimgate_program();
    assert_equivalent(&program);
    let mut scratch = Scratch::default();
    for scenario in Scenario::ALL {
        let text = scenario.allowed();
        let role = scenario.role();
        let mut rego = Rego::new(scenario);
        let mut cel = Cel::new(scenario);
        let cedar = Cedar::new(scenario);
        let mut group = c.benchmark_group(format!("peers/{}", scenario.name()));
        group.throughput(Throughput::Elements(1));
        group.bench_function("claimgate", |b| {
            b.iter(|| program.decide(black_box(text.as_bytes()), Some(role), NOW, &mut scratch))
        });
        group.bench_function("hand-written", |b| b.iter(|| scenario.floor(black_box(text.as_bytes()))));
        group.bench_function("regorus", |b| b.iter(|| rego.decide(black_box(text))));
        group.bench_function("regorus-interp", |b| b.iter(|| rego.decide_interpreted(black_box(text))));
        group.bench_function("cel", |b| b.iter(|| cel.decide(black_box(text))));
        group.bench_function("cedar", |b| b.iter(|| cedar.decide(black_box(text))));
        group.finish();
    }
}

criterion_group!(benches, bench_peers);
criterion_main!(benches);
