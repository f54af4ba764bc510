//! The semantics, case by case: every `tests/cases/eval/*.cg` file is a policy with inline
//! tests for one feature (types, lists, paths, missing claims, globs, audiences, time, grants,
//! role selection, conditions). Each file is its own policy set.

mod common;

use claimgate::Policy;
use claimgate::testing::{TestResult, run_tests};

fn run<'p>(policy: &'p Policy) -> Vec<TestResult<'p>> {
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    run_tests(policy.set(), |request| claimgate::reference::evaluate(policy.set(), request))
}

fn report(results: &[TestResult<'_>]) -> String {
    results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| format!("{}: {}", r.test.name, r.differences.join("; ")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_case_file_passes_on_the_reference_interpreter() {
    let mut total = 0;
    for path in common::cg_files(&common::crate_dir().join("tests/cases/eval")) {
        let policy = common::load(&path);
        let results = run(&policy);
        assert!(results.iter().all(TestResult::passed), "{}:\n{}", path.display(), report(&results));
        total += results.len();
    }
    assert!(total >= 100, "only {total} case tests");
}

#[test]
fn the_example_policies_pass_their_own_tests() {
    let policy = common::load(&common::policies_dir());
    let results = run(&policy);
    assert!(results.len() >= 10);
    assert!(results.iter().all(TestResult::passed), "{}", report(&results));
    assert!(results.iter().any(|r| r.evaluation.decision().is_allow()));
    assert!(results.iter().any(|r| !r.evaluation.decision().is_allow()));
}

#[test]
fn a_wrong_expectation_is_reported_for_each_field() {
    let policy = common::load(&common::crate_dir().join("tests/cases/eval-mismatch/wrong-expectations.cg"));
    let results = run(&policy);
    assert_eq!(results.len(), 12);
    for result in &results {
        assert_eq!(result.differences.len(), 1, "{}: {:?}", result.test.name, result.differences);
        let field = result.test.name.trim_start_matches("wrong ").split(':').next().unwrap();
        let difference = &result.differences[0];
        let expected_word = match field {
            "outcome" => "expected",
            "failing condition text" => "failing condition:",
            "failing condition" => "failing condition reads",
            "denied role" => "denied role",
            other => other,
        };
        assert!(difference.contains(expected_word), "{}: {difference}", result.test.name);
    }
}

/// A provider-level denial (here an expired token) names no role under automatic selection,
/// with one candidate as with several (docs/language.md); a role's own failure names it.
#[test]
fn provider_level_denials_name_no_role_even_with_one_candidate() {
    let policy = common::load(&common::crate_dir().join("tests/cases/eval/selection.cg"));
    let program = policy.compile().unwrap();
    let fast = claimgate::vm::Options::default();
    let explained = claimgate::Options::default().explain(true);
    let role_of = |name: &str| {
        let mut roles = Vec::new();
        for options in [&fast, &explained] {
            for result in run_tests(policy.set(), |request| program.evaluate_request(request, options)) {
                if result.test.name == name {
                    let claimgate::Decision::Deny(denial) = result.evaluation.decision() else { panic!("{name}") };
                    roles.push(denial.role().map(str::to_string));
                }
            }
        }
        roles
    };
    assert_eq!(role_of("the only candidate's provider-level failure names no role"), [None, None]);
    assert_eq!(
        role_of("the only candidate's failure is the denial"),
        [Some("actions".to_string()), Some("actions".to_string())]
    );
}

/// Every inline test of every case file and example policy, on the VM, with the decision, the
/// failing condition and the full trace compared with the reference interpreter's.
#[test]
fn the_vm_agrees_with_the_reference_on_every_case() {
    let mut dirs = vec![common::policies_dir()];
    dirs.extend(common::cg_files(&common::crate_dir().join("tests/cases/eval")));
    dirs.push(common::crate_dir().join("tests/cases/eval-mismatch/wrong-expectations.cg"));
    let mut compared = 0;
    for path in dirs {
        let policy = common::load(&path);
        assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
        let program = policy.compile().unwrap();
        let options = claimgate::Options::default().explain(true);
        let vm = run_tests(policy.set(), |request| program.evaluate_request(request, &options));
        let reference = run_tests(policy.set(), |request| claimgate::reference::evaluate(policy.set(), request));
        for (vm, reference) in vm.iter().zip(&reference) {
            let name = &vm.test.name;
            assert_eq!(
                vm.evaluation.decision(),
                reference.evaluation.decision(),
                "{}: {name}: decisions differ",
                path.display()
            );
            assert_eq!(
                vm.evaluation.trace(),
                reference.evaluation.trace(),
                "{}: {name}: traces differ",
                path.display()
            );
            assert_eq!(vm.differences, reference.differences, "{}: {name}", path.display());
            compared += 1;
        }
        // Without explanations the VM takes the indexed path for automatic selection: the same
        // decisions.
        let fast = claimgate::vm::Options::default();
        let vm = run_tests(policy.set(), |request| program.evaluate_request(request, &fast));
        for (vm, reference) in vm.iter().zip(&reference) {
            assert_eq!(
                vm.evaluation.decision(),
                reference.evaluation.decision(),
                "{}: {} (indexed)",
                path.display(),
                vm.test.name
            );
        }
    }
    assert!(compared >= 130, "only {compared} compared");
}
