//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod generate;
pub mod signing;

use std::path::{Path, PathBuf};

use claimgate::{CheckLimits, Limits, Policy, SourceMap};

/// The crate's directory, so that test inputs are found from any working directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's `policies/` directory.
pub fn policies_dir() -> PathBuf {
    crate_dir().join("../../policies")
}

/// `*.cg` files of a directory (not recursive), sorted.
pub fn cg_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cg"))
        .collect();
    files.sort();
    files
}

/// Every policy text the tests know of: the example policies and all case files.
pub fn all_policy_texts() -> Vec<(String, String)> {
    let mut dirs = vec![policies_dir()];
    for sub in ["cases/diagnostics", "cases/syntax", "cases/format", "cases/eval", "cases/eval-mismatch"] {
        let dir = crate_dir().join("tests").join(sub);
        dirs.push(dir.clone());
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                dirs.push(entry.path());
            }
        }
    }
    dirs.iter()
        .flat_map(|d| cg_files(d))
        .map(|p| (display_name(&p), std::fs::read_to_string(&p).expect("readable policy")))
        .collect()
}

/// A path relative to the repository root, with `/` separators, for stable snapshots.
pub fn display_name(path: &Path) -> String {
    let root = crate_dir().join("../..").canonicalize().expect("repository root");
    let path = path.canonicalize().expect("existing path");
    path.strip_prefix(&root).unwrap_or(&path).to_string_lossy().replace('\\', "/")
}

/// Loads files (or a directory of files) as one policy set.
pub fn load(path: &Path) -> Policy {
    let files = if path.is_dir() { cg_files(path) } else { vec![path.to_path_buf()] };
    let mut sources = SourceMap::new();
    for file in &files {
        sources.add(display_name(file), std::fs::read_to_string(file).expect("readable policy"));
    }
    let mut policy = Policy::load(sources, &Limits::default(), &CheckLimits::default());
    policy.check_key_files(|policy_file, key_file| {
        let root = crate_dir().join("../..");
        let base = root.join(policy_file);
        let base = base.parent().unwrap_or(&root);
        std::fs::read(base.join(key_file)).map_err(|e| e.to_string())
    });
    policy
}
