//! The formatter keeps meaning and is idempotent: any text that parses without errors formats to
//! text that parses without errors to an equal syntax tree (spans compare equal by design,
//! comments included), and formatting that text again changes nothing.
#![no_main]

use claimgate::FileId;
use claimgate::fmt::format_file;
use claimgate::parser::{Limits, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let limits = Limits::default();
    let parsed = parse(FileId(0), text, &limits);
    if parsed.has_errors() {
        return;
    }
    let once = format_file(&parsed.ast, text);
    let reparsed = parse(FileId(0), &once, &limits);
    assert!(
        !reparsed.has_errors(),
        "formatted text does not parse:\n--- input\n{text}\n--- formatted\n{once}\n--- errors\n{:?}",
        reparsed.diagnostics
    );
    assert!(
        reparsed.ast == parsed.ast,
        "formatting changed the syntax tree:\n--- input\n{text}\n--- formatted\n{once}\n--- before\n{:#?}\n--- after\n{:#?}",
        parsed.ast,
        reparsed.ast
    );
    let twice = format_file(&reparsed.ast, &once);
    assert!(once == twice, "formatting is not idempotent:\n--- input\n{text}\n--- once\n{once}\n--- twice\n{twice}");
});
