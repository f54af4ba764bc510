//! The audit log: one JSON line per decision, never a token, escaped for terminals.

use std::io::Write;
use std::net::IpAddr;
use std::sync::Mutex;

use serde::Serialize;

/// Where audit lines go.
pub(crate) struct AuditLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

/// One decision.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Entry<'a> {
    pub endpoint: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<&'a str>,
    /// `allow`, a denial code, or what else ended the request (`bad_request`,
    /// `rate_limited`, `store_unavailable`, `invalid_token`).
    pub code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_address: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The first 16 hex digits of the SHA-256 of the presented token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// Why a login was refused: the failing check and the value the token had (never sent to
    /// the client).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
    /// The issued token's accessor (Vault and Strongbox logins, token endpoints).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accessor: Option<&'a str>,
    /// The token's claims, only for a provider or role with `verbose_logging = true` (those of
    /// a refused token may be forged; `code` says which it was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_json::Value>,
}

/// Text a client wrote where a name is expected (a role asked for in a login body), cut to 128
/// characters: a line stays short whatever the body held.
pub(crate) fn client_name(text: &str) -> std::borrow::Cow<'_, str> {
    const MAX_CHARS: usize = 128;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]).into(),
        None => text.into(),
    }
}

impl AuditLog {
    pub(crate) fn new(out: Box<dyn Write + Send>) -> AuditLog {
        AuditLog { out: Mutex::new(out) }
    }

    /// Writes one line. A failed write is logged and counted, never a refused request: the
    /// decision already happened.
    pub(crate) fn record(&self, entry: &Entry<'_>) {
        #[derive(Serialize)]
        struct Line<'a> {
            time: String,
            #[serde(flatten)]
            entry: &'a Entry<'a>,
        }
        let line = Line { time: humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(), entry };
        let mut text = serde_json::to_string(&line).unwrap_or_default();
        // serde_json already escapes the C0 controls; a line of other ASCII (most lines) has
        // nothing else that could move a terminal's cursor or forge a line.
        if !text.bytes().all(|b| b.is_ascii() && b != 0x7f) {
            text = claimgate_engine::escape_log_text(&text);
        }
        text.push('\n');
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            metrics::counter!("claimgate_audit_write_errors_total").increment(1);
            tracing::error!(%error, "cannot write the audit log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attacker_text_cannot_forge_lines_or_reorder_a_terminal() {
        let buffer = std::sync::Arc::new(Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().write(b)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let log = AuditLog::new(Box::new(Shared(buffer.clone())));
        log.record(&Entry {
            endpoint: "conjur",
            identity: Some("host/a\n{\"code\":\"allow\"}\u{202e}x"),
            code: "claim_mismatch",
            ..Entry::default()
        });
        // DEL is ASCII but not printable: escaped too.
        log.record(&Entry { endpoint: "conjur", identity: Some("a\u{7f}b"), code: "allow", ..Entry::default() });
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains(r#""identity":"a\u007fb""#), "{text}");
        assert_eq!(client_name("deploy"), "deploy");
        assert_eq!(client_name(&"é".repeat(500)), format!("{}...", "é".repeat(128)));
        assert!(
            text.contains(r#""identity":"host/a\n{\"code\":\"allow\"}\u202ex","code":"claim_mismatch"}"#),
            "{text}"
        );
    }
}
