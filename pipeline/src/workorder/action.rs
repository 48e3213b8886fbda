//! A life-cycle action as requested: the body of
//! `POST /api/v1/workorders/{id}/actions`, read and checked. Which fields
//! an action needs depends on its kind; the move itself is
//! [`super::lifecycle::apply`].

use super::{Feedback, HistoryAction, Rectification};
use crate::documents::{decimal, note_text, read, short_text, DocumentError};
use rust_decimal::Decimal;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// 派发 (or re-dispatch) to a unit on the customer's org path; `None`:
    /// the customer's county.
    Dispatch { org: Option<String> },
    /// 不处理: a pending hit dismissed at triage.
    Dismiss { reason: String },
    /// 签收.
    Accept,
    /// 处理/核查 begins, with what was found on site.
    Start { findings: String },
    /// 反馈.
    Feedback(Feedback),
    /// 审核 passed: archived.
    Approve,
    /// 审核 failed: back to the handler.
    Reject { reason: String },
    /// 作废.
    Void { reason: String },
    /// 整改成效补录, after archiving.
    Rectify(Rectification),
}

impl Action {
    /// `{"action": "dispatch", "org": "41/4107"}` (`org` optional),
    /// `{"action": "dismiss", "reason": "…"}`,
    /// `{"action": "accept"}`, `{"action": "start", "findings": "…"}`,
    /// `{"action": "feedback", "confirmed": true, "measures": "…", "recovered_kwh": "…", "recovered_yuan": "…", "attachments": ["…"]}`,
    /// `{"action": "review", "approve": true | false, "reason": "…"}`,
    /// `{"action": "void", "reason": "…"}`,
    /// `{"action": "rectify", "result": "…", "recovered_kwh": "…", "recovered_yuan": "…"}`;
    /// each may carry `"actor"` (with access control the token's name is used).
    pub fn parse(body: &str) -> Result<(Action, Option<String>), DocumentError> {
        read::<ActionDoc>(body).and_then(ActionDoc::into_action)
    }

    pub fn history_action(&self) -> HistoryAction {
        match self {
            Action::Dispatch { .. } => HistoryAction::Dispatch,
            Action::Dismiss { .. } => HistoryAction::Dismiss,
            Action::Accept => HistoryAction::Accept,
            Action::Start { .. } => HistoryAction::Start,
            Action::Feedback(_) => HistoryAction::Feedback,
            Action::Approve | Action::Reject { .. } => HistoryAction::Review,
            Action::Void { .. } => HistoryAction::Void,
            Action::Rectify(_) => HistoryAction::Rectify,
        }
    }

    /// Whether the handling unit takes it (签收, 核查, 反馈, 整改补录), rather
    /// than the auditing side (派发, 研判, 审核, 作废).
    pub fn is_handling(&self) -> bool {
        matches!(
            self,
            Action::Accept | Action::Start { .. } | Action::Feedback(_) | Action::Rectify(_)
        )
    }
}

#[derive(Deserialize)]
struct ActionDoc {
    action: ActionKind,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    findings: Option<String>,
    #[serde(default)]
    confirmed: Option<bool>,
    #[serde(default)]
    measures: Option<String>,
    #[serde(default, deserialize_with = "decimal::optional")]
    recovered_kwh: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal::optional")]
    recovered_yuan: Option<Decimal>,
    #[serde(default)]
    attachments: Vec<String>,
    #[serde(default)]
    approve: Option<bool>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    result: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ActionKind {
    Dispatch,
    Dismiss,
    Accept,
    Start,
    Feedback,
    Review,
    Void,
    Rectify,
}

fn required<T>(v: Option<T>, field: &str, action: &str) -> Result<T, DocumentError> {
    v.ok_or_else(|| DocumentError::at(field, format!("is required for action {action}")))
}

/// A text that must say something.
fn stated(v: Option<String>, field: &str, action: &str) -> Result<String, DocumentError> {
    let text = required(v, field, action)?;
    if text.trim().is_empty() {
        return Err(DocumentError::at(
            field,
            format!("is empty; action {action} needs it stated"),
        ));
    }
    Ok(text)
}

impl ActionDoc {
    fn into_action(self) -> Result<(Action, Option<String>), DocumentError> {
        for (path, text) in [("actor", &self.actor), ("org", &self.org)] {
            short_text(path, text.as_deref().unwrap_or(""))?;
        }
        for (path, text) in [
            ("findings", &self.findings),
            ("measures", &self.measures),
            ("reason", &self.reason),
            ("result", &self.result),
        ] {
            note_text(path, text.as_deref().unwrap_or(""))?;
        }
        for (i, a) in self.attachments.iter().enumerate() {
            short_text(&format!("attachments[{i}]"), a)?;
        }
        let action = match self.action {
            ActionKind::Dispatch => Action::Dispatch { org: self.org },
            ActionKind::Dismiss => Action::Dismiss {
                reason: stated(self.reason, "reason", "dismiss")?,
            },
            ActionKind::Accept => Action::Accept,
            ActionKind::Start => Action::Start {
                findings: self.findings.unwrap_or_default(),
            },
            ActionKind::Feedback => Action::Feedback(Feedback {
                confirmed: required(self.confirmed, "confirmed", "feedback")?,
                measures: self.measures.unwrap_or_default(),
                recovered_kwh: self.recovered_kwh,
                recovered_yuan: self.recovered_yuan,
                attachments: self.attachments,
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
            ActionKind::Void => Action::Void {
                reason: stated(self.reason, "reason", "void")?,
            },
            ActionKind::Rectify => Action::Rectify(Rectification {
                result: stated(self.result, "result", "rectify")?,
                recovered_kwh: self.recovered_kwh,
                recovered_yuan: self.recovered_yuan,
            }),
        };
        Ok((action, self.actor))
    }
}
