//! The outbox sinks as the API shows them: progress, backlog, counters and
//! last error, and each sink's dead letters. Read from the backend, where
//! the dispatcher keeps them, so they survive a restart.

use super::{Monitor, MonitorError};
use crate::org::Scope;
use crate::outbox::{SinkDeadLetter, SinkReport};

impl Monitor {
    /// Every configured sink, by name.
    pub async fn sinks(&self) -> Result<Vec<SinkReport>, MonitorError> {
        let mut all = self.backend.sink_reports().await?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// The last `limit` dead letters of sink `name` whose work order lies
    /// in the caller's unit, newest first; an unknown sink answers as
    /// missing.
    pub async fn sink_dead_letters(
        &self,
        name: &str,
        limit: usize,
        scope: &Scope,
    ) -> Result<Vec<SinkDeadLetter>, MonitorError> {
        if !self.sinks().await?.iter().any(|s| s.name == name) {
            return Err(MonitorError::NotFound(format!(
                "no sink {name:?}; GET /api/v1/sinks lists the configured ones"
            )));
        }
        let mut found = self.backend.sink_dead_letters(name, limit).await?;
        found.retain(|d| scope.covers(&d.event.org_code));
        found.reverse();
        Ok(found)
    }
}
