//! Numbers compare by their exact value (issue: `== 9007199254740993` allowed
//! `9007199254740992.0`, `== 18446744073709551615` allowed `18446744073709551616`, and
//! `> 9007199254740992` denied `9007199254740993.0`). The VM reads the raw payload, as it does in
//! production, so nothing is rounded through `f64` on the way.

use claimgate::Policy;
use claimgate::decision::{Decision, DenyCode};
use claimgate::payload::Scratch;
use claimgate::program::Program;

fn program(conditions: &[&str]) -> Program {
    let roles: String = conditions
        .iter()
        .enumerate()
        .map(|(i, c)| format!("role r{i} {{\n  provider = p\n  audience = any\n  require {{\n    {c}\n  }}\n}}\n"))
        .collect();
    let text = format!(
        "provider p {{\n  issuer = \"https://p.example.com\"\n  keys {{\n    jwks_url = \"https://p.example.com/k\"\n  }}\n  required_time_claims = []\n}}\n{roles}"
    );
    let policy = Policy::from_sources([("numbers.cg", text)]);
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    policy.compile().unwrap()
}

/// Decides role `r{index}` on `{"iss": ..., "sub": "s", "n": <number>}` with the number's text
/// exactly as given.
fn decide(program: &Program, index: usize, number: &str) -> Decision {
    let payload = format!(r#"{{"iss":"https://p.example.com","sub":"s","n":{number}}}"#);
    program.decide(payload.as_bytes(), Some(&format!("r{index}")), 0, &mut Scratch::default())
}

#[test]
fn comparisons_are_exact_at_the_edges_of_f64_and_64_bit_integers() {
    let conditions = [
        "claims.n == 9007199254740993",
        "claims.n > 9007199254740992",
        "claims.n == 18446744073709551615",
        "claims.n < -9223372036854775808",
        "claims.n == 0",
        "claims.n in [0.1, 2.5]",
        "claims.n >= 9223372036854775807",
        "claims.n == -0",
        "not claims.n == 9007199254740993",
        "claims.n <= 1e-3",
    ];
    let program = program(&conditions);
    // (role, number text, allowed)
    let cases = [
        (0, "9007199254740993", true),
        (0, "9007199254740992.0", false),
        (0, "9007199254740993.0", true),
        (0, "9007199254740994", false),
        (0, "9.007199254740993e15", true),
        (1, "9007199254740993.0", true),
        (1, "9007199254740992.5", true),
        (1, "9007199254740992", false),
        (1, "9007199254740992.0", false),
        (2, "18446744073709551615", true),
        (2, "18446744073709551616", false),
        (2, "18446744073709551615.0", true),
        (2, "18446744073709551614", false),
        (3, "-9223372036854775809", true),
        (3, "-9223372036854775808", false),
        (3, "-9223372036854775808.5", true),
        (4, "-0.0", true),
        (4, "-0", true),
        (4, "0e10", true),
        (4, "1e-300", false),
        (5, "0.1", true),
        (5, "0.10", true),
        (5, "0.10000000000000000001", false),
        (5, "2.50e0", true),
        (6, "9223372036854775807", true),
        (6, "9223372036854775808", true),
        (6, "9223372036854775806.999999999", false),
        (7, "0", true),
        (7, "-0.0", true),
        (8, "9007199254740992.0", true),
        (8, "9007199254740993.000", false),
        (9, "0.001", true),
        (9, "0.0010000000000000001", false),
        (9, "-1e300", true),
    ];
    for (role, number, allowed) in cases {
        let decision = decide(&program, role, number);
        assert_eq!(decision.is_allow(), allowed, "`{}` with n = {number}: {decision:?}", conditions[role]);
    }
}

#[test]
fn a_number_beyond_f64_in_claims_is_refused_with_a_clear_message() {
    let program = program(&["claims.n > 0"]);
    for number in ["1e400", "-1e400", "1E309"] {
        let Decision::Deny(denial) = decide(&program, 0, number) else { panic!("{number} allowed") };
        assert_eq!(denial.code(), DenyCode::PayloadInvalid);
        assert!(denial.message().contains("number is beyond the range of a 64-bit float"), "{}", denial.message());
    }
}

#[test]
fn a_literal_with_a_huge_exponent_is_refused() {
    for literal in ["1e1001", "1e-5000"] {
        let text = format!(
            "provider p {{\n  issuer = \"https://p.example.com\"\n  keys {{\n    jwks_url = \"https://p.example.com/k\"\n  }}\n}}\nrole r {{\n  provider = p\n  audience = any\n  require {{\n    claims.n < {literal}\n  }}\n}}\n"
        );
        let policy = Policy::from_sources([("huge.cg", text)]);
        assert!(policy.has_errors(), "{literal} accepted");
        assert!(policy.render_diagnostics(false).contains("number is out of range"), "{literal}");
    }
}

#[test]
fn a_compiled_number_literal_that_is_not_a_number_is_refused_at_load() {
    let mut program = program(&["claims.n == 1.5"]).into_parts();
    let index = program.numbers.iter().position(|n| n.to_text() == "1.5").expect("the literal");
    program.numbers[index] = claimgate::number::Number::Text("1.5.5".into());
    assert!(Program::from_bytes(&program.to_bytes()).is_err());
    program.numbers[index] = claimgate::number::Number::Text("1e99999".into());
    assert!(Program::from_bytes(&program.to_bytes()).is_err());
}

/// Inline tests decide on their claims' text as written, as tokens are decided on theirs: a
/// test's numbers are not rounded through a `serde_json::Value` on the way to the VM, and a
/// number beyond a float is refused with the token reader's own words.
#[test]
fn inline_tests_compare_their_numbers_exactly_too() {
    let text = r#"provider p {
  issuer = "https://p.example.com"
  keys { jwks_url = "https://p.example.com/k" }
  required_time_claims = []
}
role big {
  provider = p
  audience = any
  require { claims.n == 9007199254740993 }
}
role fraction {
  provider = p
  audience = any
  require { claims.f != 0.3 }
}
test "2^53 + 1 written with a fraction is not 2^53" {
  role = big
  now = 0
  claims = """{"iss": "https://p.example.com", "sub": "s", "n": 9007199254740993.0}"""
  expect allow {}
}
test "0.30000000000000001 is not 0.3" {
  role = fraction
  now = 0
  claims = """{"iss": "https://p.example.com", "sub": "s", "f": 0.30000000000000001}"""
  expect allow {}
}
"#;
    let policy = Policy::from_sources([("tests.cg", text)]);
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    let program = policy.compile().unwrap();
    let results = claimgate::testing::run_tests(policy.set(), |request| {
        program.evaluate_request(request, &claimgate::Options::default())
    });
    assert_eq!(results.len(), 2);
    for result in &results {
        assert!(result.passed(), "{}: {:?}", result.test.name, result.differences);
    }

    let huge = text.replace("9007199254740993.0}", "1e400}");
    let policy = Policy::from_sources([("tests.cg", huge)]);
    let messages: Vec<String> = policy.diagnostics().iter().map(|d| d.message.clone()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("claims are not valid JSON") && m.contains("beyond the range of a 64-bit float")),
        "{messages:?}"
    );
}
