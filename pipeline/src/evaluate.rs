//! Which windows close in a step, and the source batch that carries their
//! rows. A row that belongs to several windows (hop, cumulate) is copied
//! once per window with that window's bounds in the hidden window columns,
//! so the theme's `GROUP BY window` sees exactly an Arroyo window's rows.

use crate::archive::Archive;
use crate::engine::EngineError;
use crate::records::MeterEvent;
use crate::store::RecordStore;
use crate::tables::{self, MeterDay, Placed};
use crate::theme::{SourceTable, ThemeDef};
use crate::time::{date_to_local_ms, local_ms_to_date, BusinessClock, EpochMs, LocalMs};
use crate::window::Window;
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::BTreeSet;

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
    /// `range` plus `extra` events).
    fn batch(
        &self,
        def: &ThemeDef,
        windows: &[Option<Window>],
        range: Option<(EpochMs, EpochMs)>,
        extra: &[MeterEvent],
    ) -> Result<RecordBatch, EngineError> {
        let table = def.table;
        let err = |e: datafusion::arrow::error::ArrowError| EngineError::Table {
            table: table.name(),
            message: e.to_string(),
        };
        let local = |t: i64| self.clock.to_local(t);
        let reads = |c: &str| def.reads(c);
        let spans: Vec<(Option<(LocalMs, LocalMs)>, EpochMs, EpochMs)> = match range {
            Some((a, b)) => vec![(None, a, b)],
            None => windows
                .iter()
                .flatten()
                .map(|w| (Some((w.start, w.end)), self.utc(w.start), self.utc(w.end)))
                .collect(),
        };
        match table {
            SourceTable::LoadPoint => {
                let mut rows = Vec::new();
                for (w, a, b) in &spans {
                    for r in self.store.load_range(*a, *b) {
                        if let Some(m) = self.customer(&r.meter_id) {
                            rows.push(Placed {
                                row: r,
                                customer_id: m.customer_id.as_str(),
                                window: *w,
                            });
                        }
                    }
                }
                tables::load_point(&rows, local, &reads).map_err(err)
            }
            SourceTable::MeterEvent => {
                let mut rows = Vec::new();
                for (w, a, b) in &spans {
                    for r in self.store.event_range(*a, *b) {
                        if let Some(m) = self.customer(&r.meter_id) {
                            rows.push(Placed {
                                row: r,
                                customer_id: m.customer_id.as_str(),
                                window: *w,
                            });
                        }
                    }
                }
                for r in extra {
                    if let Some(m) = self.customer(&r.meter_id) {
                        rows.push(Placed {
                            row: r,
                            customer_id: m.customer_id.as_str(),
                            window: None,
                        });
                    }
                }
                tables::meter_event(&rows, local, &reads).map_err(err)
            }
            SourceTable::MeterDay => {
                let mut days = Vec::new();
                for (w, a, b) in &spans {
                    let (from, to) = (self.clock.local_date(*a), self.clock.local_date(*b));
                    for cur in self.store.freeze_range(from, to) {
                        let Some(prev_date) = cur.date.pred_opt() else {
                            continue;
                        };
                        let (Some(prev), Some(m)) = (
                            self.store.freeze_of(prev_date, &cur.meter_id),
                            self.customer(&cur.meter_id),
                        ) else {
                            continue;
                        };
                        days.push((
                            MeterDay {
                                cur,
                                prev,
                                multiplier: m.multiplier,
                            },
                            m.customer_id.as_str(),
                            *w,
                        ));
                    }
                }
                let rows: Vec<Placed<MeterDay>> = days
                    .iter()
                    .map(|(d, c, w)| Placed {
                        row: d,
                        customer_id: c,
                        window: *w,
                    })
                    .collect();
                tables::meter_day(&rows, &reads).map_err(err)
            }
            SourceTable::Bill => Err(EngineError::Table {
                table: "bill",
                message: "billing themes run when a period is posted".into(),
            }),
        }
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

/// The batches a theme evaluates when its trigger watermark moves from
/// `old` (None: never evaluated) to `new`: windows with `old ≤ end < new`,
/// plus windows of `fresh` events that closed before they arrived.
pub fn batches_for_step(
    src: &Sources,
    def: &ThemeDef,
    old: Option<EpochMs>,
    new: EpochMs,
    fresh: &[MeterEvent],
) -> Vec<Result<RecordBatch, EngineError>> {
    let Some(spec) = def.window else {
        // Row-wise: rows whose time the watermark passed in this step, and
        // fresh events it had passed already.
        let lo = old.unwrap_or(EpochMs::MIN);
        if lo >= new && fresh.is_empty() {
            return Vec::new();
        }
        let extra: Vec<MeterEvent> = fresh.iter().filter(|e| e.ts < lo).cloned().collect();
        return vec![src.batch(def, &[], Some((lo, new.max(lo))), &extra)];
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
    for t in src.row_times(def.table, lo_local, hi_local) {
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
        rows += src.rows_in(def.table, &w);
        group.push(Some(w));
        if rows >= MAX_ROWS_PER_BATCH {
            out.push(src.batch(def, &group, None, &[]));
            group.clear();
            rows = 0;
        }
    }
    if !group.is_empty() {
        out.push(src.batch(def, &group, None, &[]));
    }
    out
}
