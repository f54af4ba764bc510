//! `verbose_logging = true` on a provider or a role puts the token's claims in the log with each
//! decision, escaped; without it, claims never reach the log.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use claimgate_engine::{AuthRequest, Engine, PolicySource};
use common::{Signer, jwks, now};

/// A log sink the tests can read.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Sink {
    type Writer = Sink;

    fn make_writer(&'a self) -> Sink {
        self.clone()
    }
}

const POLICY: &str = r#"
provider idp {
  issuer = "https://idp.test"
  keys {
    jwks_file = "k.json"
  }
}

role loud {
  provider = idp
  audience = "api"
  require {
    claims.team == "red"
  }
  identity = claims.sub
  verbose_logging = true
}

role quiet {
  provider = idp
  audience = "api"
  identity = claims.sub
}
"#;

/// The log lines written while `f` runs on a current-thread runtime.
fn logged(f: impl AsyncFnOnce(Engine, Signer)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::new("k");
    std::fs::write(dir.path().join("k.json"), jwks(&[&signer])).unwrap();
    std::fs::write(dir.path().join("p.cg"), POLICY).unwrap();
    let sink = Sink::default();
    let subscriber = tracing_subscriber::fmt().with_writer(sink.clone()).with_ansi(false).finish();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let engine = Engine::builder(PolicySource::dir(dir.path())).build().await.unwrap();
            f(engine, signer).await;
        })
    });
    String::from_utf8(sink.0.lock().unwrap().clone()).unwrap()
}

fn token(signer: &Signer, team: &str) -> String {
    let claims = serde_json::json!({
        "iss": "https://idp.test", "sub": "svc-1", "aud": "api", "team": team,
        "iat": now(), "exp": now() + 600,
    });
    signer.sign(&claims.to_string())
}

#[test]
fn a_verbose_role_logs_the_claims_escaped_and_a_quiet_one_does_not() {
    // Signed by a fresh key under the same kid: the file's key refuses it; the claims are still
    // logged for the verbose role (marked as refused), with the newline and the right-to-left
    // override escaped.
    let log = logged(async |engine, signer| {
        let forged = token(&Signer::new("k"), "blue\n\u{202e}evil");
        assert!(engine.authenticate(AuthRequest::new(&forged).role("loud")).await.is_err());
        assert!(engine.authenticate(AuthRequest::new(&token(&signer, "red")).role("loud")).await.is_ok());
    });
    let claims_lines: Vec<&str> = log.lines().filter(|l| l.contains("token claims")).collect();
    assert_eq!(claims_lines.len(), 2, "{log}");
    let line = claims_lines[0];
    assert!(line.contains(r#""team":"blue\n\u202eevil""#), "{line}");
    assert!(line.contains("allowed=false") && line.contains("role=\"loud\""), "{line}");
    assert!(!log.contains('\u{202e}'), "{log}");
    assert!(claims_lines[1].contains(r#""team":"red""#) && claims_lines[1].contains("allowed=true"), "{log}");

    let log = logged(async |engine, signer| {
        assert!(engine.authenticate(AuthRequest::new(&token(&signer, "blue")).role("quiet")).await.is_ok());
        // Automatic selection tries `loud` first, which refuses: the role that decided is `quiet`.
        assert!(engine.authenticate(AuthRequest::new(&token(&signer, "blue"))).await.is_ok());
    });
    assert!(!log.contains("token claims"), "a quiet role logged claims: {log}");
    assert!(!log.contains("\"team\""), "{log}");
}
