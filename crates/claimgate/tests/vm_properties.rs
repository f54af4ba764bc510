//! Property tests: on generated policies and generated claims, the VM and the reference
//! interpreter agree on every decision (allow with the same grant, or deny with the same code,
//! role, failing condition and value), for named roles and automatic selection, with and
//! without explanations (which change the VM's selection path).

mod common;

use claimgate::Policy;
use claimgate::decision::Request;
use claimgate::vm::Options;
use common::generate::{claims, policy};
use proptest::prelude::*;
use serde_json::Value;

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn the_vm_and_the_reference_agree(text in policy(), claim_sets in prop::collection::vec(claims(), 1..6)) {
        let policy = Policy::from_sources([("generated.cg", text.as_str())]);
        prop_assert!(!policy.has_errors(), "generated policy has errors:\n{}\n{}", text, policy.render_diagnostics(false));
        let set = policy.set();
        let program = policy.compile().unwrap();
        let mut roles: Vec<Option<&str>> = vec![None];
        roles.extend(set.roles.iter().map(|r| Some(r.name.as_str())));
        for claims in &claim_sets {
            for role in &roles {
                let request = Request { role: *role, claims, claims_text: None, now: 1_000, header: None };
                let expected = claimgate::reference::evaluate(set, &request);
                for explain in [false, true] {
                    let actual = program.evaluate_request(&request, &Options::default().explain(explain));
                    prop_assert_eq!(&actual.decision(), &expected.decision(), "role {:?}, explain {}, claims {}\n{}", role, explain, Value::Object(claims.clone()), text);
                    if explain {
                        prop_assert_eq!(&actual.trace(), &expected.trace());
                    }
                }
            }
        }
    }
}
