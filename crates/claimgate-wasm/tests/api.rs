//! The playground's JSON interface, natively: what the page receives for each call.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use claimgate_wasm::api::{self, Clock};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

struct TestClock;

impl Clock for TestClock {
    fn unix_seconds(&self) -> i64 {
        1_700_000_000
    }

    fn millis(&self) -> f64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
    }
}

fn evaluate(source: &str, input: &str, options: Value) -> Value {
    api::evaluate(source, input, &options.to_string(), &TestClock)
}

/// An Ed25519 key that signs tokens under a `kid`.
struct Signer {
    kid: &'static str,
    pair: Ed25519KeyPair,
}

impl Signer {
    fn new(kid: &'static str) -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        Signer { kid, pair: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap() }
    }

    fn jwks(&self) -> String {
        let x = B64.encode(self.pair.public_key().as_ref());
        format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"{}","x":"{x}"}}]}}"#, self.kid)
    }

    fn sign(&self, claims: &Value) -> String {
        let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, self.kid);
        let input = format!("{}.{}", B64.encode(header), B64.encode(claims.to_string()));
        let signature = self.pair.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(signature.as_ref()))
    }
}

const TWO_PROVIDERS: &str = r#"
provider ci {
  issuer = "https://ci.example.com"
  keys { jwks_url = "https://ci.example.com/keys" }
  algorithms = [EdDSA]
}

provider idp {
  issuer = "https://idp.example.com"
  keys { jwks_url = "https://idp.example.com/keys" }
  algorithms = [EdDSA]
}

role deploy {
  provider = ci
  audience = "vault"
  require {
    claims.ref == "main"
  }
  identity = claims.sub
}

role api {
  provider = idp
  audience = "vault"
  identity = claims.sub
}
"#;

fn claims(iss: &str, reference: &str) -> Value {
    json!({"iss": iss, "sub": "project-1", "aud": "vault", "ref": reference,
           "iat": 1_700_000_000 - 10, "exp": 1_700_000_000 + 600})
}

#[test]
fn every_bundled_example_test_evaluates_to_its_expected_decision() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "cg") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let listed = api::tests(&source);
        assert_eq!(listed["ok"], true, "{}: {listed}", path.display());
        for test in listed["tests"].as_array().unwrap() {
            let options = json!({ "now": test["now"], "role": test["role"] });
            let result = evaluate(&source, test["claims"].as_str().unwrap(), options);
            assert_eq!(result["ok"], true, "{}: {result}", test["name"]);
            assert_eq!(result["decision"], test["expect"], "{} in {}: {result}", test["name"], path.display());
            if let Some(code) = test["code"].as_str() {
                assert_eq!(result["denial"]["code"], code, "{}", test["name"]);
            }
            assert!(result["time"]["runs"].as_u64().unwrap() >= 1);
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} example tests");
}

#[test]
fn a_denial_points_at_the_failing_condition_in_the_editor() {
    let result = evaluate(TWO_PROVIDERS, &claims("https://ci.example.com", "dev").to_string(), json!({}));
    assert_eq!(result["decision"], "deny", "{result}");
    let denial = &result["denial"];
    assert_eq!(denial["code"], "claim_mismatch");
    assert_eq!(denial["actual"], "dev");
    let condition = &denial["condition"];
    assert_eq!(condition["text"], r#"claims.ref == "main""#);
    let (from, to) = (condition["from"].as_u64().unwrap() as usize, condition["to"].as_u64().unwrap() as usize);
    assert_eq!(&TWO_PROVIDERS[from..to], r#"claims.ref == "main""#);
    let line = TWO_PROVIDERS[..from].lines().count();
    assert_eq!(condition["line"], line);
    assert_eq!(condition["column"], 5);
    // The trace has the same condition, failed, with the value seen.
    let steps = result["trace"][0]["steps"].as_array().unwrap();
    let step = steps.iter().find(|s| s["text"] == r#"claims.ref == "main""#).unwrap();
    assert_eq!(step["outcome"], "fail");
    assert_eq!(step["seen"], "dev");
    assert_eq!(step["from"], condition["from"]);
}

#[test]
fn a_token_verifies_only_with_keys_bound_to_its_own_provider() {
    let ci = Signer::new("ci-1");
    let token = ci.sign(&claims("https://ci.example.com", "main"));
    let options = |provider: &str| json!({ "jwks": ci.jwks(), "provider": provider, "role": "deploy" });

    let allowed = evaluate(TWO_PROVIDERS, &token, options("ci"));
    assert_eq!(allowed["decision"], "allow", "{allowed}");
    assert_eq!(allowed["signature"]["verified"], true);
    assert_eq!(allowed["signature"]["provider"], "ci");
    assert_eq!(allowed["signature"]["alg"], "EdDSA");
    assert_eq!(allowed["grant"]["identity"], "project-1");

    // The role names its provider, so the keys are bound to it without saying so.
    let by_role = evaluate(TWO_PROVIDERS, &token, json!({ "jwks": ci.jwks(), "role": "deploy" }));
    assert_eq!(by_role["decision"], "allow", "{by_role}");

    // The same keys given as the other provider's: the token's provider has no keys.
    let other = evaluate(TWO_PROVIDERS, &token, json!({ "jwks": ci.jwks(), "provider": "idp" }));
    assert_eq!(other["decision"], "deny", "{other}");
    assert_eq!(other["denial"]["code"], "keys_unavailable");
    assert_eq!(other["signature"]["verified"], false);

    // A token for the other provider signed with this key, the keys given as that provider's.
    let forged = ci.sign(&claims("https://idp.example.com", "main"));
    let forged = evaluate(TWO_PROVIDERS, &forged, json!({ "jwks": ci.jwks(), "provider": "ci", "role": "api" }));
    assert_eq!(forged["decision"], "deny", "{forged}");

    // Two providers and neither a role nor a provider: whose keys these are is not guessed.
    let unsaid = evaluate(TWO_PROVIDERS, &token, json!({ "jwks": ci.jwks() }));
    assert_eq!(unsaid["ok"], false, "{unsaid}");
    assert_eq!(unsaid["stage"], "keys");
    assert!(unsaid["error"].as_str().unwrap().contains("say whose keys these are"), "{unsaid}");
}

#[test]
fn a_tampered_token_is_refused() {
    let ci = Signer::new("ci-1");
    let token = ci.sign(&claims("https://ci.example.com", "dev"));
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1] = B64.encode(claims("https://ci.example.com", "main").to_string());
    let tampered = parts.join(".");
    let result = evaluate(TWO_PROVIDERS, &tampered, json!({ "jwks": ci.jwks(), "provider": "ci" }));
    assert_eq!(result["decision"], "deny", "{result}");
    assert_eq!(result["denial"]["code"], "signature_invalid");
    assert_eq!(result["grant"], Value::Null);
}

#[test]
fn claims_are_decided_on_their_exact_text() {
    // A duplicate claim is refused, not read one way or the other.
    let duplicate = r#"{"iss":"https://ci.example.com","ref":"dev","ref":"main"}"#;
    let result = evaluate(TWO_PROVIDERS, duplicate, json!({}));
    assert_eq!(result["ok"], false, "{result}");
    assert_eq!(result["stage"], "input");
    // Keys with claims are a mistake worth saying.
    let result = evaluate(TWO_PROVIDERS, "{}", json!({ "jwks": "{}" }));
    assert_eq!(result["ok"], false);
    assert!(result["error"].as_str().unwrap().contains("paste the token"), "{result}");
}

#[test]
fn now_and_role_options() {
    let input = claims("https://ci.example.com", "main").to_string();
    let expired = evaluate(TWO_PROVIDERS, &input, json!({ "now": "2030-01-01T00:00:00Z" }));
    assert_eq!(expired["denial"]["code"], "token_expired", "{expired}");
    assert_eq!(expired["now"], 1_893_456_000);
    let default_now = evaluate(TWO_PROVIDERS, &input, json!({ "now": null }));
    assert_eq!(default_now["now"], 1_700_000_000);
    assert_eq!(default_now["decision"], "allow");
    let unknown = evaluate(TWO_PROVIDERS, &input, json!({ "role": "nope" }));
    assert_eq!(unknown["denial"]["code"], "unknown_role", "{unknown}");
    let typo = evaluate(TWO_PROVIDERS, &input, json!({ "rol": "deploy" }));
    assert_eq!(typo["ok"], false);
    assert_eq!(typo["error"], "unknown option `rol` (options: now, role, provider, jwks)");
    let bad_now = evaluate(TWO_PROVIDERS, &input, json!({ "now": "yesterday" }));
    assert_eq!(bad_now["error"], "option `now` (`yesterday`) is neither seconds since the epoch nor an RFC 3339 time");
}

#[test]
fn check_locates_errors_for_the_editor_in_utf16() {
    // `é` is one UTF-16 unit and two bytes, `😀` two units and four bytes.
    let source = "# é😀\nrole x {\n  provider = nowhere\n}\n";
    let result = api::check(source);
    assert_eq!(result["ok"], false, "{result}");
    let diagnostics = result["diagnostics"].as_array().unwrap();
    let first = diagnostics.iter().find(|d| d["code"] == "E0102").unwrap();
    assert_eq!(first["line"], 3, "{result}");
    let (from, to) = (first["from"].as_u64().unwrap() as usize, first["to"].as_u64().unwrap() as usize);
    let utf16: Vec<u16> = source.encode_utf16().collect();
    assert_eq!(String::from_utf16(&utf16[from..to]).unwrap(), "nowhere", "{result}");
    assert!(result["rendered"].as_str().unwrap().contains("nowhere"));

    let clean = api::check(TWO_PROVIDERS);
    assert_eq!(clean["ok"], true, "{clean}");
    assert_eq!(clean["errors"], 0);
}

#[test]
fn evaluate_refuses_a_policy_with_errors_and_lists_them() {
    let result = evaluate("role {", "{}", json!({}));
    assert_eq!(result["ok"], false);
    assert_eq!(result["stage"], "policy");
    assert!(!result["diagnostics"].as_array().unwrap().is_empty());
}

#[test]
fn format_gives_the_canonical_layout() {
    let result = api::format("role  x{provider=p\naudience=\"a\"}");
    assert_eq!(result["ok"], true, "{result}");
    assert!(result["formatted"].as_str().unwrap().starts_with("role x {\n"), "{result}");
    let broken = api::format("role {");
    assert_eq!(broken["ok"], false);
    assert_eq!(broken["diagnostics"][0]["line"], 1);
}

#[test]
fn decode_shows_the_parts_and_what_the_core_refuses() {
    let ci = Signer::new("ci-1");
    let token = ci.sign(&claims("https://ci.example.com", "main"));
    let decoded = api::decode(&token);
    assert_eq!(decoded["ok"], true);
    assert_eq!(decoded["header"]["alg"], "EdDSA");
    assert_eq!(decoded["payload"]["ref"], "main");
    assert_eq!(decoded["signature_bytes"], 64);
    assert_eq!(decoded["problem"], Value::Null);

    let none = format!("{}.{}.", B64.encode(r#"{"alg":"none"}"#), B64.encode("{}"));
    let decoded = api::decode(&none);
    assert_eq!(decoded["header"]["alg"], "none");
    assert_eq!(decoded["problem"]["code"], "alg_none", "{decoded}");

    let decoded = api::decode("not a token");
    assert_eq!(decoded["ok"], false);
    assert_eq!(decoded["error"], "a compact token has three parts separated by dots; this has 1");
}

#[test]
fn tests_lists_each_inline_test_with_its_expectation() {
    let test = r#"
test "main deploys" {
  role = deploy
  now = 1700000000
  claims = """
    {"iss": "https://ci.example.com", "aud": "vault", "sub": "p", "ref": "main", "exp": 1700000600}
    """
  expect allow {
    identity = "p"
  }
}
"#;
    let source = format!("{TWO_PROVIDERS}{test}");
    let listed = api::tests(&source);
    assert_eq!(listed["ok"], true, "{listed}");
    let test = &listed["tests"][0];
    assert_eq!(test["name"], "main deploys");
    assert_eq!(test["role"], "deploy");
    assert_eq!(test["expect"], "allow");
    assert_eq!(test["now"], 1_700_000_000);
    let result = evaluate(&source, test["claims"].as_str().unwrap(), json!({ "now": test["now"], "role": "deploy" }));
    assert_eq!(result["decision"], "allow", "{result}");
}

#[test]
fn a_pattern_with_a_unicode_class_is_matched_or_refused_with_a_located_error() {
    // The wasm build leaves out Unicode's script tables (crates/claimgate's `unicode-classes`
    // feature): such a pattern must then be an error in the editor, never a different match.
    let source = TWO_PROVIDERS.replace(r#"claims.ref == "main""#, r#"claims.ref matches "\\p{Greek}+""#);
    let checked = api::check(&source);
    if checked["ok"] == true {
        let input = claims("https://ci.example.com", "αβγ").to_string();
        assert_eq!(evaluate(&source, &input, json!({}))["decision"], "allow");
        let input = claims("https://ci.example.com", "abc").to_string();
        assert_eq!(evaluate(&source, &input, json!({}))["decision"], "deny");
    } else {
        let diagnostic = &checked["diagnostics"][0];
        assert_eq!(diagnostic["line"], 18, "{checked}");
        let message = diagnostic["message"].as_str().unwrap();
        assert!(message.contains("leaves out Unicode's script and category classes"), "{checked}");
    }
}

#[test]
fn a_condition_with_a_message_is_located_without_its_message() {
    let source =
        TWO_PROVIDERS.replace(r#"claims.ref == "main""#, r#"claims.ref == "main" message "deploys run from main""#);
    let result = evaluate(&source, &claims("https://ci.example.com", "dev").to_string(), json!({}));
    let condition = &result["denial"]["condition"];
    assert_eq!(condition["message"], "deploys run from main", "{result}");
    let (from, to) = (condition["from"].as_u64().unwrap() as usize, condition["to"].as_u64().unwrap() as usize);
    assert_eq!(&source[from..to], r#"claims.ref == "main""#);
}

#[test]
fn a_failing_group_says_what_went_wrong_with_it() {
    let group = "any {\n      claims.ref == \"main\"\n      claims.ref glob \"release/*\"\n    }";
    let source = TWO_PROVIDERS.replace(r#"claims.ref == "main""#, group);
    let result = evaluate(&source, &claims("https://ci.example.com", "dev").to_string(), json!({}));
    let denial = &result["denial"];
    assert_eq!(denial["code"], "claim_mismatch", "{result}");
    assert_eq!(denial["seen"], "no branch of the group holds");
    assert_eq!(denial["actual"], Value::Null);
    let steps = result["trace"][0]["steps"].as_array().unwrap();
    let branches: Vec<&Value> = steps.iter().filter(|s| s["depth"] == 1).collect();
    assert_eq!(branches.len(), 2, "{result}");
    assert!(branches.iter().all(|s| s["outcome"] == "fail" && s["seen"] == "dev"), "{result}");
}
