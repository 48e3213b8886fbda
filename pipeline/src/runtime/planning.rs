//! Planning and running evaluations, settling theme progress, and
//! dropping the state no window needs any more.
//!
//! A batch's accept plans the windows its watermarks closed ([`Job`]s with
//! their source tables built under the lock); the [`Evaluation`] runs them
//! outside the lock, pipelined with the next batch's accept; settling
//! applies the hits and moves progress only over windows all evaluated.

use super::{Core, Monitor, MonitorError, StagedCommit};
use crate::engine::Theme;
use crate::engine::{EngineError, Hit};
use crate::evaluate::{self, Sources};
use crate::records::{MeterEvent, Stream};
use crate::store::Eviction;
use crate::tables::SourceTable;
use crate::time::{EpochMs, DAY_MS, HOUR_MS};
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The theme evaluations an accepted batch closed windows for, with their
/// source tables already built. They run without the monitor's lock, so
/// the next batch is accepted meanwhile; [`Evaluation::finish`] applies
/// their hits and stages the batch's changes. Finish evaluations in the
/// order they were returned.
pub struct Evaluation {
    monitor: Arc<Monitor>,
    pub(super) jobs: Vec<Job>,
}

/// One theme's part of an [`Evaluation`]: windows ending in `[old, new)`.
pub(super) struct Job {
    pub(super) id: String,
    theme: Theme,
    pub(super) old: Option<EpochMs>,
    pub(super) new: EpochMs,
    pub(super) batches: Vec<Result<RecordBatch, EngineError>>,
}

type JobResult = (Job, Result<Vec<Hit>, MonitorError>);

impl Evaluation {
    pub(super) fn new(monitor: Arc<Monitor>, jobs: Vec<Job>) -> Self {
        Evaluation { monitor, jobs }
    }

    /// Runs the themes, then applies their hits and moves the changes made
    /// so far into the commit slot, once the commit before has ended. The
    /// batch's messages may be acknowledged once [`StagedCommit::commit`]
    /// succeeds; if it fails, the changes stay in the slot and the next
    /// [`Monitor::retry_flush`] retries them.
    pub async fn finish(self) -> StagedCommit {
        let monitor = self.monitor;
        let mut results = Vec::with_capacity(self.jobs.len());
        for mut job in self.jobs {
            let batches = std::mem::take(&mut job.batches);
            let outcome = monitor.run_job(&job, batches).await;
            results.push((job, outcome));
        }
        let slot = {
            let mut core = monitor.core.lock().await;
            monitor.settle_jobs(&mut core, results);
            monitor.stage(&mut core).await
        };
        StagedCommit::new(monitor, slot)
    }
}

impl Monitor {
    /// Builds the source tables of every streaming theme whose windows
    /// closed, then drops the state no window needs any more.
    pub(super) fn plan(&self, core: &mut Core) -> Vec<Job> {
        let mut jobs = Vec::new();
        for (id, slot) in core.themes.iter() {
            if !slot.enabled || slot.theme.is_billing() {
                continue;
            }
            let theme = &slot.theme;
            let Some(stream) = theme.table().stream() else {
                continue;
            };
            let Some(new) = core.wm.trigger(stream) else {
                continue;
            };
            let old = core.planned.get(id).copied();
            let fresh: &[MeterEvent] = if theme.table() == SourceTable::MeterEvent {
                &core.fresh_events
            } else {
                &[]
            };
            if old.is_some_and(|o| o >= new) && fresh.is_empty() {
                continue;
            }
            let sources = Sources {
                store: &core.store,
                archive: &core.archive,
                clock: self.clock(),
            };
            jobs.push(Job {
                id: id.clone(),
                theme: theme.clone(),
                old,
                new,
                batches: evaluate::batches_for_step(&sources, theme, old, new, fresh),
            });
        }
        for job in &jobs {
            let p = job.old.map_or(job.new, |o| o.max(job.new));
            core.planned.insert(job.id.clone(), p);
        }
        core.fresh_events.clear();
        self.evict(core);
        for (s, t) in core.wm.all_max_seen().collect::<Vec<_>>() {
            core.pending.watermarks.insert(s, t);
        }
        self.refresh_watermark_gauges(core);
        jobs
    }

    pub(super) async fn run_job(
        &self,
        job: &Job,
        batches: Vec<Result<RecordBatch, EngineError>>,
    ) -> Result<Vec<Hit>, MonitorError> {
        let timer = std::time::Instant::now();
        let mut hits = Vec::new();
        let mut outcome = Ok(());
        for b in batches {
            let run = match b {
                Ok(batch) => self.engine.run(&job.theme, batch).await,
                Err(e) => Err(e),
            };
            match run {
                Ok(h) => hits.extend(h),
                Err(e) => {
                    outcome = Err(e.into());
                    break;
                }
            }
        }
        self.metrics
            .theme_eval
            .with_label_values(&[&job.id])
            .observe(timer.elapsed().as_secs_f64());
        outcome.map(|()| hits)
    }

    /// Applies finished evaluations. A theme's progress moves only over
    /// windows all evaluated: after a failure, its later evaluations are
    /// planned again from where progress stands.
    pub(super) fn settle_jobs(&self, core: &mut Core, results: Vec<JobResult>) {
        let mut hits: Vec<Hit> = Vec::new();
        for (job, outcome) in results {
            let Some(slot) = core.themes.get_mut(&job.id) else {
                continue;
            };
            slot.evaluations += 1;
            let done = core.progress.get(&job.id).copied();
            // An earlier evaluation of these windows' predecessors failed.
            let gap = job.old.is_some_and(|o| done.is_none_or(|d| d < o));
            match outcome {
                Ok(h) if !gap => {
                    slot.last_error = None;
                    hits.extend(h);
                    let p = done.map_or(job.new, |d| d.max(job.new));
                    core.progress.insert(job.id.clone(), p);
                    core.pending.progress.insert(job.id, p);
                }
                Ok(h) => hits.extend(h),
                Err(e) => {
                    // Progress stays put: the windows are planned again on the next batch.
                    tracing::error!(theme = %job.id, error = %e, "theme evaluation failed");
                    self.metrics
                        .theme_errors
                        .with_label_values(&[&job.id])
                        .inc();
                    slot.last_error = Some(e.to_string());
                    match done {
                        Some(d) => core.planned.insert(job.id, d),
                        None => core.planned.remove(&job.id),
                    };
                }
            }
        }
        self.apply_hits(core, hits);
        // Progress moved: what no window needs any more goes now, not at
        // the next batch (which, after the last batch of a burst, may be
        // long in coming).
        self.evict(core);
    }

    /// Keeps each stream's records as long as the longest window reading it
    /// (plus a day for the freeze before the first day) may still need them.
    fn evict(&self, core: &mut Core) {
        let mut keep: BTreeMap<Stream, i64> = BTreeMap::new();
        for slot in core.themes.values().filter(|s| s.enabled) {
            if let Some(s) = slot.theme.table().stream() {
                let len = slot.theme.def.window.map(|w| w.max_len()).unwrap_or(0);
                let e = keep.entry(s).or_insert(0);
                *e = (*e).max(len);
            }
        }
        let cutoff = |s: Stream, extra: i64| -> Option<EpochMs> {
            // The stream's own watermark, not its trigger: a record it still accepts
            // may reopen (re-evaluate) a window that a leading stream closed.
            let wm = core.wm.watermark(s)?;
            let p = core
                .themes
                .iter()
                .filter(|(_, t)| t.enabled && t.theme.table().stream() == Some(s))
                .map(|(id, _)| core.progress.get(id).copied())
                .min()
                .flatten()?;
            Some(wm.min(p) - keep.get(&s).copied().unwrap_or(0) - extra)
        };
        let load = cutoff(Stream::Load, HOUR_MS).unwrap_or(EpochMs::MIN);
        let event = cutoff(Stream::Event, HOUR_MS).unwrap_or(EpochMs::MIN);
        let freeze = cutoff(Stream::Freeze, 2 * DAY_MS)
            .map(|t| self.clock().local_date(t))
            .unwrap_or(chrono::NaiveDate::MIN);
        core.store.evict(Eviction {
            load_before: load,
            freeze_before: freeze,
            event_before: event,
        });
        self.refresh_state_gauges(core);
    }
}
