//! The life of a work order: dispatch (派发) → accept (签收) → feedback
//! (核查反馈) → review (审核: approve → archived, reject → back to the
//! handler). Any other move is refused with the reason.

use super::{Escalation, Feedback, HistoryAction, HistoryDetail, HistoryEntry, Status, WorkOrder};
use crate::documents::{decimal, read, short_text, DocumentError};
use crate::time::EpochMs;
use rust_decimal::Decimal;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Dispatch { org: String },
    Accept,
    Feedback(Feedback),
    Approve,
    Reject { reason: String },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LifecycleError {
    #[error("{0}")]
    BadRequest(String),
    #[error("cannot {action} a work order that is {status}: {hint}")]
    Illegal {
        action: &'static str,
        status: &'static str,
        hint: &'static str,
    },
}

/// The body of `POST /api/v1/workorders/{id}/action`, as sent; which of
/// the optional fields are required depends on `action`.
#[derive(Deserialize)]
struct ActionDoc {
    action: ActionKind,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    confirmed: Option<bool>,
    #[serde(default)]
    measures: Option<String>,
    #[serde(default, deserialize_with = "decimal::optional")]
    recovered_kwh: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal::optional")]
    recovered_yuan: Option<Decimal>,
    #[serde(default)]
    approve: Option<bool>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ActionKind {
    Dispatch,
    Accept,
    Feedback,
    Review,
}

fn required<T>(v: Option<T>, field: &str, action: &str) -> Result<T, DocumentError> {
    v.ok_or_else(|| DocumentError::at(field, format!("is required for action {action}")))
}

impl ActionDoc {
    fn into_action(self) -> Result<(Action, Option<String>), DocumentError> {
        for (path, text) in [
            ("actor", &self.actor),
            ("org", &self.org),
            ("measures", &self.measures),
            ("reason", &self.reason),
        ] {
            short_text(path, text.as_deref().unwrap_or(""))?;
        }
        let action = match self.action {
            ActionKind::Dispatch => Action::Dispatch {
                org: required(self.org, "org", "dispatch")?,
            },
            ActionKind::Accept => Action::Accept,
            ActionKind::Feedback => Action::Feedback(Feedback {
                confirmed: required(self.confirmed, "confirmed", "feedback")?,
                measures: self.measures.unwrap_or_default(),
                recovered_kwh: self.recovered_kwh,
                recovered_yuan: self.recovered_yuan,
            }),
            ActionKind::Review => {
                if required(self.approve, "approve", "review")? {
                    Action::Approve
                } else {
                    Action::Reject {
                        reason: self.reason.unwrap_or_default(),
                    }
                }
            }
        };
        Ok((action, self.actor))
    }
}

impl Action {
    /// `{"action": "dispatch", "org": "41/4107"}`, `{"action": "accept"}`,
    /// `{"action": "feedback", "confirmed": true, "measures": "…", "recovered_kwh": "…", "recovered_yuan": "…"}`,
    /// `{"action": "review", "approve": true | false, "reason": "…"}`;
    /// each may carry `"actor"`.
    pub fn parse(body: &str) -> Result<(Action, Option<String>), LifecycleError> {
        read::<ActionDoc>(body)
            .and_then(ActionDoc::into_action)
            .map_err(|e| LifecycleError::BadRequest(e.to_string()))
    }

    fn history_action(&self) -> HistoryAction {
        match self {
            Action::Dispatch { .. } => HistoryAction::Dispatch,
            Action::Accept => HistoryAction::Accept,
            Action::Feedback(_) => HistoryAction::Feedback,
            Action::Approve | Action::Reject { .. } => HistoryAction::Review,
        }
    }
}

/// Moves `wo` by `action`, recording it in the history.
pub fn apply(
    wo: &mut WorkOrder,
    action: Action,
    actor: Option<String>,
    now: EpochMs,
) -> Result<(), LifecycleError> {
    let from = wo.status;
    let illegal = |hint: &'static str| LifecycleError::Illegal {
        action: action.history_action().as_str(),
        status: from.name(),
        hint,
    };
    if action == Action::Accept && from == Status::Open {
        return Err(illegal("dispatch it to an org unit first"));
    }
    let (to, detail) = match (&action, from) {
        (Action::Dispatch { org }, Status::Open | Status::Dispatched) => {
            if !(org == &wo.org_code
                || wo.org_code.starts_with(&format!("{org}/"))
                || org.starts_with(&format!("{}/", wo.org_code)))
            {
                return Err(LifecycleError::BadRequest(format!(
                    "org {org} is not on the path of the customer's unit {}; dispatch within that unit's chain",
                    wo.org_code
                )));
            }
            wo.assigned_org = Some(org.clone());
            (
                Status::Dispatched,
                Some(HistoryDetail {
                    org: Some(org.clone()),
                    ..Default::default()
                }),
            )
        }
        (Action::Accept, Status::Dispatched) => (Status::Accepted, None),
        (Action::Feedback(fb), Status::Accepted) => {
            if fb.confirmed && fb.measures.trim().is_empty() {
                return Err(LifecycleError::BadRequest(
                    "a confirmed finding needs `measures` (整改措施)".into(),
                ));
            }
            wo.feedback = Some(fb.clone());
            (
                Status::UnderReview,
                Some(HistoryDetail {
                    confirmed: Some(fb.confirmed),
                    ..Default::default()
                }),
            )
        }
        (Action::Approve, Status::UnderReview) => (Status::Archived, None),
        (Action::Reject { reason }, Status::UnderReview) => {
            wo.returns += 1;
            (
                Status::Accepted,
                Some(HistoryDetail {
                    reason: Some(reason.clone()),
                    ..Default::default()
                }),
            )
        }
        (Action::Dispatch { .. }, _) => {
            return Err(illegal(
                "only open or dispatched orders can be (re)dispatched",
            ))
        }
        (Action::Accept, _) => return Err(illegal("only a dispatched order can be accepted")),
        (Action::Feedback(_), _) => return Err(illegal("accept the order before giving feedback")),
        (Action::Approve | Action::Reject { .. }, _) => {
            return Err(illegal("only an order under review can be reviewed"))
        }
    };
    wo.status = to;
    wo.updated_at = now;
    wo.history.push(HistoryEntry {
        at: now,
        action: action.history_action(),
        from,
        to,
        actor,
        detail,
    });
    Ok(())
}

/// 督办: an order not archived `limit_ms` after it was raised is escalated
/// once, to [`Escalation::Escalated`].
pub fn escalation_due(wo: &WorkOrder, now: EpochMs, limit_ms: i64) -> bool {
    wo.status.is_active() && wo.escalation < Escalation::Escalated && now - wo.created_at > limit_ms
}

/// Escalates `wo` and records why; the caller checked [`escalation_due`].
pub fn escalate(wo: &mut WorkOrder, now: EpochMs, limit_ms: i64) {
    wo.escalation = Escalation::Escalated;
    wo.updated_at = now;
    wo.history.push(HistoryEntry {
        at: now,
        action: HistoryAction::Escalate,
        from: wo.status,
        to: wo.status,
        actor: Some("jicha".into()),
        detail: Some(HistoryDetail {
            reason: Some("overdue".into()),
            limit_hours: Some(limit_ms / crate::time::HOUR_MS),
            ..Default::default()
        }),
    });
}
