//! Policy text through the whole front end: parse, check, render every diagnostic as text and
//! as JSON. Must never panic, and must return in bounded time.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let policy = claimgate::Policy::from_sources([("fuzz.cg", text)]);
    let _ = policy.has_errors();
    let _ = policy.render_diagnostics(false);
    let _ = claimgate::diagnostic::to_json(&policy.diagnostics(), &policy.sources);
});
