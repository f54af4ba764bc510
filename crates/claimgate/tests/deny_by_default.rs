//! Deny by default, as properties over generated policies and claims:
//! - removing a claim that a condition reads never turns a deny into an allow (for policies that
//!   do not test for absence with `absent` or `not ... exists`, and for claims not read by an
//!   `optional` mapping, whose absence is allowed on purpose);
//! - changing a claim's JSON type to one that no condition reading it accepts never turns a deny
//!   into an allow, under every combination of `not`, `any` and `all` the generator makes (a
//!   type mismatch is unknown, like a missing claim);
//! - adding a claim that no rule reads never changes a decision;
//! - moving `now` past `exp + clock_skew` always denies;
//! - every allow's grant is built only from claims the role reads.

mod common;

use claimgate::Policy;
use claimgate::decision::{Decision, Request};
use common::generate::{PATHS, claims, policy};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn decide(policy: &Policy, role: Option<&str>, claims: &Map<String, Value>, now: i64) -> Decision {
    claimgate::reference::evaluate(policy.set(), &Request { role, claims, claims_text: None, now, header: None })
        .into_decision()
}

fn roles(policy: &Policy) -> Vec<Option<String>> {
    std::iter::once(None).chain(policy.set().roles.iter().map(|r| Some(r.name.to_string()))).collect()
}

/// The top-level claim names the generated conditions read.
fn condition_claims() -> Vec<&'static str> {
    PATHS.iter().map(|p| p.trim_start_matches("claims.").split(['.', '[']).next().unwrap().trim_matches('"')).collect()
}

/// Whether some condition or mapping of `text` can accept a claim `name` holding a value of
/// `value`'s JSON type: an operator made for that type (`==`/`!=`/`in` with a literal of the
/// type, an ordering for numbers, `glob`/`matches` for strings, `contains` for lists), a path
/// that reads inside it (`.x` for objects, `[0]` for lists), or a grant mapping that takes it.
/// A value of any other type is a type mismatch for every condition that reads the claim.
fn accepts(text: &str, name: &str, value: &Value) -> bool {
    let quoted = if name.contains('.') { format!("claims.\"{name}\"") } else { format!("claims.{name}") };
    let literal_of_type = |rest: &str| {
        let literals: Vec<&str> = rest.trim_start_matches('[').trim_end_matches(']').split(", ").collect();
        literals.iter().any(|l| match value {
            Value::String(_) => l.starts_with('"'),
            Value::Bool(_) => *l == "true" || *l == "false",
            Value::Number(_) => l.starts_with(|c: char| c == '-' || c.is_ascii_digit()),
            _ => false,
        })
    };
    text.lines().map(str::trim).filter(|line| line.contains(&quoted)).any(|line| {
        let Some(at) = line.find(&quoted) else { return false };
        let after = &line[at + quoted.len()..];
        if after.starts_with('.') {
            return value.is_object();
        }
        if after.starts_with('[') {
            return value.is_array();
        }
        let op = after.trim_start();
        // Grant mappings take their own types (a wrong one denies).
        if line.starts_with("identity") || line.starts_with("user") {
            return value.is_string();
        }
        if line.starts_with("groups") {
            return value.is_array() || value.is_string();
        }
        if line.starts_with("m ") {
            return value.is_string() || value.is_number() || value.is_boolean();
        }
        if line.starts_with("policies") {
            return value.is_string() || value.is_array();
        }
        match value {
            Value::Array(_) => op.starts_with("contains"),
            Value::Number(_) if ["<", ">"].iter().any(|o| op.starts_with(o)) => true,
            Value::String(_) if op.starts_with("glob") || op.starts_with("matches") => true,
            _ => {
                let rest = op.split_once(' ').map_or("", |(_, rest)| rest);
                (op.starts_with("==") || op.starts_with("!=") || op.starts_with("in ")) && literal_of_type(rest)
            }
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn removing_a_claim_never_turns_a_deny_into_an_allow(text in policy(), claim_sets in prop::collection::vec(claims(), 1..5)) {
        let tests_absence = text.contains("absent") || (text.contains("not") && text.contains("exists"));
        prop_assume!(!tests_absence);
        let policy = Policy::from_sources([("generated.cg", text.as_str())]);
        prop_assert!(!policy.has_errors());
        for claims in &claim_sets {
            for role in roles(&policy) {
                let role = role.as_deref();
                if decide(&policy, role, claims, 1_000).is_allow() {
                    continue;
                }
                // The special "k.y" key is read as one key; dotted names are top-level keys here.
                for name in condition_claims().into_iter().chain(["k.y"]) {
                    if text.contains(&format!("optional claims.{name}")) {
                        continue;
                    }
                    let mut fewer = claims.clone();
                    if fewer.remove(name).is_none() {
                        continue;
                    }
                    prop_assert!(
                        !decide(&policy, role, &fewer, 1_000).is_allow(),
                        "removing `{}` allowed role {:?}\nclaims {}\n{}", name, role, Value::Object(claims.clone()), text
                    );
                }
            }
        }
    }

    #[test]
    fn changing_a_claims_type_never_turns_a_deny_into_an_allow(text in policy(), claim_sets in prop::collection::vec(claims(), 1..5)) {
        // `exists` is satisfied by any present value, whatever its type, and absence tests are
        // satisfied by removal: both are deliberate, so such policies are left out.
        prop_assume!(!text.contains("exists") && !text.contains("absent"));
        let policy = Policy::from_sources([("generated.cg", text.as_str())]);
        prop_assert!(!policy.has_errors());
        let replacements = [json!("q"), json!(7), json!(false), json!(["q"]), json!({ "zz": 1 })];
        for claims in &claim_sets {
            for role in roles(&policy) {
                let role = role.as_deref();
                if decide(&policy, role, claims, 1_000).is_allow() {
                    continue;
                }
                for name in condition_claims().into_iter().chain(["k.y"]) {
                    for value in &replacements {
                        if accepts(&text, name, value) {
                            continue;
                        }
                        let mut changed = claims.clone();
                        changed.insert(name.to_string(), value.clone());
                        prop_assert!(
                            !decide(&policy, role, &changed, 1_000).is_allow(),
                            "`{}` = {} allowed role {:?}\nclaims {}\n{}", name, value, role, Value::Object(claims.clone()), text
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_unrelated_claim_changes_nothing(text in policy(), claim_sets in prop::collection::vec(claims(), 1..5), extra in any::<i64>()) {
        let policy = Policy::from_sources([("generated.cg", text.as_str())]);
        prop_assert!(!policy.has_errors());
        for claims in &claim_sets {
            let mut more = claims.clone();
            more.insert("unrelated_claim".into(), json!({ "x": extra, "y": [extra, "z"] }));
            for role in roles(&policy) {
                prop_assert_eq!(decide(&policy, role.as_deref(), claims, 1_000), decide(&policy, role.as_deref(), &more, 1_000));
            }
        }
    }

    #[test]
    fn past_exp_plus_skew_always_denies(text in policy(), claim_sets in prop::collection::vec(claims(), 1..5), late in 1i64..100_000) {
        let policy = Policy::from_sources([("generated.cg", text.as_str())]);
        prop_assert!(!policy.has_errors());
        let skew = policy.set().providers[0].clock_skew as i64;
        for claims in &claim_sets {
            let Some(exp) = claims.get("exp").and_then(Value::as_f64) else { continue };
            let now = exp.ceil() as i64 + skew + late;
            for role in roles(&policy) {
                prop_assert!(!decide(&policy, role.as_deref(), claims, now).is_allow(), "allowed at {} with exp {}", now, exp);
            }
        }
    }

    #[test]
    fn grants_use_only_claims_the_role_reads(text in policy(), claim_sets in prop::collection::vec(claims(), 1..5)) {
        let policy = Policy::from_sources([("generated.cg", text.as_str())]);
        prop_assert!(!policy.has_errors());
        for claims in &claim_sets {
            for role in roles(&policy) {
                let Decision::Allow(grant) = decide(&policy, role.as_deref(), claims, 1_000) else { continue };
                // Every claim the generated roles could put into a grant, with a marker value.
                let mut marked = claims.clone();
                for (key, value) in marked.iter_mut() {
                    if !["a", "b", "n", "list", "sub"].contains(&key.as_str()) {
                        *value = json!("MARKER-UNREAD");
                    }
                }
                let text = serde_json::to_string(&grant).unwrap();
                prop_assert!(!text.contains("MARKER-UNREAD"));
                // And the grant is exactly what the role's own claims determine: changing claims
                // the grant recipe does not read leaves it as it is.
                let mut changed = claims.clone();
                changed.insert("unrelated_claim".into(), json!("x"));
                if let Decision::Allow(again) = decide(&policy, role.as_deref(), &changed, 1_000) {
                    prop_assert_eq!(&grant, &again);
                }
            }
        }
    }
}
