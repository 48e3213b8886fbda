//! Work orders through the API: queries, life-cycle actions, and the
//! periodic 督办 pass (the rule itself lives in `workorder::lifecycle`).

use super::{now_ms, Monitor, MonitorError};
use crate::org::{covers, Scope};
use crate::workorder::{lifecycle, Action, Actor, LifecycleError, WorkOrder};

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
        let now = now_ms();
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

    /// Raises 督办 on orders still not archived past the time limit;
    /// returns how many were escalated.
    pub async fn escalate_overdue(&self) -> Result<usize, MonitorError> {
        let mut core = self.core.lock().await;
        let now = now_ms();
        let limit = self.config.escalate_after_ms;
        let due: Vec<String> = core
            .book
            .iter()
            .filter(|w| lifecycle::escalation_due(w, now, limit))
            .map(|w| w.id.clone())
            .collect();
        for id in &due {
            core.book.update(id, |w| lifecycle::escalate(w, now, limit));
        }
        if !due.is_empty() {
            self.flush(&mut core).await?;
        }
        Ok(due.len())
    }
}
