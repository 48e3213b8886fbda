//! Work orders through the API: queries, life-cycle actions, and the
//! periodic 督办 pass (the rule itself lives in `workorder::lifecycle`).

use super::{Monitor, MonitorError};
use crate::org::{covers, Scope};
use crate::workorder::deadline::{self, Deadline};
use crate::workorder::{lifecycle, Action, Actor, Escalation, LifecycleError, WorkOrder};

/// A filter that is set and not empty.
fn given(o: &Option<String>) -> Option<&str> {
    o.as_deref().filter(|s| !s.is_empty())
}

/// Filters of `GET /api/v1/workorders`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct WorkOrderQuery {
    pub theme: Option<String>,
    pub status: Option<String>,
    pub org: Option<String>,
    pub customer_id: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    /// Past their stage's time limit (督办), or not.
    pub overdue: Option<bool>,
    /// The caller's; set by the API, never by the query string.
    #[serde(skip)]
    pub scope: Scope,
}

impl WorkOrderQuery {
    fn matches(&self, w: &WorkOrder) -> bool {
        given(&self.theme).is_none_or(|t| t == w.theme)
            && given(&self.status)
                .is_none_or(|s| s == w.status.name() || (s == "active" && w.status.is_active()))
            && given(&self.org).is_none_or(|o| covers(o, &w.org_code))
            && self.scope.covers(&w.org_code)
            && self
                .overdue
                .is_none_or(|o| (w.escalation == Escalation::Escalated) == o)
            && given(&self.customer_id).is_none_or(|c| c == w.customer_id.as_str())
    }
}

impl Monitor {
    /// One page of matching orders, in id order, and the cursor of the next.
    pub async fn list_workorders(&self, q: &WorkOrderQuery) -> (Vec<WorkOrder>, Option<String>) {
        let core = self.core.lock().await;
        let limit = q.limit.unwrap_or(100).clamp(1, 1000);
        let mut items: Vec<WorkOrder> = Vec::new();
        let mut next = None;
        for w in core.book.after(q.cursor.as_deref()) {
            if !q.matches(w) {
                continue;
            }
            if items.len() == limit {
                next = items.last().map(|v| v.id.clone());
                break;
            }
            items.push(w.clone());
        }
        (items, next)
    }

    /// The order, if it exists and `scope` covers it: to a caller, one
    /// outside its subtree is as missing as one that never was.
    pub async fn workorder(&self, id: &str, scope: &Scope) -> Option<WorkOrder> {
        let core = self.core.lock().await;
        core.book
            .get(id)
            .filter(|w| scope.covers(&w.org_code))
            .cloned()
    }

    /// Applies a life-cycle action given as the request body.
    pub async fn act(
        &self,
        id: &str,
        scope: &Scope,
        action: Action,
        actor: Actor,
    ) -> Result<WorkOrder, MonitorError> {
        let mut core = self.core.lock().await;
        let now = self.now();
        if !core.book.get(id).is_some_and(|w| scope.covers(&w.org_code)) {
            return Err(MonitorError::NotFound(format!("no work order {id}")));
        }
        let res = core
            .book
            .update(id, |w| {
                lifecycle::apply(w, action, actor, now).map(|_| w.clone())
            })
            .ok_or_else(|| MonitorError::NotFound(format!("no work order {id}")))?;
        let wo = res.map_err(|e| match e {
            LifecycleError::BadRequest(m) => MonitorError::BadRequest(m),
            e @ (LifecycleError::Illegal { .. } | LifecycleError::Conflict(_)) => {
                MonitorError::Conflict(e.to_string())
            }
        })?;
        self.flush(&mut core).await?;
        Ok(wo)
    }

    /// Warns orders near their stage's time limit and escalates (督办)
    /// those past it; returns how many changed level.
    pub async fn escalate_overdue(&self) -> Result<usize, MonitorError> {
        let mut core = self.core.lock().await;
        let now = self.now();
        let limits = &self.config.time_limits;
        let due: Vec<(String, Escalation, Deadline)> = core
            .book
            .iter()
            .filter_map(|w| {
                let d = deadline::deadline(w, limits)?;
                let level = deadline::level(&d, limits.warn_percent, now);
                (level > w.escalation).then(|| (w.id.clone(), level, d))
            })
            .collect();
        for (id, level, d) in &due {
            core.book
                .update(id, |w| lifecycle::escalate(w, *level, d, now));
        }
        if !due.is_empty() {
            self.flush(&mut core).await?;
        }
        Ok(due.len())
    }
}
