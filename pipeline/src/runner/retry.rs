//! Commit failures: what went wrong, and retrying with input paused.

use crate::state::StateError;
use crate::Monitor;
use std::time::Duration;
use tokio::sync::watch;

/// The error of a commit task, if it failed.
pub fn failure(ended: Result<Result<(), StateError>, tokio::task::JoinError>) -> Option<String> {
    match ended {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(format!("commit task ended abnormally: {e}")),
    }
}

/// Resolves once `shutdown` is (or becomes) true; never if its sender is
/// gone without saying so.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Retries the monitor's commit with backoff while the backend is down.
/// False when shutdown came first: the messages stay unacknowledged, so the
/// source delivers them again to the next run and nothing is lost.
pub async fn until_committed(
    monitor: &Monitor,
    mut error: String,
    messages: usize,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let mut delay = Duration::from_millis(200);
    loop {
        tracing::warn!(%error, "commit failed; retrying, input paused");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(shutdown) => {
                tracing::warn!(messages, "shutting down with uncommitted messages; the source will deliver them again");
                return false;
            }
        }
        delay = (delay * 2).min(Duration::from_secs(5));
        match monitor.retry_flush().await {
            Ok(()) => return true,
            Err(e) => error = e.to_string(),
        }
    }
}
