//! Running the tests written inside policy files: evaluate each test's claims at its fixed time
//! and compare the decision with what the test expects.

use crate::ast::{ConditionKind, Item};
use crate::decision::{Decision, Evaluation, Request};
use crate::fmt::{condition_text, path_text};
use crate::model::{Expectation, ExpectedCondition, PolicySet, RoleChoice, Test};
use crate::source::FileId;

/// The result of one inline test.
#[derive(Debug)]
pub struct TestResult<'s> {
    pub test: &'s Test,
    pub evaluation: Evaluation,
    /// Each way the decision differs from the expectation; empty when the test passed.
    pub differences: Vec<String>,
}

impl TestResult<'_> {
    pub fn passed(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Runs every test of the set with `evaluate` (the reference interpreter or the VM).
pub fn run_tests<'s>(set: &'s PolicySet, evaluate: impl Fn(&Request<'_>) -> Evaluation) -> Vec<TestResult<'s>> {
    set.tests
        .iter()
        .map(|test| {
            let claims = test.claims_json.as_object().cloned().unwrap_or_default();
            let role = match test.role {
                RoleChoice::Auto => None,
                RoleChoice::Named(index) => Some(set.roles[index].name.as_str()),
            };
            let mut evaluation = evaluate(&Request {
                role,
                claims: &claims,
                claims_text: Some(test.claims.value.as_str()),
                now: test.now,
                header: test.header.as_ref(),
            });
            // A test that gives the client's address checks the role's `bound_cidrs`, as the
            // engine does after the decision.
            if let (Some(address), Decision::Allow(grant)) = (test.client_address, &evaluation.decision)
                && let Err(denial) = grant.clone().for_address(Some(address))
            {
                evaluation.decision = Decision::Deny(*denial);
            }
            let differences = differences(set, &test.expect, &evaluation.decision);
            TestResult { test, evaluation, differences }
        })
        .collect()
}

fn differences(set: &PolicySet, expect: &Expectation, decision: &Decision) -> Vec<String> {
    let mut out = Vec::new();
    let mut compare = |what: &str, expected: String, actual: String| {
        if expected != actual {
            out.push(format!("{what}: expected {expected}, got {actual}"));
        }
    };
    match (expect, decision) {
        (Expectation::Allow(e), Decision::Allow(grant)) => {
            if let Some(role) = e.role {
                compare("role", quoted(&set.roles[role].name), quoted(&grant.role));
            }
            if let Some(identity) = &e.identity {
                compare("identity", quoted(identity), quoted(&grant.identity));
            }
            if let Some(user) = &e.user {
                compare("user", quoted(user), grant.user.as_deref().map_or("no user".to_string(), quoted));
            }
            if let Some(groups) = &e.groups {
                compare("groups", list(groups), list(&grant.groups));
            }
            if let Some(policies) = &e.policies {
                compare("policies", list(policies), list(&grant.policies));
            }
            if let Some(metadata) = &e.metadata {
                let mut expected: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let mut actual: Vec<(&str, &str)> =
                    grant.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                expected.sort();
                actual.sort();
                let show = |pairs: &[(&str, &str)]| {
                    format!(
                        "{{{}}}",
                        pairs.iter().map(|(k, v)| format!("{k} = {}", quoted(v))).collect::<Vec<_>>().join(", ")
                    )
                };
                compare("metadata", show(&expected), show(&actual));
            }
        }
        (Expectation::Deny(e), Decision::Deny(denial)) => {
            if let Some(role) = e.role {
                compare(
                    "denied role",
                    quoted(&set.roles[role].name),
                    denial.role.as_deref().map_or("none".into(), quoted),
                );
            }
            if let Some(code) = &e.code {
                compare("code", code.to_string(), denial.code.as_str().to_string());
            }
            if let Some(expected) = &e.condition {
                let actual = denial.condition.as_ref();
                match expected {
                    ExpectedCondition::Claim(path) => compare(
                        "failing condition reads",
                        path_text(path),
                        actual.and_then(|c| c.path.clone()).unwrap_or_else(|| "no claim".to_string()),
                    ),
                    ExpectedCondition::Text(text) => compare(
                        "failing condition",
                        canonical_condition(text).unwrap_or_else(|| text.to_string()),
                        actual.map_or("none".to_string(), |c| c.text.clone()),
                    ),
                }
            }
        }
        (Expectation::Allow(_), Decision::Deny(denial)) => {
            let at = denial.condition.as_ref().map(|c| format!(" at `{}`", c.text)).unwrap_or_default();
            out.push(format!("expected allow, got deny ({}): {}{at}", denial.code.as_str(), denial.message));
        }
        (Expectation::Deny(_), Decision::Allow(grant)) => {
            out.push(format!(
                "expected deny, got allow as role `{}` with identity {}",
                grant.role,
                quoted(&grant.identity)
            ));
        }
    }
    out
}

fn quoted(text: &str) -> String {
    format!("{text:?}")
}

fn list(items: &[impl AsRef<str>]) -> String {
    format!("[{}]", items.iter().map(|i| quoted(i.as_ref())).collect::<Vec<_>>().join(", "))
}

/// A condition written in a test, in the canonical text the evaluator reports, so that spacing
/// and quoting style do not matter. `None` if the text is not a condition.
pub fn canonical_condition(text: &str) -> Option<String> {
    let wrapped = format!("role r {{\n  require {{\n    {text}\n  }}\n}}\n");
    let parsed = crate::parser::parse(FileId(0), &wrapped, &crate::parser::Limits::default());
    if parsed.has_errors() {
        return None;
    }
    let item = parsed.ast.items.first()?;
    let Item::Require(require) = item.body.items.first()? else { return None };
    match require.conditions.as_slice() {
        [condition] if !matches!(condition.kind, ConditionKind::Group(ref g) if g.conditions.is_empty()) => {
            Some(condition_text(condition))
        }
        _ => None,
    }
}
