//! The binary under hostile input and hostile output: terminal escapes in claims never reach
//! the terminal raw, standard output that closes early or is full never makes it panic.

use std::io::Write;
use std::process::{Command as Process, Stdio};

use assert_cmd::Command;

/// The binary, with a bound on how long any case may take: a hang is a failure, not a stall.
fn claimgate() -> Command {
    let mut command = Command::cargo_bin("claimgate").unwrap();
    command.timeout(std::time::Duration::from_secs(60));
    command
}

const ESCAPES: &str = "\u{1b}]0;pwned\u{7}\u{9b}31m\u{202e}";

fn policy_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.cg"),
        "provider p {\n  issuer = \"https://p.test\"\n  keys {\n    jwks_url = \"https://p.test/keys\"\n  }\n  required_time_claims = []\n}\n\nrole r {\n  provider = p\n  audience = any\n  identity = claims.sub\n  groups = claims.groups\n  metadata {\n    note = claims.note\n  }\n}\n\nrole strict {\n  provider = p\n  audience = any\n  require {\n    claims.sub == \"nobody\"\n  }\n}\n",
    )
    .unwrap();
    dir
}

fn claims() -> String {
    serde_json::json!({ "iss": "https://p.test", "sub": ESCAPES, "groups": [ESCAPES], "note": ESCAPES }).to_string()
}

/// No byte of a terminal control sequence: ESC, BEL, the C1 CSI (UTF-8 C2 9B), RLO (E2 80 AE).
fn assert_terminal_safe(bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    assert!(!bytes.contains(&0x1b) && !bytes.contains(&0x07), "{what}: {text}");
    assert!(!bytes.windows(2).any(|w| w == [0xc2, 0x9b]), "{what}: {text}");
    assert!(!bytes.windows(3).any(|w| w == [0xe2, 0x80, 0xae]), "{what}: {text}");
}

#[test]
fn claims_with_terminal_escapes_are_printed_escaped() {
    let dir = policy_dir();
    for (role, format) in [("r", "human"), ("r", "json"), ("strict", "human"), ("strict", "json")] {
        let output = claimgate()
            .args([
                "eval",
                "--color",
                "never",
                "--explain",
                "--format",
                format,
                "--role",
                role,
                "--claims",
                "-",
                "--policy",
            ])
            .arg(dir.path())
            .write_stdin(claims())
            .output()
            .unwrap();
        assert!(matches!(output.status.code(), Some(0 | 1)), "{role} {format}");
        assert_terminal_safe(&output.stdout, &format!("eval {role} {format} stdout"));
        assert_terminal_safe(&output.stderr, &format!("eval {role} {format} stderr"));
        if format == "json" {
            // Still the same JSON values.
            let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            if role == "r" {
                assert_eq!(value["decision"]["identity"], ESCAPES);
            }
        } else if role == "r" {
            assert!(
                String::from_utf8_lossy(&output.stdout).contains("identity  \\u{1b}]0;pwned\\u{7}\\u{9b}31m\\u{202e}")
            );
        }
    }
    // decode shows the payload as JSON: escaped too.
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let token = format!("{}.{}.{}", b64(r#"{"alg":"RS256","kid":"k"}"#), b64(&claims()), b64("sig"));
    let output = claimgate().args(["decode", &token]).output().unwrap();
    assert_terminal_safe(&output.stdout, "decode");
}

#[test]
fn stdout_closed_early_or_full_is_not_a_panic() {
    // `claimgate compile --disasm policies/ | head -1`: the reader goes away.
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut child = Process::new(assert_cmd::cargo::cargo_bin("claimgate"))
        .current_dir(&repo)
        .args(["compile", "--disasm", "policies/"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(
        matches!(output.status.code(), Some(0..=2)),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));

    // `> /dev/full`: an error that says so, exit 2.
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let output = Process::new(assert_cmd::cargo::cargo_bin("claimgate"))
            .current_dir(&repo)
            .args(["test", "--format", "json", "policies/"])
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("error: cannot write the output"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let _ = std::io::stdout().flush();
}

#[test]
fn a_problem_far_along_a_long_line_is_reported_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let pad = " ".repeat(70_000);
    let provider = "provider p {\n  issuer = \"https://p.test\"\n  keys {\n    jwks_url = \"https://p.test/k\"\n  }\n  required_time_claims = []\n}\n";
    std::fs::write(
        dir.path().join("bad.cg"),
        format!(
            "{provider}role r {{\n  provider = p\n  audience = any\n  require {{\n{pad}claims.y ==== 1\n  }}\n}}\n"
        ),
    )
    .unwrap();
    let output = claimgate().args(["check", "--color", "never"]).arg(dir.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.cg:12:70012)"), "{stderr}");

    // A denial on such a line, from a policy that checks clean.
    std::fs::write(
        dir.path().join("bad.cg"),
        format!(
            "{provider}role r {{\n  provider = p\n  audience = any\n  require {{\n{pad}claims.x == \"a\"\n  }}\n}}\n"
        ),
    )
    .unwrap();
    let output = claimgate()
        .args(["eval", "--color", "never", "--role", "r", "--claims", "-", "--policy"])
        .arg(dir.path())
        .write_stdin(r#"{"iss":"https://p.test","x":"b"}"#)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("bad.cg:12:70001"));
}

#[test]
fn inputs_are_bounded_while_read_and_never_cut_silently() {
    let dir = policy_dir();
    // Claims over the bound: refused naming the bound (not cut and misread).
    let big = format!(r#"{{"iss":"https://p.test","pad":"{}"}}"#, "x".repeat(1 << 20));
    let output = claimgate()
        .args(["eval", "--role", "r", "--claims", "-", "--policy"])
        .arg(dir.path())
        .write_stdin(big)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("standard input is larger than 1048576 bytes"));
    // A token between the token bound and the input bound: its true size is reported.
    let token = format!("{}.e30.c2ln", "a".repeat(20_000));
    let output = claimgate().args(["decode", "-"]).write_stdin(token).output().unwrap();
    assert!(matches!(output.status.code(), Some(0 | 1)));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("token is 20009 bytes, larger than the limit of 16384"), "{stdout}");
    // Only ASCII white space is trimmed around a token.
    let output = claimgate().args(["decode", "-"]).write_stdin("\u{a0}e30.e30.c2ln\n").output().unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("malformed"));
}

#[test]
fn a_symlink_loop_ends_and_check_defaults_to_policies() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("policies");
    std::fs::create_dir(&inner).unwrap();
    std::fs::write(inner.join("p.cg"), std::fs::read_to_string(policy_dir().path().join("p.cg")).unwrap()).unwrap();
    std::os::unix::fs::symlink(&inner, inner.join("loop")).unwrap();
    // The same file under another name: read once (twice would be duplicate definitions).
    std::os::unix::fs::symlink(inner.join("p.cg"), inner.join("same.cg")).unwrap();
    std::os::unix::fs::symlink(dir.path(), inner.join("up")).unwrap();
    // Something that is not a policy beside policies/: not swept.
    std::fs::create_dir(dir.path().join("fixtures")).unwrap();
    std::fs::write(dir.path().join("fixtures/broken.cg"), "role {").unwrap();
    let output = claimgate().current_dir(dir.path()).args(["check", "--color", "never"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("checked 1 file"), "{stderr}");
}

#[test]
fn json_output_is_one_document_for_every_command() {
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = policy_dir();
    let run = |args: &[&str], stdin: &str| {
        let output = claimgate().current_dir(&repo).args(args).write_stdin(stdin.to_string()).output().unwrap();
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("{args:?}: not one JSON document ({e}): {}", String::from_utf8_lossy(&output.stdout))
        });
        (output.status.code(), value)
    };
    let (code, value) = run(&["test", "--format", "json", "policies/"], "");
    assert_eq!(code, Some(0));
    assert_eq!(value["failed"], 0);
    assert!(value["passed"].as_u64().unwrap() >= 20);
    let (code, value) = run(&["check", "--format", "json", "no/such/dir"], "");
    assert_eq!(code, Some(2));
    assert!(value["error"].as_str().unwrap().contains("no/such/dir"));
    let policy = dir.path().join("p.cg");
    let (code, _) = run(
        &["eval", "--format", "json", "--role", "r", "--claims", "-", "--policy", policy.to_str().unwrap()],
        &claims(),
    );
    assert_eq!(code, Some(0));
    // decode of a malformed token: one document, exit 1.
    let (code, value) = run(&["decode", "-"], "e30.e30");
    assert_eq!(code, Some(1));
    assert_eq!(value["structure"]["code"], "malformed");
}
