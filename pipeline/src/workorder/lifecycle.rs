//! The life of a work order: dispatch (派发) → accept (签收) → feedback
//! (核查反馈) → review (审核: approve → archived, reject → back to the
//! handler). Any other move is refused with the reason.

use super::{Feedback, HistoryAction, HistoryDetail, HistoryEntry, Status, WorkOrder};
use crate::fields::{opt_dec, opt_str, req_bool, req_str, Obj};
use crate::time::EpochMs;
use serde_json::value::RawValue;

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

fn field<T>(r: crate::fields::FieldResult<T>) -> Result<T, LifecycleError> {
    r.map_err(|(_, d)| LifecycleError::BadRequest(d))
}

impl Action {
    /// `{"action": "dispatch", "org": "41/4107"}`, `{"action": "accept"}`,
    /// `{"action": "feedback", "confirmed": true, "measures": "…", "recovered_kwh": "…", "recovered_yuan": "…"}`,
    /// `{"action": "review", "approve": true | false, "reason": "…"}`.
    pub fn parse(body: &str) -> Result<(Action, Option<String>), LifecycleError> {
        let bad = |d: String| LifecycleError::BadRequest(d);
        let raw: &RawValue =
            serde_json::from_str(body).map_err(|e| bad(format!("action body is not JSON: {e}")))?;
        let o = Obj::parse(raw).map_err(|(_, d)| bad(d))?;
        let actor = field(opt_str(o.get("actor"), "actor"))?;
        let action = match field(req_str(o.get("action"), "action"))?.as_str() {
            "dispatch" => Action::Dispatch {
                org: field(req_str(o.get("org"), "org"))?,
            },
            "accept" => Action::Accept,
            "feedback" => Action::Feedback(Feedback {
                confirmed: field(req_bool(o.get("confirmed"), "confirmed"))?,
                measures: field(opt_str(o.get("measures"), "measures"))?.unwrap_or_default(),
                recovered_kwh: field(opt_dec(o.get("recovered_kwh"), "recovered_kwh"))?,
                recovered_yuan: field(opt_dec(o.get("recovered_yuan"), "recovered_yuan"))?,
            }),
            "review" => {
                if field(req_bool(o.get("approve"), "approve"))? {
                    Action::Approve
                } else {
                    Action::Reject {
                        reason: field(opt_str(o.get("reason"), "reason"))?.unwrap_or_default(),
                    }
                }
            }
            other => {
                return Err(bad(format!(
                    "unknown action {other:?}; use dispatch, accept, feedback or review"
                )));
            }
        };
        Ok((action, actor))
    }

    fn name(&self) -> &'static str {
        match self {
            Action::Dispatch { .. } => "dispatch",
            Action::Accept => "accept",
            Action::Feedback(_) => "feedback",
            Action::Approve | Action::Reject { .. } => "review",
        }
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
        action: action.name(),
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
/// once (level 2: overdue and escalated).
pub fn escalation_due(wo: &WorkOrder, now: EpochMs, limit_ms: i64) -> bool {
    wo.status.is_active() && wo.escalation < 2 && now - wo.created_at > limit_ms
}

/// Escalates `wo` and records why; the caller checked [`escalation_due`].
pub fn escalate(wo: &mut WorkOrder, now: EpochMs, limit_ms: i64) {
    wo.escalation = 2;
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
