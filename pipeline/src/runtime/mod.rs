//! The runtime: one owner of the live state. A runner (`crate::runner`
//! drives it for every source) hands it decoded micro-batches; it accepts
//! them into the window store, plans the evaluations of the windows they
//! closed, applies the hits as work orders and stages every change into
//! one commit, which the backend applies atomically before the batch's
//! messages are acknowledged. The HTTP API reads and acts through the same
//! lock, so every view is consistent.
//!
//! | module | job |
//! |---|---|
//! | `open` | restore from the backend, load archive and themes |
//! | `ingest` | accept records: unknown meters, lateness, duplicates, dead letters |
//! | `planning` | which windows closed; run them; settle progress; evict state |
//! | `hits` | hits → work orders or suppressed alerts |
//! | `commit` | stage changes into the commit slot; commit; retry |
//! | `registry` | themes at run time: list, add, enable, dry-run |
//! | `orders` | work-order queries, actions, 督办 pass |
//! | `sampling` | 抽检: draws and verdicts |
//! | `reports` | the evaluation of units (三报一评) |
//! | `reference` | archive and billing uploads |
//! | `views` | whitelist, suppressed alerts, dead letters, watermarks |
//! | `gauges` | metrics derived from the state |
//! | `wallboard` | the wallboard's aggregates |
//! | `sinks` | sink status and dead letters for the API |
//!
//! # Locks and invariants
//! - `core` (the live state) is locked first, `slot` (the commit slot)
//!   second, never the other way round. `slot` is held for the length of a
//!   backend commit, so commits apply in order; a failed commit's changes
//!   stay in it, ahead of later ones.
//! - A theme's `progress` moves only over windows whose hits are applied and
//!   staged in the same commit; `planned` runs ahead of it while an
//!   [`Evaluation`] is outside the lock, so the next batch plans only later
//!   windows. After a failure `planned` falls back to `progress`.
//! - Evaluations finish in the order they were planned.
//! - `meter_index` mirrors the archive's index as of its last change; a
//!   meter resolved against an older index is looked up again on accept.

mod commit;
mod gauges;
mod hits;
mod ingest;
mod open;
mod orders;
mod planning;
mod reference;
mod registry;
mod reports;
mod sampling;
mod sinks;
mod views;
mod wallboard;

#[cfg(test)]
mod tests;

pub use commit::StagedCommit;
pub use ingest::IngestReport;
pub use orders::WorkOrderQuery;
pub use planning::Evaluation;
pub use reference::BillingSummary;
pub use registry::{ParamInfo, ThemeInfo, ThemeKind, ThemeSlot};
pub use sampling::SampleBatch;
pub use views::StreamProgress;
pub use wallboard::{Board, BoardFinding, BoardTheme, NEWEST_PER_COUNTY};

use crate::archive::{Archive, MeterIndex};
use crate::billing::BillingPeriod;
use crate::engine::{Engine, EngineError, EngineLimits};
use crate::metrics::Metrics;
use crate::outbox::OutboxEvent;
use crate::records::{MeterEvent, Stream};
use crate::state::{Commit, DeadLetter, StateBackend, StateError};
use crate::store::RecordStore;
use crate::time::{BusinessClock, EpochMs};
use crate::watermark::Watermarks;
use crate::whitelist::Whitelist;
use crate::workorder::deadline::TimeLimits;
use crate::workorder::sampling::SamplingRules;
use crate::workorder::{SuppressedAlert, WorkOrderBook};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub clock: BusinessClock,
    pub out_of_orderness: BTreeMap<Stream, i64>,
    /// Streams whose windows also close on another stream's watermark.
    pub follows: BTreeMap<Stream, Option<Stream>>,
    pub max_payload_bytes: usize,
    /// Theme parameter overrides, by parameter name.
    pub params: BTreeMap<String, String>,
    /// Time limits of the work-order stages (督办).
    pub time_limits: TimeLimits,
    /// A whitelist entry may be valid for this many days at most.
    pub whitelist_max_days: i64,
    /// Themes whose hits wait as `pending` for an auditor (人工研判);
    /// the others open orders at once.
    pub manual_triage: BTreeSet<String>,
    /// How many orders a 抽检 draw takes by default.
    pub sampling: SamplingRules,
    pub engine: EngineLimits,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            clock: BusinessClock::default(),
            out_of_orderness: BTreeMap::new(),
            follows: BTreeMap::new(),
            max_payload_bytes: 1 << 20,
            params: BTreeMap::new(),
            time_limits: TimeLimits::default(),
            whitelist_max_days: 366,
            manual_triage: BTreeSet::new(),
            sampling: SamplingRules::default(),
            engine: EngineLimits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The live state, behind [`Monitor`]'s lock.
struct Core {
    archive: Archive,
    store: RecordStore,
    wm: Watermarks,
    themes: BTreeMap<String, ThemeSlot>,
    /// Per theme, where evaluation is complete: its hits applied, and
    /// committed together with them.
    progress: BTreeMap<String, EpochMs>,
    /// Per theme, where the evaluations started reach; ahead of `progress`
    /// while an [`Evaluation`] runs.
    planned: BTreeMap<String, EpochMs>,
    book: WorkOrderBook,
    whitelist: Whitelist,
    suppressed: VecDeque<SuppressedAlert>,
    dead_letters: VecDeque<DeadLetter>,
    fresh_events: Vec<MeterEvent>,
    billing: BTreeMap<String, BillingPeriod>,
    /// Changes not yet handed to the commit slot.
    pending: Commit,
}

pub struct Monitor {
    core: tokio::sync::Mutex<Core>,
    /// Changes handed to the backend and not yet accepted by it (see the
    /// lock order above).
    slot: Arc<tokio::sync::Mutex<Commit>>,
    engine: Engine,
    backend: Arc<dyn StateBackend>,
    pub metrics: Metrics,
    pub config: MonitorConfig,
    degraded: std::sync::Mutex<Option<String>>,
    /// The archive's meter index as of its last change, for decoding.
    meter_index: std::sync::RwLock<MeterIndex>,
    /// Added to the wall clock (tests move time forward to see 督办).
    clock_offset_ms: std::sync::atomic::AtomicI64,
    /// The outbox events of each successful commit, for live views (the
    /// wallboard's stream). Durable delivery goes through the sinks.
    committed: tokio::sync::broadcast::Sender<Arc<Vec<OutboxEvent>>>,
}

/// Commits a live view may fall behind by before it is told it lagged.
const COMMITTED_BACKLOG: usize = 256;

fn now_ms() -> EpochMs {
    chrono::Utc::now().timestamp_millis()
}

impl Monitor {
    pub fn clock(&self) -> &BusinessClock {
        &self.config.clock
    }

    /// The time the monitor works with: the wall clock plus the offset.
    pub fn now(&self) -> EpochMs {
        now_ms().saturating_add(
            self.clock_offset_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Moves the monitor's clock `offset_ms` ahead of the wall clock.
    pub fn set_clock_offset(&self, offset_ms: i64) {
        self.clock_offset_ms
            .store(offset_ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The archive's meter index, to resolve meters while decoding
    /// ([`crate::decode::DecodedMessage::decode`]).
    pub fn meter_index(&self) -> MeterIndex {
        self.meter_index
            .read()
            .map(|i| i.clone())
            .unwrap_or_default()
    }

    fn publish_meter_index(&self, core: &Core) {
        if let Ok(mut index) = self.meter_index.write() {
            *index = core.archive.meter_index().clone();
        }
    }

    /// The outbox events of every commit from now on, once committed.
    /// A receiver that falls behind gets `Lagged` and should re-read.
    pub fn subscribe_committed(&self) -> tokio::sync::broadcast::Receiver<Arc<Vec<OutboxEvent>>> {
        self.committed.subscribe()
    }

    /// Why the monitor cannot commit, while it cannot.
    pub fn degraded(&self) -> Option<String> {
        self.degraded.lock().ok().and_then(|d| d.clone())
    }

    fn set_degraded(&self, why: Option<String>) {
        if let Ok(mut d) = self.degraded.lock() {
            *d = why;
        }
    }
}
