//! Everything the command prints for a person or a program goes through here:
//!
//! - text that came from a token or claims is made terminal-safe before it is shown ([`text`]):
//!   C0 and C1 control characters, DEL and the bidirectional controls are written as
//!   `\u{..}`, so a claim cannot move the cursor, retitle the terminal or reorder what is shown;
//! - JSON is written with the same characters escaped ([`json`]): serde_json leaves C1, DEL and
//!   the bidirectional controls raw, which are valid JSON but not safe on a terminal;
//! - standard output that closes early (`| head`) ends the command quietly, and one that cannot
//!   be written (`> /dev/full`) ends it with an error and exit code 2, never a panic.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;

/// Whether `c` must not reach a terminal raw.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` with control and bidirectional characters escaped as `\u{..}`.
pub(crate) fn text(s: &str) -> Cow<'_, str> {
    escape_where(s, unsafe_char)
}

/// Rendered diagnostics (which may color with ESC sequences of their own, and quote claim values
/// as JSON, whose C0 characters are escaped already): C1, DEL and bidirectional controls
/// escaped.
pub(crate) fn rendered(s: &str) -> Cow<'_, str> {
    escape_where(s, |c| unsafe_char(c) && !matches!(c, '\u{0}'..='\u{1f}'))
}

/// `s` with the characters `escape` picks written as `\u{..}`; borrowed when there are none.
fn escape_where(s: &str, escape: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(&escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if escape(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Pretty JSON with the characters serde_json leaves raw but a terminal would act on (C1, DEL,
/// bidirectional controls) written as `\uXXXX`. JSON's own syntax is ASCII, so these can only
/// stand inside strings, where the escape means the same character.
pub(crate) fn json(value: &impl serde::Serialize) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    if !text.chars().any(unsafe_char) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        // serde_json already escaped the C0 characters (and `\n` in strings); a raw newline here
        // is its own layout.
        if unsafe_char(c) && c != '\n' {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes to standard output; see the module documentation for what happens when it fails.
pub(crate) fn write(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            // The reader has what it wanted (`| head`).
            std::process::exit(0);
        }
        let _ = writeln!(std::io::stderr(), "error: cannot write the output: {error}");
        std::process::exit(2);
    }
}

/// `println!` through [`write`].
macro_rules! out {
    () => { $crate::output::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` through [`write`].
macro_rules! out_raw {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(text("plain"), "plain");
        assert_eq!(text("a\u{1b}]0;x\u{7}b"), "a\\u{1b}]0;x\\u{7}b");
        assert_eq!(text("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(text("abc\u{202e}def"), "abc\\u{202e}def");
        assert_eq!(text("x\u{7f}"), "x\\u{7f}");
        let j = json(&serde_json::json!({"k": "\u{9b}\u{202e}\u{1b}"}));
        assert!(!j.chars().any(|c| unsafe_char(c) && c != '\n'), "{j}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&j).unwrap()["k"], "\u{9b}\u{202e}\u{1b}");
    }
}
