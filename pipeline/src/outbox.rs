//! The outbox: what happened to work orders, written in the same commit as
//! the change that caused it and handed to the configured [`Sink`]s after
//! that commit succeeded. Each event has an id from one sequence, so a
//! delivery repeated after a crash (delivered, progress not yet persisted)
//! repeats the same ids and a receiver can drop the copy. `docs/reliability.md`
//! gives the argument; `docs/state.md` the Redis layout.

pub mod dispatch;
mod pass;
pub mod status;

pub use dispatch::{Dispatcher, Fault, SinkMetrics};
pub use status::{RetryPolicy, SinkDeadLetter, SinkReport, SinkStatus, KEEP_SINK_DEAD_LETTERS};

use crate::ids::CustomerId;
use crate::theme::Severity;
use crate::time::EpochMs;
use crate::workorder::{Escalation, HistoryAction, HistoryEntry, Status, WorkOrder};
use futures::future::BoxFuture;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An event's place in the outbox sequence: unique, increasing, never reused
/// for a committed event (the sequence continues from the backend).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct EventId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A hit opened a work order.
    WorkorderOpened,
    /// A hit for a new window was added to the open work order.
    HitAdded,
    /// 督办: the order was escalated for being overdue.
    Escalated,
    /// A life-cycle action (dispatch, accept, feedback, review).
    StateChanged,
}

/// One event as stored in the outbox and handed to sinks. Flat and typed,
/// so a receiver needs nothing else to route or show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    pub id: EventId,
    pub kind: EventKind,
    /// When it happened (ms since the epoch, UTC).
    pub at: EpochMs,
    pub workorder_id: String,
    pub theme: String,
    pub customer_id: CustomerId,
    pub org_code: String,
    pub severity: Severity,
    /// The status before (for `state_changed`; otherwise the current one).
    pub from: Status,
    /// The status after.
    pub to: Status,
    /// The life-cycle action.
    pub action: HistoryAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Windows counted on the order after this event.
    pub hits: u64,
    /// 督办 level after this event.
    pub escalation: Escalation,
    /// The hit's window (for `workorder_opened` and `hit_added`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<EpochMs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_end: Option<EpochMs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_org: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_loss_yuan: Option<Decimal>,
}

impl OutboxEvent {
    /// The event for a hit on `wo` (opened or added), as the order is now.
    pub fn for_hit(
        id: EventId,
        kind: EventKind,
        wo: &WorkOrder,
        window: (EpochMs, EpochMs),
    ) -> Self {
        let mut e = Self::base(id, kind, wo, wo.updated_at);
        e.action = match kind {
            EventKind::WorkorderOpened => HistoryAction::Create,
            _ => HistoryAction::Hit,
        };
        e.actor = Some("jicha".into());
        e.window_start = Some(window.0);
        e.window_end = Some(window.1);
        e
    }

    /// The event for one new history entry of `wo` (an action or 督办).
    pub fn for_history(id: EventId, wo: &WorkOrder, h: &HistoryEntry) -> Self {
        let kind = if h.action == HistoryAction::Escalate {
            EventKind::Escalated
        } else {
            EventKind::StateChanged
        };
        let mut e = Self::base(id, kind, wo, h.at);
        e.from = h.from;
        e.to = h.to;
        e.action = h.action;
        e.actor = h.actor.clone();
        e
    }

    fn base(id: EventId, kind: EventKind, wo: &WorkOrder, at: EpochMs) -> Self {
        OutboxEvent {
            id,
            kind,
            at,
            workorder_id: wo.id.clone(),
            theme: wo.theme.clone(),
            customer_id: wo.customer_id.clone(),
            org_code: wo.org_code.clone(),
            severity: wo.severity,
            from: wo.status,
            to: wo.status,
            action: HistoryAction::Create,
            actor: None,
            hits: wo.hits,
            escalation: wo.escalation,
            window_start: None,
            window_end: None,
            assigned_org: wo.assigned_org.clone(),
            estimated_loss_yuan: wo.estimated_loss_yuan,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying: the receiver is down, slow, overloaded or rate
    /// limiting.
    #[error("sink {sink}: {message}; delivery is retried with backoff")]
    Delivery { sink: String, message: String },
    /// Retrying the same events cannot help (the receiver refused them:
    /// HTTP 4xx, a robot's error code for a bad message): they go to the
    /// sink's dead letters at once.
    #[error("sink {sink}: refused: {message}; the events go to the sink's dead letters (GET /api/v1/sinks/{sink}/deadletters): fix the receiver or the sink's settings")]
    Rejected { sink: String, message: String },
    #[error("sink configuration: {0}")]
    Config(String),
}

impl SinkError {
    /// Whether retrying the same events is pointless.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SinkError::Rejected { .. } | SinkError::Config(_))
    }
}

/// Where events go after their commit. `deliver` returns only once the
/// batch is durable at the receiver: the dispatcher then persists progress
/// past it. A batch may be delivered again after a crash or a retry (same
/// ids).
pub trait Sink: Send + Sync {
    /// Stable and unique among the configured sinks: delivery progress is
    /// kept under it.
    fn name(&self) -> &str;
    /// What kind of sink this is (`event_log`, `webhook`, …), for the API.
    fn kind(&self) -> &str {
        "sink"
    }
    /// Whether the sink wants `event` (its filters); the others count as
    /// passed without being delivered.
    fn accepts(&self, _event: &OutboxEvent) -> bool {
        true
    }
    /// How failed deliveries are retried before events are dead-lettered.
    fn retry(&self) -> RetryPolicy {
        RetryPolicy::default()
    }
    fn deliver<'a>(&'a self, events: &'a [OutboxEvent]) -> BoxFuture<'a, Result<(), SinkError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialise_as_the_documented_names() {
        let names: Vec<String> = [
            EventKind::WorkorderOpened,
            EventKind::HitAdded,
            EventKind::Escalated,
            EventKind::StateChanged,
        ]
        .iter()
        .map(|k| serde_json::to_string(k).unwrap())
        .collect();
        assert_eq!(
            names,
            [
                "\"workorder_opened\"",
                "\"hit_added\"",
                "\"escalated\"",
                "\"state_changed\""
            ]
        );
    }
}
