//! `claimgate decode` and `claimgate verify` on tokens signed here with a fixed Ed25519 key.

use assert_cmd::Command;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{Ed25519KeyPair, KeyPair};

fn key() -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).expect("a 32-byte seed")
}

fn jwks() -> String {
    let x = B64.encode(key().public_key().as_ref());
    format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"ci-2024","use":"sig","x":"{x}"}}]}}"#)
}

fn sign(header: &str, payload: &str) -> String {
    let input = format!("{}.{}", B64.encode(header), B64.encode(payload));
    let signature = key().sign(input.as_bytes());
    format!("{input}.{}", B64.encode(signature.as_ref()))
}

fn valid_token() -> String {
    sign(
        r#"{"alg":"EdDSA","typ":"JWT","kid":"ci-2024"}"#,
        r#"{"iss":"https://ci.example.com","sub":"job-1","exp":1732353600}"#,
    )
}

struct Keys(tempfile::TempDir);

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jwks.json"), jwks()).unwrap();
        Keys(dir)
    }

    fn path(&self) -> std::path::PathBuf {
        self.0.path().join("jwks.json")
    }
}

fn verify(keys: &Keys, token: &str, extra: &[&str]) -> std::process::Output {
    Command::cargo_bin("claimgate")
        .unwrap()
        .arg("verify")
        .arg("--keys")
        .arg(keys.path())
        .args(extra)
        .arg("-")
        .write_stdin(format!("{token}\n"))
        .output()
        .unwrap()
}

#[test]
fn a_valid_token_verifies_from_standard_input() {
    let keys = Keys::new();
    let output = verify(&keys, &valid_token(), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let out: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["verified"], true);
    assert_eq!(out["header"]["alg"], "EdDSA");
    assert_eq!(out["payload"]["sub"], "job-1");
    assert_eq!(out["key"]["kid"], "ci-2024");
    assert_eq!(out["key"]["index"], 0);
}

#[test]
fn a_tampered_token_is_refused_with_a_code() {
    let keys = Keys::new();
    let token = valid_token();
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    parts[1] = B64.encode(r#"{"iss":"https://ci.example.com","sub":"admin","exp":1732353600}"#);
    let output = verify(&keys, &parts.join("."), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8(output.stderr).unwrap().starts_with("error[bad_signature]: token refused"));
}

#[test]
fn refusals_print_json_on_request() {
    let keys = Keys::new();
    let none = format!("{}.{}.", B64.encode(r#"{"alg":"none"}"#), B64.encode(r#"{"sub":"x"}"#));
    let output = verify(&keys, &none, &["--format", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let out: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["verified"], false);
    assert_eq!(out["code"], "alg_none");
}

#[test]
fn garbage_is_malformed_not_a_crash() {
    let keys = Keys::new();
    for token in ["", "a.b", "a.b.c.d", "....", "\u{0}\u{1}", "eyJhbGciOiJFZERTQSJ9.e30.!!!"] {
        let output = verify(&keys, token, &[]);
        assert_eq!(output.status.code(), Some(1), "token {token:?}");
        assert!(String::from_utf8(output.stderr).unwrap().starts_with("error["), "token {token:?}");
    }
}

#[test]
fn duplicate_claims_in_a_signed_payload_are_refused() {
    let keys = Keys::new();
    let token = sign(r#"{"alg":"EdDSA","kid":"ci-2024"}"#, r#"{"sub":"job-1","sub":"admin"}"#);
    let output = verify(&keys, &token, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8(output.stderr).unwrap().starts_with("error[bad_payload]"));
}

#[test]
fn an_algorithm_outside_the_allowed_list_is_refused() {
    let keys = Keys::new();
    let output = verify(&keys, &valid_token(), &["--alg", "RS256,ES256"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8(output.stderr).unwrap().starts_with("error[algorithm_not_allowed]"));
}

#[test]
fn unreadable_keys_are_a_usage_error() {
    let output = Command::cargo_bin("claimgate")
        .unwrap()
        .args(["verify", "--keys", "no/such/keys.json", "x.y.z"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn decode_shows_header_and_payload_and_says_nothing_was_verified() {
    let output = Command::cargo_bin("claimgate").unwrap().args(["decode", &valid_token()]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let out: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["signature_verified"], false);
    assert_eq!(out["header"]["kid"], "ci-2024");
    assert_eq!(out["payload"]["iss"], "https://ci.example.com");
    assert_eq!(out["structure"], "ok");
    assert!(String::from_utf8(output.stderr).unwrap().contains("the signature was not verified"));
}

#[test]
fn decode_explains_what_verify_would_refuse() {
    let none = format!("{}.{}.", B64.encode(r#"{"alg":"none","jwk":{"kty":"oct"}}"#), B64.encode(r#"{"sub":"x"}"#));
    let output = Command::cargo_bin("claimgate").unwrap().args(["decode", &none]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let out: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["structure"]["code"], "alg_none");
    assert_eq!(out["header"]["jwk"]["kty"], "oct");
}

/// A policy whose provider trusts the test key's issuer, allows EdDSA only and expects `typ: JWT`.
fn policy_dir(algorithms: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let policy = format!(
        r#"provider ci {{
  issuer = "https://ci.example.com"
  keys {{
    jwks = """{jwks}"""
  }}
  algorithms = [{algorithms}]
  typ = "JWT"
}}

role build {{
  provider = ci
  audience = any
  require {{
    claims.sub == "job-1"
  }}
}}
"#,
        jwks = jwks()
    );
    std::fs::write(dir.path().join("ci.cg"), policy).unwrap();
    dir
}

fn eval_token(policy: &tempfile::TempDir, keys: &Keys, token: &str) -> std::process::Output {
    Command::cargo_bin("claimgate")
        .unwrap()
        .args(["eval", "--color", "never", "--now", "1732350000", "--token", "-", "--policy"])
        .arg(policy.path())
        .arg("--keys")
        .arg(keys.path())
        .write_stdin(token.to_string())
        .output()
        .unwrap()
}

#[test]
fn eval_verifies_a_token_then_decides() {
    let (policy, keys) = (policy_dir("EdDSA"), Keys::new());
    let output = eval_token(&policy, &keys, &valid_token());
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8(output.stdout).unwrap().starts_with("allow: role `build`"));
    assert!(String::from_utf8(output.stderr).unwrap().contains("the signature was verified with key `ci-2024`"));
}

#[test]
fn eval_refuses_a_tampered_token_before_deciding() {
    let (policy, keys) = (policy_dir("EdDSA"), Keys::new());
    let token = valid_token();
    // Change one character in the middle of the signature (still canonical base64url).
    let at = token.len() - 10;
    let replacement = if &token[at..at + 1] == "A" { "B" } else { "A" };
    let tampered = format!("{}{replacement}{}", &token[..at], &token[at + 1..]);
    let output = eval_token(&policy, &keys, &tampered);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.starts_with("deny (signature_invalid): signature verification failed"), "{stdout}");
}

#[test]
fn eval_allows_only_the_providers_algorithms() {
    let (policy, keys) = (policy_dir("ES256, RS256"), Keys::new());
    let output = eval_token(&policy, &keys, &valid_token());
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8(output.stdout).unwrap().starts_with("deny (algorithm_not_allowed)"));
}

#[test]
fn eval_checks_the_providers_typ() {
    let (policy, keys) = (policy_dir("EdDSA"), Keys::new());
    let token = sign(
        r#"{"alg":"EdDSA","typ":"at+jwt","kid":"ci-2024"}"#,
        r#"{"iss":"https://ci.example.com","sub":"job-1","exp":1732353600}"#,
    );
    let output = eval_token(&policy, &keys, &token);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8(output.stdout).unwrap().starts_with("deny (typ_mismatch)"));
}

#[test]
fn eval_denies_a_verified_token_whose_claims_do_not_fit() {
    let (policy, keys) = (policy_dir("EdDSA"), Keys::new());
    let token = sign(
        r#"{"alg":"EdDSA","typ":"JWT","kid":"ci-2024"}"#,
        r#"{"iss":"https://ci.example.com","sub":"job-2","exp":1732353600}"#,
    );
    let output = eval_token(&policy, &keys, &token);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8(output.stdout).unwrap().starts_with("deny (claim_mismatch)"));
}

#[test]
fn eval_compares_typ_as_a_media_type() {
    // The provider expects `JWT`: `application/jwt` and `jwt` are the same media type.
    let (policy, keys) = (policy_dir("EdDSA"), Keys::new());
    for typ in ["application/jwt", "jwt", "Application/JWT"] {
        let token = sign(
            &format!(r#"{{"alg":"EdDSA","typ":"{typ}","kid":"ci-2024"}}"#),
            r#"{"iss":"https://ci.example.com","sub":"job-1","exp":1732353600}"#,
        );
        let output = eval_token(&policy, &keys, &token);
        assert_eq!(output.status.code(), Some(0), "{typ}: {}", String::from_utf8_lossy(&output.stdout));
    }
    let token = sign(
        r#"{"alg":"EdDSA","typ":"text/jwt","kid":"ci-2024"}"#,
        r#"{"iss":"https://ci.example.com","sub":"job-1","exp":1732353600}"#,
    );
    let output = eval_token(&policy, &keys, &token);
    assert!(String::from_utf8(output.stdout).unwrap().starts_with("deny (typ_mismatch)"));
}
