//! Every configurable limit, at its edge: exceeding it is a clear error naming the limit (a
//! diagnostic for policies, a denial for tokens), never a panic or unbounded work.

use claimgate::decision::{Decision, DenyCode};
use claimgate::parser::{self, Limits};
use claimgate::payload::{PayloadLimits, Scratch};
use claimgate::vm::Options;
use claimgate::{CheckLimits, Code, FileId, Policy, SourceMap};

const PROVIDER: &str = "provider p {\n  issuer = \"https://i.example.com\"\n  keys {\n    jwks_url = \"https://i.example.com/k\"\n  }\n  required_time_claims = []\n}\n";

fn load(text: &str, limits: &Limits, check_limits: &CheckLimits) -> Policy {
    let mut sources = SourceMap::new();
    sources.add("limits.cg", text);
    Policy::load(sources, limits, check_limits)
}

fn role(name: &str, conditions: &str) -> String {
    format!("role {name} {{\n  provider = p\n  audience = any\n  require {{\n{conditions}\n  }}\n}}\n")
}

#[test]
fn pest_call_limit() {
    // The limit applies to each top-level block: one role with very many conditions exceeds it.
    let conditions: String = (0..10_000).map(|i| format!("    claims.a{i} exists\n")).collect();
    let text = format!("{PROVIDER}{}", role("r", &conditions));
    let tight = Limits { call_limit_per_byte: 0, ..Limits::default() };
    let policy = load(&text, &tight, &CheckLimits::default());
    let diagnostics = policy.diagnostics();
    assert_eq!(diagnostics.len(), 1, "{}", policy.render_diagnostics(false));
    assert_eq!(diagnostics[0].code, Code::LimitExceeded);
    assert_eq!(diagnostics[0].message, "the policy is too complex to parse");
    assert!(!load(&text, &Limits::default(), &CheckLimits::default()).has_errors());
}

#[test]
fn number_of_roles() {
    let text = format!("{PROVIDER}{}", (0..5).map(|i| role(&format!("r{i}"), "claims.a exists")).collect::<String>());
    let policy = load(&text, &Limits::default(), &CheckLimits { max_roles: 3, ..CheckLimits::default() });
    let diagnostics = policy.diagnostics();
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].message, "the policy set has 5 roles, more than the limit of 3");
}

#[test]
fn regex_compiled_size() {
    let text = format!("{PROVIDER}{}", role("r", "    claims.a matches \"[a-z]{100}[0-9]{100}\""));
    let policy = load(&text, &Limits::default(), &CheckLimits { regex_size_limit: 2_000, ..CheckLimits::default() });
    let diagnostics = policy.diagnostics();
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].code, Code::InvalidRegex);
    assert!(
        diagnostics[0].message.starts_with("invalid regular expression: compiles to more than"),
        "{}",
        diagnostics[0].message
    );
    // The default limit accepts it.
    assert!(!load(&text, &Limits::default(), &CheckLimits::default()).has_errors());
}

#[test]
fn glob_length() {
    let text = format!("{PROVIDER}{}", role("r", "    claims.a glob \"abcdefghijklmnop*\""));
    let policy = load(&text, &Limits::default(), &CheckLimits { max_glob_len: 10, ..CheckLimits::default() });
    assert_eq!(policy.diagnostics()[0].message, "glob pattern is longer than 10 bytes");
}

#[test]
fn file_size_and_nesting() {
    let parsed = parser::parse(FileId(0), &"# x\n".repeat(100), &Limits { max_file_bytes: 100, ..Limits::default() });
    assert_eq!(parsed.diagnostics[0].message, "policy file is 400 bytes, more than the limit of 100");
    let nested =
        format!("{PROVIDER}{}", role("r", &format!("{}claims.a exists{}", "any {\n".repeat(5), "\n}".repeat(5))));
    let parsed = parser::parse(FileId(0), &nested, &Limits { max_nesting: 4, ..Limits::default() });
    assert_eq!(parsed.diagnostics[0].message, "blocks are nested more than 4 deep");
}

fn program(text: &str) -> claimgate::program::Program {
    let policy = Policy::from_sources([("limits.cg", text)]);
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    policy.compile().unwrap()
}

fn denial(decision: Decision) -> claimgate::decision::Denial {
    match decision {
        Decision::Deny(denial) => denial,
        Decision::Allow(grant) => panic!("allowed: {grant:?}"),
    }
}

#[test]
fn payload_limits_deny_with_a_message_naming_the_limit() {
    let program = program(&format!("{PROVIDER}{}", role("r", "    claims.a exists")));
    let decide = |payload: String, limits: PayloadLimits| {
        let options = Options::default().payload_limits(limits);
        denial(program.evaluate(payload.as_bytes(), Some("r"), 0, &options, &mut Scratch::default()).into_decision())
    };
    let small = PayloadLimits { max_bytes: 100, max_depth: 3, max_entries: 5, max_string_bytes: 10 };
    let cases = [
        (format!("{{\"a\":\"{}\"}}", "x".repeat(200)), "the payload is 208 bytes, more than the limit of 100"),
        ("{\"a\":[[[[1]]]]}".to_string(), "the payload is nested more than 3 deep"),
        (
            "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6}".to_string(),
            "an object or array in the payload has more than 5 entries",
        ),
        ("{\"a\":\"0123456789x\"}".to_string(), "a string in the payload is longer than 10 bytes"),
    ];
    for (payload, message) in cases {
        let denial = decide(payload, small);
        assert_eq!(denial.code(), DenyCode::PayloadInvalid);
        assert_eq!(denial.message(), message);
    }
}

#[test]
fn evaluation_steps_per_decision() {
    let conditions: String = (0..40).map(|i| format!("    claims.c{i} absent\n")).collect();
    let program = program(&format!("{PROVIDER}{}", role("r", &conditions)));
    let payload = br#"{"iss":"https://i.example.com","sub":"s"}"#;
    let mut scratch = Scratch::default();
    assert!(program.decide(payload, Some("r"), 0, &mut scratch).is_allow());
    let tight = Options::default().max_steps(30);
    let denial = denial(program.evaluate(payload, Some("r"), 0, &tight, &mut scratch).into_decision());
    assert_eq!(denial.code(), DenyCode::LimitExceeded);
    assert_eq!(denial.message(), "the decision needed more evaluation steps than allowed");
}

#[test]
fn automatic_selection_is_bounded_by_the_step_limit_too() {
    let roles: String = (0..200).map(|i| role(&format!("r{i}"), &format!("    claims.n == {i}"))).collect();
    let program = program(&format!("{PROVIDER}{roles}"));
    let payload = br#"{"iss":"https://i.example.com","sub":"s","n":199}"#;
    let mut scratch = Scratch::default();
    assert!(program.decide(payload, None, 0, &mut scratch).is_allow());
    let tight = Options::default().max_steps(100);
    assert_eq!(
        denial(program.evaluate(payload, None, 0, &tight, &mut scratch).into_decision()).code(),
        DenyCode::LimitExceeded
    );
}

/// A provider with an inline JWK Set of `n` Ed25519 keys.
fn provider_with_keys(n: usize) -> String {
    use ring::signature::KeyPair as _;
    let keys: Vec<String> = (0..n)
        .map(|i| {
            let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[i as u8 + 1; 32]).unwrap();
            let x = claimgate_jose::b64::encode(pair.public_key().as_ref());
            format!(r#"{{"kty": "OKP", "crv": "Ed25519", "kid": "k{i}", "x": "{x}"}}"#)
        })
        .collect();
    format!(
        "provider p {{\n  issuer = \"https://i.example.com\"\n  keys {{\n    jwks = \"\"\"\n      {{\"keys\": [{}]}}\n      \"\"\"\n  }}\n  required_time_claims = []\n}}\n",
        keys.join(", ")
    )
}

#[test]
fn keys_in_a_policy() {
    let limits =
        CheckLimits { keys: claimgate_jose::KeyLimits { max_keys: 2, ..Default::default() }, ..CheckLimits::default() };
    assert!(!load(&provider_with_keys(2), &Limits::default(), &limits).has_errors());
    let policy = load(&provider_with_keys(3), &Limits::default(), &limits);
    let diagnostics = policy.diagnostics();
    assert_eq!(diagnostics.len(), 1, "{}", policy.render_diagnostics(false));
    assert_eq!(diagnostics[0].code, Code::LimitExceeded);
    assert_eq!(diagnostics[0].message, "invalid JWK set: key input holds 3 keys, over the limit of 2 keys");
    let text = provider_with_keys(1);
    let limits = CheckLimits {
        keys: claimgate_jose::KeyLimits { max_bytes: 50, ..Default::default() },
        ..CheckLimits::default()
    };
    let policy = load(&text, &Limits::default(), &limits);
    assert_eq!(policy.diagnostics().len(), 1);
    assert!(
        policy.diagnostics()[0].message.ends_with("over the limit of 50 bytes for key input"),
        "{}",
        policy.diagnostics()[0].message
    );
}

#[test]
fn key_files_named_by_a_policy() {
    let text = "provider p {\n  issuer = \"https://i.example.com\"\n  keys {\n    jwks_file = \"keys.json\"\n  }\n  required_time_claims = []\n}\n";
    let jwks = provider_with_keys(3);
    let jwks = &jwks[jwks.find("{\"keys\"").unwrap()..jwks.find("]}").unwrap() + 2];
    let limits =
        CheckLimits { keys: claimgate_jose::KeyLimits { max_keys: 2, ..Default::default() }, ..CheckLimits::default() };
    let mut policy = load(text, &Limits::default(), &limits);
    assert!(!policy.has_errors());
    policy.check_key_files(|_, _| Ok(jwks.as_bytes().to_vec()));
    let diagnostics = policy.diagnostics();
    assert_eq!(diagnostics.len(), 1, "{}", policy.render_diagnostics(false));
    assert_eq!(diagnostics[0].code, Code::LimitExceeded);
    assert_eq!(
        diagnostics[0].message,
        "key file `keys.json` is not a usable JWK set: key input holds 3 keys, over the limit of 2 keys"
    );
    assert!(diagnostics[0].help.as_deref().is_some_and(|h| h.starts_with("publish fewer or smaller keys")));
    let mut policy = load(text, &Limits::default(), &CheckLimits::default());
    policy.check_key_files(|_, _| Ok(jwks.as_bytes().to_vec()));
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
}

/// pest keeps its call limit in a process-wide setting; the parser sets it and parses under one
/// lock. Without that, a thread parsing with a tiny limit could lower the limit under a thread
/// about to parse with the default one, which would then fail with a spurious "too complex".
#[test]
fn the_call_limit_holds_per_parse_under_concurrency() {
    let many =
        format!("{PROVIDER}{}", (0..3_000).map(|i| role(&format!("r{i}"), "    claims.a exists")).collect::<String>());
    let tiny = Limits { call_limit_per_byte: 0, call_limit_base: 1, ..Limits::default() };
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let parsed = parser::parse(FileId(0), "role r {}", &tiny);
                assert_eq!(parsed.diagnostics[0].code, Code::LimitExceeded);
            }
        });
        for _ in 0..3 {
            let parsed = parser::parse(FileId(0), &many, &Limits::default());
            assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics.first());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

/// pest's own stack guard is compiled out (it probes the stack on every rule, a fifth of the
/// parse time): the nesting limit, checked before pest runs, is what bounds recursion. At the
/// limit, every stage that recurses (parse, check, compile, evaluate, format) fits in a quarter
/// of the 2 MiB a spawned thread gets by default.
#[test]
fn the_deepest_nesting_allowed_fits_in_a_small_stack() {
    let depth = Limits::default().max_nesting - 2; // the role's body and `require` are two levels
    let conditions =
        format!("{}claims.a exists{}", "any {\n not any {\n".repeat(depth / 2), "\n}\n}".repeat(depth / 2));
    let text = format!("{PROVIDER}{}", role("r", &conditions));
    // At the limit: one level less allowed, and the text is refused.
    let tighter = Limits { max_nesting: Limits::default().max_nesting - 1, ..Limits::default() };
    assert_eq!(parser::parse(FileId(0), &text, &tighter).diagnostics[0].code, Code::LimitExceeded);
    let run = move || {
        let policy = Policy::from_sources([("deep.cg", text.as_str())]);
        assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
        let program = policy.compile().unwrap();
        let _ = program.decide(br#"{"iss":"https://i.example.com","a":1}"#, Some("r"), 0, &mut Scratch::default());
        let parsed = parser::parse(FileId(0), &text, &Limits::default());
        let _ = claimgate::fmt::format_file(&parsed.ast, &text);
    };
    std::thread::Builder::new().stack_size(512 * 1024).spawn(run).unwrap().join().unwrap();
}
