//! Which windows close in a step, and the source batch that carries their
//! rows. A row that belongs to several windows (hop, cumulate) is copied
//! once per window with that window's bounds in the hidden window columns,
//! so the theme's `GROUP BY window` sees exactly an Arroyo window's rows.
//! Rows are converted to Arrow once per batch and copied per window as
//! whole column runs.

use crate::archive::Archive;
use crate::engine::{EngineError, Theme};
use crate::records::MeterEvent;
use crate::store::RecordStore;
use crate::tables::{self, MeterDay, Placed, Run, SourceTable};
use crate::time::{date_to_local_ms, local_ms_to_date, BusinessClock, EpochMs, LocalMs};
use crate::window::Window;
use chrono::NaiveDate;
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::BTreeSet;

/// A window (None: rows by time alone) and the range `[from, to)` of the
/// keys (instants or dates) its rows are read from.
type Span<K> = (Option<(LocalMs, LocalMs)>, K, K);

pub struct Sources<'a> {
    pub store: &'a RecordStore,
    pub archive: &'a Archive,
    pub clock: &'a BusinessClock,
}

/// Rows per evaluated batch, so a long catch-up never builds one huge table.
const MAX_ROWS_PER_BATCH: usize = 1_000_000;

impl Sources<'_> {
    /// Distinct local row times of a table in local `[lo, hi)`.
    fn row_times(&self, table: SourceTable, lo: LocalMs, hi: LocalMs) -> BTreeSet<LocalMs> {
        let (ulo, uhi) = (self.utc(lo), self.utc(hi));
        match table {
            SourceTable::LoadPoint => self
                .store
                .load_times(ulo, uhi)
                .into_iter()
                .map(|t| self.clock.to_local(t))
                .collect(),
            SourceTable::MeterEvent => self
                .store
                .event_times(ulo, uhi)
                .into_iter()
                .map(|t| self.clock.to_local(t))
                .collect(),
            SourceTable::MeterDay => {
                let to = local_ms_to_date(hi)
                    .succ_opt()
                    .unwrap_or(local_ms_to_date(hi));
                self.store
                    .freeze_dates(local_ms_to_date(lo), to)
                    .into_iter()
                    .map(date_to_local_ms)
                    .filter(|t| *t >= lo && *t < hi)
                    .collect()
            }
            SourceTable::Bill => BTreeSet::new(),
        }
    }

    fn utc(&self, l: LocalMs) -> EpochMs {
        if l == LocalMs::MIN || l == LocalMs::MAX {
            return l;
        }
        self.clock.to_utc(l)
    }

    fn customer(&self, m: &crate::ids::MeterId) -> Option<&crate::archive::MeterInfo> {
        self.archive.meter(m)
    }

    /// Builds the source table for `windows` (or, row-wise, the rows of
    /// `range` plus `extra` events): the rows of every instant (or date)
    /// some window needs, once and in order, then each window as the run of
    /// them between its bounds.
    fn batch(
        &self,
        theme: &Theme,
        windows: &[Option<Window>],
        range: Option<(EpochMs, EpochMs)>,
        extra: &[MeterEvent],
    ) -> Result<RecordBatch, EngineError> {
        let table = theme.table();
        let err = |e: datafusion::arrow::error::ArrowError| EngineError::Table {
            table: table.name(),
            message: e.to_string(),
        };
        let local = |t: i64| self.clock.to_local(t);
        let reads = |c: &str| theme.reads(c);
        let spans: Vec<Span<EpochMs>> = match range {
            Some((a, b)) => vec![(None, a, b)],
            None => windows
                .iter()
                .flatten()
                .map(|w| (Some((w.start, w.end)), self.utc(w.start), self.utc(w.end)))
                .collect(),
        };
        let (rows, mut runs) = match table {
            SourceTable::LoadPoint => {
                let keys = union(&spans, |a, b| self.store.load_times(a, b));
                let (rows, offsets) =
                    self.placed(&keys, |t| self.store.load_at(*t), |r| &r.meter_id);
                let rows = tables::load_point(&rows, local, &reads).map_err(err)?;
                (rows, runs_of(&spans, &keys, &offsets))
            }
            SourceTable::MeterEvent => {
                let keys = union(&spans, |a, b| self.store.event_times(a, b));
                let (mut rows, offsets) =
                    self.placed(&keys, |t| self.store.events_at(*t), |r| &r.meter_id);
                let mut runs = runs_of(&spans, &keys, &offsets);
                let before = rows.len();
                for r in extra {
                    if let Some(m) = self.customer(&r.meter_id) {
                        rows.push(Placed {
                            row: r,
                            customer_id: m.customer_id.as_str(),
                        });
                    }
                }
                runs.push(Run {
                    start: before,
                    len: rows.len() - before,
                    window: None,
                });
                (
                    tables::meter_event(&rows, local, &reads).map_err(err)?,
                    runs,
                )
            }
            SourceTable::MeterDay => {
                let days: Vec<Span<NaiveDate>> = spans
                    .iter()
                    .map(|(w, a, b)| (*w, self.clock.local_date(*a), self.clock.local_date(*b)))
                    .collect();
                let keys = union(&days, |a, b| self.store.freeze_dates(a, b));
                let mut meter_days = Vec::new();
                let mut offsets = Vec::with_capacity(keys.len() + 1);
                for date in &keys {
                    offsets.push(meter_days.len());
                    let Some(prev_date) = date.pred_opt() else {
                        continue;
                    };
                    for cur in self.store.freezes_on(*date) {
                        let (Some(prev), Some(m)) = (
                            self.store.freeze_of(prev_date, &cur.meter_id),
                            self.customer(&cur.meter_id),
                        ) else {
                            continue;
                        };
                        meter_days.push((
                            MeterDay {
                                cur,
                                prev,
                                multiplier: m.multiplier,
                            },
                            m.customer_id.as_str(),
                        ));
                    }
                }
                offsets.push(meter_days.len());
                let rows: Vec<Placed<MeterDay>> = meter_days
                    .iter()
                    .map(|(d, c)| Placed {
                        row: d,
                        customer_id: c,
                    })
                    .collect();
                let rows = tables::meter_day(&rows, &reads).map_err(err)?;
                (rows, runs_of(&days, &keys, &offsets))
            }
            SourceTable::Bill => {
                return Err(EngineError::Table {
                    table: "bill",
                    message: "billing themes run when a period is posted".into(),
                })
            }
        };
        runs.retain(|r| r.len > 0);
        tables::in_windows(&rows, &runs).map_err(err)
    }

    /// The rows of each key in order, with their customers (rows of meters
    /// no longer in the archive are left out), and where each key's rows
    /// start (one more offset at the end).
    fn placed<'s, K, T: 's>(
        &'s self,
        keys: &[K],
        rows_at: impl Fn(&K) -> &'s [T],
        meter: impl Fn(&T) -> &crate::ids::MeterId,
    ) -> (Vec<Placed<'s, T>>, Vec<usize>) {
        let mut out = Vec::new();
        let mut offsets = Vec::with_capacity(keys.len() + 1);
        for k in keys {
            offsets.push(out.len());
            for r in rows_at(k) {
                if let Some(m) = self.customer(meter(r)) {
                    out.push(Placed {
                        row: r,
                        customer_id: m.customer_id.as_str(),
                    });
                }
            }
        }
        offsets.push(out.len());
        (out, offsets)
    }

    fn rows_in(&self, table: SourceTable, w: &Window) -> usize {
        let (a, b) = (self.utc(w.start), self.utc(w.end));
        match table {
            SourceTable::LoadPoint => self.store.load_count(a, b),
            SourceTable::MeterEvent => self.store.event_count(a, b),
            SourceTable::MeterDay => self
                .store
                .freeze_count(self.clock.local_date(a), self.clock.local_date(b)),
            SourceTable::Bill => 0,
        }
    }
}

/// The distinct keys (instants or dates) the spans `[a, b)` cover, in order.
fn union<K: Ord + Copy, W>(spans: &[(W, K, K)], keys_in: impl Fn(K, K) -> Vec<K>) -> Vec<K> {
    let set: BTreeSet<K> = spans.iter().flat_map(|(_, a, b)| keys_in(*a, *b)).collect();
    set.into_iter().collect()
}

/// Each span as the run of rows of the keys inside it; `offsets[i]` is
/// where key `i`'s rows start.
fn runs_of<K: Ord + Copy>(spans: &[Span<K>], keys: &[K], offsets: &[usize]) -> Vec<Run> {
    spans
        .iter()
        .map(|(w, a, b)| {
            let i = keys.partition_point(|k| k < a);
            let j = keys.partition_point(|k| k < b).max(i);
            Run {
                start: offsets[i],
                len: offsets[j] - offsets[i],
                window: *w,
            }
        })
        .collect()
}

/// The batches a theme evaluates when its trigger watermark moves from
/// `old` (None: never evaluated) to `new`: windows with `old ≤ end < new`,
/// plus windows of `fresh` events that closed before they arrived.
pub fn batches_for_step(
    src: &Sources,
    theme: &Theme,
    old: Option<EpochMs>,
    new: EpochMs,
    fresh: &[MeterEvent],
) -> Vec<Result<RecordBatch, EngineError>> {
    let Some(spec) = theme.def.window else {
        // Row-wise: rows whose time the watermark passed in this step, and
        // fresh events it had passed already.
        let lo = old.unwrap_or(EpochMs::MIN);
        if lo >= new && fresh.is_empty() {
            return Vec::new();
        }
        let extra: Vec<MeterEvent> = fresh.iter().filter(|e| e.ts < lo).cloned().collect();
        return vec![src.batch(theme, &[], Some((lo, new.max(lo))), &extra)];
    };
    let lo_local = old
        .map(|o| src.clock.to_local(o) - spec.max_len())
        .unwrap_or(LocalMs::MIN);
    let hi_local = src.clock.to_local(new);
    let mut windows: BTreeSet<Window> = BTreeSet::new();
    let closes = |w: &Window| {
        let end = src.utc(w.end);
        end < new && old.is_none_or(|o| end >= o)
    };
    for t in src.row_times(theme.table(), lo_local, hi_local) {
        windows.extend(spec.windows_of(t).into_iter().filter(closes));
    }
    if let Some(o) = old {
        for e in fresh.iter().filter(|e| e.ts < o) {
            windows.extend(
                spec.windows_of(src.clock.to_local(e.ts))
                    .into_iter()
                    .filter(|w| src.utc(w.end) < o),
            );
        }
    }
    // Group windows into batches of bounded size.
    let mut out = Vec::new();
    let mut group: Vec<Option<Window>> = Vec::new();
    let mut rows = 0;
    for w in windows {
        rows += src.rows_in(theme.table(), &w);
        group.push(Some(w));
        if rows >= MAX_ROWS_PER_BATCH {
            out.push(src.batch(theme, &group, None, &[]));
            group.clear();
            rows = 0;
        }
    }
    if !group.is_empty() {
        out.push(src.batch(theme, &group, None, &[]));
    }
    out
}
