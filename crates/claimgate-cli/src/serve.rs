//! `claimgate serve`: the authenticator server (crates/claimgate-server) on a multi-thread
//! runtime, logging to standard error through a writer thread (a request never waits on the
//! terminal or a pipe; no line is dropped: when the writer falls behind, requests wait).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use claimgate_server::{Config, Server};

use crate::UsageError;

/// The log's default filter. Every decision is in the audit log (with the refusal's detail), so
/// the engine's own line per decision is left out unless `CLAIMGATE_LOG` asks for it
/// (`CLAIMGATE_LOG=info`).
const SERVE_LOG: &str = "info,claimgate::decision=warn";

pub(crate) fn serve(
    policies: PathBuf,
    config: Option<&Path>,
    listen: Option<std::net::SocketAddr>,
) -> Result<ExitCode, UsageError> {
    let (writer, _flush_at_exit) =
        tracing_appender::non_blocking::NonBlockingBuilder::default().lossy(false).finish(std::io::stderr());
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLAIMGATE_LOG").unwrap_or_else(|_| SERVE_LOG.into()),
        )
        .init();
    let mut config = match config {
        Some(path) => Config::load(path)?,
        None => Config::defaults(),
    };
    if let Some(listen) = listen {
        config = config.with_listen(listen)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let server = match Server::start(policies, config).await {
            // Policies with problems exit 1, as `claimgate check` does; the rest is usage or I/O.
            Err(error @ claimgate_server::ServeError::Policies(_)) => {
                // The rendered diagnostics, line by line (each escaped).
                let text = error.to_string();
                let lines: Vec<_> = text.lines().map(crate::output::text).collect();
                eprintln!("error: {}", lines.join("\n"));
                return Ok(ExitCode::from(1));
            }
            started => started?,
        };
        server.run_until_signal().await?;
        Ok::<_, UsageError>(ExitCode::SUCCESS)
    })
}

/// `claimgate revoke`: revokes the matching live tokens in the configured store and says how
/// many. No token matching is not an error (exit 0, `revoked 0 tokens`): the token may have
/// expired or been revoked already.
pub(crate) fn revoke(
    config: &Path,
    filter: &claimgate_server::store::TokenFilter,
    format: crate::Format,
) -> Result<ExitCode, UsageError> {
    let config = Config::load(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let revoked = runtime.block_on(claimgate_server::revoke_tokens(&config, filter))?;
    match format {
        crate::Format::Json => out!("{}", crate::output::json(&serde_json::json!({ "revoked": revoked }))),
        crate::Format::Human => out!("revoked {revoked} token{}", if revoked == 1 { "" } else { "s" }),
    }
    Ok(ExitCode::SUCCESS)
}
