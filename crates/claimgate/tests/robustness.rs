//! No input makes the front end panic: truncated and mutated copies of every example policy and
//! test case go through parse, check and (when they parse) format, and the formatter's output of
//! any mutant that parses is still a fixed point that means the same. Parsing top-level blocks a
//! group at a time gives exactly what parsing them one at a time gives, errors included.

mod common;

use claimgate::fmt::format_file;
use claimgate::parser::{self, Limits};
use claimgate::{FileId, Policy};

/// A small deterministic generator (xorshift64*), so failures reproduce without a seed file.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Fragments that tend to reach unusual corners of the grammar.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    "\"\"\"",
    "#",
    "\n",
    "=",
    "+",
    ",",
    ".",
    "claims.",
    "claims",
    "not ",
    "any {",
    "all {",
    "==",
    "!=",
    "<=",
    " in ",
    " glob ",
    " matches ",
    " contains any ",
    " exists",
    " absent",
    "\\u{",
    "\\u{D800}",
    "\\",
    "optional ",
    "message ",
    "90s",
    "1h30m",
    "-1e999",
    "99999999999999999999",
    "provider x {",
    "role y {",
    "test \"z\" {",
    "expect allow {",
    "require {",
    "keys {",
    "(",
    "é",
    "\u{0}",
    "\t",
    "\r\n",
];

fn exercise(name: &str, text: &str) {
    let policy = Policy::from_sources([(name, text)]);
    let _ = policy.render_diagnostics(false);
    let _ = claimgate::diagnostic::to_json(&policy.diagnostics(), policy.sources());
    let parsed = parser::parse(FileId(0), text, &Limits::default());
    // Against one block per parse or three (alternating, to keep debug builds quick). Debug
    // output includes every span, which `==` on syntax trees ignores.
    let blocks_per_parse = if text.len().is_multiple_of(2) { 1 } else { 3 };
    let other = parser::parse(FileId(0), text, &Limits { blocks_per_parse, ..Limits::default() });
    assert_eq!(format!("{:?}", other.ast), format!("{:?}", parsed.ast), "{name}: {blocks_per_parse} blocks per parse");
    assert_eq!(format!("{:?}", other.diagnostics), format!("{:?}", parsed.diagnostics), "{name}: {blocks_per_parse}");
    assert_eq!(other.unparsed_names, parsed.unparsed_names, "{name}: {blocks_per_parse} blocks per parse");
    if !parsed.has_errors() {
        let formatted = format_file(&parsed.ast, text);
        let again = parser::parse(FileId(0), &formatted, &Limits::default());
        assert!(!again.has_errors(), "{name}: formatted mutant does not parse:\n{formatted}");
        assert_eq!(again.ast, parsed.ast, "{name}: formatting a mutant changed its meaning");
        assert_eq!(format_file(&again.ast, &formatted), formatted, "{name}: formatting a mutant is not idempotent");
    }
}

fn char_boundaries(text: &str) -> Vec<usize> {
    text.char_indices().map(|(i, _)| i).chain(std::iter::once(text.len())).collect()
}

#[test]
fn truncated_copies_never_panic() {
    for (name, text) in common::all_policy_texts() {
        let boundaries = char_boundaries(&text);
        // Every prefix of the example policies would be slow in debug builds; a prime stride still
        // cuts through every kind of token, and every prefix of the first 300 bytes is covered.
        for (i, &end) in boundaries.iter().enumerate() {
            if end < 300 || i % 11 == 0 {
                exercise(&name, &text[..end]);
            }
        }
    }
}

#[test]
fn mutated_copies_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (name, text) in common::all_policy_texts() {
        for _ in 0..100 {
            let mut mutant = text.clone();
            for _ in 0..1 + rng.below(4) {
                let cuts = char_boundaries(&mutant);
                let at = cuts[rng.below(cuts.len())];
                match rng.below(4) {
                    0 => mutant.insert_str(at, FRAGMENTS[rng.below(FRAGMENTS.len())]),
                    1 => {
                        let end =
                            cuts[(cuts.iter().position(|c| *c == at).unwrap() + 1 + rng.below(20)).min(cuts.len() - 1)];
                        mutant.replace_range(at..end, "");
                    }
                    2 => {
                        let end =
                            cuts[(cuts.iter().position(|c| *c == at).unwrap() + 1 + rng.below(40)).min(cuts.len() - 1)];
                        let copy = mutant[at..end].to_string();
                        let to = cuts[rng.below(cuts.len())].min(mutant.len());
                        if mutant.is_char_boundary(to) {
                            mutant.insert_str(to, &copy);
                        }
                    }
                    _ => {
                        let end = cuts[(cuts.iter().position(|c| *c == at).unwrap() + 1).min(cuts.len() - 1)];
                        mutant.replace_range(at..end, FRAGMENTS[rng.below(FRAGMENTS.len())]);
                    }
                }
            }
            exercise(&name, &mutant);
        }
    }
}

#[test]
fn deep_nesting_is_refused_before_parsing() {
    let text = format!(
        "role r {{\n  require {{\n{}claims.a exists{}\n  }}\n}}\n",
        "any { ".repeat(100_000),
        " }".repeat(100_000)
    );
    let policy = Policy::from_sources([("deep.cg", text)]);
    let diagnostics = policy.diagnostics();
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].code, claimgate::Code::LimitExceeded);
}

#[test]
fn long_negation_chains_are_a_syntax_error_not_a_stack_overflow() {
    let text = format!("role r {{\n  require {{\n    {}claims.a exists\n  }}\n}}\n", "not ".repeat(200_000));
    let policy = Policy::from_sources([("not.cg", text)]);
    assert!(policy.has_errors());
}

#[test]
fn oversized_files_are_refused() {
    let limits = Limits { max_file_bytes: 1024, ..Limits::default() };
    let text = "# padding\n".repeat(200);
    let parsed = parser::parse(FileId(0), &text, &limits);
    assert_eq!(parsed.diagnostics[0].code, claimgate::Code::LimitExceeded);
}
