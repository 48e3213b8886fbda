//! Where live state survives a restart. The monitor keeps its working copy
//! in memory and hands the backend one [`Commit`] per micro-batch: the
//! records that changed, watermarks, theme progress and work orders, applied
//! all together (Redis: one MULTI/EXEC), so a crash leaves either the whole
//! batch or none of it. The outbox events a batch produced travel in the
//! same commit; sinks read them back from here once committed
//! (`crate::outbox`). `docs/state.md` describes the Redis layout.

use crate::archive::Customer;
use crate::billing::BillingPeriod;
use crate::outbox::{
    EventId, OutboxEvent, SinkDeadLetter, SinkReport, SinkStatus, KEEP_SINK_DEAD_LETTERS,
};
use crate::records::{Record, RecordKey, Stream};
use crate::store::RecordChanges;
use crate::time::EpochMs;
use crate::whitelist::WhitelistEntry;
use crate::workorder::{SuppressedAlert, WorkOrder};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub stream: String,
    pub topic: String,
    pub reason: crate::decode::Reason,
    pub detail: String,
    pub record: String,
    pub received_at: EpochMs,
}

/// A runtime-added theme, kept so it survives restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTheme {
    pub id: String,
    pub source: String,
    pub enabled: bool,
}

/// Everything one micro-batch changed. Maps hold the latest value per key,
/// so two commits merge by extending (used while the backend is down).
#[derive(Debug, Default, Clone)]
pub struct Commit {
    pub records: RecordChanges,
    pub watermarks: BTreeMap<Stream, EpochMs>,
    pub progress: BTreeMap<String, EpochMs>,
    pub workorders: BTreeMap<String, WorkOrder>,
    pub suppressed: Vec<SuppressedAlert>,
    pub dead_letters: Vec<DeadLetter>,
    pub whitelist: BTreeMap<String, Option<WhitelistEntry>>,
    pub customers: BTreeMap<String, Customer>,
    pub billing: BTreeMap<String, BillingPeriod>,
    pub themes: BTreeMap<String, Option<StoredTheme>>,
    /// Events about the work orders above, in id order.
    pub outbox: Vec<OutboxEvent>,
}

impl Commit {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.watermarks.is_empty()
            && self.progress.is_empty()
            && self.workorders.is_empty()
            && self.suppressed.is_empty()
            && self.dead_letters.is_empty()
            && self.whitelist.is_empty()
            && self.customers.is_empty()
            && self.billing.is_empty()
            && self.themes.is_empty()
            && self.outbox.is_empty()
    }

    /// Folds a later commit into this one.
    pub fn merge(&mut self, later: Commit) {
        // The usual case (nothing left over from a failed commit): no copy.
        if self.is_empty() {
            *self = later;
            return;
        }
        self.records.extend(later.records);
        self.watermarks.extend(later.watermarks);
        self.progress.extend(later.progress);
        self.workorders.extend(later.workorders);
        self.suppressed.extend(later.suppressed);
        self.dead_letters.extend(later.dead_letters);
        self.whitelist.extend(later.whitelist);
        self.customers.extend(later.customers);
        self.billing.extend(later.billing);
        self.themes.extend(later.themes);
        self.outbox.extend(later.outbox);
    }

    pub fn size(&self) -> usize {
        self.records.puts.len()
            + self.workorders.len()
            + self.suppressed.len()
            + self.dead_letters.len()
            + self.outbox.len()
    }

    /// The id of the commit's last outbox event.
    pub fn last_event(&self) -> Option<EventId> {
        self.outbox.iter().map(|e| e.id).max()
    }
}

/// What a backend hands back at start-up.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub records: Vec<Record>,
    pub watermarks: BTreeMap<Stream, EpochMs>,
    pub progress: BTreeMap<String, EpochMs>,
    pub workorders: Vec<WorkOrder>,
    pub suppressed: Vec<SuppressedAlert>,
    pub dead_letters: Vec<DeadLetter>,
    pub whitelist: Vec<WhitelistEntry>,
    pub customers: Vec<Customer>,
    pub billing: Vec<BillingPeriod>,
    pub themes: Vec<StoredTheme>,
    /// The last outbox event id ever committed: the sequence goes on from it.
    pub outbox_seq: EventId,
}

/// Committed events a sink has not passed yet.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PendingEvents {
    pub events: Vec<OutboxEvent>,
    /// The last outbox entry read (an unreadable one included, so progress
    /// can pass it); `None` when nothing is pending.
    pub upto: Option<EventId>,
    /// The sink's progress the events were read after.
    pub after: EventId,
    /// The last event committed (`head - after` is the sink's backlog).
    pub head: EventId,
}

#[derive(Debug, thiserror::Error)]
#[error("state backend: {0}")]
pub struct StateError(pub String);

pub trait StateBackend: Send + Sync {
    fn name(&self) -> &'static str;
    fn load(&self) -> BoxFuture<'_, Result<Snapshot, StateError>>;
    fn commit<'a>(&'a self, c: &'a Commit) -> BoxFuture<'a, Result<(), StateError>>;

    /// Declares the configured sinks. The backend keeps an event until all
    /// of them passed it, and none while there are none. A sink seen for the
    /// first time starts after the last committed event; progress of sinks
    /// no longer configured is dropped.
    fn register_sinks<'a>(&'a self, sinks: &'a [String]) -> BoxFuture<'a, Result<(), StateError>>;
    /// Up to `limit` committed events after `sink`'s progress, in id order.
    fn outbox_pending<'a>(
        &'a self,
        sink: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<PendingEvents, StateError>>;
    /// Persists that `sink` has every event up to `upto`, and drops the
    /// events every registered sink has.
    fn mark_delivered<'a>(
        &'a self,
        sink: &'a str,
        upto: EventId,
    ) -> BoxFuture<'a, Result<(), StateError>>;

    // Sink status and dead letters (`crate::outbox::status`). Defaults keep
    // nothing, for test backends that wrap another; both real backends
    // implement them.

    /// Stores `sink`'s status.
    fn put_sink_status<'a>(
        &'a self,
        _sink: &'a str,
        _status: &'a SinkStatus,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async { Ok(()) })
    }
    /// In one atomic write: appends `dead` to `sink`'s dead letters (the
    /// last [`KEEP_SINK_DEAD_LETTERS`] kept), stores its status, and moves
    /// its progress to `upto` as [`StateBackend::mark_delivered`] does.
    fn dead_letter<'a>(
        &'a self,
        _sink: &'a str,
        _upto: EventId,
        _dead: &'a [SinkDeadLetter],
        _status: &'a SinkStatus,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            Err(StateError(format!(
                "the {} backend keeps no sink dead letters; the events stay pending",
                self.name()
            )))
        })
    }
    /// Every registered sink: progress, the head of the sequence, status.
    fn sink_reports(&self) -> BoxFuture<'_, Result<Vec<SinkReport>, StateError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// The last `limit` dead letters of `sink`, oldest first.
    fn sink_dead_letters<'a>(
        &'a self,
        _sink: &'a str,
        _limit: usize,
    ) -> BoxFuture<'a, Result<Vec<SinkDeadLetter>, StateError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Kept suppressed alerts and dead letters per backend (older ones drop).
pub const KEEP_SUPPRESSED: usize = 10_000;
pub const KEEP_DEAD_LETTERS: usize = 20_000;

mod memory;
pub use memory::MemoryBackend;
