//! The micro-batch runner: one loop drives every source (MQTT, a replayed
//! file, …) through the monitor, whatever the transport.
//!
//! A [`Source`] yields messages, each with its stream (the source's own
//! routing: MQTT maps topics to streams) and an acknowledgement handle. The
//! runner gathers them into micro-batches ([`batching`]), decodes each batch
//! over the cores, then hands it to the monitor as a pipeline: while batch
//! N+1 is accepted ([`Monitor::ingest`]), batch N's themes are evaluated
//! ([`crate::Evaluation::finish`]) and batch N-1 is committed
//! ([`StagedCommit::commit`]). A message is acknowledged through its source
//! only once a commit that includes its changes has succeeded; a failed
//! commit is retried with input paused ([`retry`]), its acknowledgements
//! held back, so a crash at any point means the source delivers the
//! unacknowledged messages again and nothing is lost.
//!
//! How to add a source: docs/sources.md.

pub mod batching;
pub mod retry;
pub mod routes;
pub mod source;

pub use batching::BatchSettings;
pub use routes::TopicRoutes;
pub use source::{Acknowledge, Message, Source};

use crate::runtime::IngestReport;
use crate::state::StateError;
use crate::{Monitor, StagedCommit};
use batching::DecodedBatch;
use retry::{failure, stopped};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// What a run did, for a summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    pub messages: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub late: u64,
    pub duplicates: u64,
    /// The source reached its end (rather than shutdown or a failure
    /// stopping input).
    pub input_ended: bool,
    /// Every batch taken was committed and acknowledged.
    pub all_committed: bool,
}

impl RunReport {
    fn add(&mut self, messages: usize, r: &IngestReport) {
        self.messages += messages as u64;
        self.accepted += r.accepted();
        self.rejected += r.rejected;
        self.late += r.late;
        self.duplicates += r.duplicates();
    }
}

/// How input stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputEnd {
    Ended,
    Stopped,
    Failed,
}

/// Drives `source` through `monitor` until its input ends (everything
/// taken is then committed and acknowledged) or `shutdown` turns true.
pub async fn run<S: Source>(
    monitor: Arc<Monitor>,
    source: S,
    settings: BatchSettings,
    shutdown: watch::Receiver<bool>,
) -> RunReport {
    let acker = source.acknowledger();
    // Decoding runs beside evaluation: one decoded batch waits at most.
    let (tx, rx) = mpsc::channel::<DecodedBatch<S::Ack>>(1);
    let input = tokio::spawn(decode_loop(
        source,
        tx,
        settings,
        monitor.clone(),
        shutdown.clone(),
    ));
    let mut report = RunReport::default();
    let committed = batch_loop(monitor, &acker, rx, shutdown, &mut report).await;
    let end = input.await.unwrap_or(InputEnd::Failed);
    report.input_ended = end == InputEnd::Ended;
    report.all_committed = committed;
    report
}

/// Gathers micro-batches and decodes them, off the async workers, while the
/// batch loop evaluates the batch before.
async fn decode_loop<S: Source>(
    mut source: S,
    tx: mpsc::Sender<DecodedBatch<S::Ack>>,
    s: BatchSettings,
    monitor: Arc<Monitor>,
    mut shutdown: watch::Receiver<bool>,
) -> InputEnd {
    // Decoding is the heaviest stage per record: a batch is split over the
    // cores, so it is decoded in a fraction of the time the loop takes.
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get());
    loop {
        let first = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => return InputEnd::Stopped,
            m = source.next() => match m {
                Some(m) => m,
                None => return InputEnd::Ended,
            },
        };
        let (batch, more) = batching::fill(first, &mut source, s).await;
        let meters = monitor.meter_index();
        match batching::decode(batch, parts, monitor.config.max_payload_bytes, &meters).await {
            Ok(decoded) => {
                if tx.send(decoded).await.is_err() {
                    return InputEnd::Stopped;
                }
            }
            Err(e) => {
                // A decoder bug: stop taking input rather than skip the
                // batch. Nothing is lost: it is unacknowledged.
                tracing::error!(error = %e, "decoding a batch failed; input stopped, restart jicha (the source delivers the batch again)");
                return InputEnd::Failed;
            }
        }
        if !more {
            return InputEnd::Ended;
        }
    }
}

/// A batch's evaluation running, or its commit, with the acknowledgements
/// of the messages it covers.
type Running<T, A> = Option<(JoinHandle<T>, Vec<A>)>;

/// Hands decoded micro-batches to the monitor as a pipeline: while batch
/// N+1 is accepted, batch N's themes are evaluated and batch N-1 is
/// committed. A message is acknowledged once a commit that includes its
/// changes has succeeded. True when every batch was committed.
async fn batch_loop<A: Send + 'static, K: Acknowledge<A>>(
    monitor: Arc<Monitor>,
    acker: &K,
    mut rx: mpsc::Receiver<DecodedBatch<A>>,
    mut shutdown: watch::Receiver<bool>,
    report: &mut RunReport,
) -> bool {
    let mut evaluating: Running<StagedCommit, A> = None;
    let mut committing: Running<Result<(), StateError>, A> = None;
    loop {
        // Wait for input; hand on whatever ends first meanwhile, so the
        // last batch before a pause is committed and acknowledged at once.
        let next = tokio::select! {
            staged = finished(&mut evaluating) => {
                let acks = evaluating.take().map(|(_, a)| a).unwrap_or_default();
                if !hand_over(&monitor, acker, staged, acks, &mut committing, &mut shutdown).await {
                    return false;
                }
                continue;
            }
            ended = finished(&mut committing) => {
                let covered = committing.take().map(|(_, c)| c).unwrap_or_default();
                if !settle(&monitor, acker, failure(ended), covered, &mut shutdown).await {
                    return false;
                }
                continue;
            }
            m = rx.recv() => m,
        };
        // The next batch is accepted while the one before is evaluated.
        let next = match next {
            Some(DecodedBatch { acks, messages }) => {
                let n = messages.len();
                let (ingested, evaluation) = monitor.ingest(messages).await;
                report.add(n, &ingested);
                Some((evaluation, acks))
            }
            None => None,
        };
        // Evaluations finish in order: the one before goes first.
        if !finish_evaluation(
            &monitor,
            acker,
            &mut evaluating,
            &mut committing,
            &mut shutdown,
        )
        .await
        {
            return false;
        }
        let Some((evaluation, acks)) = next else {
            break;
        };
        evaluating = Some((tokio::spawn(evaluation.finish()), acks));
    }
    match committing {
        // At shutdown this gives up at once (the source delivers the
        // messages again); at the end of a file it retries until committed.
        Some((commit, covered)) => {
            settle(
                &monitor,
                acker,
                failure(commit.await),
                covered,
                &mut shutdown,
            )
            .await
        }
        None => true,
    }
}

/// Waits for the running evaluation, if any, and hands it over to commit.
async fn finish_evaluation<A: Send + 'static, K: Acknowledge<A>>(
    monitor: &Monitor,
    acker: &K,
    evaluating: &mut Running<StagedCommit, A>,
    committing: &mut Running<Result<(), StateError>, A>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let Some((running, acks)) = evaluating.take() else {
        return true;
    };
    let staged = running.await;
    hand_over(monitor, acker, staged, acks, committing, shutdown).await
}

/// Ends when the running task does; never, if there is none.
async fn finished<T, A>(running: &mut Running<T, A>) -> Result<T, tokio::task::JoinError> {
    match running.as_mut() {
        Some((task, _)) => task.await,
        None => std::future::pending().await,
    }
}

/// Starts committing a finished evaluation's changes, once the commit
/// before (which its staging waited for) is settled. False when input must
/// stop: shutdown came first, or the evaluation task failed.
async fn hand_over<A: Send + 'static, K: Acknowledge<A>>(
    monitor: &Monitor,
    acker: &K,
    staged: Result<StagedCommit, tokio::task::JoinError>,
    acks: Vec<A>,
    committing: &mut Running<Result<(), StateError>, A>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let staged = match staged {
        Ok(s) => s,
        Err(e) => {
            // Nothing is lost: the batch is unacknowledged.
            tracing::error!(error = %e, "evaluating a batch failed; input stopped, restart jicha (the source delivers the batch again)");
            return false;
        }
    };
    if let Some((commit, mut earlier)) = committing.take() {
        if let Some(error) = failure(commit.await) {
            // The earlier changes are still in the slot, ahead of this
            // batch's: retry both, input paused meanwhile.
            drop(staged);
            earlier.extend(acks);
            return settle(monitor, acker, Some(error), earlier, shutdown).await;
        }
        acker.acknowledge(earlier);
    }
    *committing = Some((tokio::spawn(staged.commit()), acks));
    true
}

/// Acknowledges `covered` once committed: at once when the commit
/// succeeded, else after retrying (input paused: backpressure, bounded
/// memory). False when shutdown came first.
async fn settle<A, K: Acknowledge<A>>(
    monitor: &Monitor,
    acker: &K,
    failure: Option<String>,
    covered: Vec<A>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    if let Some(error) = failure {
        if !retry::until_committed(monitor, error, covered.len(), shutdown).await {
            return false;
        }
    }
    acker.acknowledge(covered);
    true
}

#[cfg(test)]
mod tests;
