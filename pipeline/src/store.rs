//! The live window state: every accepted record not yet too old for any
//! theme, keyed so that a re-sent record replaces the earlier one. The store
//! also remembers what changed since the last flush, which is exactly what
//! the state backend has to persist.
//!
//! Records are grouped by the instant (load points, events) or date
//! (freezes) they belong to: a bucket per instant, each meter's record found
//! through a hash index. Windows read whole instants and eviction drops
//! whole instants, so the ordered map stays as small as the number of
//! instants kept (a dozen for load points), not the number of records.

use crate::ids::MeterId;
use crate::records::{Freeze, LoadPoint, MeterEvent, Record, Stream};
use crate::time::EpochMs;
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Inserted,
    Replaced,
    /// Same key, same content: a re-delivery, nothing to do.
    Unchanged,
}

/// Where eviction has reached: every record before these is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eviction {
    pub load_before: EpochMs,
    pub freeze_before: NaiveDate,
    pub event_before: EpochMs,
}

impl Eviction {
    /// The further of two evictions, field by field.
    pub fn max(self, other: Eviction) -> Eviction {
        Eviction {
            load_before: self.load_before.max(other.load_before),
            freeze_before: self.freeze_before.max(other.freeze_before),
            event_before: self.event_before.max(other.event_before),
        }
    }

    /// Whether `r` lies before the eviction point (and so is gone).
    pub fn drops(&self, r: &Record) -> bool {
        match r {
            Record::Load(l) => l.ts < self.load_before,
            Record::Freeze(f) => f.date < self.freeze_before,
            Record::Event(e) => e.ts < self.event_before,
        }
    }
}

/// What the store changed since the last [`RecordStore::take_changes`]:
/// records put (new or replaced, in order), and how far eviction went. A
/// record put and then evicted is covered by the eviction.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RecordChanges {
    pub puts: Vec<Record>,
    pub evicted: Option<Eviction>,
}

impl RecordChanges {
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.evicted.is_none()
    }

    /// Folds later changes into these.
    pub fn extend(&mut self, later: RecordChanges) {
        if self.puts.is_empty() {
            self.puts = later.puts;
        } else {
            self.puts.extend(later.puts);
        }
        self.evicted = match (self.evicted, later.evicted) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// What one stream's records take in the process, as the store accounts
/// for them ([`RecordStore::footprint`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    pub records: usize,
    /// Bytes allocated for the records, their index and what they point to,
    /// reserved but unused capacity included; not the allocator's own
    /// overhead, and not meter ids, which are the archive's.
    pub bytes: usize,
}

/// Heap bytes a stored key or value owns beyond its own size.
trait HeapSize {
    fn heap_bytes(&self) -> usize;
}

impl HeapSize for MeterId {
    /// Ids are the archive's, shared (`MeterIndex::canonical`).
    fn heap_bytes(&self) -> usize {
        0
    }
}

impl HeapSize for (MeterId, String) {
    fn heap_bytes(&self) -> usize {
        self.1.capacity()
    }
}

impl HeapSize for LoadPoint {
    fn heap_bytes(&self) -> usize {
        self.phases
            .as_ref()
            .map_or(0, |_| std::mem::size_of::<crate::records::Phases>())
    }
}

impl HeapSize for Freeze {
    fn heap_bytes(&self) -> usize {
        0
    }
}

impl HeapSize for MeterEvent {
    fn heap_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        self.code.capacity() + opt(&self.phase) + opt(&self.state)
    }
}

/// The records of one instant or date, in arrival order, with an index by
/// key.
#[derive(Debug)]
struct Bucket<K, V, S> {
    index: HashMap<K, u32, S>,
    rows: Vec<V>,
    /// What the keys and rows own on the heap, kept up to date on every put.
    heap: usize,
}

impl<K: Hash + Eq + HeapSize, V: PartialEq + HeapSize, S: BuildHasher + Default> Bucket<K, V, S> {
    fn with_capacity(n: usize) -> Self {
        Self {
            index: HashMap::with_capacity_and_hasher(n, S::default()),
            rows: Vec::with_capacity(n),
            heap: 0,
        }
    }

    /// The bucket's bytes: rows and index by capacity (a hash table has a
    /// power of two of slots, at most 7/8 full, and a control byte each).
    fn bytes(&self) -> usize {
        let slots = match self.index.capacity() {
            0 => 0,
            n => (n * 8 / 7).next_power_of_two(),
        };
        self.rows.capacity() * std::mem::size_of::<V>()
            + slots * (std::mem::size_of::<(K, u32)>() + 1)
            + self.heap
    }

    fn get(&self, k: &K) -> Option<&V> {
        self.index.get(k).and_then(|&i| self.rows.get(i as usize))
    }

    fn put(&mut self, k: K, v: V) -> Upsert {
        match self.index.get(&k) {
            Some(&i) => {
                let old = &mut self.rows[i as usize];
                if *old == v {
                    return Upsert::Unchanged;
                }
                self.heap = self.heap - old.heap_bytes() + v.heap_bytes();
                *old = v;
                Upsert::Replaced
            }
            None => {
                self.heap += k.heap_bytes() + v.heap_bytes();
                self.index.insert(k, self.rows.len() as u32);
                self.rows.push(v);
                Upsert::Inserted
            }
        }
    }

    /// Empties the bucket, keeping its allocations.
    fn clear(&mut self) {
        self.index.clear();
        self.rows.clear();
        self.heap = 0;
    }
}

/// One stream's buckets by instant or date, and the storage of the last
/// bucket evicted, kept for the next new one: a load bucket of every meter
/// is megabytes, and fresh memory costs page faults on each instant.
#[derive(Debug)]
struct Series<T, K, V, S> {
    buckets: BTreeMap<T, Bucket<K, V, S>>,
    spare: Option<Bucket<K, V, S>>,
}

impl<T, K, V, S> Default for Series<T, K, V, S> {
    fn default() -> Self {
        Self {
            buckets: BTreeMap::new(),
            spare: None,
        }
    }
}

impl<T: Ord + Copy, K: Hash + Eq + HeapSize, V: PartialEq + HeapSize, S: BuildHasher + Default>
    Series<T, K, V, S>
{
    fn put(&mut self, at: T, k: K, v: V) -> Upsert {
        if let Some(bucket) = self.buckets.get_mut(&at) {
            return bucket.put(k, v);
        }
        let mut bucket = self.spare.take().unwrap_or_else(|| {
            // Every meter reports every instant, so the latest bucket's size
            // is a new one's: sized once instead of grown (and rehashed) a
            // dozen times.
            let size = self
                .buckets
                .values()
                .next_back()
                .map_or(0, |b| b.rows.len());
            Bucket::with_capacity(size)
        });
        let outcome = bucket.put(k, v);
        self.buckets.insert(at, bucket);
        outcome
    }

    fn rows_at(&self, at: &T) -> &[V] {
        self.buckets.get(at).map_or(&[], |b| &b.rows)
    }

    fn get(&self, at: &T, k: &K) -> Option<&V> {
        self.buckets.get(at).and_then(|b| b.get(k))
    }

    /// Drops the buckets before `before`; true if any were there.
    fn drop_before(&mut self, before: T) -> bool {
        let keep = self.buckets.split_off(&before);
        let dropped = std::mem::replace(&mut self.buckets, keep);
        let any = !dropped.is_empty();
        if let Some(mut last) = dropped.into_values().next_back() {
            last.clear();
            self.spare = Some(last);
        }
        any
    }

    fn count(&self, from: T, to: T) -> usize {
        self.buckets
            .range(from..to.max(from))
            .map(|(_, b)| b.rows.len())
            .sum()
    }

    fn keys(&self, from: T, to: T) -> Vec<T> {
        self.buckets
            .range(from..to.max(from))
            .map(|(t, _)| *t)
            .collect()
    }

    fn len(&self) -> usize {
        self.buckets.values().map(|b| b.rows.len()).sum()
    }

    /// The kept spare bucket counts too: it is memory held.
    fn footprint(&self) -> Footprint {
        Footprint {
            records: self.len(),
            bytes: self
                .buckets
                .values()
                .chain(&self.spare)
                .map(Bucket::bytes)
                .sum::<usize>()
                + self.buckets.len() * std::mem::size_of::<(T, Bucket<K, V, S>)>(),
        }
    }
}

/// Load points and freezes come only from archive meters (unknown meters are
/// rejected before the store), so the fast id hash is safe for them. Event
/// codes are free text from the wire, so events use the default hasher.
type IdHash = std::hash::BuildHasherDefault<crate::ids::IdHasher>;
type EventKey = (MeterId, String);

#[derive(Debug, Default)]
pub struct RecordStore {
    load: Series<EpochMs, MeterId, LoadPoint, IdHash>,
    freeze: Series<NaiveDate, MeterId, Freeze, IdHash>,
    event: Series<EpochMs, EventKey, MeterEvent, std::hash::RandomState>,
    changes: RecordChanges,
}

impl RecordStore {
    pub fn upsert(&mut self, r: Record) -> Upsert {
        let outcome = self.insert_quiet(r.clone());
        if outcome != Upsert::Unchanged {
            self.changes.puts.push(r);
        }
        outcome
    }

    /// Restores a record from the backend without marking it changed.
    pub fn insert_quiet(&mut self, r: Record) -> Upsert {
        match r {
            Record::Load(l) => self.load.put(l.ts, l.meter_id.clone(), l),
            Record::Freeze(f) => self.freeze.put(f.date, f.meter_id.clone(), *f),
            Record::Event(e) => self
                .event
                .put(e.ts, (e.meter_id.clone(), e.code.clone()), *e),
        }
    }

    pub fn contains_same(&self, r: &Record) -> bool {
        match r {
            Record::Load(l) => self.load.get(&l.ts, &l.meter_id) == Some(l),
            Record::Freeze(f) => self.freeze_of(f.date, &f.meter_id) == Some(f),
            Record::Event(e) => {
                let key = (e.meter_id.clone(), e.code.clone());
                self.event.get(&e.ts, &key) == Some(e)
            }
        }
    }

    pub fn take_changes(&mut self) -> RecordChanges {
        std::mem::take(&mut self.changes)
    }

    pub fn len(&self) -> usize {
        self.load.len() + self.freeze.len() + self.event.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What each stream's records take in the process.
    pub fn footprint(&self) -> [(Stream, Footprint); 3] {
        [
            (Stream::Load, self.load.footprint()),
            (Stream::Freeze, self.freeze.footprint()),
            (Stream::Event, self.event.footprint()),
        ]
    }

    /// The load points at instant `t`.
    pub fn load_at(&self, t: EpochMs) -> &[LoadPoint] {
        self.load.rows_at(&t)
    }

    /// The events at instant `t`.
    pub fn events_at(&self, t: EpochMs) -> &[MeterEvent] {
        self.event.rows_at(&t)
    }

    /// The freezes of `date`.
    pub fn freezes_on(&self, date: NaiveDate) -> &[Freeze] {
        self.freeze.rows_at(&date)
    }

    pub fn load_count(&self, from: EpochMs, to: EpochMs) -> usize {
        self.load.count(from, to)
    }

    /// The distinct instants of load points in `[from, to)`.
    pub fn load_times(&self, from: EpochMs, to: EpochMs) -> Vec<EpochMs> {
        self.load.keys(from, to)
    }

    /// The distinct instants of events in `[from, to)`.
    pub fn event_times(&self, from: EpochMs, to: EpochMs) -> Vec<EpochMs> {
        self.event.keys(from, to)
    }

    pub fn freeze_of(&self, date: NaiveDate, meter: &MeterId) -> Option<&Freeze> {
        self.freeze.get(&date, meter)
    }

    pub fn event_count(&self, from: EpochMs, to: EpochMs) -> usize {
        self.event.count(from, to)
    }

    pub fn freeze_count(&self, from: NaiveDate, to: NaiveDate) -> usize {
        self.freeze.count(from, to)
    }

    /// The distinct dates of freezes in `[from, to)`.
    pub fn freeze_dates(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        self.freeze.keys(from, to)
    }

    /// Drops load points and events before `e.load_before`/`e.event_before`
    /// and freezes of dates before `e.freeze_before`: no window can need
    /// them now.
    pub fn evict(&mut self, e: Eviction) {
        let dropped = self.load.drop_before(e.load_before)
            | self.freeze.drop_before(e.freeze_before)
            | self.event.drop_before(e.event_before);
        // Only an eviction that removed something needs persisting; a
        // backend drops the same buckets (and any put before them).
        if dropped {
            self.changes.extend(RecordChanges {
                puts: Vec::new(),
                evicted: Some(e),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn lp(ts: i64, kw: i64) -> Record {
        Record::Load(LoadPoint::power_only(
            MeterId::new("M1"),
            ts,
            Decimal::from(kw),
        ))
    }

    fn evict_load_before(ts: EpochMs) -> Eviction {
        Eviction {
            load_before: ts,
            freeze_before: NaiveDate::MIN,
            event_before: EpochMs::MIN,
        }
    }

    #[test]
    fn resend_replaces_and_identical_is_unchanged() {
        let mut s = RecordStore::default();
        assert_eq!(s.upsert(lp(0, 5)), Upsert::Inserted);
        assert_eq!(s.upsert(lp(0, 5)), Upsert::Unchanged);
        assert_eq!(s.upsert(lp(0, 6)), Upsert::Replaced);
        assert!(s.contains_same(&lp(0, 6)));
        assert!(!s.contains_same(&lp(0, 5)));
        assert_eq!(s.len(), 1);
        assert_eq!(s.take_changes().puts, vec![lp(0, 5), lp(0, 6)]);
        s.upsert(lp(900_000, 1));
        assert_eq!(s.load_times(0, 900_001), vec![0, 900_000]);
        assert_eq!(s.load_times(1, 900_000), Vec::<i64>::new());
        assert_eq!(s.load_times(5, 0), Vec::<i64>::new());
        assert_eq!(s.load_count(0, 900_001), 2);
        s.evict(evict_load_before(900_000));
        assert_eq!(s.len(), 1);
        let ch = s.take_changes();
        assert_eq!(ch.puts, vec![lp(900_000, 1)]);
        assert_eq!(ch.evicted, Some(evict_load_before(900_000)));
        // Nothing left before the cutoff: nothing to persist.
        s.evict(evict_load_before(900_000));
        assert!(s.take_changes().is_empty());
    }

    /// The accounting follows puts, replacements and eviction, boxed phase
    /// values and event strings included.
    #[test]
    fn the_footprint_follows_what_is_held() {
        let mut s = RecordStore::default();
        let fp = |s: &RecordStore, stream: Stream| {
            s.footprint()
                .into_iter()
                .find(|(st, _)| *st == stream)
                .map(|(_, f)| f)
                .unwrap()
        };
        assert_eq!(fp(&s, Stream::Load), Footprint::default());
        for m in 0..100 {
            s.upsert(Record::Load(LoadPoint::power_only(
                MeterId::new(&format!("M{m}")),
                0,
                Decimal::ONE,
            )));
        }
        let plain = fp(&s, Stream::Load);
        assert_eq!(plain.records, 100);
        let row = std::mem::size_of::<LoadPoint>();
        // Rows, an index slot each at least, the bucket in the ordered map.
        assert!(plain.bytes >= 100 * (row + 21), "{plain:?}");
        assert!(plain.bytes <= 100 * 2 * (row + 25) + 1000, "{plain:?}");
        // A replacement with phase values adds their box, and only that.
        let mut with_phases = LoadPoint::power_only(MeterId::new("M0"), 0, Decimal::TWO);
        with_phases.phases = crate::records::Phases::from_values([Some(Decimal::ONE); 7]);
        s.upsert(Record::Load(with_phases));
        assert_eq!(
            fp(&s, Stream::Load).bytes,
            plain.bytes + std::mem::size_of::<crate::records::Phases>()
        );
        s.upsert(Record::Event(Box::new(MeterEvent {
            meter_id: MeterId::new("M0"),
            ts: 0,
            code: "cover_open".into(),
            phase: Some("A".into()),
            state: None,
        })));
        let ev = fp(&s, Stream::Event);
        assert_eq!(ev.records, 1);
        // The code twice (the row's and the index key's) and the phase.
        assert!(
            ev.bytes > std::mem::size_of::<MeterEvent>() + 2 * 10,
            "{ev:?}"
        );
        // Evicted: no records, but the kept spare bucket's storage counts.
        s.evict(evict_load_before(1));
        let spare = fp(&s, Stream::Load);
        assert_eq!(spare.records, 0);
        assert!(
            spare.bytes >= 100 * row && spare.bytes < plain.bytes,
            "{spare:?}"
        );
    }

    #[test]
    fn merged_changes_keep_order_and_the_furthest_eviction() {
        let mut a = RecordChanges {
            puts: vec![lp(0, 1)],
            evicted: Some(evict_load_before(5)),
        };
        a.extend(RecordChanges {
            puts: vec![lp(0, 2)],
            evicted: None,
        });
        a.extend(RecordChanges {
            puts: Vec::new(),
            evicted: Some(evict_load_before(3)),
        });
        assert_eq!(a.puts, vec![lp(0, 1), lp(0, 2)]);
        assert_eq!(a.evicted, Some(evict_load_before(5)));
        assert!(a
            .evicted
            .is_some_and(|e| e.drops(&lp(4, 0)) && !e.drops(&lp(5, 0))));
    }
}
