//! claimgate in the browser: the functions the playground (`web-demo/`) calls, compiled to
//! WebAssembly with wasm-bindgen.
//!
//! This crate is a thin layer. Every function takes text and returns one JSON document as text,
//! and [`api`] does the work in plain Rust (tested natively), through the same library API that
//! Rust callers use. Text crosses the boundary and is parsed inside: walking JavaScript objects
//! from Rust is slower than parsing JSON, and one string per call keeps the interface small.
//!
//! `web-demo/scripts/build-wasm.sh` builds it (the workspace's size profile `wasm`), runs the
//! `wasm-bindgen` CLI at the crate's exact version and shrinks the result with `wasm-opt -Oz`:
//!
//! ```text
//! cargo build --profile wasm --target wasm32-unknown-unknown -p claimgate-wasm
//! wasm-bindgen --target web --out-dir web-demo/src/wasm \
//!     target/wasm32-unknown-unknown/wasm/claimgate_wasm.wasm
//! ```

#![warn(missing_docs)]

pub mod api;

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`: milliseconds, for the time an evaluation takes.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;

    /// `Date.now()`: milliseconds since the Unix epoch, for the default "now".
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn date_now() -> f64;
}

/// The browser's clocks.
struct BrowserClock;

impl api::Clock for BrowserClock {
    fn unix_seconds(&self) -> i64 {
        (date_now() / 1000.0).floor() as i64
    }

    fn millis(&self) -> f64 {
        performance_now()
    }
}

/// The version of claimgate compiled in.
#[wasm_bindgen]
pub fn version() -> String {
    api::version().to_string()
}

/// Checks a policy: `{"ok", "diagnostics": [...]}` (see [`api::check`]).
#[wasm_bindgen]
pub fn check(source: &str) -> String {
    api::check(source).to_string()
}

/// Formats a policy: `{"ok", "formatted"}` or `{"ok": false, "diagnostics"}`.
#[wasm_bindgen]
pub fn format(source: &str) -> String {
    api::format(source).to_string()
}

/// Decides on claims or a signed token (see [`api::evaluate`] for the input and the result).
#[wasm_bindgen]
pub fn evaluate(source: &str, input: &str, options: &str) -> String {
    api::evaluate(source, input, options, &BrowserClock).to_string()
}

/// Decodes a compact token without verifying it, for display (see [`api::decode`]).
#[wasm_bindgen]
pub fn decode(token: &str) -> String {
    api::decode(token).to_string()
}

/// The inline tests of a policy, to offer them as examples (see [`api::tests`]).
#[wasm_bindgen]
pub fn tests(source: &str) -> String {
    api::tests(source).to_string()
}
