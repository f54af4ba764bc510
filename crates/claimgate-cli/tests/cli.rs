//! The `claimgate` command as users and CI call it: exit codes, output streams, formats.

use std::path::PathBuf;

use assert_cmd::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn claimgate() -> Command {
    let mut command = Command::cargo_bin("claimgate").expect("binary is built");
    command.current_dir(repo()).env_remove("NO_COLOR");
    command
}

fn case(name: &str) -> String {
    format!("crates/claimgate/tests/cases/diagnostics/{name}")
}

#[test]
fn check_accepts_the_example_policies() {
    let output = claimgate().args(["check", "policies/"]).output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("no problems"), "{stderr}");
}

#[test]
fn check_reports_every_problem_with_location_and_code() {
    let output = claimgate().args(["check", "--color", "never", &case("values.cg")]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("values.cg:6:16]"), "{stderr}");
    assert!(stderr.contains("E0301"), "{stderr}");
    assert!(stderr.contains("E0404"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colors with --color never");
    assert!(stderr.lines().last().unwrap().starts_with("error: "), "{stderr}");
}

#[test]
fn color_always_colors() {
    let output = claimgate().args(["check", "--color", "always", &case("values.cg")]).output().unwrap();
    assert!(String::from_utf8(output.stderr).unwrap().contains('\u{1b}'));
}

#[test]
fn check_prints_json_for_tools() {
    let output = claimgate().args(["check", "--format", "json", &case("names.cg")]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    let first = &json[0];
    assert_eq!(first["code"], "E0101");
    assert_eq!(first["line"], 8);
    assert_eq!(first["column"], 10);
    assert_eq!(first["related"][0]["line"], 1);
}

#[test]
fn serve_exits_1_on_policies_with_problems_and_2_on_a_missing_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.cg"), "role x {\n  provider = nobody\n}\n").unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, format!("data_dir = {:?}\naudit_log = \"-\"\n", data.display().to_string())).unwrap();
    let serve = |policies: &std::path::Path| {
        let args = ["serve", "--listen", "127.0.0.1:0", "--config", config.to_str().unwrap(), "--policies"];
        claimgate().args(args).arg(policies).output().unwrap()
    };
    let output = serve(dir.path());
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("error: the policies did not load: the policies have 2 problems:\n"), "{stderr}");
    assert!(stderr.contains("p.cg:2:14]\n"), "located, on lines of their own: {stderr}");
    assert_eq!(serve(&dir.path().join("missing")).status.code(), Some(2));
}

#[test]
fn check_of_a_missing_path_is_a_usage_error() {
    let output = claimgate().args(["check", "no/such/dir"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().starts_with("error: cannot read `no/such/dir`"));
}

#[test]
fn check_reads_key_files_relative_to_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let policy =
        "provider k {\n  issuer = \"https://k.example.com\"\n  keys {\n    jwks_file = \"missing.json\"\n  }\n}\n";
    std::fs::write(dir.path().join("k.cg"), policy).unwrap();
    let output = claimgate().args(["check", "--color", "never"]).arg(dir.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("cannot read key file `missing.json`"), "{stderr}");
}

#[test]
fn fmt_check_accepts_the_example_policies() {
    let output = claimgate().args(["fmt", "--check", "policies/"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn fmt_rewrites_and_then_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("messy.cg");
    std::fs::copy(repo().join("crates/claimgate/tests/cases/format/messy.cg"), &file).unwrap();
    let check = claimgate().args(["fmt", "--check"]).arg(&file).output().unwrap();
    assert_eq!(check.status.code(), Some(1));
    assert!(String::from_utf8(check.stderr).unwrap().contains("not formatted"));
    let format = claimgate().arg("fmt").arg(&file).output().unwrap();
    assert_eq!(format.status.code(), Some(0));
    let again = claimgate().args(["fmt", "--check"]).arg(&file).output().unwrap();
    assert_eq!(again.status.code(), Some(0));
}

#[test]
fn fmt_refuses_files_with_syntax_errors() {
    let output = claimgate().args(["fmt", "--check", &case("syntax-bad-path.cg")]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8(output.stderr).unwrap().contains("E0001"));
}

#[test]
fn fmt_formats_standard_input() {
    let output = claimgate().args(["fmt", "-"]).write_stdin("role r{provider=p audience=any}").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "role r {\n  provider = p\n  audience = any\n}\n");
}

#[test]
fn test_runs_the_inline_tests_of_the_example_policies() {
    let output = claimgate().args(["test", "policies/"]).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let last = stdout.lines().last().unwrap();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 10);
}

#[test]
fn test_reports_failures_with_differences_and_exit_1() {
    let output = claimgate().args(["test", "crates/claimgate/tests/cases/eval-mismatch/"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("FAIL wrong identity"), "{stdout}");
    assert!(stdout.contains("identity: expected \"ci/y\", got \"ci/x\""), "{stdout}");
    assert_eq!(stdout.lines().last().unwrap(), "0 passed, 12 failed");
}

const GITLAB_CLAIMS: &str = r#"{"iss":"https://gitlab.example.com","aud":"strongbox","sub":"project_path:mygroup/myproject:ref_type:branch:ref:main","iat":1732350000,"nbf":1732349995,"exp":1732353600,"namespace_id":"72","namespace_path":"mygroup","project_id":"20","project_path":"mygroup/myproject","user_login":"sample-user","pipeline_id":"574","pipeline_source":"push","ref":"main","ref_type":"branch","ref_protected":"true","environment":"production","strongbox_policies":["reader","deployer"]}"#;

#[test]
fn eval_allows_the_gitlab_example_with_automatic_role_selection() {
    let output = claimgate()
        .args(["eval", "--policy", "policies/", "--claims", "-", "--now", "1732350100"])
        .write_stdin(GITLAB_CLAIMS)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.starts_with("allow: role `gitlab-deploy-production`"), "{stdout}");
    assert!(stdout.contains("identity  gitlab/mygroup/myproject"), "{stdout}");
    assert!(String::from_utf8(output.stderr).unwrap().contains("no signature was checked"));
}

#[test]
fn eval_after_exp_denies_naming_exp_and_its_value() {
    let output = claimgate()
        .args(["eval", "--color", "never", "--policy", "policies/", "--claims", "-", "--now", "2024-11-23T10:00:00Z"])
        .write_stdin(GITLAB_CLAIMS)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.starts_with("deny (token_expired): the token has expired"), "{stdout}");
    assert!(stdout.contains("claims.exp"), "{stdout}");
    assert!(stdout.contains("1732353600"), "{stdout}");
}

#[test]
fn eval_explains_as_json() {
    let output = claimgate()
        .args(["eval", "--format", "json", "--explain", "--policy", "policies/", "--role", "gitlab-deploy-production"])
        .args(["--claims", "-", "--now", "1732350100"])
        .write_stdin(GITLAB_CLAIMS.replace("\"ref\":\"main\"", "\"ref\":\"feature\""))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["signature_checked"], false);
    assert_eq!(json["decision"]["decision"], "deny");
    assert_eq!(json["decision"]["code"], "claim_mismatch");
    assert_eq!(json["decision"]["actual"], "feature");
    assert_eq!(json["decision"]["condition"]["path"], "claims.ref");
    assert_eq!(json["decision"]["message"], "production deploys run from the main branch");
    let steps = json["trace"][0]["steps"].as_array().unwrap();
    assert_eq!(steps.last().unwrap()["outcome"], "fail");
}

#[test]
fn eval_denies_claims_with_duplicate_keys_or_out_of_range_numbers_as_a_token_would_be() {
    for (claims, why) in [
        (r#"{"iss":"https://gitlab.example.com","ref":"dev","ref":"main"}"#, "the key `ref` twice"),
        (r#"{"iss":"https://gitlab.example.com","big":1e400}"#, "beyond the range of a 64-bit float"),
    ] {
        let output = claimgate()
            .args(["eval", "--policy", "policies/", "--claims", "-", "--now", "1732350100", "--format", "json"])
            .write_stdin(claims)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{claims}");
        let decision: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(decision["decision"]["code"], "payload_invalid", "{decision}");
        assert!(decision.to_string().contains(why), "{decision}");
    }
}

#[test]
fn compile_writes_a_set_that_eval_loads_without_sources() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set.cgb");
    let output = claimgate().args(["compile", "policies/", "-o"]).arg(&set).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let output = claimgate()
        .args(["eval", "--claims", "-", "--now", "1732350100", "--policy"])
        .arg(&set)
        .write_stdin(GITLAB_CLAIMS)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8(output.stdout).unwrap().starts_with("allow: role `gitlab-deploy-production`"));
    std::fs::write(&set, b"garbage").unwrap();
    let output = claimgate().args(["eval", "--claims", "-", "--policy"]).arg(&set).write_stdin("{}").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().contains("not a compiled claimgate policy set"));
}

#[test]
fn compile_prints_the_disassembly() {
    let output = claimgate().args(["compile", "--disasm", "policies/okta.cg"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("role okta-results-uploader (#0) at policies/okta.cg:"), "{stdout}");
    assert!(stdout.contains("test      c1 p6 contains.all s0"), "{stdout}");
}

#[test]
fn eval_explains_a_failing_group_by_its_branches_not_as_a_missing_claim() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("group.cg");
    std::fs::write(
        &policy,
        "provider p {\n  issuer = \"https://i.example.com\"\n  keys {\n    jwks_url = \"https://i.example.com/keys\"\n  }\n  required_time_claims = []\n}\n\nrole r {\n  provider = p\n  audience = any\n  require {\n    any {\n      claims.ref == \"main\"\n      claims.env == \"prod\"\n    }\n  }\n}\n",
    )
    .unwrap();
    let run = |claims: &str| {
        let output = claimgate()
            .args(["eval", "--color", "never", "--role", "r", "--now", "0", "--claims", "-", "--policy"])
            .arg(&policy)
            .write_stdin(claims)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        String::from_utf8(output.stdout).unwrap()
    };
    let stdout = run(r#"{"iss": "https://i.example.com", "ref": "dev", "env": "dev"}"#);
    assert!(stdout.starts_with("deny (claim_mismatch)"), "{stdout}");
    assert!(stdout.contains("no branch of the group holds"), "{stdout}");
    assert!(!stdout.contains("no such claim"), "{stdout}");
    assert!(stdout.contains(r#"✗ claims.ref == "main"  — token has "dev""#), "{stdout}");
    assert!(stdout.contains(r#"✗ claims.env == "prod"  — token has "dev""#), "{stdout}");
    // One branch's claim missing and the other failing: unknown, so `claim_missing`, inside
    // the group as at the top level.
    let stdout = run(r#"{"iss": "https://i.example.com", "ref": "dev"}"#);
    assert!(stdout.starts_with("deny (claim_missing)"), "{stdout}");
    assert!(stdout.contains("a claim this group needs is missing"), "{stdout}");
    assert!(stdout.contains("✗ (missing) claims.env == \"prod\"  — token has no such claim"), "{stdout}");
}

#[test]
fn check_counts_warnings_and_deny_warnings_fails_on_them() {
    let lints = "crates/claimgate/tests/cases/diagnostics/lints.cg";
    let output = claimgate().args(["check", "--color", "never", lints]).output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("W0103") && stderr.trim_end().ends_with("22 warnings"), "{stderr}");
    let output = claimgate().args(["check", "--deny-warnings", "--color", "never", lints]).output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: 22 warnings (--deny-warnings) in 1 file"), "{stderr}");
    // The bundled policies pass it.
    let output = claimgate().args(["check", "--deny-warnings", "policies/"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
}
