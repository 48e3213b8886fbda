//! Where live state survives a restart. The monitor keeps its working copy
//! in memory and hands the backend one [`Commit`] per micro-batch: the
//! records that changed, watermarks, theme progress and work orders, applied
//! all together (Redis: one MULTI/EXEC), so a crash leaves either the whole
//! batch or none of it. The outbox events a batch produced travel in the
//! same commit; sinks read them back from here once committed
//! (`crate::outbox`). `docs/state.md` describes the Redis layout.

use crate::archive::Customer;
use crate::billing::BillingPeriod;
use crate::outbox::{EventId, OutboxEvent};
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
    outbox: BTreeMap<EventId, OutboxEvent>,
    /// Registered sinks and their progress.
    delivered: BTreeMap<String, EventId>,
}

impl MemoryState {
    fn trim_outbox(&mut self) {
        match self.delivered.values().min() {
            Some(&low) => self.outbox.retain(|id, _| *id > low),
            None => self.outbox.clear(),
        }
    }
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
            let st = self.state()?;
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
            let mut st = self.state()?;
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
            if let Some(last) = c.last_event() {
                st.snap.outbox_seq = st.snap.outbox_seq.max(last);
                if !st.delivered.is_empty() {
                    st.outbox.extend(c.outbox.iter().map(|e| (e.id, e.clone())));
                }
            }
            Ok(())
        })
    }

    fn register_sinks<'a>(&'a self, sinks: &'a [String]) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let mut st = self.state()?;
            let head = st.snap.outbox_seq;
            st.delivered.retain(|name, _| sinks.contains(name));
            for s in sinks {
                st.delivered.entry(s.clone()).or_insert(head);
            }
            st.trim_outbox();
            Ok(())
        })
    }

    fn outbox_pending<'a>(
        &'a self,
        sink: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<PendingEvents, StateError>> {
        Box::pin(async move {
            let st = self.state()?;
            let after = st.delivered.get(sink).copied().ok_or_else(|| {
                StateError(format!(
                    "sink {sink} is not registered; register_sinks first"
                ))
            })?;
            let events: Vec<OutboxEvent> = st
                .outbox
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                .take(limit)
                .map(|(_, e)| e.clone())
                .collect();
            let upto = events.last().map(|e| e.id);
            Ok(PendingEvents { events, upto })
        })
    }

    fn mark_delivered<'a>(
        &'a self,
        sink: &'a str,
        upto: EventId,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let mut st = self.state()?;
            let Some(p) = st.delivered.get_mut(sink) else {
                return Err(StateError(format!(
                    "sink {sink} is not registered; register_sinks first"
                )));
            };
            *p = (*p).max(upto);
            st.trim_outbox();
            Ok(())
        })
    }
}

impl MemoryBackend {
    fn state(&self) -> Result<std::sync::MutexGuard<'_, MemoryState>, StateError> {
        self.inner.lock().map_err(|_| {
            StateError("memory state poisoned (a commit panicked); restart jicha".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::EventKind;
    use crate::workorder::Status;

    fn event(id: u64) -> OutboxEvent {
        OutboxEvent {
            id: EventId(id),
            kind: EventKind::HitAdded,
            at: 1_000 + id as i64,
            workorder_id: "WO0000000001".into(),
            theme: "over_capacity".into(),
            customer_id: crate::ids::CustomerId::new("C1"),
            org_code: "41/1".into(),
            severity: crate::theme::Severity::High,
            from: Status::Open,
            to: Status::Open,
            action: crate::workorder::HistoryAction::Hit,
            actor: None,
            hits: id,
            escalation: crate::workorder::Escalation::None,
            window_start: Some(0),
            window_end: Some(10),
            assigned_org: None,
            estimated_loss_yuan: None,
        }
    }

    fn commit_of(ids: std::ops::RangeInclusive<u64>) -> Commit {
        Commit {
            outbox: ids.map(event).collect(),
            ..Default::default()
        }
    }

    fn ids(p: &PendingEvents) -> Vec<u64> {
        p.events.iter().map(|e| e.id.0).collect()
    }

    #[test]
    fn memory_outbox_delivers_after_progress_and_trims_what_all_sinks_passed() {
        futures::executor::block_on(async {
            let b = MemoryBackend::default();
            // No sink yet: the sequence is kept, the events are not.
            b.commit(&commit_of(1..=2)).await.unwrap();
            assert_eq!(b.load().await.unwrap().outbox_seq, EventId(2));
            let sinks = vec!["a".to_string(), "b".to_string()];
            b.register_sinks(&sinks).await.unwrap();
            assert_eq!(b.outbox_pending("a", 10).await.unwrap().upto, None);

            b.commit(&commit_of(3..=5)).await.unwrap();
            let a = b.outbox_pending("a", 2).await.unwrap();
            assert_eq!((ids(&a), a.upto), (vec![3, 4], Some(EventId(4))));
            assert_eq!(a.events[0], event(3), "stored as committed");
            b.mark_delivered("a", EventId(4)).await.unwrap();
            assert_eq!(ids(&b.outbox_pending("a", 10).await.unwrap()), vec![5]);
            // b has passed nothing: all three are still there for it.
            assert_eq!(
                ids(&b.outbox_pending("b", 10).await.unwrap()),
                vec![3, 4, 5]
            );
            b.mark_delivered("b", EventId(5)).await.unwrap();
            // Progress never goes back.
            b.mark_delivered("b", EventId(3)).await.unwrap();
            assert!(b.outbox_pending("b", 10).await.unwrap().events.is_empty());
            {
                let st = b.state().unwrap();
                assert_eq!(st.outbox.keys().map(|k| k.0).collect::<Vec<_>>(), vec![5]);
            }
            // A sink added later starts at the head; a dropped one no longer holds events back.
            b.register_sinks(&["a".to_string(), "c".to_string()])
                .await
                .unwrap();
            assert!(b.outbox_pending("c", 10).await.unwrap().events.is_empty());
            assert_eq!(ids(&b.outbox_pending("a", 10).await.unwrap()), vec![5]);
            assert!(b.outbox_pending("b", 10).await.is_err());
            assert_eq!(b.load().await.unwrap().outbox_seq, EventId(5));
        });
    }
}
