//! One delivery pass of one sink: read what is pending, keep what its
//! filters want, deliver with retries, and when a batch keeps failing (its
//! attempts used up, or refused for good) try its events one by one once
//! and dead-letter those that still fail, moving the progress past them in
//! the same backend write. So a poisoned event or a long outage costs that
//! sink its events, never its progress, and never anything else's.

use super::dispatch::{DispatchError, Dispatcher, Fault, Mode, BATCH};
use super::{OutboxEvent, SinkDeadLetter, SinkError, SinkStatus};
use crate::time::EpochMs;

enum Outcome {
    Delivered,
    /// Some or all failed for good; the rest were delivered.
    Dead(Vec<SinkDeadLetter>),
}

fn now_ms() -> EpochMs {
    chrono::Utc::now().timestamp_millis()
}

impl Mode {
    /// Waits `d`; at shutdown returns `Stopped` at once, so a sink waiting
    /// to retry never holds the process.
    async fn wait(&mut self, d: std::time::Duration) -> Result<(), DispatchError> {
        match self {
            Mode::Drain => Err(DispatchError::Stopped),
            Mode::Run(stop) => {
                if *stop.borrow() {
                    return Err(DispatchError::Stopped);
                }
                tokio::select! {
                    _ = stop.changed() => Err(DispatchError::Stopped),
                    _ = tokio::time::sleep(d) => Ok(()),
                }
            }
        }
    }
}

impl Dispatcher {
    /// One pass over sink `i`; returns how many outbox entries it passed.
    pub(super) async fn pass(&self, i: usize, mode: &mut Mode) -> Result<usize, DispatchError> {
        let sink = &self.sinks[i];
        let name = sink.name();
        let pending = self.backend.outbox_pending(name, BATCH).await?;
        let Some(upto) = pending.upto else {
            self.set_backlog(name, 0);
            return Ok(0);
        };
        self.set_backlog(name, pending.head.0.saturating_sub(pending.after.0));
        let wanted: Vec<OutboxEvent> = pending
            .events
            .iter()
            .filter(|e| sink.accepts(e))
            .cloned()
            .collect();
        let mut dead = Vec::new();
        if !wanted.is_empty() {
            self.fault_point(Fault::AbortBeforeDelivery);
            if let Outcome::Dead(d) = self.attempt(i, &wanted, mode).await? {
                dead = d;
            }
            let delivered = wanted.len() - dead.len();
            if let Some(m) = &self.metrics {
                m.delivered
                    .with_label_values(&[name])
                    .inc_by(delivered as f64);
            }
            self.fault_point(Fault::AbortBeforeMark);
        }
        if dead.is_empty() {
            if !wanted.is_empty() {
                let st = self.update(i, |st| st.last_delivered_at = Some(now_ms()));
                self.backend.put_sink_status(name, &st).await?;
            }
            self.backend.mark_delivered(name, upto).await?;
        } else {
            let st = self.update(i, |st| st.dead_letters += dead.len() as u64);
            // Dead letters, counters and progress in one write: a crash
            // leaves all of them or none (and then the batch is retried).
            self.backend.dead_letter(name, upto, &dead, &st).await?;
            if let Some(m) = &self.metrics {
                m.dead_letters
                    .with_label_values(&[name])
                    .inc_by(dead.len() as f64);
            }
            tracing::error!(
                sink = name,
                events = dead.len(),
                "events dead-lettered after their retries (GET /api/v1/sinks/{name}/deadletters)"
            );
        }
        self.set_backlog(name, pending.head.0.saturating_sub(upto.0));
        Ok(pending.events.len().max(1))
    }

    /// Delivers `events` with the sink's retry policy.
    async fn attempt(
        &self,
        i: usize,
        events: &[OutboxEvent],
        mode: &mut Mode,
    ) -> Result<Outcome, DispatchError> {
        let sink = &self.sinks[i];
        let policy = sink.retry();
        let mut failed = 0u32;
        loop {
            let err = match sink.deliver(events).await {
                Ok(()) => return Ok(Outcome::Delivered),
                Err(e) => e,
            };
            failed += 1;
            self.failed(i, &err).await;
            if matches!(mode, Mode::Drain) {
                return Err(err.into());
            }
            if err.is_permanent() || policy.exhausted(failed) {
                return Ok(self.isolate(i, events, failed, err).await);
            }
            let wait = policy.backoff(failed);
            tracing::warn!(sink = sink.name(), error = %err, attempt = failed, retry_in = ?wait, "sink delivery failed");
            mode.wait(wait).await?;
        }
    }

    /// After a batch failed for good: each event once more on its own (a
    /// single bad event must not take its neighbours along); the ones that
    /// still fail are the dead letters.
    async fn isolate(
        &self,
        i: usize,
        events: &[OutboxEvent],
        failed: u32,
        batch_error: SinkError,
    ) -> Outcome {
        let letter = |event: &OutboxEvent, error: &SinkError, attempts: u32| SinkDeadLetter {
            event: event.clone(),
            error: error.to_string(),
            attempts,
            at: now_ms(),
        };
        if let [only] = events {
            return Outcome::Dead(vec![letter(only, &batch_error, failed)]);
        }
        let mut dead = Vec::new();
        for e in events {
            if let Err(err) = self.sinks[i].deliver(std::slice::from_ref(e)).await {
                self.failed(i, &err).await;
                dead.push(letter(e, &err, failed + 1));
            }
        }
        Outcome::Dead(dead)
    }

    /// Counts a failed attempt and records its error (best effort: a
    /// backend that cannot take it is only logged; the delivery goes on).
    async fn failed(&self, i: usize, err: &SinkError) {
        let name = self.sinks[i].name();
        if let Some(m) = &self.metrics {
            m.failures.with_label_values(&[name]).inc();
        }
        let st = self.update(i, |st| {
            st.failures += 1;
            st.last_error = Some(err.to_string());
            st.last_error_at = Some(now_ms());
        });
        if let Err(e) = self.backend.put_sink_status(name, &st).await {
            tracing::warn!(sink = name, error = %e, "cannot record the sink's failure");
        }
    }

    /// Changes sink `i`'s status; returns the new one.
    fn update(&self, i: usize, f: impl FnOnce(&mut SinkStatus)) -> SinkStatus {
        match self.status[i].lock() {
            Ok(mut st) => {
                f(&mut st);
                st.clone()
            }
            // Only this sink's task writes it, and nothing in `f` panics;
            // a poisoned lock still holds the last good value.
            Err(poisoned) => {
                let mut st = poisoned.into_inner();
                f(&mut st);
                st.clone()
            }
        }
    }

    fn set_backlog(&self, sink: &str, n: u64) {
        if let Some(m) = &self.metrics {
            m.backlog.with_label_values(&[sink]).set(n as f64);
        }
    }
}
