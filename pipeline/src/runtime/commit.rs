//! Staging and committing. Every change of the live state is collected in
//! `Core::pending`; staging moves it into the commit slot (after the
//! commit before has ended), and one backend commit applies the slot
//! atomically. A failed commit leaves its changes in the slot, ahead of
//! any later ones, and the monitor reports itself degraded until a retry
//! succeeds.

use super::{Core, Monitor};
use crate::state::{Commit, StateError};
use std::sync::Arc;

/// A processed batch's changes, waiting in the commit slot. Holding it
/// keeps the next batch from staging, so commits stay in order.
pub struct StagedCommit {
    monitor: Arc<Monitor>,
    slot: tokio::sync::OwnedMutexGuard<Commit>,
}

impl StagedCommit {
    pub(super) fn new(monitor: Arc<Monitor>, slot: tokio::sync::OwnedMutexGuard<Commit>) -> Self {
        StagedCommit { monitor, slot }
    }

    /// Commits the slot: this batch's changes and any a failed commit left.
    pub async fn commit(mut self) -> Result<(), StateError> {
        self.monitor.commit_slot(&mut self.slot).await
    }
}

impl Monitor {
    /// Moves the changes made since the last stage into the commit slot,
    /// once the commit before has ended.
    pub(super) async fn stage(&self, core: &mut Core) -> tokio::sync::OwnedMutexGuard<Commit> {
        let changes = core.store.take_changes();
        core.pending.records.extend(changes);
        core.pending.workorders.extend(
            core.book
                .take_dirty()
                .into_iter()
                .map(|w| (w.id.clone(), w)),
        );
        core.pending.outbox.extend(core.book.take_events());
        let mut slot = self.slot.clone().lock_owned().await;
        slot.merge(std::mem::take(&mut core.pending));
        slot
    }

    /// Commits the slot. On failure its changes stay there (ahead of any
    /// later ones) and the monitor reports itself degraded.
    async fn commit_slot(&self, slot: &mut Commit) -> Result<(), StateError> {
        if slot.is_empty() {
            return Ok(());
        }
        match self.backend.commit(slot).await {
            Ok(()) => {
                let events = std::mem::take(&mut slot.outbox);
                *slot = Commit::default();
                self.set_degraded(None);
                self.metrics
                    .backend_up
                    .with_label_values(&[self.backend.name()])
                    .set(1.0);
                if !events.is_empty() {
                    // Nobody listening is fine: live views are optional.
                    let _ = self.committed.send(Arc::new(events));
                }
                Ok(())
            }
            Err(e) => {
                self.metrics
                    .commit_failures
                    .with_label_values(&[self.backend.name()])
                    .inc();
                self.metrics
                    .backend_up
                    .with_label_values(&[self.backend.name()])
                    .set(0.0);
                self.set_degraded(Some(format!("{e}; {} changes pending", slot.size())));
                Err(e)
            }
        }
    }

    /// Commits every change made so far (API changes commit before they answer).
    pub(super) async fn flush(&self, core: &mut Core) -> Result<(), StateError> {
        let mut slot = self.stage(core).await;
        self.commit_slot(&mut slot).await
    }

    /// Retries a pending commit (the runner calls this while the backend is down).
    pub async fn retry_flush(&self) -> Result<(), StateError> {
        let mut slot = {
            let mut core = self.core.lock().await;
            self.stage(&mut core).await
        };
        self.commit_slot(&mut slot).await
    }
}
