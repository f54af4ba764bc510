//! Every diagnostic, rendered exactly as a user sees it (message, code, `file:line:col`,
//! underline, help), pinned by insta snapshots. One snapshot per case under
//! `tests/cases/diagnostics/` (a file, or a directory of files checked as one policy set).

mod common;

use std::collections::BTreeSet;

use claimgate::Code;
use claimgate::diagnostic::{self, RenderOptions};

fn cases() -> Vec<std::path::PathBuf> {
    let dir = common::crate_dir().join("tests/cases/diagnostics");
    let mut cases: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    cases
}

#[test]
fn every_case_renders_as_snapshotted() {
    for case in cases() {
        let name = case.file_stem().unwrap().to_string_lossy().to_string();
        let policy = common::load(&case);
        // Every case is a mistake: an error, or for the lint cases (`lints*`) a warning.
        let reported = if name.starts_with("lints") { !policy.diagnostics().is_empty() } else { policy.has_errors() };
        assert!(reported, "case {name} reports nothing");
        let rendered = diagnostic::render(&policy.diagnostics(), policy.sources(), RenderOptions::default());
        insta::assert_snapshot!(name, rendered);
    }
}

#[test]
fn every_error_code_is_exercised_by_a_case() {
    let mut seen = BTreeSet::new();
    for case in cases() {
        seen.extend(common::load(&case).diagnostics().iter().map(|d| d.code));
    }
    let missing: Vec<Code> = Code::ALL.iter().copied().filter(|c| !seen.contains(c)).collect();
    assert!(missing.is_empty(), "no case produces {missing:?}");
}

#[test]
fn messages_follow_the_house_style() {
    for case in cases() {
        for d in common::load(&case).diagnostics() {
            let first = d.message.chars().next().unwrap();
            assert!(!first.is_uppercase(), "message starts uppercase: {}", d.message);
            assert!(!d.message.ends_with('.'), "message ends with a period: {}", d.message);
            for forbidden in ["Rule::", "rule ", "Some(", "None", "String", "Vec<", "{:?}", "serde", "pest"] {
                assert!(!d.message.contains(forbidden), "message leaks `{forbidden}`: {}", d.message);
                if let Some(help) = &d.help {
                    assert!(!help.contains(forbidden), "help leaks `{forbidden}`: {help}");
                }
            }
        }
    }
}

#[test]
fn a_file_with_several_mistakes_reports_all_of_them_with_locations() {
    let policy = common::load(&common::crate_dir().join("tests/cases/diagnostics/values.cg"));
    let diagnostics = policy.diagnostics();
    assert!(diagnostics.len() >= 10, "only {} diagnostics", diagnostics.len());
    let json = diagnostic::to_json(&diagnostics, policy.sources());
    for entry in json.as_array().unwrap() {
        assert!(entry["line"].as_u64().unwrap() >= 1);
        assert!(entry["column"].as_u64().unwrap() >= 1);
        assert!(entry["code"].as_str().unwrap().starts_with('E'));
    }
}

#[test]
fn json_diagnostics_snapshot() {
    let policy = common::load(&common::crate_dir().join("tests/cases/diagnostics/duplicate-across-files"));
    let json = diagnostic::to_json(&policy.diagnostics(), policy.sources());
    insta::assert_snapshot!(serde_json::to_string_pretty(&json).unwrap());
}

/// docs/language.md's table of denial codes lists every code the engine can produce, in
/// `DenyCode::ALL`'s order, and every diagnostic code is in its tables.
#[test]
fn the_language_reference_lists_every_denial_and_diagnostic_code() {
    let docs = std::fs::read_to_string(common::crate_dir().join("../../docs/language.md")).unwrap();
    let rows: Vec<&str> = docs.lines().filter(|l| l.starts_with("| `")).collect();
    let mut last = 0;
    for code in claimgate::decision::DenyCode::ALL {
        let cell = format!("`{}`", code.as_str());
        let at = rows
            .iter()
            .position(|row| row.split(" | ").next().is_some_and(|first| first.contains(&cell)))
            .unwrap_or_else(|| panic!("docs/language.md has no row for the denial code {cell}"));
        assert!(at >= last, "{cell} is out of DenyCode::ALL's order in docs/language.md");
        last = at;
    }
    for code in Code::ALL {
        let row = format!("| {} |", code.as_str());
        assert!(docs.contains(&row), "docs/language.md has no row for {row}");
    }
}
