//! Delivery of committed outbox events to the sinks: per sink, read the
//! events after its persisted progress, deliver the ones its filters want,
//! then persist the progress past them. A crash between delivery and
//! persisting repeats the batch (same ids); a crash before delivery loses
//! nothing, since the events are read from committed state. Each sink runs
//! in a task of its own and only reads the backend, so a slow or failing
//! sink never holds ingest or another sink back. A batch that keeps failing
//! ends in the sink's dead letters (`pass.rs`), so one bad event or a long
//! outage never stops a sink for good.

use super::{Sink, SinkError, SinkStatus};
use crate::metrics::Metrics;
use crate::state::{StateBackend, StateError};
use prometheus::{CounterVec, GaugeVec};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Events handed to a sink per delivery.
pub(super) const BATCH: usize = 500;
/// How often an idle sink looks for newly committed events.
const POLL: Duration = Duration::from_millis(200);
/// After a backend error (Redis down): the sink waits this, doubling to
/// [`MAX_BACKOFF`]; the events wait in the outbox.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Test-only crash points (`JICHA_FAULT`), so a test can kill the process
/// exactly between a commit and its delivery. Never set in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Abort once committed events are read, before any sink has them.
    AbortBeforeDelivery,
    /// Abort after a sink took a batch, before its progress is persisted.
    AbortBeforeMark,
}

impl Fault {
    pub const ENV: &'static str = "JICHA_FAULT";

    /// Reads `JICHA_FAULT` (once, at start-up).
    pub fn from_env() -> Result<Option<Fault>, String> {
        match std::env::var(Self::ENV) {
            Err(_) => Ok(None),
            Ok(v) => match v.as_str() {
                "" => Ok(None),
                "abort_before_delivery" => Ok(Some(Fault::AbortBeforeDelivery)),
                "abort_before_mark" => Ok(Some(Fault::AbortBeforeMark)),
                other => Err(format!(
                    "{}={other:?} is not a known fault; it is for tests only: unset it, or use abort_before_delivery or abort_before_mark",
                    Self::ENV
                )),
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// Shutdown came while a sink waited to retry; the batch stays pending.
    #[error("stopped while waiting to retry; the events stay in the outbox")]
    Stopped,
}

/// The sink metrics (`jicha_outbox_backlog`, `jicha_sink_*`), cloned from
/// the monitor's registry so the dispatcher sets the series it serves.
#[derive(Clone)]
pub struct SinkMetrics {
    pub backlog: GaugeVec,
    pub delivered: CounterVec,
    pub failures: CounterVec,
    pub dead_letters: CounterVec,
}

impl SinkMetrics {
    pub fn of(m: &Metrics) -> SinkMetrics {
        SinkMetrics {
            backlog: m.outbox_backlog.clone(),
            delivered: m.sink_delivered.clone(),
            failures: m.sink_failures.clone(),
            dead_letters: m.sink_dead_letters.clone(),
        }
    }
}

pub struct Dispatcher {
    pub(super) backend: Arc<dyn StateBackend>,
    pub(super) sinks: Vec<Arc<dyn Sink>>,
    /// Per sink, its status as last written to the backend; each is
    /// changed by its own sink's task only.
    pub(super) status: Vec<Mutex<SinkStatus>>,
    pub(super) metrics: Option<SinkMetrics>,
    fault: Option<Fault>,
}

/// How a pass may wait between attempts.
pub(super) enum Mode {
    /// The sink's task: retry with backoff until the policy runs out,
    /// stopping early at shutdown.
    Run(watch::Receiver<bool>),
    /// Shutdown's last pass: one attempt, nothing dead-lettered.
    Drain,
}

impl Dispatcher {
    /// Sinks must have unique names: delivery progress is kept by name.
    pub fn new(
        backend: Arc<dyn StateBackend>,
        sinks: Vec<Arc<dyn Sink>>,
        fault: Option<Fault>,
    ) -> Result<Dispatcher, SinkError> {
        let mut seen = std::collections::BTreeSet::new();
        for s in &sinks {
            if !seen.insert(s.name().to_string()) {
                return Err(SinkError::Config(format!(
                    "two sinks are named {:?}; give each [[sinks]] entry its own `name`",
                    s.name()
                )));
            }
        }
        let status = sinks
            .iter()
            .map(|s| {
                Mutex::new(SinkStatus {
                    kind: s.kind().to_string(),
                    ..SinkStatus::default()
                })
            })
            .collect();
        Ok(Dispatcher {
            backend,
            sinks,
            status,
            metrics: None,
            fault,
        })
    }

    /// Sets the sink metrics from now on.
    pub fn with_metrics(mut self, metrics: SinkMetrics) -> Dispatcher {
        self.metrics = Some(metrics);
        self
    }

    /// Tells the backend which sinks exist (it keeps events only until all
    /// of them passed them) and picks up their counters from before, then
    /// runs one delivery task per sink until `shutdown` flips. Call before
    /// input starts, so no event is committed before the sinks are known.
    pub async fn start(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, StateError> {
        let names: Vec<String> = self.sinks.iter().map(|s| s.name().to_string()).collect();
        self.backend.register_sinks(&names).await?;
        let known = self.backend.sink_reports().await?;
        for (sink, status) in self.sinks.iter().zip(&self.status) {
            let Some(r) = known.iter().find(|r| r.name == sink.name()) else {
                continue;
            };
            if let Ok(mut st) = status.lock() {
                *st = SinkStatus {
                    kind: sink.kind().to_string(),
                    ..r.status.clone()
                };
            }
            if let Some(m) = &self.metrics {
                m.backlog
                    .with_label_values(&[sink.name()])
                    .set(r.backlog() as f64);
            }
        }
        Ok((0..self.sinks.len())
            .map(|i| {
                let d = self.clone();
                let stop = shutdown.clone();
                tokio::spawn(async move { d.run_sink(i, stop).await })
            })
            .collect())
    }

    async fn run_sink(&self, i: usize, mut shutdown: watch::Receiver<bool>) {
        let sink = &self.sinks[i];
        let mut mode = Mode::Run(shutdown.clone());
        let mut backoff = MIN_BACKOFF;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = match self.pass(i, &mut mode).await {
                Ok(0) => POLL,
                Ok(_) => {
                    backoff = MIN_BACKOFF;
                    continue;
                }
                Err(DispatchError::Stopped) => return,
                Err(e) => {
                    tracing::warn!(sink = sink.name(), error = %e, retry_in = ?backoff, "outbox delivery failed");
                    let w = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    w
                }
            };
            tokio::select! {
                r = shutdown.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Delivers everything committed so far to every sink (at shutdown,
    /// after the last commit), one attempt per batch: a sink that fails
    /// keeps its events for the next start, and the others still go.
    pub async fn drain(&self) -> Result<(), DispatchError> {
        let mut first_error = None;
        for i in 0..self.sinks.len() {
            loop {
                match self.pass(i, &mut Mode::Drain).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        first_error.get_or_insert(e);
                        break;
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    pub(super) fn fault_point(&self, at: Fault) {
        if self.fault == Some(at) {
            tracing::warn!(fault = ?at, "{} set: aborting (test-only crash point)", Fault::ENV);
            std::process::abort();
        }
    }
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
