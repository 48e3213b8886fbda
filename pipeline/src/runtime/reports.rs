//! The evaluation of units (三报一评) over the orders the caller may see.

use super::{Monitor, MonitorError};
use crate::org::Scope;
use crate::report::{evaluate, Evaluation, Period};

impl Monitor {
    /// The evaluation of `org`'s subtree (the caller's own unit when none)
    /// over `period`; a unit outside the caller's answers as missing.
    pub async fn evaluation(
        &self,
        org: Option<&str>,
        period: Period,
        scope: &Scope,
    ) -> Result<Evaluation, MonitorError> {
        let org = match (org.filter(|o| !o.is_empty()), scope) {
            (Some(o), _) if !scope.covers(o) => {
                return Err(MonitorError::NotFound(format!(
                    "no unit {o} within your unit"
                )))
            }
            (Some(o), _) => Some(o.to_string()),
            (None, Scope::Unit(u)) => Some(u.clone()),
            (None, Scope::All) => None,
        };
        let core = self.core.lock().await;
        let visible = core.book.iter().filter(|w| scope.covers(&w.org_code));
        Ok(evaluate(
            visible,
            org.as_deref(),
            period,
            self.clock(),
            &self.config.time_limits,
        ))
    }
}
