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
