//! The playground in a real browser: builds this crate for wasm32 and the site in `web-demo/`,
//! then runs `web-demo/tests` (playwright-core driving Debian's Chromium against the built site
//! served on 127.0.0.1). The scenarios themselves are in `web-demo/tests/playground.test.mjs`.
//!
//! It needs node with `npm ci` done in `web-demo/`, the `wasm-bindgen` CLI at the version in
//! Cargo.lock, the wasm32 target and `/usr/bin/chromium` (`.ci/run` installs them). Without
//! them a local run skips with a loud message; under CI (`CI=true`) it fails instead.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Why the browser tests cannot run here, if they cannot.
fn missing(root: &Path) -> Option<String> {
    let runs = |program: &str, arg: &str| Command::new(program).arg(arg).output().is_ok_and(|o| o.status.success());
    if !runs("node", "--version") || !runs("npm", "--version") {
        return Some("node and npm are not installed".into());
    }
    if !root.join("web-demo/node_modules/.bin/vite").exists() {
        return Some("web-demo's packages are not installed (`npm ci --prefix web-demo`)".into());
    }
    if !runs("wasm-bindgen", "--version") {
        return Some("the wasm-bindgen CLI is not installed (see web-demo/README.md)".into());
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("no Chromium at {chromium}"));
    }
    None
}

#[test]
fn the_playground_works_in_chromium() {
    let root = root();
    if let Some(problem) = missing(&root) {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the browser tests of the playground cannot run under CI: {problem}");
        }
        eprintln!("\n*** SKIPPED: the playground's browser tests did not run: {problem} ***\n");
        return;
    }
    // The wasm is built into its own target directory: the `cargo test` running this holds the
    // lock on the workspace's.
    let status = Command::new("npm")
        .args(["run", "test:all", "--prefix"])
        .arg(root.join("web-demo"))
        .env("CARGO_TARGET_DIR", root.join("target/web-demo"))
        .status()
        .expect("npm runs");
    assert!(status.success(), "the playground's browser tests failed (output above)");
}
