//! An event for the sinks' unit tests.

use jicha_pipeline::ids::CustomerId;
use jicha_pipeline::outbox::{EventId, EventKind, OutboxEvent};
use jicha_pipeline::theme::Severity;
use jicha_pipeline::workorder::{Escalation, HistoryAction, Status};

/// 2026-11-03T10:00+08:00.
pub const T0: i64 = 1_793_671_200_000;

/// A high `over_capacity` event of customer C1 in 41/4107/410727, on work
/// order `WO{id:010}`, for the window 10:00–11:00.
pub fn event(id: u64, kind: EventKind) -> OutboxEvent {
    OutboxEvent {
        id: EventId(id),
        kind,
        at: T0 + 3_600_000,
        workorder_id: format!("WO{id:010}"),
        theme: "over_capacity".into(),
        customer_id: CustomerId::new("C1"),
        org_code: "41/4107/410727".into(),
        severity: Severity::High,
        from: Status::Open,
        to: Status::Open,
        action: HistoryAction::Create,
        actor: Some("jicha".into()),
        hits: 1,
        escalation: Escalation::None,
        window_start: Some(T0),
        window_end: Some(T0 + 3_600_000),
        assigned_org: None,
        estimated_loss_yuan: None,
    }
}
