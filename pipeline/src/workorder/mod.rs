//! 稽查工作单: a theme's findings for one customer, from the first hit to
//! archive. At most one is open per (theme, customer); further hits add to it.

pub mod book;
pub mod lifecycle;

use crate::ids::CustomerId;
use crate::time::{BusinessClock, EpochMs};
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: EpochMs,
    pub action: String,
    pub from: Status,
    pub to: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
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

impl WorkOrder {
    /// The API shape (interfaces.md §4): instants as RFC 3339 in the
    /// business zone, money as decimal strings.
    pub fn to_api(&self, clock: &BusinessClock, with_history: bool) -> serde_json::Value {
        let mut v = serde_json::json!({
            "id": self.id,
            "theme": self.theme,
            "customer_id": self.customer_id,
            "org_code": self.org_code,
            "status": self.status,
            "severity": self.severity,
            "first_window_start": clock.format(self.first_window_start),
            "first_window_end": clock.format(self.first_window_end),
            "last_window_end": clock.format(self.last_window_end),
            "hits": self.hits,
            "created_at": clock.format(self.created_at),
            "updated_at": clock.format(self.updated_at),
            "evidence": self.evidence,
            "estimated_loss_yuan": self.estimated_loss_yuan.map(|d| jicha_domain::money::round_yuan(d).to_string()),
            "assigned_org": self.assigned_org,
            "escalation_level": self.escalation,
            "feedback": self.feedback.as_ref().map(|f| serde_json::json!({
                "confirmed": f.confirmed,
                "measures": f.measures,
                "recovered_kwh": f.recovered_kwh.map(|d| d.to_string()),
                "recovered_yuan": f.recovered_yuan.map(|d| jicha_domain::money::round_yuan(d).to_string()),
            })),
        });
        if with_history {
            v["history"] = serde_json::json!(self
                .history
                .iter()
                .map(|h| serde_json::json!({"at": clock.format(h.at), "action": h.action, "from": h.from, "to": h.to, "actor": h.actor, "detail": h.detail}))
                .collect::<Vec<_>>());
            v["hit_history"] = serde_json::json!(self
                .recent_hits
                .iter()
                .map(|h| serde_json::json!({"window_start": clock.format(h.window_start), "window_end": clock.format(h.window_end), "detected_at": clock.format(h.detected_at), "evidence": h.evidence}))
                .collect::<Vec<_>>());
        }
        v
    }
}
