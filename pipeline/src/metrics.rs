//! Prometheus metrics with the names of interfaces.md §6, and the size of
//! the live state (`jicha_state_*`).

/// One labelled counter, as a source is handed it.
pub use prometheus::{Counter, Gauge};
use prometheus::{
    CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub ingested: CounterVec,
    pub rejected: CounterVec,
    pub late: CounterVec,
    pub duplicates: CounterVec,
    pub watermark: GaugeVec,
    pub alerts: CounterVec,
    pub suppressed: CounterVec,
    pub workorders: GaugeVec,
    pub theme_eval: HistogramVec,
    pub theme_errors: CounterVec,
    pub commit_failures: CounterVec,
    pub acks_sent: CounterVec,
    pub overdue: GaugeVec,
    pub state_records: GaugeVec,
    pub state_bytes: GaugeVec,
    // Wallboard and pipeline health (docs/operations.md lists them all).
    // Org labels stop at the county, so cardinality stays bounded.
    pub findings: CounterVec,
    pub open: GaugeVec,
    pub oldest_open: GaugeVec,
    pub recovered_yuan: GaugeVec,
    pub watermark_lag: GaugeVec,
    pub theme_window: GaugeVec,
    pub source_connected: GaugeVec,
    pub backend_up: GaugeVec,
    pub outbox_backlog: GaugeVec,
    pub sink_delivered: CounterVec,
    pub sink_failures: CounterVec,
    pub sink_dead_letters: CounterVec,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    // Metric definitions are constants: a failure here is a programming
    // error caught by the first test run, not bad input.
    r.unwrap_or_else(|e| panic!("metric definition: {e}"))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = must(CounterVec::new(Opts::new(name, help), labels));
            must(registry.register(Box::new(c.clone())));
            c
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = must(GaugeVec::new(Opts::new(name, help), labels));
            must(registry.register(Box::new(g.clone())));
            g
        };
        let theme_eval = must(HistogramVec::new(
            HistogramOpts::new(
                "jicha_theme_eval_seconds",
                "Time to evaluate a theme over the windows that closed",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["theme"],
        ));
        must(registry.register(Box::new(theme_eval.clone())));
        Self {
            ingested: counter(
                "jicha_records_ingested_total",
                "Records accepted into window state",
                &["stream"],
            ),
            rejected: counter(
                "jicha_records_rejected_total",
                "Records rejected and dead-lettered",
                &["stream", "reason"],
            ),
            late: counter(
                "jicha_records_late_total",
                "Records behind their stream's watermark",
                &["stream"],
            ),
            duplicates: counter(
                "jicha_records_duplicate_total",
                "Re-sent records identical to one already held",
                &["stream"],
            ),
            watermark: gauge(
                "jicha_watermark_seconds",
                "Stream watermark, event time in Unix seconds",
                &["stream"],
            ),
            alerts: counter(
                "jicha_alerts_total",
                "Theme hits raised (suppressed ones included)",
                &["theme"],
            ),
            suppressed: counter(
                "jicha_alerts_suppressed_total",
                "Hits suppressed by the whitelist",
                &["theme"],
            ),
            workorders: gauge(
                "jicha_workorders",
                "Work orders by status and theme",
                &["status", "theme"],
            ),
            theme_errors: counter(
                "jicha_theme_errors_total",
                "Theme evaluations that failed",
                &["theme"],
            ),
            commit_failures: counter(
                "jicha_state_commit_failures_total",
                "Failed commits to the state backend",
                &["backend"],
            ),
            acks_sent: counter(
                "jicha_source_acks_sent_total",
                "Acknowledgements sent to a source after their messages' commit (MQTT: PUBACKs written to the broker)",
                &["source"],
            ),
            overdue: gauge(
                "jicha_workorders_overdue",
                "Active work orders past their stage's time limit (督办), by county and theme",
                &["org", "theme"],
            ),
            state_records: gauge(
                "jicha_state_records",
                "Records held in the process for windows, by stream",
                &["stream"],
            ),
            state_bytes: gauge(
                "jicha_state_bytes",
                "Bytes those records take in the process, as the store accounts for them",
                &["stream"],
            ),
            findings: counter(
                "jicha_findings_total",
                "Hits that opened a work order or were added to one (suppressed hits excluded), by theme, severity and county",
                &["theme", "severity", "org"],
            ),
            open: gauge(
                "jicha_workorders_open",
                "Work orders not yet closed (not archived, voided or dismissed), by theme, severity and county",
                &["theme", "severity", "org"],
            ),
            oldest_open: gauge(
                "jicha_workorders_oldest_open_timestamp_seconds",
                "When the oldest open work order of a county was created (Unix seconds)",
                &["org"],
            ),
            recovered_yuan: gauge(
                "jicha_recovered_yuan",
                "Yuan recovered by confirmed work orders (feedback and rectification), by theme and county",
                &["theme", "org"],
            ),
            watermark_lag: gauge(
                "jicha_watermark_lag_seconds",
                "Wall clock minus the stream's watermark, at scrape time",
                &["stream"],
            ),
            theme_window: gauge(
                "jicha_theme_window_seconds",
                "The slide of an enabled theme's window: evaluation slower than this falls behind",
                &["theme"],
            ),
            source_connected: gauge(
                "jicha_source_connected",
                "1 while the source is connected to its broker, else 0",
                &["source"],
            ),
            backend_up: gauge(
                "jicha_state_backend_up",
                "1 while the state backend answers, else 0",
                &["backend"],
            ),
            outbox_backlog: gauge(
                "jicha_outbox_backlog",
                "Committed outbox events a sink has not yet passed",
                &["sink"],
            ),
            sink_delivered: counter(
                "jicha_sink_events_delivered_total",
                "Outbox events a sink delivered (filtered-out events not counted)",
                &["sink"],
            ),
            sink_failures: counter(
                "jicha_sink_delivery_failures_total",
                "Failed delivery attempts of a sink (each retry counts)",
                &["sink"],
            ),
            sink_dead_letters: counter(
                "jicha_sink_dead_letters_total",
                "Events a sink gave up on after its retries, kept in its dead-letter list",
                &["sink"],
            ),
            theme_eval,
            registry,
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        if enc.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
