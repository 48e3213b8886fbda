//! The whitelist (白名单) and the read-only views: suppressed alerts, dead
//! letters and event-time progress.

use super::{Monitor, MonitorError};
use crate::decode::Reason;
use crate::org::Scope;
use crate::records::Stream;
use crate::state::DeadLetter;
use crate::time::EpochMs;
use crate::whitelist::WhitelistEntry;
use crate::workorder::SuppressedAlert;

/// One stream's event-time progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamProgress {
    pub stream: Stream,
    pub max_event_time: Option<EpochMs>,
    pub watermark: Option<EpochMs>,
}

impl Monitor {
    /// Admits an entry, approved by `approver` (with access control: the
    /// admin who posts it, who must not be its requester).
    pub async fn add_whitelist(
        &self,
        mut e: WhitelistEntry,
        approver: Option<String>,
    ) -> Result<WhitelistEntry, MonitorError> {
        let max = self.config.whitelist_max_days;
        if e.days() > max {
            return Err(MonitorError::BadRequest(format!(
                "`valid_until`: the entry would be valid for {} days; at most {max} are allowed (whitelist_max_days); ask again when it runs out",
                e.days()
            )));
        }
        if approver.is_some() && approver == e.requester {
            return Err(MonitorError::Conflict(format!(
                "{} requested this entry and may not approve it; another admin approves",
                approver.unwrap_or_default()
            )));
        }
        e.approver = approver;
        let mut core = self.core.lock().await;
        let e = core.whitelist.add(e);
        core.pending.whitelist.insert(e.id.clone(), Some(e.clone()));
        self.flush(&mut core).await?;
        Ok(e)
    }

    /// The entries in force; with `history`, the removed ones too.
    pub async fn whitelist(&self, history: bool) -> Vec<WhitelistEntry> {
        let core = self.core.lock().await;
        core.whitelist.list(history).cloned().collect()
    }

    /// Ends an entry; it stays in the history with who removed it.
    pub async fn remove_whitelist(
        &self,
        id: &str,
        by: Option<String>,
    ) -> Result<WhitelistEntry, MonitorError> {
        let mut core = self.core.lock().await;
        let e = core
            .whitelist
            .remove(id, by, self.now())
            .ok_or_else(|| MonitorError::NotFound(format!("no whitelist entry {id} in force")))?;
        core.pending
            .whitelist
            .insert(id.to_string(), Some(e.clone()));
        self.flush(&mut core).await?;
        Ok(e)
    }

    /// The newest suppressed alerts of customers in `scope` first.
    pub async fn suppressed(&self, limit: usize, scope: &Scope) -> Vec<SuppressedAlert> {
        let core = self.core.lock().await;
        core.suppressed
            .iter()
            .rev()
            .filter(|s| {
                core.archive
                    .customer(&s.customer_id)
                    .is_some_and(|c| scope.covers(&c.org_code))
                    || *scope == Scope::All
            })
            .take(limit)
            .cloned()
            .collect()
    }

    /// The newest dead letters first, filtered by stream and reason labels.
    /// A dead letter belongs to no unit (its meter may be unknown), so only
    /// a province-wide scope sees them.
    pub async fn dead_letters(
        &self,
        stream: Option<&str>,
        reason: Option<Reason>,
        limit: usize,
        scope: &Scope,
    ) -> Vec<DeadLetter> {
        if !scope.sees_unowned() {
            return Vec::new();
        }
        let core = self.core.lock().await;
        core.dead_letters
            .iter()
            .rev()
            .filter(|d| {
                stream.is_none_or(|s| d.stream == s) && reason.is_none_or(|r| d.reason == r)
            })
            .take(limit)
            .cloned()
            .collect()
    }

    pub async fn watermarks(&self) -> Vec<StreamProgress> {
        let core = self.core.lock().await;
        Stream::ALL
            .into_iter()
            .map(|s| StreamProgress {
                stream: s,
                max_event_time: core.wm.max_seen(s),
                watermark: core.wm.watermark(s),
            })
            .collect()
    }
}
