//! Arbitrary claims JSON against every example policy: the bytecode VM, reading the raw payload
//! bytes as it does in production, and the reference interpreter, reading the claims as parsed
//! by serde_json, reach the same decision (and, with explanations, the same trace) for every role
//! and for automatic selection, at times on both sides of the token's own `iat`, `nbf` and `exp`.
//!
//! Where they read the input differently, the VM must be the stricter one: it may refuse a
//! payload that serde_json accepts (duplicate keys, a limit), and that refusal must be a denial;
//! it must never accept a payload that serde_json refuses.
#![no_main]

use std::sync::OnceLock;

use claimgate::decision::{Decision, DenyCode, Request};
use claimgate::payload::Scratch;
use claimgate::program::Program;
use claimgate::vm::Options;
use claimgate::{Policy, reference};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const POLICIES: [(&str, &str); 6] = [
    ("conjur.cg", include_str!("../../policies/conjur.cg")),
    ("entra-id.cg", include_str!("../../policies/entra-id.cg")),
    ("github-actions.cg", include_str!("../../policies/github-actions.cg")),
    ("gitlab.cg", include_str!("../../policies/gitlab.cg")),
    ("kubernetes.cg", include_str!("../../policies/kubernetes.cg")),
    ("okta.cg", include_str!("../../policies/okta.cg")),
];

struct Compiled {
    policy: Policy,
    program: Program,
    roles: Vec<Option<String>>,
}

fn compiled() -> &'static [Compiled] {
    static COMPILED: OnceLock<Vec<Compiled>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        POLICIES
            .iter()
            .map(|(name, text)| {
                let policy = Policy::from_sources([(*name, *text)]);
                assert!(!policy.has_errors(), "{name}:\n{}", policy.render_diagnostics(false));
                let program = policy.compile().expect("example policy compiles");
                let mut roles = vec![None];
                roles.extend(policy.set().roles.iter().map(|r| Some(r.name.to_string())));
                roles.push(Some("no-such-role".to_string()));
                Compiled { policy, program, roles }
            })
            .collect()
    })
}

/// Times to decide at: fixed points, and one second either side of the token's own times.
fn times(claims: &serde_json::Map<String, Value>) -> Vec<i64> {
    let mut times = vec![0, 1_732_350_100];
    for name in ["iat", "nbf", "exp"] {
        if let Some(t) = claims.get(name).and_then(Value::as_f64).filter(|t| t.abs() < 1e15) {
            let t = t as i64;
            times.extend([t - 1, t, t + 1]);
        }
    }
    times.sort_unstable();
    times.dedup();
    times
}

fuzz_target!(|data: &[u8]| {
    let parsed = serde_json::from_slice::<Value>(data);
    let mut scratch = Scratch::default();
    for compiled in compiled() {
        let claims = match &parsed {
            Ok(Value::Object(claims)) => claims,
            _ => {
                // Not a JSON object: every decision is a denial for an invalid payload.
                let decision = compiled.program.decide(data, None, 0, &mut scratch);
                assert!(
                    matches!(&decision, Decision::Deny(d) if d.code() == DenyCode::PayloadInvalid),
                    "the VM did not refuse a payload serde_json refuses: {decision:?}"
                );
                continue;
            }
        };
        for now in times(claims) {
            for role in &compiled.roles {
                let role = role.as_deref();
                let expected = reference::evaluate(compiled.policy.set(), &Request { role, claims, claims_text: None, now, header: None });
                for explain in [false, true] {
                    let options = Options::default().explain(explain);
                    let actual = compiled.program.evaluate(data, role, now, &options, &mut scratch);
                    if let Decision::Deny(d) = actual.decision() {
                        if d.code() == DenyCode::PayloadInvalid {
                            // Stricter than serde_json (duplicate keys, limits): a denial is safe.
                            continue;
                        }
                    }
                    assert_eq!(actual.decision(), expected.decision(), "role {role:?}, now {now}, explain {explain}");
                    if explain {
                        assert_eq!(actual.trace(), expected.trace(), "role {role:?}, now {now}");
                    }
                }
            }
        }
    }
});
