//! Keys belong to their provider: a token is verified only with the keys of the provider that its
//! issuer selects (RFC 8725 3.8). Whoever holds one issuer's key must not be able to mint tokens
//! for another issuer's roles.
//!
//! The bundled policies are loaded as they are; each provider is given its own test key (through
//! [`ProviderKeys`], as the engine and the CLI give fetched or file keys), and every allowing test
//! of every provider is replayed as a signed token: signed with its own provider's key it allows,
//! signed with any other provider's key it is refused, whatever the header's `kid` says.

mod common;

use claimgate::decision::{Decision, DenyCode};
use claimgate::model::{Expectation, RoleChoice};
use claimgate::payload::Scratch;
use claimgate::program::Program;
use claimgate::vm::{Options, ProviderKeys, TokenEvaluation};
use claimgate_jose::KeySet;
use common::signing::Signer;

struct Case {
    provider: String,
    /// The `typ` header the provider expects.
    typ: String,
    role: Option<String>,
    now: i64,
    claims: String,
}

/// Every allowing inline test of the bundled policies, with the provider it logs in through.
fn allowing_cases(policy: &claimgate::Policy) -> Vec<Case> {
    let set = policy.set();
    set.tests
        .iter()
        .filter(|t| matches!(t.expect, Expectation::Allow(_)))
        .map(|t| {
            let iss = t.claims_json["iss"].as_str().expect("allowing tests carry an issuer");
            let provider = set.providers.iter().find(|p| p.issuers.iter().any(|i| i.value == iss)).expect("provider");
            let role = match t.role {
                RoleChoice::Auto => None,
                RoleChoice::Named(i) => Some(set.roles[i].name.to_string()),
            };
            let typ = provider.typ.as_deref().unwrap_or("JWT").to_string();
            Case { provider: provider.name.to_string(), typ, role, now: t.now, claims: t.claims_json.to_string() }
        })
        .collect()
}

fn decide(program: &Program, keys: &ProviderKeys, token: &str, case: &Case) -> TokenEvaluation {
    let mut scratch = Scratch::default();
    program.decide_token(token.as_bytes(), keys, case.role.as_deref(), case.now, &Options::default(), &mut scratch)
}

fn code(result: &TokenEvaluation) -> Option<DenyCode> {
    match &result.evaluation().decision() {
        Decision::Allow(_) => None,
        Decision::Deny(denial) => Some(denial.code()),
    }
}

#[test]
fn every_pair_of_bundled_providers_is_kept_apart() {
    let policy = common::load(&common::policies_dir());
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    let program = policy.compile().expect("compiles");
    let names: Vec<String> = policy.set().providers.iter().map(|p| p.name.to_string()).collect();
    assert!(names.len() >= 6, "every bundled provider takes part: {names:?}");
    let signers: Vec<Signer> =
        names.iter().enumerate().map(|(i, name)| Signer::rsa(i % 8 + 1, &format!("{name}-key"))).collect();
    let mut keys = ProviderKeys::new();
    for (name, signer) in names.iter().zip(&signers) {
        keys.insert(name.clone(), KeySet::from_jwks_json(signer.jwks().as_bytes()).expect("test keys load"));
    }
    let cases = allowing_cases(&policy);
    let mut pairs = 0;
    for owner in &names {
        let own = &signers[names.iter().position(|n| n == owner).unwrap()];
        let owner_cases: Vec<&Case> = cases.iter().filter(|c| &c.provider == owner).collect();
        assert!(!owner_cases.is_empty(), "provider `{owner}` has an allowing test to replay");
        for case in owner_cases {
            let header = |kid: Option<&str>| match kid {
                Some(kid) => format!(r#"{{"alg":"RS256","typ":"{}","kid":"{kid}"}}"#, case.typ),
                None => format!(r#"{{"alg":"RS256","typ":"{}"}}"#, case.typ),
            };
            let allowed = decide(&program, &keys, &own.sign_with_header(&header(Some(&own.kid)), &case.claims), case);
            assert_eq!(code(&allowed), None, "{owner}'s own key: {:?}", allowed.evaluation().decision());
            assert_eq!(allowed.verified().map(|v| v.provider()), Some(owner.as_str()));
            for (other, foreign) in names.iter().zip(&signers) {
                if other == owner {
                    continue;
                }
                pairs += 1;
                // The foreign key under its own kid: the owner has no such key.
                let result =
                    decide(&program, &keys, &foreign.sign_with_header(&header(Some(&foreign.kid)), &case.claims), case);
                assert_eq!(code(&result), Some(DenyCode::KeyNotFound), "{other}'s key for {owner}");
                assert!(result.verified().is_none());
                // The foreign key under the owner's kid: the signature does not verify.
                let result =
                    decide(&program, &keys, &foreign.sign_with_header(&header(Some(&own.kid)), &case.claims), case);
                assert_eq!(code(&result), Some(DenyCode::SignatureInvalid), "{other}'s key as {owner}'s kid");
                // No kid at all: every key of the owner is tried, none verifies.
                let result = decide(&program, &keys, &foreign.sign_with_header(&header(None), &case.claims), case);
                assert_eq!(code(&result), Some(DenyCode::SignatureInvalid), "{other}'s key without kid");
            }
        }
    }
    assert!(pairs >= 30, "{pairs} pairs tried");
}

/// Inline keys travel in the program and in its file: a compiled set verifies its providers'
/// tokens with their own keys only, and a loaded copy does the same.
#[test]
fn inline_keys_are_compiled_into_the_program_and_bound_to_their_provider() {
    let (a, b) = (Signer::rsa(1, "a-key"), Signer::rsa(2, "b-key"));
    let text = format!(
        r#"
provider a {{
  issuer = "https://a.example.com"
  keys {{
    jwks = """{}"""
  }}
}}

provider b {{
  issuer = "https://b.example.com"
  keys {{
    jwks = """{}"""
  }}
}}

role deploy-b {{
  provider = b
  audience = any
}}
"#,
        a.jwks(),
        b.jwks()
    );
    let policy = claimgate::Policy::from_sources([("keys.cg", text)]);
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    let compiled = policy.compile().unwrap();
    let loaded = Program::from_bytes(&compiled.to_bytes()).expect("loads");
    let case = Case { provider: "b".into(), typ: "JWT".into(), role: None, now: 1_700_000_000, claims: String::new() };
    let claims = r#"{"iss":"https://b.example.com","sub":"job","exp":1700000600}"#;
    let no_keys = ProviderKeys::new();
    for program in [&compiled, &loaded] {
        let mine = decide(program, &no_keys, &b.sign(claims), &case);
        assert_eq!(code(&mine), None, "{:?}", mine.evaluation().decision());
        // `a`'s key, even under `b`'s kid, never verifies `b`'s token.
        let header = r#"{"alg":"RS256","typ":"JWT","kid":"b-key"}"#;
        assert_eq!(
            code(&decide(program, &no_keys, &a.sign_with_header(header, claims), &case)),
            Some(DenyCode::SignatureInvalid)
        );
        assert_eq!(code(&decide(program, &no_keys, &a.sign(claims), &case)), Some(DenyCode::KeyNotFound));
        // Naming the role does not change whose keys verify.
        let named = Case {
            role: Some("deploy-b".into()),
            ..Case { provider: "b".into(), typ: "JWT".into(), role: None, now: case.now, claims: String::new() }
        };
        assert_eq!(
            code(&decide(program, &no_keys, &a.sign_with_header(header, claims), &named)),
            Some(DenyCode::SignatureInvalid)
        );
        // A token for `a` presented for `b`'s role is refused on its issuer before any key is used.
        let for_a = a.sign(r#"{"iss":"https://a.example.com","sub":"job","exp":1700000600}"#);
        let result = decide(program, &no_keys, &for_a, &named);
        assert_eq!(code(&result), Some(DenyCode::IssuerMismatch));
        assert!(result.verified().is_none());
    }
}

/// A provider whose keys come from elsewhere (a URL, a file) has none until the caller gives
/// them: its tokens are refused with `keys_unavailable`, and keys given for another provider
/// are never borrowed.
#[test]
fn a_provider_without_loaded_keys_refuses_its_tokens() {
    let text = r#"
provider remote {
  issuer = "https://remote.example.com"
  keys {
    jwks_url = "https://remote.example.com/keys"
  }
}

provider other {
  issuer = "https://other.example.com"
  keys {
    jwks_url = "https://other.example.com/keys"
  }
}

role r {
  provider = remote
  audience = any
}
"#;
    let policy = claimgate::Policy::from_sources([("remote.cg", text)]);
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    let program = policy.compile().unwrap();
    let signer = Signer::rsa(3, "k");
    let token = signer.sign(r#"{"iss":"https://remote.example.com","sub":"job","exp":1700000600}"#);
    let case =
        Case { provider: "remote".into(), typ: "JWT".into(), role: None, now: 1_700_000_000, claims: String::new() };
    let mut keys = ProviderKeys::new();
    assert_eq!(code(&decide(&program, &keys, &token, &case)), Some(DenyCode::KeysUnavailable));
    keys.insert("other", KeySet::from_jwks_json(signer.jwks().as_bytes()).unwrap());
    assert_eq!(code(&decide(&program, &keys, &token, &case)), Some(DenyCode::KeysUnavailable));
    keys.insert("remote", KeySet::from_jwks_json(signer.jwks().as_bytes()).unwrap());
    assert_eq!(code(&decide(&program, &keys, &token, &case)), None);
}

/// Key lookups go by provider name and selection by issuer: a crafted compiled set that gives two
/// providers one name, or one issuer, is refused at load.
#[test]
fn a_compiled_set_with_duplicate_provider_names_or_issuers_is_refused() {
    let policy = common::load(&common::policies_dir());
    let original = policy.compile().unwrap();
    assert!(Program::from_bytes(&original.to_bytes()).is_ok());

    let mut renamed = policy.compile().unwrap().into_parts();
    let name = renamed.providers[0].name;
    renamed.providers[1].name = name;
    let error = Program::from_bytes(&renamed.to_bytes()).unwrap_err();
    assert!(error.to_string().contains("two providers have the same name"), "{error}");

    let mut shared = policy.compile().unwrap().into_parts();
    // The same text under another string id, so that only a comparison by text catches it.
    let issuer = shared.strings[shared.providers[0].issuers[0] as usize].clone();
    shared.strings.push(issuer);
    let copy = (shared.strings.len() - 1) as u32;
    shared.providers[1].issuers.push(copy);
    let error = Program::from_bytes(&shared.to_bytes()).unwrap_err();
    assert!(error.to_string().contains("two providers accept the same issuer"), "{error}");

    let mut roles = policy.compile().unwrap().into_parts();
    let name = roles.roles[0].name;
    roles.roles[1].name = name;
    let error = Program::from_bytes(&roles.to_bytes()).unwrap_err();
    assert!(error.to_string().contains("two roles have the same name"), "{error}");
}
