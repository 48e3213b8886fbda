//! Delivery of committed outbox events to the sinks: per sink, read the
//! events after its persisted progress, deliver them, then persist the
//! progress past them. A crash between delivery and persisting repeats the
//! batch (same ids); a crash before delivery loses nothing, since the
//! events are read from committed state. Each sink runs in a task of its
//! own and only reads the backend, so a slow or failing sink never holds
//! ingest back.

use super::{Sink, SinkError};
use crate::state::{StateBackend, StateError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Events handed to a sink per delivery.
const BATCH: usize = 500;
/// How often an idle sink looks for newly committed events.
const POLL: Duration = Duration::from_millis(200);
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
}

pub struct Dispatcher {
    backend: Arc<dyn StateBackend>,
    sinks: Vec<Arc<dyn Sink>>,
    fault: Option<Fault>,
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
        Ok(Dispatcher {
            backend,
            sinks,
            fault,
        })
    }

    /// Tells the backend which sinks exist (it keeps events only until all
    /// of them passed them), then runs one delivery task per sink until
    /// `shutdown` flips. Call before input starts, so no event is committed
    /// before the sinks are known.
    pub async fn start(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, StateError> {
        let names: Vec<String> = self.sinks.iter().map(|s| s.name().to_string()).collect();
        self.backend.register_sinks(&names).await?;
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
        let mut backoff = MIN_BACKOFF;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = match self.pass(sink.as_ref()).await {
                Ok(0) => POLL,
                Ok(_) => {
                    backoff = MIN_BACKOFF;
                    continue;
                }
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

    /// One delivery to one sink; returns how many outbox entries it passed.
    async fn pass(&self, sink: &dyn Sink) -> Result<usize, DispatchError> {
        let pending = self.backend.outbox_pending(sink.name(), BATCH).await?;
        let Some(upto) = pending.upto else {
            return Ok(0);
        };
        if !pending.events.is_empty() {
            self.fault_point(Fault::AbortBeforeDelivery);
            sink.deliver(&pending.events).await?;
            self.fault_point(Fault::AbortBeforeMark);
        }
        self.backend.mark_delivered(sink.name(), upto).await?;
        Ok(pending.events.len().max(1))
    }

    /// Delivers everything committed so far to every sink (at shutdown,
    /// after the last commit); stops at the first failure.
    pub async fn drain(&self) -> Result<(), DispatchError> {
        for sink in &self.sinks {
            while self.pass(sink.as_ref()).await? > 0 {}
        }
        Ok(())
    }

    fn fault_point(&self, at: Fault) {
        if self.fault == Some(at) {
            tracing::warn!(fault = ?at, "{} set: aborting (test-only crash point)", Fault::ENV);
            std::process::abort();
        }
    }
}
