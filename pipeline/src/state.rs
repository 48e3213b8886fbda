//! Where live state survives a restart. The monitor keeps its working copy
//! in memory and hands the backend one [`Commit`] per micro-batch: the
//! records that changed, watermarks, theme progress and work orders, applied
//! all together (Redis: one MULTI/EXEC), so a crash leaves either the whole
//! batch or none of it. `docs/state.md` describes the Redis layout.

use crate::archive::Customer;
use crate::billing::BillingPeriod;
use crate::records::{Record, RecordKey, Stream};
use crate::store::RecordChanges;
use crate::time::EpochMs;
use crate::whitelist::WhitelistEntry;
use crate::workorder::{SuppressedAlert, WorkOrder};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub stream: String,
    pub topic: String,
    pub reason: String,
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
    }

    pub fn size(&self) -> usize {
        self.records.puts.len()
            + self.workorders.len()
            + self.suppressed.len()
            + self.dead_letters.len()
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
}

#[derive(Debug, thiserror::Error)]
#[error("state backend: {0}")]
pub struct StateError(pub String);

pub trait StateBackend: Send + Sync {
    fn name(&self) -> &'static str;
    fn load(&self) -> BoxFuture<'_, Result<Snapshot, StateError>>;
    fn commit<'a>(&'a self, c: &'a Commit) -> BoxFuture<'a, Result<(), StateError>>;
}

/// Kept suppressed alerts and dead letters per backend (older ones drop).
pub const KEEP_SUPPRESSED: usize = 10_000;
pub const KEEP_DEAD_LETTERS: usize = 20_000;

/// State in this process only (`jicha demo`, tests): the same interface as
/// Redis, applied to maps, so a second monitor over the same backend sees
/// what the first committed.
#[derive(Default)]
pub struct MemoryBackend {
    inner: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    records: BTreeMap<(Stream, String, RecordKey), Record>,
    snap: Snapshot,
    workorders: BTreeMap<String, WorkOrder>,
    whitelist: BTreeMap<String, WhitelistEntry>,
    customers: BTreeMap<String, Customer>,
    billing: BTreeMap<String, BillingPeriod>,
    themes: BTreeMap<String, StoredTheme>,
}

fn keep_last<T>(v: &mut Vec<T>, n: usize) {
    if v.len() > n {
        let excess = v.len() - n;
        v.drain(..excess);
    }
}

impl StateBackend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn load(&self) -> BoxFuture<'_, Result<Snapshot, StateError>> {
        Box::pin(async move {
            let st = self
                .inner
                .lock()
                .map_err(|_| StateError("memory state poisoned".into()))?;
            let mut s = st.snap.clone();
            s.records = st.records.values().cloned().collect();
            s.workorders = st.workorders.values().cloned().collect();
            s.whitelist = st.whitelist.values().cloned().collect();
            s.customers = st.customers.values().cloned().collect();
            s.billing = st.billing.values().cloned().collect();
            s.themes = st.themes.values().cloned().collect();
            Ok(s)
        })
    }

    fn commit<'a>(&'a self, c: &'a Commit) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let mut st = self
                .inner
                .lock()
                .map_err(|_| StateError("memory state poisoned".into()))?;
            for r in &c.records.puts {
                st.records
                    .insert((r.stream(), r.meter_id().to_string(), r.key()), r.clone());
            }
            if let Some(e) = c.records.evicted {
                st.records.retain(|_, r| !e.drops(r));
            }
            st.snap.watermarks.extend(c.watermarks.clone());
            st.snap.progress.extend(c.progress.clone());
            st.workorders.extend(c.workorders.clone());
            st.snap.suppressed.extend(c.suppressed.iter().cloned());
            keep_last(&mut st.snap.suppressed, KEEP_SUPPRESSED);
            st.snap.dead_letters.extend(c.dead_letters.iter().cloned());
            keep_last(&mut st.snap.dead_letters, KEEP_DEAD_LETTERS);
            for (id, e) in &c.whitelist {
                match e {
                    Some(e) => st.whitelist.insert(id.clone(), e.clone()),
                    None => st.whitelist.remove(id),
                };
            }
            st.customers.extend(c.customers.clone());
            st.billing.extend(c.billing.clone());
            for (id, t) in &c.themes {
                match t {
                    Some(t) => st.themes.insert(id.clone(), t.clone()),
                    None => st.themes.remove(id),
                };
            }
            Ok(())
        })
    }
}
