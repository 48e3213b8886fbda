//! 稽查工作单: a theme's findings for one customer, from the first hit to
//! archive. At most one is open per (theme, customer); further hits add to it.

pub mod action;
pub mod aggregate;
pub mod book;
pub mod deadline;
pub mod lifecycle;
pub mod sampling;

use crate::closed_set::closed_set;
use crate::ids::CustomerId;
use crate::theme::Severity;
use crate::time::EpochMs;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use action::Action;
pub use book::{HitOutcome, SuppressedAlert, WorkOrderBook};
pub use lifecycle::{Actor, LifecycleError};
pub use sampling::Sample;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 待研判: a hit of a theme under manual triage, waiting for an auditor
    /// to dispatch it (需处理) or dismiss it (不处理).
    Pending,
    /// 不处理: dismissed at triage, with a reason; the evidence is kept.
    Dismissed,
    /// 生成: raised by a theme, not yet dispatched.
    Open,
    /// 派发: sent to an org unit.
    Dispatched,
    /// 签收: the unit took it.
    Accepted,
    /// 处理/核查: on site.
    InProgress,
    /// 核查反馈 submitted, waiting for 审核.
    UnderReview,
    /// 归档: approved and closed.
    Archived,
    /// 作废: closed without a finding.
    Voided,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Pending,
        Status::Dismissed,
        Status::Open,
        Status::Dispatched,
        Status::Accepted,
        Status::InProgress,
        Status::UnderReview,
        Status::Archived,
        Status::Voided,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Dismissed => "dismissed",
            Status::Open => "open",
            Status::Dispatched => "dispatched",
            Status::Accepted => "accepted",
            Status::InProgress => "in_progress",
            Status::UnderReview => "under_review",
            Status::Archived => "archived",
            Status::Voided => "voided",
        }
    }

    /// Anything not archived, voided or dismissed counts as open for the
    /// one-per-customer rule.
    /// The Chinese name people read on the wallboard and in reports.
    pub fn label_zh(self) -> &'static str {
        match self {
            Status::Pending => "待研判",
            Status::Dismissed => "不处理",
            Status::Open => "待派发",
            Status::Dispatched => "已派发",
            Status::Accepted => "已签收",
            Status::InProgress => "核查中",
            Status::UnderReview => "待审核",
            Status::Archived => "已归档",
            Status::Voided => "已作废",
        }
    }

    pub fn is_active(self) -> bool {
        !matches!(self, Status::Archived | Status::Voided | Status::Dismissed)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HitRecord {
    pub window_start: EpochMs,
    pub window_end: EpochMs,
    pub detected_at: EpochMs,
    pub evidence: serde_json::Map<String, serde_json::Value>,
}

closed_set!(
    /// What a history entry or an outbox event records. `hit` (a further
    /// window on an open order) is an event only: the order keeps its hits
    /// in `recent_hits`, not in its history.
    HistoryAction {
        Create => "create",
        Hit => "hit",
        Dispatch => "dispatch",
        Dismiss => "dismiss",
        Accept => "accept",
        Start => "start",
        Feedback => "feedback",
        Review => "review",
        Void => "void",
        Rectify => "rectify",
        Escalate => "escalate",
        Sample => "sample",
    }
);

/// The particulars of a move; which fields are set depends on the action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryDetail {
    /// Dispatch: the unit the order went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Feedback: whether the finding was confirmed on site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<bool>,
    /// Review rejected, void, or escalation: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Start: what was found on site; rectify: the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Escalation: the time limit that passed, in hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_hours: Option<i64>,
    /// Escalation: the level reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Escalation>,
    /// Sampling: the batch that drew the order, and its verdict once given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: EpochMs,
    pub action: HistoryAction,
    pub from: Status,
    pub to: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The actor's role, with access control.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<HistoryDetail>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub confirmed: bool,
    pub measures: String,
    pub recovered_kwh: Option<Decimal>,
    pub recovered_yuan: Option<Decimal>,
    /// References to photos and documents kept elsewhere.
    #[serde(default)]
    pub attachments: Vec<String>,
}

/// 整改成效补录: the rectification's result, added after archiving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rectification {
    pub result: String,
    pub recovered_kwh: Option<Decimal>,
    pub recovered_yuan: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkOrder {
    pub id: String,
    pub theme: String,
    pub customer_id: CustomerId,
    pub org_code: String,
    pub status: Status,
    pub severity: Severity,
    pub first_window_start: EpochMs,
    pub first_window_end: EpochMs,
    pub last_window_end: EpochMs,
    pub hits: u64,
    pub created_at: EpochMs,
    pub updated_at: EpochMs,
    pub evidence: serde_json::Map<String, serde_json::Value>,
    pub estimated_loss_yuan: Option<Decimal>,
    pub assigned_org: Option<String>,
    pub feedback: Option<Feedback>,
    #[serde(default)]
    pub rectification: Option<Rectification>,
    /// 抽检: drawn into a sampling batch after archiving, and its verdict.
    #[serde(default)]
    pub sampling: Option<sampling::Sample>,
    pub returns: u32,
    pub escalation: Escalation,
    /// The most recent hits (bounded), newest last: evidence history.
    pub recent_hits: Vec<HitRecord>,
    pub history: Vec<HistoryEntry>,
}

impl WorkOrder {
    /// The unit answerable for the order in evaluation and sampling: the
    /// last unit it was dispatched to (督办 moves the order up, not the
    /// answerability), else the customer's county.
    pub fn handling_unit(&self) -> String {
        self.history
            .iter()
            .rev()
            .find(|h| h.action == HistoryAction::Dispatch)
            .and_then(|h| h.detail.as_ref()?.org.clone())
            .unwrap_or_else(|| crate::org::county(&self.org_code))
    }

    /// When review archived it.
    /// Yuan recovered by a confirmed order: its feedback's amount and its
    /// rectification's, each rounded to the fen as the evaluation report
    /// sums them. Zero while unconfirmed.
    pub fn recovered_yuan(&self) -> rust_decimal::Decimal {
        let Some(fb) = self.feedback.as_ref().filter(|fb| fb.confirmed) else {
            return rust_decimal::Decimal::ZERO;
        };
        let fen = |d: Option<rust_decimal::Decimal>| {
            jicha_domain::money::round_yuan(d.unwrap_or_default())
        };
        fen(fb.recovered_yuan) + fen(self.rectification.as_ref().and_then(|r| r.recovered_yuan))
    }

    pub fn archived_at(&self) -> Option<EpochMs> {
        self.history
            .iter()
            .rev()
            .find(|h| h.to == Status::Archived && h.from != Status::Archived)
            .map(|h| h.at)
    }
}

/// 督办 level. Stored and shown as its number (0, 1, 2), as before it
/// had a name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum Escalation {
    #[default]
    None,
    /// Near its time limit.
    Warned,
    /// Past its time limit and escalated to the parent unit.
    Escalated,
}

impl From<Escalation> for u8 {
    fn from(e: Escalation) -> u8 {
        match e {
            Escalation::None => 0,
            Escalation::Warned => 1,
            Escalation::Escalated => 2,
        }
    }
}

impl TryFrom<u8> for Escalation {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        match n {
            0 => Ok(Escalation::None),
            1 => Ok(Escalation::Warned),
            2 => Ok(Escalation::Escalated),
            _ => Err(format!("escalation level {n} is not 0, 1 or 2")),
        }
    }
}

/// How a theme's hits become work orders (`[triage]` in the settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Triage {
    /// Opened at once, ready to dispatch (自动派发 themes).
    #[default]
    Auto,
    /// Held as `pending` until an auditor dispatches or dismisses it (人工研判).
    Manual,
}

impl Triage {
    pub fn initial_status(self) -> Status {
        match self {
            Triage::Auto => Status::Open,
            Triage::Manual => Status::Pending,
        }
    }
}

/// How many hits a work order keeps in its evidence history.
pub const RECENT_HITS_KEPT: usize = 100;
