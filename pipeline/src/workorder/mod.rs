//! 稽查工作单: a theme's findings for one customer, from the first hit to
//! archive. At most one is open per (theme, customer); further hits add to it.

pub mod book;
pub mod lifecycle;

use crate::ids::CustomerId;
use crate::time::EpochMs;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use book::{HitOutcome, SuppressedAlert, WorkOrderBook};
pub use lifecycle::{Action, LifecycleError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 生成: raised by a theme, not yet dispatched.
    Open,
    /// 派发: sent to an org unit.
    Dispatched,
    /// 签收: the unit took it.
    Accepted,
    /// 核查反馈 submitted, waiting for 审核.
    UnderReview,
    /// 归档: approved and closed.
    Archived,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Open,
        Status::Dispatched,
        Status::Accepted,
        Status::UnderReview,
        Status::Archived,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Dispatched => "dispatched",
            Status::Accepted => "accepted",
            Status::UnderReview => "under_review",
            Status::Archived => "archived",
        }
    }

    /// Anything not archived counts as open for the one-per-customer rule.
    pub fn is_active(self) -> bool {
        self != Status::Archived
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HitRecord {
    pub window_start: EpochMs,
    pub window_end: EpochMs,
    pub detected_at: EpochMs,
    pub evidence: serde_json::Map<String, serde_json::Value>,
}

/// What a history entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryAction {
    Create,
    Dispatch,
    Accept,
    Feedback,
    Review,
    Escalate,
}

impl HistoryAction {
    pub fn name(self) -> &'static str {
        match self {
            HistoryAction::Create => "create",
            HistoryAction::Dispatch => "dispatch",
            HistoryAction::Accept => "accept",
            HistoryAction::Feedback => "feedback",
            HistoryAction::Review => "review",
            HistoryAction::Escalate => "escalate",
        }
    }
}

/// The particulars of a move; which fields are set depends on the action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryDetail {
    /// Dispatch: the unit the order went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Feedback: whether the finding was confirmed on site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<bool>,
    /// Review rejected, or escalation: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Escalation: the time limit that passed, in hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_hours: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: EpochMs,
    pub action: HistoryAction,
    pub from: Status,
    pub to: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<HistoryDetail>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub confirmed: bool,
    pub measures: String,
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
    pub severity: String,
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
    pub returns: u32,
    /// 督办 level: 0 none, 1 warned, 2 overdue and escalated.
    pub escalation: u8,
    /// The most recent hits (bounded), newest last: evidence history.
    pub recent_hits: Vec<HitRecord>,
    pub history: Vec<HistoryEntry>,
}

/// How many hits a work order keeps in its evidence history.
pub const RECENT_HITS_KEPT: usize = 100;
