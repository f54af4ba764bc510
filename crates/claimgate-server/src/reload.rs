//! Policy reloads: on SIGHUP and on a change in the policy folder. A set with errors is
//! refused, logged and shown in `/readyz`; the current set keeps serving.

use std::path::Path;
use std::time::Duration;

use crate::State;

/// What `/readyz` says of a refused reload. `/readyz` answers anyone who reaches the listener,
/// so it names the kind of problem and the count, never the policy text, paths or key errors
/// that the full message shows; the server's log has that.
fn public_summary(error: &claimgate_engine::LoadError) -> String {
    use claimgate_engine::LoadError;
    let what = match error {
        LoadError::Policies { count, .. } => {
            format!("the policies have {count} problem{}", if *count == 1 { "" } else { "s" })
        }
        LoadError::Io(_) => "a policy file could not be read".to_string(),
        LoadError::Compiled { .. } => "the compiled policy set could not be loaded".to_string(),
        LoadError::Keys { provider, .. } => {
            format!("the keys of provider `{}` could not be loaded", crate::audit::client_name(provider))
        }
        // The configuration's own names (mounts, accounts, providers): no policy text, paths or
        // key errors.
        LoadError::Refused(reason) => crate::audit::client_name(reason).into_owned(),
        _ => "the policies could not be loaded".to_string(),
    };
    format!("{what}; the server's log shows why, and the previous set keeps serving")
}

pub(crate) async fn reload(state: &State) -> Result<(), String> {
    let result = state.engine.reload().await;
    let mut last = state.reload_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match &result {
        Ok(()) => {
            tracing::info!("policies reloaded");
            crate::announce_providers(&state.engine);
            *last = None;
        }
        Err(error) => {
            tracing::error!(%error, "the policies did not reload; the previous set keeps serving");
            *last = Some(public_summary(error));
        }
    }
    let result = result.map_err(|e| e.to_string());
    metrics::counter!("claimgate_policy_reloads_total", "result" => if result.is_ok() { "ok" } else { "error" })
        .increment(1);
    result
}

/// Reloads on every SIGHUP, for as long as it runs.
pub(crate) async fn on_sighup(state: &State) {
    #[cfg(unix)]
    {
        let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::error!("cannot listen for SIGHUP; reload by changing the policy folder");
            return;
        };
        while hangups.recv().await.is_some() {
            let _ = reload(state).await;
        }
    }
    #[cfg(not(unix))]
    {
        let _ = state;
        std::future::pending::<()>().await;
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub(crate) async fn terminate() {
    #[cfg(unix)]
    {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Reloads when a file in the policy folder changes: events are gathered for half a second so
/// that an editor's or `git checkout`'s burst of writes makes one reload.
pub(crate) async fn watch(state: &State, folder: &Path) {
    use notify::{RecursiveMode, Watcher};
    let (events, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = events.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "cannot watch the policy folder; reload with SIGHUP");
            return;
        }
    };
    if let Err(error) = watcher.watch(folder, RecursiveMode::Recursive) {
        tracing::warn!(%error, folder = %folder.display(), "cannot watch the policy folder; reload with SIGHUP");
        return;
    }
    while changes.recv().await.is_some() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        while changes.try_recv().is_ok() {}
        let _ = reload(state).await;
    }
}
