//! The in-memory state backend: the same interface as Redis, applied to
//! maps in this process.

use super::*;
use std::sync::Mutex;

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
    sink_status: BTreeMap<String, SinkStatus>,
    sink_dead: BTreeMap<String, std::collections::VecDeque<SinkDeadLetter>>,
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
            st.sink_status.retain(|name, _| sinks.contains(name));
            st.sink_dead.retain(|name, _| sinks.contains(name));
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
            Ok(PendingEvents {
                events,
                upto,
                after,
                head: st.snap.outbox_seq,
            })
        })
    }

    fn mark_delivered<'a>(
        &'a self,
        sink: &'a str,
        upto: EventId,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move { self.state()?.pass(sink, upto) })
    }

    fn put_sink_status<'a>(
        &'a self,
        sink: &'a str,
        status: &'a SinkStatus,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            self.state()?
                .sink_status
                .insert(sink.to_string(), status.clone());
            Ok(())
        })
    }

    fn dead_letter<'a>(
        &'a self,
        sink: &'a str,
        upto: EventId,
        dead: &'a [SinkDeadLetter],
        status: &'a SinkStatus,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let mut st = self.state()?;
            st.pass(sink, upto)?;
            st.sink_status.insert(sink.to_string(), status.clone());
            let list = st.sink_dead.entry(sink.to_string()).or_default();
            list.extend(dead.iter().cloned());
            while list.len() > KEEP_SINK_DEAD_LETTERS {
                list.pop_front();
            }
            Ok(())
        })
    }

    fn sink_reports(&self) -> BoxFuture<'_, Result<Vec<SinkReport>, StateError>> {
        Box::pin(async move {
            let st = self.state()?;
            Ok(st
                .delivered
                .iter()
                .map(|(name, &delivered)| SinkReport {
                    name: name.clone(),
                    delivered,
                    head: st.snap.outbox_seq,
                    status: st.sink_status.get(name).cloned().unwrap_or_default(),
                })
                .collect())
        })
    }

    fn sink_dead_letters<'a>(
        &'a self,
        sink: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<SinkDeadLetter>, StateError>> {
        Box::pin(async move {
            let st = self.state()?;
            let Some(list) = st.sink_dead.get(sink) else {
                return Ok(Vec::new());
            };
            Ok(list
                .iter()
                .skip(list.len().saturating_sub(limit))
                .cloned()
                .collect())
        })
    }
}

impl MemoryState {
    /// Moves `sink`'s progress to `upto` (never back) and trims.
    fn pass(&mut self, sink: &str, upto: EventId) -> Result<(), StateError> {
        let Some(p) = self.delivered.get_mut(sink) else {
            return Err(StateError(format!(
                "sink {sink} is not registered; register_sinks first"
            )));
        };
        *p = (*p).max(upto);
        self.trim_outbox();
        Ok(())
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
#[path = "tests.rs"]
mod tests;
