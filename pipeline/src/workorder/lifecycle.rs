//! The life of a work order, one explicit state machine:
//!
//! ```text
//! pending ─dismiss→ dismissed            (manual triage: 需处理 / 不处理)
//! pending | open ─dispatch→ dispatched ─accept→ accepted ─start→ in_progress
//!                     ↑ re-dispatch (from dispatched, accepted, in_progress)
//! accepted | in_progress ─feedback→ under_review ─review approve→ archived
//!                                   under_review ─review reject→ in_progress
//! any active state ─void→ voided          archived ─rectify→ archived
//! ```
//!
//! [`allowed`] is the table; [`apply`] refuses anything else naming the
//! current state and what is allowed in it, and records every move with its
//! actor and role. The reviewer must not be the one who gave the feedback.
//! 督办 ([`escalate`]) lives here too; when it is due is [`super::deadline`].

use super::deadline::{self, Deadline, Stage};
use super::{Action, Escalation, HistoryAction, HistoryDetail, HistoryEntry, Status, WorkOrder};
use crate::time::EpochMs;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LifecycleError {
    #[error("{0}")]
    BadRequest(String),
    #[error("cannot {action} a work order that is {status}; {}", allowed_text(.allowed))]
    Illegal {
        action: &'static str,
        status: &'static str,
        allowed: &'static [&'static str],
    },
    #[error("{0}")]
    Conflict(String),
}

fn allowed_text(allowed: &[&str]) -> String {
    if allowed.is_empty() {
        "it is closed: nothing more can be done with it".into()
    } else {
        format!("allowed now: {}", allowed.join(", "))
    }
}

/// Who moves an order: a token's name and role, or (without access
/// control) whatever the request said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Actor {
    pub name: Option<String>,
    pub role: Option<String>,
}

/// The actions allowed in each state.
pub fn allowed(status: Status) -> &'static [&'static str] {
    match status {
        Status::Pending => &["dispatch", "dismiss"],
        Status::Open => &["dispatch", "void"],
        Status::Dispatched => &["dispatch", "accept", "void"],
        Status::Accepted => &["dispatch", "start", "feedback", "void"],
        Status::InProgress => &["dispatch", "feedback", "void"],
        Status::UnderReview => &["review", "void"],
        Status::Archived => &["rectify"],
        Status::Voided | Status::Dismissed => &[],
    }
}

/// Who gave the feedback now under review.
fn handler(wo: &WorkOrder) -> Option<&str> {
    wo.history
        .iter()
        .rev()
        .find(|h| h.action == HistoryAction::Feedback)
        .and_then(|h| h.actor.as_deref())
}

/// Moves `wo` by `action`, recording it in the history.
pub fn apply(
    wo: &mut WorkOrder,
    action: Action,
    actor: Actor,
    now: EpochMs,
) -> Result<(), LifecycleError> {
    let from = wo.status;
    let kind = action.history_action();
    if !allowed(from).contains(&kind.as_str()) {
        return Err(LifecycleError::Illegal {
            action: kind.as_str(),
            status: from.name(),
            allowed: allowed(from),
        });
    }
    let bad = |m: String| Err(LifecycleError::BadRequest(m));
    let mut detail = HistoryDetail::default();
    let to = match action {
        Action::Dispatch { org } => {
            let org = org.unwrap_or_else(|| crate::org::county(&wo.org_code));
            if !(crate::org::covers(&org, &wo.org_code) || crate::org::covers(&wo.org_code, &org)) {
                return bad(format!(
                    "org {org} is not on the path of the customer's unit {}; dispatch within that unit's chain",
                    wo.org_code
                ));
            }
            wo.assigned_org = Some(org.clone());
            detail.org = Some(org);
            Status::Dispatched
        }
        Action::Dismiss { reason } => {
            detail.reason = Some(reason);
            Status::Dismissed
        }
        Action::Accept => Status::Accepted,
        Action::Start { findings } => {
            detail.note = Some(findings).filter(|f| !f.trim().is_empty());
            Status::InProgress
        }
        Action::Feedback(fb) => {
            if fb.confirmed && fb.measures.trim().is_empty() {
                return bad("a confirmed finding needs `measures` (整改措施)".into());
            }
            detail.confirmed = Some(fb.confirmed);
            wo.feedback = Some(fb);
            Status::UnderReview
        }
        Action::Approve | Action::Reject { .. } => {
            if actor.name.is_some() && actor.name.as_deref() == handler(wo) {
                return Err(LifecycleError::Conflict(format!(
                    "{} gave the feedback and may not review it; another auditor reviews",
                    actor.name.as_deref().unwrap_or_default()
                )));
            }
            match action {
                Action::Reject { reason } => {
                    wo.returns += 1;
                    detail.reason = Some(reason);
                    Status::InProgress
                }
                _ => Status::Archived,
            }
        }
        Action::Void { reason } => {
            detail.reason = Some(reason);
            Status::Voided
        }
        Action::Rectify(r) => {
            detail.note = Some(r.result.clone());
            wo.rectification = Some(r);
            Status::Archived
        }
    };
    // The next stage, or the new unit, starts with a clean slate.
    if Stage::of(from) != Stage::of(to) || kind == HistoryAction::Dispatch {
        wo.escalation = Escalation::None;
    }
    wo.status = to;
    wo.updated_at = now;
    wo.history.push(HistoryEntry {
        at: now,
        action: kind,
        from,
        to,
        actor: actor.name,
        role: actor.role,
        detail: (detail != HistoryDetail::default()).then_some(detail),
    });
    Ok(())
}

/// 督办: raises `wo` to `level` for the stage of `d` and records why; at
/// [`Escalation::Escalated`] the order goes to the parent of the unit
/// handling it (or of the customer's county, before any dispatch).
pub fn escalate(wo: &mut WorkOrder, level: Escalation, d: &Deadline, now: EpochMs) {
    wo.escalation = level;
    wo.updated_at = now;
    let mut detail = HistoryDetail {
        reason: Some(match level {
            Escalation::Escalated => format!("overdue: {}", d.stage.as_str()),
            _ => format!("warning: {} is due soon", d.stage.as_str()),
        }),
        limit_hours: Some(d.limit_ms / crate::time::HOUR_MS),
        level: Some(level),
        ..Default::default()
    };
    if level == Escalation::Escalated {
        let handling = wo
            .assigned_org
            .clone()
            .unwrap_or_else(|| crate::org::county(&wo.org_code));
        let up = deadline::parent(&handling);
        wo.assigned_org = Some(up.clone());
        detail.org = Some(up);
    }
    wo.history.push(HistoryEntry {
        at: now,
        action: HistoryAction::Escalate,
        from: wo.status,
        to: wo.status,
        actor: Some("jicha".into()),
        role: None,
        detail: Some(detail),
    });
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::support as tests_support;
