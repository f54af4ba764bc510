//! Policy text through the whole front end: parse, check, render every diagnostic as text and
//! as JSON, and compile what checks cleanly. Must never panic, and must return in bounded time.
//! Parsing top-level blocks a group at a time (the default) must give exactly what parsing them
//! one at a time gives, spans and errors included. Every diagnostic (and every place
//! it refers to) must point into its file, on character boundaries, so that the underline is
//! where the problem is.
#![no_main]

use claimgate::parser::{self, Limits};
use claimgate::{FileId, Span};
use libfuzzer_sys::fuzz_target;

fn check_span(policy: &claimgate::Policy, file: FileId, span: Span, what: &str) {
    let text = &policy.sources().get(file).text;
    let (start, end) = (span.start as usize, span.end as usize);
    assert!(start <= end && end <= text.len(), "{what} span {start}..{end} outside a file of {} bytes", text.len());
    assert!(
        text.is_char_boundary(start) && text.is_char_boundary(end),
        "{what} span {start}..{end} splits a character"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let policy = claimgate::Policy::from_sources([("fuzz.cg", text)]);
    let _ = policy.has_errors();
    for d in policy.unfiltered_diagnostics() {
        assert!(!d.message.is_empty(), "empty diagnostic message: {d:?}");
        check_span(&policy, d.file, d.span, d.code.as_str());
        for related in &d.related {
            check_span(&policy, related.file, related.span, "related");
        }
    }
    let grouped = parser::parse(FileId(0), text, &Limits::default());
    let one_by_one = parser::parse(FileId(0), text, &Limits { blocks_per_parse: 1, ..Limits::default() });
    assert_eq!(format!("{:?}", grouped.ast), format!("{:?}", one_by_one.ast), "grouped parsing changed the tree");
    assert_eq!(format!("{:?}", grouped.diagnostics), format!("{:?}", one_by_one.diagnostics));
    let _ = policy.render_diagnostics(false);
    let _ = claimgate::diagnostic::to_json(&policy.diagnostics(), policy.sources());
    if !policy.has_errors() {
        let program = policy.compile().expect("a policy without errors compiles");
        let reloaded = claimgate::program::Program::from_bytes(&program.to_bytes()).expect("a compiled set reloads");
        assert_eq!(reloaded.disassemble(), program.disassemble());
    }
});
