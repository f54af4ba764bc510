//! Snapshots of syntax trees: the tour of every construct, and every example policy.

mod common;

use claimgate::FileId;
use claimgate::parser::{self, Limits};

fn ast_of(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let parsed = parser::parse(FileId(0), &text, &Limits::default());
    assert!(parsed.diagnostics.is_empty(), "{} does not parse: {:?}", path.display(), parsed.diagnostics);
    format!("{:#?}", parsed.ast)
}

#[test]
fn syntax_tour() {
    insta::assert_snapshot!(ast_of(&common::crate_dir().join("tests/cases/syntax/tour.cg")));
}

#[test]
fn example_policies() {
    for path in common::cg_files(&common::policies_dir()) {
        let name = format!("policy_{}", path.file_stem().unwrap().to_string_lossy());
        insta::assert_snapshot!(name, ast_of(&path));
    }
}

#[test]
fn the_tour_checks_clean() {
    let policy = common::load(&common::crate_dir().join("tests/cases/syntax/tour.cg"));
    assert!(!policy.has_errors(), "{}", policy.render_diagnostics(false));
    let set = policy.set();
    assert_eq!(set.providers[0].issuers.len(), 2);
    assert_eq!(set.providers[0].clock_skew, 90);
    assert_eq!(set.roles[0].conditions.len(), 22);
    assert_eq!(set.roles[0].token.bound_cidrs, ["10.0.0.0/8", "2001:db8::/32"]);
    assert_eq!(set.tests.len(), 2);
}
