//! The live window state: every accepted record not yet too old for any
//! theme, keyed so that a re-sent record replaces the earlier one. The store
//! also remembers what changed since the last flush, which is exactly what
//! the state backend has to persist.

use crate::ids::MeterId;
use crate::records::{Freeze, LoadPoint, MeterEvent, Record, RecordKey, Stream};
use crate::time::EpochMs;
use chrono::NaiveDate;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Inserted,
    Replaced,
    /// Same key, same content: a re-delivery, nothing to do.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StoreChange {
    Put(Record),
    Delete(Stream, MeterId, RecordKey),
}

#[derive(Debug, Default)]
pub struct RecordStore {
    load: BTreeMap<(EpochMs, MeterId), LoadPoint>,
    freeze: BTreeMap<(NaiveDate, MeterId), Freeze>,
    event: BTreeMap<(EpochMs, MeterId, String), MeterEvent>,
    changes: Vec<StoreChange>,
}

fn put<K: Ord, V: PartialEq>(map: &mut BTreeMap<K, V>, k: K, v: V) -> Upsert {
    match map.get(&k) {
        Some(old) if *old == v => Upsert::Unchanged,
        Some(_) => {
            map.insert(k, v);
            Upsert::Replaced
        }
        None => {
            map.insert(k, v);
            Upsert::Inserted
        }
    }
}

impl RecordStore {
    pub fn upsert(&mut self, r: Record) -> Upsert {
        let outcome = self.insert_quiet(r.clone());
        if outcome != Upsert::Unchanged {
            self.changes.push(StoreChange::Put(r));
        }
        outcome
    }

    /// Restores a record from the backend without marking it changed.
    pub fn insert_quiet(&mut self, r: Record) -> Upsert {
        match r {
            Record::Load(l) => put(&mut self.load, (l.ts, l.meter_id.clone()), l),
            Record::Freeze(f) => put(&mut self.freeze, (f.date, f.meter_id.clone()), f),
            Record::Event(e) => put(
                &mut self.event,
                (e.ts, e.meter_id.clone(), e.code.clone()),
                e,
            ),
        }
    }

    pub fn contains_same(&self, r: &Record) -> bool {
        match r {
            Record::Load(l) => self.load.get(&(l.ts, l.meter_id.clone())) == Some(l),
            Record::Freeze(f) => self.freeze.get(&(f.date, f.meter_id.clone())) == Some(f),
            Record::Event(e) => {
                self.event.get(&(e.ts, e.meter_id.clone(), e.code.clone())) == Some(e)
            }
        }
    }

    pub fn take_changes(&mut self) -> Vec<StoreChange> {
        std::mem::take(&mut self.changes)
    }

    pub fn len(&self) -> usize {
        self.load.len() + self.freeze.len() + self.event.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn load_range(&self, from: EpochMs, to: EpochMs) -> impl Iterator<Item = &LoadPoint> {
        self.load
            .range((from, MeterId::new(""))..(to, MeterId::new("")))
            .map(|(_, v)| v)
    }

    /// The distinct instants of load points in `[from, to)`. Jumps from one
    /// instant to the next instead of visiting every meter's point.
    pub fn load_times(&self, from: EpochMs, to: EpochMs) -> Vec<EpochMs> {
        let none = MeterId::new("");
        distinct_times(from, to, |a| {
            self.load
                .range((a, none.clone())..(to, none.clone()))
                .next()
                .map(|((t, _), _)| *t)
        })
    }

    /// The distinct instants of events in `[from, to)`.
    pub fn event_times(&self, from: EpochMs, to: EpochMs) -> Vec<EpochMs> {
        let none = MeterId::new("");
        distinct_times(from, to, |a| {
            self.event
                .range((a, none.clone(), String::new())..(to, none.clone(), String::new()))
                .next()
                .map(|((t, _, _), _)| *t)
        })
    }

    pub fn freeze_range(&self, from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = &Freeze> {
        self.freeze
            .range((from, MeterId::new(""))..(to, MeterId::new("")))
            .map(|(_, v)| v)
    }

    pub fn freeze_of(&self, date: NaiveDate, meter: &MeterId) -> Option<&Freeze> {
        self.freeze.get(&(date, meter.clone()))
    }

    pub fn event_range(&self, from: EpochMs, to: EpochMs) -> impl Iterator<Item = &MeterEvent> {
        self.event
            .range((from, MeterId::new(""), String::new())..(to, MeterId::new(""), String::new()))
            .map(|(_, v)| v)
    }

    /// Drops load points and events before `load_before`/`event_before` and
    /// freezes of dates before `freeze_before`: no window can need them now.
    pub fn evict(&mut self, load_before: EpochMs, freeze_before: NaiveDate, event_before: EpochMs) {
        let keep = self.load.split_off(&(load_before, MeterId::new("")));
        for ((ts, m), _) in std::mem::replace(&mut self.load, keep) {
            self.changes
                .push(StoreChange::Delete(Stream::Load, m, RecordKey::Load(ts)));
        }
        let keep = self.freeze.split_off(&(freeze_before, MeterId::new("")));
        for ((d, m), _) in std::mem::replace(&mut self.freeze, keep) {
            self.changes
                .push(StoreChange::Delete(Stream::Freeze, m, RecordKey::Freeze(d)));
        }
        let keep = self
            .event
            .split_off(&(event_before, MeterId::new(""), String::new()));
        for ((ts, m, code), _) in std::mem::replace(&mut self.event, keep) {
            self.changes.push(StoreChange::Delete(
                Stream::Event,
                m,
                RecordKey::Event(ts, code),
            ));
        }
    }
}

/// Collects `first_at(a)` (the first instant ≥ a, below `to`) from `from` on.
fn distinct_times(
    from: EpochMs,
    to: EpochMs,
    first_at: impl Fn(EpochMs) -> Option<EpochMs>,
) -> Vec<EpochMs> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        let Some(t) = first_at(at) else { break };
        out.push(t);
        match t.checked_add(1) {
            Some(next) => at = next,
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn lp(ts: i64, kw: i64) -> Record {
        Record::Load(LoadPoint {
            meter_id: MeterId::new("M1"),
            ts,
            p_kw: Decimal::from(kw),
            q_kvar: None,
            ua: None,
            ub: None,
            uc: None,
            ia: None,
            ib: None,
            ic: None,
            pf: None,
        })
    }

    #[test]
    fn resend_replaces_and_identical_is_unchanged() {
        let mut s = RecordStore::default();
        assert_eq!(s.upsert(lp(0, 5)), Upsert::Inserted);
        assert_eq!(s.upsert(lp(0, 5)), Upsert::Unchanged);
        assert_eq!(s.upsert(lp(0, 6)), Upsert::Replaced);
        assert_eq!(s.len(), 1);
        assert_eq!(s.take_changes().len(), 2);
        s.upsert(lp(900_000, 1));
        assert_eq!(s.load_times(0, 900_001), vec![0, 900_000]);
        assert_eq!(s.load_times(1, 900_000), Vec::<i64>::new());
        assert_eq!(s.load_times(5, 0), Vec::<i64>::new());
        s.evict(900_000, NaiveDate::MIN, 0);
        assert_eq!(s.len(), 1);
        assert!(matches!(
            s.take_changes().as_slice(),
            [
                StoreChange::Put(_),
                StoreChange::Delete(Stream::Load, _, RecordKey::Load(0))
            ]
        ));
    }
}
