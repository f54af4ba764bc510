//! The compiler and the compiled-set file: one disassembly snapshot per example policy, and the
//! binary format's round trip and refusals.

mod common;

use claimgate::payload::Scratch;
use claimgate::program::{FORMAT_VERSION, LoadError, MAGIC, Program};

fn compiled(path: &std::path::Path) -> Program {
    let policy = common::load(path);
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    policy.compile().unwrap()
}

#[test]
fn disassembly_of_every_example_policy() {
    for path in common::cg_files(&common::policies_dir()) {
        let name = format!("disasm_{}", path.file_stem().unwrap().to_string_lossy());
        insta::assert_snapshot!(name, compiled(&path).disassemble());
    }
}

#[test]
fn disassembly_of_nested_groups() {
    insta::assert_snapshot!(compiled(&common::crate_dir().join("tests/cases/eval/conditions.cg")).disassemble());
}

const GITLAB: &str = r#"{"iss":"https://gitlab.example.com","aud":"strongbox","iat":1732350000,"nbf":1732349995,"exp":1732353600,"namespace_path":"mygroup","project_id":"20","project_path":"mygroup/myproject","user_login":"sample-user","pipeline_id":"574","pipeline_source":"push","ref":"main","ref_type":"branch","ref_protected":"true","strongbox_policies":["reader"]}"#;

#[test]
fn a_compiled_set_round_trips_through_its_file_format() {
    let program = compiled(&common::policies_dir());
    let bytes = program.to_bytes();
    assert_eq!(&bytes[..8], &MAGIC);
    let loaded = Program::from_bytes(&bytes).unwrap();
    assert_eq!(loaded.disassemble(), program.disassemble());
    assert_eq!(loaded.to_bytes(), bytes, "encoding is deterministic");
    let mut scratch = Scratch::default();
    let original = program.decide(GITLAB.as_bytes(), None, 1_732_350_100, &mut scratch);
    let reloaded = loaded.decide(GITLAB.as_bytes(), None, 1_732_350_100, &mut scratch);
    assert!(original.is_allow());
    assert_eq!(original, reloaded);
}

#[test]
fn foreign_corrupted_and_truncated_files_are_refused() {
    let bytes = compiled(&common::policies_dir()).to_bytes();
    assert_eq!(Program::from_bytes(b"{\"not\": \"a program\"}").unwrap_err(), LoadError::NotCompiled);
    assert_eq!(Program::from_bytes(&[]).unwrap_err(), LoadError::NotCompiled);
    assert_eq!(Program::from_bytes(&bytes[..30]).unwrap_err(), LoadError::Length);
    assert_eq!(Program::from_bytes(&bytes[..bytes.len() - 1]).unwrap_err(), LoadError::Length);
    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert_eq!(
        Program::from_bytes(&newer).unwrap_err(),
        LoadError::Version { found: FORMAT_VERSION + 1, expected: FORMAT_VERSION }
    );
    // Every single flipped bit in the payload is caught by the checksum.
    for at in (52..bytes.len()).step_by(7) {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x10;
        assert_eq!(Program::from_bytes(&flipped).unwrap_err(), LoadError::Checksum, "byte {at}");
    }
    let message = LoadError::Version { found: 9, expected: 1 }.to_string();
    assert_eq!(message, "compiled with format version 9; this build reads version 1: compile the policies again");
}

/// A file whose checksum is right but whose contents are not (crafted, or written by a buggy
/// tool) is still refused without a panic: every index is validated on load.
#[test]
fn crafted_payloads_with_a_valid_checksum_are_validated() {
    let bytes = compiled(&common::policies_dir()).to_bytes();
    let payload = &bytes[52..];
    let reseal = |payload: &[u8]| {
        let digest = ring::digest::digest(&ring::digest::SHA256, payload);
        let mut out = bytes[..12].to_vec();
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(digest.as_ref());
        out.extend_from_slice(payload);
        out
    };
    let mut refused = 0;
    for at in 0..payload.len() {
        for delta in [1u8, 0x80, 0xff] {
            let mut mutated = payload.to_vec();
            mutated[at] = mutated[at].wrapping_add(delta);
            if let Ok(program) = Program::from_bytes(&reseal(&mutated)) {
                // Whatever loads must evaluate without panicking.
                let mut scratch = Scratch::default();
                let _ = program.decide(GITLAB.as_bytes(), None, 1_732_350_100, &mut scratch);
                let _ = program.disassemble();
            } else {
                refused += 1;
            }
        }
    }
    assert!(refused > 0);
    assert!(Program::from_bytes(&reseal(&payload[..payload.len() / 2])).is_err());
}

/// A program is immutable once built or loaded: to change one it must go through its parts and
/// the loader again, which validates them. Emptying its roles (which once made the VM index past
/// its tables) gives a program that denies.
#[test]
fn a_changed_program_goes_through_the_loader() {
    let mut parts = compiled(&common::policies_dir()).into_parts();
    parts.roles.clear();
    let program = Program::from_bytes(&parts.to_bytes()).expect("an empty role list is valid");
    let mut scratch = Scratch::default();
    let decision = program.decide(GITLAB.as_bytes(), None, 1_732_350_100, &mut scratch);
    assert!(!decision.is_allow());
    let decision = program.decide(GITLAB.as_bytes(), Some("gitlab-deploy-production"), 1_732_350_100, &mut scratch);
    assert!(!decision.is_allow());
}

/// The loader refuses what the VM relies on: literal sets sorted for binary search (an unsorted
/// set would let `not claims.x in [...]` hold for a member), `words` only with `contains`.
#[test]
fn crafted_sets_and_words_are_refused_at_load() {
    let policy = claimgate::Policy::from_sources([(
        "set.cg",
        "provider p {\n  issuer = \"https://p.test\"\n  keys {\n    jwks_url = \"https://p.test/k\"\n  }\n}\nrole r {\n  provider = p\n  audience = any\n  require {\n    not claims.x in [\"a\", \"b\"]\n    claims.s words contains \"read\"\n  }\n}\n",
    )]);
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    let mut parts = policy.compile().unwrap().into_parts();
    let set = parts.sets.iter_mut().find(|s| s.strings.len() == 2).expect("the literal set");
    set.strings.reverse();
    let error = Program::from_bytes(&parts.to_bytes()).unwrap_err();
    assert!(error.to_string().contains("a literal set is not sorted"), "{error}");

    let mut parts = policy.compile().unwrap().into_parts();
    let check =
        parts.roles[0].checks.iter_mut().find_map(|c| c.cmp.as_mut().filter(|c| c.words)).expect("the words check");
    check.op = claimgate::program::CmpOp::Exists;
    let error = Program::from_bytes(&parts.to_bytes()).unwrap_err();
    assert!(error.to_string().contains("`words` on an operator other than contains"), "{error}");
}

/// A denial says what a condition needs: `words` takes a string of words or a list.
#[test]
fn a_words_type_mismatch_says_what_words_take() {
    let program = compiled(&common::crate_dir().join("tests/cases/eval/words.cg"));
    let mut scratch = Scratch::default();
    let claims = br#"{"iss":"https://issuer.example.com","sub":"s","scope":7}"#;
    let decision = program.decide(claims, Some("deployer"), 0, &mut scratch);
    let claimgate::decision::Decision::Deny(denial) = decision else { panic!("allowed") };
    assert_eq!(
        denial.message(),
        "the token's `claims.scope` is not a string of words or a list, as the condition needs"
    );
}

#[test]
fn verbose_logging_is_compiled_and_kept_by_the_binary_format() {
    let text = r#"
provider idp {
  issuer = "https://idp.test"
  keys { jwks_url = "https://idp.test/keys" }
  verbose_logging = true
}

role loud {
  provider = idp
  audience = "api"
  verbose_logging = true
}

role quiet {
  provider = idp
  audience = "api"
}
"#;
    let policy = claimgate::Policy::from_sources([("v.cg", text)]);
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    let program = Program::from_bytes(&policy.compile().unwrap().to_bytes()).unwrap();
    assert!(program.providers[0].verbose_logging);
    assert_eq!(program.roles.iter().map(|r| r.verbose_logging).collect::<Vec<_>>(), [true, false]);

    let wrong = claimgate::Policy::from_sources([(
        "v.cg",
        text.replacen("verbose_logging = true", "verbose_logging = \"yes\"", 1),
    )]);
    assert!(wrong.has_errors());
    assert!(wrong.render_diagnostics(false).contains("`true` or `false`"), "{}", wrong.render_diagnostics(false));
}
