//! The formatter: canonical, idempotent, comment-preserving and meaning-preserving.

mod common;

use claimgate::FileId;
use claimgate::fmt::format_file;
use claimgate::parser::{self, Limits};

fn format(text: &str) -> Option<(String, claimgate::ast::PolicyFile)> {
    let parsed = parser::parse(FileId(0), text, &Limits::default());
    if parsed.has_errors() {
        return None;
    }
    Some((format_file(&parsed.ast, text), parsed.ast))
}

#[test]
fn every_policy_and_case_round_trips() {
    let mut formatted_files = 0;
    for (name, text) in common::all_policy_texts() {
        let Some((once, ast)) = format(&text) else { continue };
        let (twice, ast_again) =
            format(&once).unwrap_or_else(|| panic!("{name}: formatted text does not parse:\n{once}"));
        assert_eq!(ast, ast_again, "{name}: formatting changed the syntax tree");
        assert_eq!(once, twice, "{name}: formatting is not idempotent");
        let comments =
            |ast: &claimgate::ast::PolicyFile| ast.comments.iter().map(|c| c.text.clone()).collect::<Vec<_>>();
        assert_eq!(comments(&ast), comments(&ast_again), "{name}: comments were lost or reordered");
        formatted_files += 1;
    }
    assert!(formatted_files >= 10, "only {formatted_files} files were formatted");
}

#[test]
fn example_policies_are_formatted() {
    for path in common::cg_files(&common::policies_dir()) {
        let text = std::fs::read_to_string(&path).unwrap();
        let (formatted, _) = format(&text).unwrap();
        assert_eq!(formatted, text, "{} is not in canonical format", path.display());
    }
}

#[test]
fn messy_file() {
    let text = std::fs::read_to_string(common::crate_dir().join("tests/cases/format/messy.cg")).unwrap();
    let (formatted, _) = format(&text).unwrap();
    insta::assert_snapshot!(formatted);
}

#[test]
fn multiline_strings_are_reindented_with_their_block() {
    let text = "provider p {\n  keys {\n    pem = \"\"\"\n          line one\n            indented\n\n          line three\n          \"\"\"\n  }\n}\n";
    let (formatted, ast) = format(text).unwrap();
    assert_eq!(
        formatted,
        "provider p {\n  keys {\n    pem = \"\"\"\n      line one\n        indented\n\n      line three\n      \"\"\"\n  }\n}\n"
    );
    let (_, again) = format(&formatted).unwrap();
    assert_eq!(ast, again);
}
