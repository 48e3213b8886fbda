//! Gauges derived from the live state, refreshed where that state changes.

use super::{Core, Monitor};
use crate::records::Stream;

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

    pub(super) fn refresh_gauges(&self, core: &Core) {
        self.metrics.workorders.reset();
        for ((status, theme), n) in core.book.counts() {
            self.metrics
                .workorders
                .with_label_values(&[status.name(), &theme])
                .set(n as f64);
        }
        self.metrics.overdue.reset();
        for ((org, theme), n) in core.book.overdue_counts() {
            self.metrics
                .overdue
                .with_label_values(&[&org, &theme])
                .set(n as f64);
        }
    }
}
