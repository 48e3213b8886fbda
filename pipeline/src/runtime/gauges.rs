//! Gauges derived from the live state. Stream gauges are refreshed where
//! that state changes; the work-order gauges at scrape time
//! ([`Monitor::render_metrics`]): one pass over the book per scrape instead
//! of one per micro-batch, which with 100,000 open orders would cost more
//! than the batch.

use super::{Core, Monitor};
use crate::records::Stream;
use crate::time::EpochMs;
use crate::workorder::aggregate::Aggregate;
use crate::workorder::Status;
use rust_decimal::prelude::ToPrimitive;
use std::collections::BTreeMap;

impl Monitor {
    pub(super) fn refresh_watermark_gauges(&self, core: &Core) {
        for s in Stream::ALL {
            if let Some(w) = core.wm.watermark(s) {
                self.metrics
                    .watermark
                    .with_label_values(&[s.name()])
                    .set(w as f64 / 1000.0);
            }
        }
    }

    pub(super) fn refresh_state_gauges(&self, core: &Core) {
        for (s, f) in core.store.footprint() {
            let stream = [s.name()];
            let m = &self.metrics;
            m.state_records
                .with_label_values(&stream)
                .set(f.records as f64);
            m.state_bytes.with_label_values(&stream).set(f.bytes as f64);
        }
    }

    /// The metrics in Prometheus' text format, with the work-order gauges,
    /// the watermark lag and the theme windows as of now.
    pub async fn render_metrics(&self) -> String {
        let core = self.core.lock().await;
        self.refresh_book_gauges(&Aggregate::of(core.book.iter(), EpochMs::MAX, 0));
        let now = self.now();
        let m = &self.metrics;
        for s in Stream::ALL {
            if let Some(w) = core.wm.watermark(s) {
                m.watermark_lag
                    .with_label_values(&[s.name()])
                    .set(now.saturating_sub(w) as f64 / 1000.0);
            }
        }
        m.theme_window.reset();
        for (id, slot) in &core.themes {
            if let (true, Some(w)) = (slot.enabled, slot.theme.def.window) {
                m.theme_window
                    .with_label_values(&[id])
                    .set(w.slide_ms() as f64 / 1000.0);
            }
        }
        drop(core);
        m.render()
    }

    fn refresh_book_gauges(&self, a: &Aggregate) {
        let m = &self.metrics;
        let mut by_status: BTreeMap<(Status, &str), u64> = BTreeMap::new();
        let mut oldest: BTreeMap<&str, EpochMs> = BTreeMap::new();
        for ((county, theme), c) in &a.cells {
            for (status, n) in &c.by_status {
                *by_status.entry((*status, theme)).or_insert(0) += n;
            }
            if let Some(at) = c.oldest_open {
                let o = oldest.entry(county).or_insert(at);
                *o = (*o).min(at);
            }
        }
        m.workorders.reset();
        for ((status, theme), n) in by_status {
            m.workorders
                .with_label_values(&[status.name(), theme])
                .set(n as f64);
        }
        m.oldest_open.reset();
        for (county, at) in oldest {
            m.oldest_open
                .with_label_values(&[county])
                .set(at as f64 / 1000.0);
        }
        m.open.reset();
        m.overdue.reset();
        m.recovered_yuan.reset();
        for ((county, theme), c) in &a.cells {
            for (severity, n) in &c.open {
                m.open
                    .with_label_values(&[theme, severity.as_str(), county])
                    .set(*n as f64);
            }
            if c.overdue > 0 {
                m.overdue
                    .with_label_values(&[county, theme])
                    .set(c.overdue as f64);
            }
            if !c.recovered_yuan.is_zero() {
                // Prometheus samples are floats; the exact figure is in
                // the evaluation report.
                m.recovered_yuan
                    .with_label_values(&[theme, county])
                    .set(c.recovered_yuan.to_f64().unwrap_or(f64::NAN));
            }
        }
    }
}
