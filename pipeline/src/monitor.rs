//! The monitor: one owner of the live state. Connectors hand it MQTT
//! payloads in micro-batches; it decodes, upserts, advances watermarks,
//! evaluates the themes whose windows closed, turns hits into work orders and
//! commits everything to the state backend before the batch counts as done
//! (the MQTT connector acknowledges only then). The HTTP API reads and acts
//! through the same lock, so every view is consistent.

use crate::archive::{Archive, Customer, MeterIndex};
use crate::billing::{parse_billing, BillingError, BillingPeriod};
use crate::decode::{DecodedMessage, Reason, Rejection};
use crate::engine::{Engine, EngineError, EngineLimits, Hit};
use crate::evaluate::{self, Sources};
use crate::metrics::Metrics;
use crate::records::{MeterEvent, Record, Stream};
use crate::state::{
    Commit, DeadLetter, StateBackend, StateError, StoredTheme, KEEP_DEAD_LETTERS, KEEP_SUPPRESSED,
};
use crate::store::{Eviction, RecordStore, Upsert};
use crate::theme::{SourceTable, ThemeDef};
use crate::time::{BusinessClock, EpochMs, DAY_MS, HOUR_MS};
use crate::watermark::Watermarks;
use crate::whitelist::{Whitelist, WhitelistEntry};
use crate::workorder::{
    self, Action, HitOutcome, LifecycleError, Status, SuppressedAlert, WorkOrder, WorkOrderBook,
};
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub clock: BusinessClock,
    pub out_of_orderness: BTreeMap<Stream, i64>,
    /// Streams whose windows also close on another stream's watermark.
    pub follows: BTreeMap<Stream, Option<Stream>>,
    pub max_payload_bytes: usize,
    /// Theme parameter overrides, by parameter name.
    pub params: BTreeMap<String, String>,
    /// Work orders not archived this long after creation are escalated (督办).
    pub escalate_after_ms: i64,
    pub engine: EngineLimits,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            clock: BusinessClock::default(),
            out_of_orderness: BTreeMap::new(),
            follows: BTreeMap::new(),
            max_payload_bytes: 1 << 20,
            params: BTreeMap::new(),
            escalate_after_ms: 10 * DAY_MS,
            engine: EngineLimits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A theme as loaded, with its counters.
pub struct ThemeSlot {
    pub def: ThemeDef,
    pub enabled: bool,
    pub builtin: bool,
    pub hits: u64,
    pub evaluations: u64,
    pub last_error: Option<String>,
}

struct Core {
    archive: Archive,
    store: RecordStore,
    wm: Watermarks,
    themes: BTreeMap<String, ThemeSlot>,
    /// Per theme, where evaluation is complete: its hits applied, and
    /// committed together with them.
    progress: BTreeMap<String, EpochMs>,
    /// Per theme, where the evaluations started reach; ahead of `progress`
    /// while an [`Evaluation`] runs, so the next batch plans only later
    /// windows.
    planned: BTreeMap<String, EpochMs>,
    book: WorkOrderBook,
    whitelist: Whitelist,
    suppressed: VecDeque<SuppressedAlert>,
    dead_letters: VecDeque<DeadLetter>,
    fresh_events: Vec<MeterEvent>,
    billing: BTreeMap<String, BillingPeriod>,
    /// Changes not yet handed to the commit slot.
    pending: Commit,
}

pub struct Monitor {
    core: tokio::sync::Mutex<Core>,
    /// Changes handed to the backend and not yet accepted by it. Locked
    /// after `core` (never the other way round) and held for the length of
    /// a commit, so commits apply in order, a failed one stays here ahead of
    /// later changes, and the next batch can be processed meanwhile.
    slot: Arc<tokio::sync::Mutex<Commit>>,
    engine: Engine,
    backend: Arc<dyn StateBackend>,
    pub metrics: Metrics,
    pub config: MonitorConfig,
    degraded: std::sync::Mutex<Option<String>>,
    /// The archive's meter index as of its last change, for decoding.
    meter_index: std::sync::RwLock<MeterIndex>,
}

fn now_ms() -> EpochMs {
    chrono::Utc::now().timestamp_millis()
}

fn stream_of(t: SourceTable) -> Option<Stream> {
    match t {
        SourceTable::LoadPoint => Some(Stream::Load),
        SourceTable::MeterDay => Some(Stream::Freeze),
        SourceTable::MeterEvent => Some(Stream::Event),
        SourceTable::Bill => None,
    }
}

/// Summary of one ingested micro-batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestReport {
    pub rejected: u64,
    pub late: u64,
    /// Accepted and duplicate records by stream (index: `Stream as usize`),
    /// added to the counters once per batch rather than once per record.
    accepted_by_stream: [u64; 3],
    duplicates_by_stream: [u64; 3],
}

impl IngestReport {
    pub fn accepted(&self) -> u64 {
        self.accepted_by_stream.iter().sum()
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates_by_stream.iter().sum()
    }

    fn count_duplicate(&mut self, stream: Stream) {
        self.duplicates_by_stream[stream as usize] += 1;
    }
}

/// A processed batch's changes, waiting in the commit slot. Holding it
/// keeps the next batch from staging, so commits stay in order.
pub struct StagedCommit {
    monitor: Arc<Monitor>,
    slot: tokio::sync::OwnedMutexGuard<Commit>,
}

impl StagedCommit {
    /// Commits the slot: this batch's changes and any a failed commit left.
    pub async fn commit(mut self) -> Result<(), StateError> {
        self.monitor.commit_slot(&mut self.slot).await
    }
}

/// The theme evaluations an accepted batch closed windows for, with their
/// source tables already built. They run without the monitor's lock, so
/// the next batch is accepted meanwhile; [`Evaluation::finish`] applies
/// their hits and stages the batch's changes. Finish evaluations in the
/// order they were returned.
pub struct Evaluation {
    monitor: Arc<Monitor>,
    jobs: Vec<Job>,
}

/// One theme's part of an [`Evaluation`]: windows ending in `[old, new)`.
struct Job {
    id: String,
    def: ThemeDef,
    old: Option<EpochMs>,
    new: EpochMs,
    batches: Vec<Result<RecordBatch, EngineError>>,
}

impl Evaluation {
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
        StagedCommit { monitor, slot }
    }
}

impl Monitor {
    /// Opens the monitor over a backend, restoring what it holds, then
    /// loading `archive` (if given) and the theme files.
    pub async fn open(
        config: MonitorConfig,
        backend: Arc<dyn StateBackend>,
        theme_files: Vec<(String, String)>,
        archive: Option<Vec<Customer>>,
    ) -> Result<Arc<Monitor>, MonitorError> {
        let snap = backend.load().await?;
        let mut core = Core {
            archive: Archive::default(),
            store: RecordStore::default(),
            wm: Watermarks::default(),
            themes: BTreeMap::new(),
            progress: snap.progress.clone(),
            planned: snap.progress.clone(),
            book: WorkOrderBook::default(),
            whitelist: Whitelist::default(),
            suppressed: snap.suppressed.iter().cloned().collect(),
            dead_letters: snap.dead_letters.iter().cloned().collect(),
            fresh_events: Vec::new(),
            billing: snap
                .billing
                .iter()
                .map(|b| (b.period.clone(), b.clone()))
                .collect(),
            pending: Commit::default(),
        };
        for (s, ms) in &config.out_of_orderness {
            core.wm.set_out_of_orderness(*s, *ms);
        }
        for (s, leader) in &config.follows {
            core.wm.set_follows(*s, *leader);
        }
        for c in snap.customers {
            core.archive.upsert(c);
        }
        if let Some(cs) = archive {
            for c in cs {
                core.pending
                    .customers
                    .insert(c.customer_id.to_string(), c.clone());
                core.archive.upsert(c);
            }
        }
        for mut r in snap.records {
            // Restored ids are copies; the archive's own are shared by every
            // record of the meter, as ingested records' are.
            core.archive.meter_index().adopt_id(&mut r);
            core.store.insert_quiet(r);
        }
        for (s, t) in snap.watermarks {
            core.wm.restore(s, t);
        }
        for w in snap.workorders {
            core.book.restore(w);
        }
        core.book.restore_event_seq(snap.outbox_seq);
        for e in snap.whitelist {
            core.whitelist.restore(e);
        }
        for (name, text) in theme_files {
            let def = ThemeDef::parse(&text, &config.params)
                .map_err(|e| MonitorError::BadRequest(format!("{name}: {e}")))?;
            core.themes.insert(
                def.id.clone(),
                ThemeSlot {
                    def,
                    enabled: true,
                    builtin: true,
                    hits: 0,
                    evaluations: 0,
                    last_error: None,
                },
            );
        }
        let engine = Engine::new(config.clock, config.engine.clone(), &core.archive)?;
        for slot in core.themes.values() {
            engine.validate(&slot.def).await?;
        }
        for t in snap.themes {
            match ThemeDef::parse(&t.source, &config.params) {
                Ok(def) if engine.validate(&def).await.is_ok() => {
                    core.themes.insert(
                        def.id.clone(),
                        ThemeSlot {
                            def,
                            enabled: t.enabled,
                            builtin: false,
                            hits: 0,
                            evaluations: 0,
                            last_error: None,
                        },
                    );
                }
                _ => {
                    tracing::warn!(theme = %t.id, "stored runtime theme no longer validates; skipped (re-add it with POST /api/v1/themes)")
                }
            }
        }
        let meter_index = core.archive.meter_index().clone();
        let m = Arc::new(Monitor {
            core: tokio::sync::Mutex::new(core),
            slot: Arc::default(),
            engine,
            backend,
            metrics: Metrics::new(),
            config,
            degraded: std::sync::Mutex::new(None),
            meter_index: std::sync::RwLock::new(meter_index),
        });
        {
            let mut core = m.core.lock().await;
            m.refresh_gauges(&core);
            m.refresh_watermark_gauges(&core);
            m.refresh_state_gauges(&core);
            m.flush(&mut core).await?;
        }
        Ok(m)
    }

    pub fn clock(&self) -> &BusinessClock {
        &self.config.clock
    }

    /// The archive's meter index, to resolve meters while decoding
    /// ([`DecodedMessage::decode`]).
    pub fn meter_index(&self) -> MeterIndex {
        self.meter_index
            .read()
            .map(|i| i.clone())
            .unwrap_or_default()
    }

    pub fn degraded(&self) -> Option<String> {
        self.degraded.lock().ok().and_then(|d| d.clone())
    }

    fn set_degraded(&self, why: Option<String>) {
        if let Ok(mut d) = self.degraded.lock() {
            *d = why;
        }
    }

    /// The event time a record is windowed and judged late by. A daily freeze
    /// belongs to the end of its date.
    fn event_time(&self, r: &Record) -> EpochMs {
        match r {
            Record::Load(l) => l.ts,
            Record::Event(e) => e.ts,
            Record::Freeze(f) => self.clock().day_start(f.date.succ_opt().unwrap_or(f.date)),
        }
    }

    fn dead_letter(&self, core: &mut Core, stream: &str, topic: &str, rej: Rejection) {
        if rej.reason == Reason::Late {
            self.metrics.late.with_label_values(&[stream]).inc();
        } else {
            self.metrics
                .rejected
                .with_label_values(&[stream, rej.reason.label()])
                .inc();
        }
        let dl = DeadLetter {
            stream: stream.into(),
            topic: topic.into(),
            reason: rej.reason.label().into(),
            detail: rej.detail,
            record: rej.raw,
            received_at: now_ms(),
        };
        core.dead_letters.push_back(dl.clone());
        while core.dead_letters.len() > KEEP_DEAD_LETTERS {
            core.dead_letters.pop_front();
        }
        core.pending.dead_letters.push(dl);
    }

    /// Accepts one decoded micro-batch and plans the evaluations of the
    /// windows it closed, holding the monitor's lock only for that. The
    /// returned [`Evaluation`] runs them; until it is finished the batch's
    /// messages must not be acknowledged.
    pub async fn ingest(
        self: &Arc<Self>,
        messages: Vec<DecodedMessage>,
    ) -> (IngestReport, Evaluation) {
        let mut core = self.core.lock().await;
        let rep = self.accept_all(&mut core, messages);
        let jobs = self.plan(&mut core);
        (
            rep,
            Evaluation {
                monitor: self.clone(),
                jobs,
            },
        )
    }

    /// Accepts one decoded micro-batch into the store.
    fn accept_all(&self, core: &mut Core, messages: Vec<DecodedMessage>) -> IngestReport {
        let mut rep = IngestReport::default();
        for m in messages {
            let Some(stream) = m.stream else {
                rep.rejected += 1;
                let rejection = Rejection {
                    reason: Reason::UnknownTopic,
                    detail: format!(
                        "topic {} is not under meter/load, meter/freeze or meter/event",
                        m.topic
                    ),
                    raw: m.prefix(),
                };
                self.dead_letter(core, "unknown", &m.topic, rejection);
                continue;
            };
            let (topic, records, payload, resolved) = m.into_parts();
            // Meters resolved while decoding count only if the archive is unchanged since.
            let known = resolved
                .and_then(|(index, known)| index.same(core.archive.meter_index()).then_some(known));
            for (i, decoded) in records.into_iter().enumerate() {
                match decoded {
                    Err(rej) => {
                        rep.rejected += 1;
                        self.dead_letter(core, stream.name(), &topic, rej);
                    }
                    Ok((rec, span)) => {
                        let known = known.as_ref().and_then(|k| k.get(i).copied());
                        // The record's text is looked up only for a dead letter.
                        let raw = || span.text(&payload);
                        self.accept(core, stream, &topic, rec, known, &raw, &mut rep)
                    }
                }
            }
        }
        for s in Stream::ALL {
            let (ok, dup) = (
                rep.accepted_by_stream[s as usize],
                rep.duplicates_by_stream[s as usize],
            );
            if ok > 0 {
                self.metrics
                    .ingested
                    .with_label_values(&[s.name()])
                    .inc_by(ok as f64);
            }
            if dup > 0 {
                self.metrics
                    .duplicates
                    .with_label_values(&[s.name()])
                    .inc_by(dup as f64);
            }
        }
        rep
    }

    #[allow(clippy::too_many_arguments)]
    fn accept<'p>(
        &self,
        core: &mut Core,
        stream: Stream,
        topic: &str,
        mut rec: Record,
        known: Option<bool>,
        raw: &dyn Fn() -> &'p str,
        rep: &mut IngestReport,
    ) {
        let known = known.unwrap_or_else(|| core.archive.meter_index().adopt_id(&mut rec));
        if !known {
            rep.rejected += 1;
            let detail = format!(
                "meter {} is not in the archive; load it with POST /api/v1/archive first",
                rec.meter_id()
            );
            self.dead_letter(
                core,
                stream.name(),
                topic,
                Rejection {
                    reason: Reason::UnknownMeter,
                    detail,
                    raw: crate::decode::clip(raw()),
                },
            );
            return;
        }
        let t = self.event_time(&rec);
        if core.wm.is_late(stream, t) {
            // A late copy of a record already held is a redelivery, not late data.
            if core.store.contains_same(&rec) {
                rep.count_duplicate(stream);
                return;
            }
            rep.late += 1;
            let wm = core
                .wm
                .watermark(stream)
                .map(|w| self.clock().format(w))
                .unwrap_or_default();
            let detail = format!(
                "event time {} is behind the {} watermark {wm}; its windows are already evaluated (raise the stream's out_of_orderness to accept later data)",
                self.clock().format(t),
                stream.name()
            );
            self.dead_letter(
                core,
                stream.name(),
                topic,
                Rejection {
                    reason: Reason::Late,
                    detail,
                    raw: crate::decode::clip(raw()),
                },
            );
            return;
        }
        let event = match &rec {
            Record::Event(e) => Some(MeterEvent::clone(e)),
            _ => None,
        };
        if core.store.upsert(rec) == Upsert::Unchanged {
            rep.count_duplicate(stream);
            return;
        }
        core.fresh_events.extend(event);
        rep.accepted_by_stream[stream as usize] += 1;
        core.wm.observe(stream, t);
    }

    /// Builds the source tables of every streaming theme whose windows
    /// closed, then drops the state no window needs any more.
    fn plan(&self, core: &mut Core) -> Vec<Job> {
        let mut jobs = Vec::new();
        for (id, slot) in core.themes.iter() {
            if !slot.enabled || slot.def.is_billing() {
                continue;
            }
            let def = &slot.def;
            let Some(stream) = stream_of(def.table) else {
                continue;
            };
            let Some(new) = core.wm.trigger(stream) else {
                continue;
            };
            let old = core.planned.get(id).copied();
            let fresh: &[MeterEvent] = if def.table == SourceTable::MeterEvent {
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
                def: def.clone(),
                old,
                new,
                batches: evaluate::batches_for_step(&sources, def, old, new, fresh),
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

    async fn run_job(
        &self,
        job: &Job,
        batches: Vec<Result<RecordBatch, EngineError>>,
    ) -> Result<Vec<Hit>, MonitorError> {
        let timer = std::time::Instant::now();
        let mut hits = Vec::new();
        let mut outcome = Ok(());
        for b in batches {
            let run = match b {
                Ok(batch) => self.engine.run(&job.def, batch).await,
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
    fn settle_jobs(&self, core: &mut Core, results: Vec<(Job, Result<Vec<Hit>, MonitorError>)>) {
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

    fn apply_hits(&self, core: &mut Core, mut hits: Vec<Hit>) {
        hits.sort_by(|a, b| {
            (a.window_start, a.window_end, &a.theme, &a.customer_id).cmp(&(
                b.window_start,
                b.window_end,
                &b.theme,
                &b.customer_id,
            ))
        });
        let now = now_ms();
        for hit in hits {
            let Some(cust) = core.archive.customer(&hit.customer_id) else {
                tracing::warn!(theme = %hit.theme, customer = %hit.customer_id, "hit for a customer not in the archive; ignored");
                continue;
            };
            let org = cust.org_code.clone();
            let date = self
                .clock()
                .local_date(hit.window_start.max(hit.window_end - 1));
            if let Some(w) = core.whitelist.covering(&hit.theme, &hit.customer_id, date) {
                let already = core.suppressed.iter().any(|s| {
                    s.theme == hit.theme
                        && s.customer_id == hit.customer_id
                        && s.window_start == hit.window_start
                        && s.window_end == hit.window_end
                });
                if !already {
                    let s = SuppressedAlert {
                        theme: hit.theme.clone(),
                        customer_id: hit.customer_id.clone(),
                        window_start: hit.window_start,
                        window_end: hit.window_end,
                        whitelist_id: w.id.clone(),
                        detected_at: now,
                        evidence: hit.evidence.clone(),
                    };
                    self.metrics.alerts.with_label_values(&[&hit.theme]).inc();
                    self.metrics
                        .suppressed
                        .with_label_values(&[&hit.theme])
                        .inc();
                    core.suppressed.push_back(s.clone());
                    while core.suppressed.len() > KEEP_SUPPRESSED {
                        core.suppressed.pop_front();
                    }
                    core.pending.suppressed.push(s);
                }
                continue;
            }
            let severity = core
                .themes
                .get(&hit.theme)
                .map(|s| s.def.severity.clone())
                .unwrap_or_else(|| "medium".into());
            match core.book.apply_hit(&hit, &org, &severity, now) {
                HitOutcome::Created(_) | HitOutcome::Added(_) => {
                    self.metrics.alerts.with_label_values(&[&hit.theme]).inc();
                    if let Some(slot) = core.themes.get_mut(&hit.theme) {
                        slot.hits += 1;
                    }
                }
                HitOutcome::AlreadyCounted(_) | HitOutcome::Suppressed(_) => {}
            }
        }
    }

    /// Keeps each stream's records as long as the longest window reading it
    /// (plus a day for the freeze before the first day) may still need them.
    fn evict(&self, core: &mut Core) {
        let mut keep: BTreeMap<Stream, i64> = BTreeMap::new();
        for slot in core.themes.values().filter(|s| s.enabled) {
            if let Some(s) = stream_of(slot.def.table) {
                let len = slot.def.window.map(|w| w.max_len()).unwrap_or(0);
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
                .filter(|(_, t)| t.enabled && stream_of(t.def.table) == Some(s))
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

    /// Moves the changes made since the last stage into the commit slot,
    /// once the commit before has ended.
    async fn stage(&self, core: &mut Core) -> tokio::sync::OwnedMutexGuard<Commit> {
        let changes = core.store.take_changes();
        core.pending.records.extend(changes);
        core.pending.workorders.extend(
            core.book
                .take_dirty()
                .into_iter()
                .map(|w| (w.id.clone(), w)),
        );
        core.pending.outbox.extend(core.book.take_events());
        self.refresh_gauges(core);
        let mut slot = self.slot.clone().lock_owned().await;
        slot.merge(std::mem::take(&mut core.pending));
        slot
    }

    /// Commits the slot. On failure its changes stay there (ahead of any
    /// later ones) and the monitor reports itself degraded.
    async fn commit_slot(&self, slot: &mut Commit) -> Result<(), StateError> {
        if slot.is_empty() {
            return Ok(());
        }
        match self.backend.commit(slot).await {
            Ok(()) => {
                *slot = Commit::default();
                self.set_degraded(None);
                Ok(())
            }
            Err(e) => {
                self.metrics
                    .commit_failures
                    .with_label_values(&[self.backend.name()])
                    .inc();
                self.set_degraded(Some(format!("{e}; {} changes pending", slot.size())));
                Err(e)
            }
        }
    }

    /// Commits every change made so far.
    async fn flush(&self, core: &mut Core) -> Result<(), StateError> {
        let mut slot = self.stage(core).await;
        self.commit_slot(&mut slot).await
    }

    /// Retries a pending commit (the ingest loop calls this while the backend is down).
    pub async fn retry_flush(&self) -> Result<(), StateError> {
        let mut slot = {
            let mut core = self.core.lock().await;
            self.stage(&mut core).await
        };
        self.commit_slot(&mut slot).await
    }

    fn refresh_watermark_gauges(&self, core: &Core) {
        for s in Stream::ALL {
            if let Some(w) = core.wm.watermark(s) {
                self.metrics
                    .watermark
                    .with_label_values(&[s.name()])
                    .set(w as f64 / 1000.0);
            }
        }
    }

    fn refresh_state_gauges(&self, core: &Core) {
        for (s, f) in core.store.footprint() {
            let stream = [s.name()];
            let m = &self.metrics;
            m.state_records
                .with_label_values(&stream)
                .set(f.records as f64);
            m.state_bytes.with_label_values(&stream).set(f.bytes as f64);
        }
    }

    fn refresh_gauges(&self, core: &Core) {
        self.metrics.workorders.reset();
        for ((status, theme), n) in core.book.counts() {
            self.metrics
                .workorders
                .with_label_values(&[status.name(), &theme])
                .set(n as f64);
        }
    }

    // ---- archive and billing ------------------------------------------------

    pub async fn upsert_archive(&self, body: &str) -> Result<usize, MonitorError> {
        let customers =
            Archive::parse_document(body).map_err(|e| MonitorError::BadRequest(e.to_string()))?;
        let mut core = self.core.lock().await;
        let n = customers.len();
        for c in customers {
            core.pending
                .customers
                .insert(c.customer_id.to_string(), c.clone());
            core.archive.upsert(c);
        }
        if let Ok(mut index) = self.meter_index.write() {
            *index = core.archive.meter_index().clone();
        }
        self.engine.set_archive(&core.archive)?;
        self.flush(&mut core).await?;
        Ok(n)
    }

    pub async fn post_billing(&self, body: &str) -> Result<serde_json::Value, MonitorError> {
        let period = parse_billing(body)
            .map_err(|e: BillingError| MonitorError::BadRequest(e.to_string()))?;
        let mut core = self.core.lock().await;
        let unknown: Vec<String> = period
            .bills
            .iter()
            .filter(|b| core.archive.customer(&b.customer_id).is_none())
            .map(|b| b.customer_id.to_string())
            .collect();
        let batch = crate::tables::bill(&period).map_err(|e| EngineError::Table {
            table: "bill",
            message: e.to_string(),
        })?;
        let ids: Vec<String> = core
            .themes
            .iter()
            .filter(|(_, s)| s.enabled && s.def.is_billing())
            .map(|(k, _)| k.clone())
            .collect();
        let mut hits = Vec::new();
        for id in &ids {
            let Some(def) = core.themes.get(id).map(|s| s.def.clone()) else {
                continue;
            };
            let timer = std::time::Instant::now();
            let res = self.engine.run(&def, batch.clone()).await;
            self.metrics
                .theme_eval
                .with_label_values(&[id])
                .observe(timer.elapsed().as_secs_f64());
            if let Some(slot) = core.themes.get_mut(id) {
                slot.evaluations += 1;
                slot.last_error = res.as_ref().err().map(|e| e.to_string());
            }
            hits.extend(res?);
        }
        let n_hits = hits.len();
        let before = core.book.len();
        self.apply_hits(&mut core, hits);
        let created = core.book.len() - before;
        for c in &unknown {
            let rej = Rejection {
                reason: Reason::UnknownMeter,
                detail: format!("bill for customer {c} who is not in the archive; its billing themes cannot be judged"),
                raw: format!("{{\"period\":\"{}\",\"customer_id\":\"{c}\"}}", period.period),
            };
            self.dead_letter(
                &mut core,
                "billing",
                "/api/v1/billing",
                Rejection {
                    reason: Reason::UnknownMeter,
                    ..rej
                },
            );
        }
        let summary = serde_json::json!({
            "period": period.period,
            "bills": period.bills.len(),
            "unknown_customers": unknown,
            "hits": n_hits,
            "workorders_created": created,
        });
        core.pending
            .billing
            .insert(period.period.clone(), period.clone());
        core.billing.insert(period.period.clone(), period);
        self.flush(&mut core).await?;
        Ok(summary)
    }

    // ---- work orders ----------------------------------------------------------

    pub async fn list_workorders(
        &self,
        q: &WorkOrderQuery,
    ) -> (Vec<serde_json::Value>, Option<String>) {
        let core = self.core.lock().await;
        let limit = q.limit.unwrap_or(100).clamp(1, 1000);
        let mut items = Vec::new();
        let mut next = None;
        for w in core.book.after(q.cursor.as_deref()) {
            if !q.matches(w) {
                continue;
            }
            if items.len() == limit {
                next = items
                    .last()
                    .and_then(|v: &serde_json::Value| v["id"].as_str().map(String::from));
                break;
            }
            items.push(w.to_api(self.clock(), false));
        }
        (items, next)
    }

    pub async fn workorder(&self, id: &str) -> Option<serde_json::Value> {
        let core = self.core.lock().await;
        core.book.get(id).map(|w| w.to_api(self.clock(), true))
    }

    pub async fn act(&self, id: &str, body: &str) -> Result<serde_json::Value, MonitorError> {
        let (action, actor) =
            Action::parse(body).map_err(|e| MonitorError::BadRequest(e.to_string()))?;
        let mut core = self.core.lock().await;
        let now = now_ms();
        let res = core
            .book
            .update(id, |w| {
                workorder::lifecycle::apply(w, action, actor, now).map(|_| w.clone())
            })
            .ok_or_else(|| MonitorError::NotFound(format!("no work order {id}")))?;
        let wo = res.map_err(|e| match e {
            LifecycleError::BadRequest(m) => MonitorError::BadRequest(m),
            e @ LifecycleError::Illegal { .. } => MonitorError::Conflict(e.to_string()),
        })?;
        self.flush(&mut core).await?;
        Ok(wo.to_api(self.clock(), true))
    }

    /// Raises 督办 on orders still not archived past the time limit.
    pub async fn escalate_overdue(&self) -> Result<usize, MonitorError> {
        let mut core = self.core.lock().await;
        let now = now_ms();
        let limit = self.config.escalate_after_ms;
        let due: Vec<String> = core
            .book
            .iter()
            .filter(|w| w.status.is_active() && w.escalation < 2 && now - w.created_at > limit)
            .map(|w| w.id.clone())
            .collect();
        for id in &due {
            core.book.update(id, |w| {
                w.escalation = 2;
                w.updated_at = now;
                w.history.push(workorder::HistoryEntry {
                    at: now,
                    action: "escalate".into(),
                    from: w.status,
                    to: w.status,
                    actor: Some("jicha".into()),
                    detail: serde_json::json!({"reason": "overdue", "limit_hours": limit / HOUR_MS}),
                });
            });
        }
        if !due.is_empty() {
            self.flush(&mut core).await?;
        }
        Ok(due.len())
    }

    // ---- whitelist, alerts, dead letters --------------------------------------

    pub async fn add_whitelist(&self, body: &str) -> Result<WhitelistEntry, MonitorError> {
        let e = WhitelistEntry::parse(body).map_err(MonitorError::BadRequest)?;
        let mut core = self.core.lock().await;
        let e = core.whitelist.add(e);
        core.pending.whitelist.insert(e.id.clone(), Some(e.clone()));
        self.flush(&mut core).await?;
        Ok(e)
    }

    pub async fn whitelist(&self) -> Vec<WhitelistEntry> {
        self.core.lock().await.whitelist.list().cloned().collect()
    }

    pub async fn remove_whitelist(&self, id: &str) -> Result<WhitelistEntry, MonitorError> {
        let mut core = self.core.lock().await;
        let e = core
            .whitelist
            .remove(id)
            .ok_or_else(|| MonitorError::NotFound(format!("no whitelist entry {id}")))?;
        core.pending.whitelist.insert(id.to_string(), None);
        self.flush(&mut core).await?;
        Ok(e)
    }

    pub async fn suppressed(&self, limit: usize) -> Vec<serde_json::Value> {
        let core = self.core.lock().await;
        let c = self.clock();
        core.suppressed
            .iter()
            .rev()
            .take(limit)
            .map(|s| serde_json::json!({"theme": s.theme, "customer_id": s.customer_id, "window_start": c.format(s.window_start), "window_end": c.format(s.window_end), "whitelist_id": s.whitelist_id, "detected_at": c.format(s.detected_at), "evidence": s.evidence}))
            .collect()
    }

    pub async fn dead_letters(
        &self,
        stream: Option<&str>,
        reason: Option<&str>,
        limit: usize,
    ) -> Vec<serde_json::Value> {
        let core = self.core.lock().await;
        core.dead_letters
            .iter()
            .rev()
            .filter(|d| stream.is_none_or(|s| d.stream == s) && reason.is_none_or(|r| d.reason == r))
            .take(limit)
            .map(|d| serde_json::json!({"stream": d.stream, "topic": d.topic, "reason": d.reason, "detail": d.detail, "record": d.record, "received_at": self.clock().format(d.received_at)}))
            .collect()
    }

    pub async fn watermarks(&self) -> serde_json::Value {
        let core = self.core.lock().await;
        let c = self.clock();
        let mut m = serde_json::Map::new();
        for s in Stream::ALL {
            m.insert(
                s.name().into(),
                serde_json::json!({
                    "max_event_time": core.wm.max_seen(s).map(|t| c.format(t)),
                    "watermark": core.wm.watermark(s).map(|t| c.format(t)),
                }),
            );
        }
        serde_json::Value::Object(m)
    }

    // ---- themes -----------------------------------------------------------------

    pub async fn themes(&self) -> Vec<serde_json::Value> {
        let core = self.core.lock().await;
        core.themes
            .values()
            .map(|s| {
                serde_json::json!({
                    "id": s.def.id, "title": s.def.title, "severity": s.def.severity,
                    "kind": if s.def.is_billing() { "billing" } else { "streaming" },
                    "table": s.def.table.name(), "enabled": s.enabled, "builtin": s.builtin,
                    "params": s.def.params.iter().map(|p| serde_json::json!({"name": p.name, "default": p.default, "doc": p.doc, "value": self.config.params.get(&p.name).unwrap_or(&p.default)})).collect::<Vec<_>>(),
                    "hits": s.hits, "evaluations": s.evaluations, "last_error": s.last_error,
                    "evaluated_until": core.progress.get(&s.def.id).map(|t| self.clock().format(*t)),
                    "sql": s.def.source,
                })
            })
            .collect()
    }

    /// Adds a theme from SQL source: validated (parsed and planned) first; a
    /// bad one changes nothing. It judges windows closing from now on.
    pub async fn add_theme(&self, source: &str) -> Result<String, MonitorError> {
        let def = ThemeDef::parse(source, &self.config.params)
            .map_err(|e| MonitorError::BadRequest(e.to_string()))?;
        self.engine
            .validate(&def)
            .await
            .map_err(|e| MonitorError::BadRequest(e.to_string()))?;
        let mut core = self.core.lock().await;
        if core.themes.contains_key(&def.id) {
            return Err(MonitorError::Conflict(format!(
                "theme {} exists; choose another id or disable the old one",
                def.id
            )));
        }
        let id = def.id.clone();
        if let Some(w) = stream_of(def.table).and_then(|s| core.wm.trigger(s)) {
            core.progress.insert(id.clone(), w);
            core.planned.insert(id.clone(), w);
            core.pending.progress.insert(id.clone(), w);
        }
        core.pending.themes.insert(
            id.clone(),
            Some(StoredTheme {
                id: id.clone(),
                source: source.to_string(),
                enabled: true,
            }),
        );
        core.themes.insert(
            id.clone(),
            ThemeSlot {
                def,
                enabled: true,
                builtin: false,
                hits: 0,
                evaluations: 0,
                last_error: None,
            },
        );
        self.flush(&mut core).await?;
        Ok(id)
    }

    pub async fn set_theme_enabled(&self, id: &str, enabled: bool) -> Result<(), MonitorError> {
        let mut core = self.core.lock().await;
        let slot = core
            .themes
            .get_mut(id)
            .ok_or_else(|| MonitorError::NotFound(format!("no theme {id}")))?;
        slot.enabled = enabled;
        if !slot.builtin {
            let stored = StoredTheme {
                id: id.to_string(),
                source: slot.def.source.clone(),
                enabled,
            };
            core.pending.themes.insert(id.to_string(), Some(stored));
        }
        self.flush(&mut core).await?;
        Ok(())
    }

    /// Backtest: runs a theme (by id, or given as source) over the history
    /// held now, without raising anything.
    pub async fn dry_run(
        &self,
        id_or_source: &str,
    ) -> Result<Vec<serde_json::Value>, MonitorError> {
        let core = self.core.lock().await;
        let def = match core.themes.get(id_or_source) {
            Some(s) => s.def.clone(),
            None => ThemeDef::parse(id_or_source, &self.config.params)
                .map_err(|e| MonitorError::BadRequest(e.to_string()))?,
        };
        let mut hits = Vec::new();
        if def.is_billing() {
            for p in core.billing.values() {
                let batch = crate::tables::bill(p).map_err(|e| EngineError::Table {
                    table: "bill",
                    message: e.to_string(),
                })?;
                hits.extend(self.engine.run(&def, batch).await?);
            }
        } else if let Some(new) = stream_of(def.table).and_then(|s| core.wm.trigger(s)) {
            let sources = Sources {
                store: &core.store,
                archive: &core.archive,
                clock: self.clock(),
            };
            for b in evaluate::batches_for_step(&sources, &def, None, new, &[]) {
                hits.extend(self.engine.run(&def, b?).await?);
            }
        }
        let c = self.clock();
        Ok(hits
            .iter()
            .map(|h| serde_json::json!({"theme": h.theme, "customer_id": h.customer_id, "window_start": c.format(h.window_start), "window_end": c.format(h.window_end), "evidence": h.evidence, "estimated_loss_yuan": h.estimated_loss_yuan.map(|d| d.to_string())}))
            .collect())
    }
}

/// Filters of `GET /api/v1/workorders`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct WorkOrderQuery {
    pub theme: Option<String>,
    pub status: Option<String>,
    pub org: Option<String>,
    pub customer_id: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl WorkOrderQuery {
    fn matches(&self, w: &WorkOrder) -> bool {
        let empty = |o: &Option<String>| o.as_deref().is_none_or(str::is_empty);
        (empty(&self.theme) || self.theme.as_deref() == Some(w.theme.as_str()))
            && (empty(&self.status)
                || self.status.as_deref() == Some(w.status.name())
                || (self.status.as_deref() == Some("active") && w.status.is_active()))
            && (empty(&self.org)
                || self
                    .org
                    .as_deref()
                    .is_some_and(|o| w.org_code.starts_with(o)))
            && (empty(&self.customer_id)
                || self.customer_id.as_deref() == Some(w.customer_id.as_str()))
    }
}

pub fn status_names() -> Vec<&'static str> {
    Status::ALL.iter().map(|s| s.name()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryBackend;

    fn archive_doc(customer: &str, meter: &str) -> String {
        format!(
            r#"{{"customers":[{{"customer_id":"{customer}","org_code":"41/4107/410727","usage_category":"large_industry",
            "tariff_kind":"two_part","contract_kva":400,"meters":[{{"meter_id":"{meter}","multiplier":1}}]}}]}}"#
        )
    }

    /// Accepts and evaluates a batch, as the MQTT source does, up to its commit.
    async fn ingest(m: &Arc<Monitor>, batch: Vec<DecodedMessage>) -> (IngestReport, StagedCommit) {
        let (rep, evaluation) = m.ingest(batch).await;
        (rep, evaluation.finish().await)
    }

    fn load_message(meter: &str, m: &Monitor) -> DecodedMessage {
        load_message_at(meter, "10:00", m)
    }

    fn load_message_at(meter: &str, hh_mm: &str, m: &Monitor) -> DecodedMessage {
        let payload =
            format!(r#"{{"meter_id":"{meter}","ts":"2026-11-03T{hh_mm}:00+08:00","p_kw":5}}"#);
        let index = m.meter_index();
        DecodedMessage::decode(
            "meter/load/x".into(),
            payload.into_bytes(),
            1 << 20,
            Some(&index),
        )
    }

    /// Meters are resolved while decoding, against the archive as it was;
    /// a meter added to the archive before the batch is processed counts
    /// as known, one removed counts as unknown.
    #[test]
    fn meters_resolved_before_an_archive_change_are_looked_up_again() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let backend = Arc::new(MemoryBackend::default());
            let first = Archive::parse_document(&archive_doc("C1", "M1")).unwrap();
            let m = Monitor::open(MonitorConfig::default(), backend, Vec::new(), Some(first))
                .await
                .unwrap();
            let known = load_message("M1", &m);
            let stale_unknown = load_message("M2", &m);
            // C1 now has meter M2 instead of M1.
            m.upsert_archive(&archive_doc("C1", "M2")).await.unwrap();
            let (rep, staged) = ingest(&m, vec![known, stale_unknown]).await;
            staged.commit().await.unwrap();
            assert_eq!((rep.accepted(), rep.rejected), (1, 1));
            let dead: Vec<String> = m
                .core
                .lock()
                .await
                .dead_letters
                .iter()
                .map(|d| d.record.clone())
                .collect();
            assert_eq!(dead.len(), 1);
            assert!(dead[0].contains("\"M1\""), "{dead:?}");

            // Resolved against the current archive: trusted as is.
            let (rep, staged) = ingest(&m, vec![load_message("M2", &m)]).await;
            staged.commit().await.unwrap();
            assert_eq!((rep.accepted(), rep.duplicates(), rep.rejected), (0, 1, 0));
        });
    }

    /// Records restored at start-up share the archive's meter ids, as
    /// ingested ones do, rather than each holding a copy.
    #[test]
    fn restored_records_share_the_archives_meter_ids() {
        rt().block_on(async {
            let backend = Arc::new(MemoryBackend::default());
            let stored = (0..3).map(|i| {
                Record::Load(crate::records::LoadPoint::power_only(
                    crate::ids::MeterId::new("M1"),
                    1_793_000_700_000 + i * 900_000,
                    rust_decimal::Decimal::ONE,
                ))
            });
            let commit = crate::state::Commit {
                records: crate::store::RecordChanges {
                    puts: stored.collect(),
                    evicted: None,
                },
                ..Default::default()
            };
            backend.commit(&commit).await.unwrap();
            let archive = Archive::parse_document(&archive_doc("C1", "M1")).unwrap();
            let m = Monitor::open(MonitorConfig::default(), backend, Vec::new(), Some(archive))
                .await
                .unwrap();
            let core = m.core.lock().await;
            let ours = core.archive.meter_index().canonical("M1").unwrap().clone();
            let restored = core.store.load_times(0, i64::MAX);
            assert_eq!(restored.len(), 3);
            for t in restored {
                let points = core.store.load_at(t);
                assert_eq!(points.len(), 1);
                assert!(points[0].meter_id.shares_text_with(&ours), "{t}");
            }
        });
    }

    /// A theme with a hit for every customer and 15-minute window holding a point.
    const EVERY_WINDOW: &str = "-- theme: every_window
-- title: test
SELECT p.window.start AS window_start, p.window.end AS window_end, p.customer_id, p.points
FROM (
    SELECT tumble(interval '15 minutes') AS window, customer_id, count(*) AS points
    FROM load_point GROUP BY window, customer_id
) p";

    /// Windows counted over all work orders.
    fn hits_counted(core: &Core) -> u64 {
        core.book.iter().map(|w| w.hits).sum()
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// The next batch is accepted and planned while the batch before is
    /// still being evaluated: it plans only the windows after those, and a
    /// failed evaluation holds progress back so its windows are planned again.
    #[test]
    fn batches_planned_during_an_evaluation_take_the_later_windows_only() {
        rt().block_on(async {
            let backend = Arc::new(MemoryBackend::default());
            let archive = Archive::parse_document(&archive_doc("C1", "M1")).unwrap();
            let themes = vec![("every_window.sql".to_string(), EVERY_WINDOW.to_string())];
            let m = Monitor::open(MonitorConfig::default(), backend, themes, Some(archive))
                .await
                .unwrap();
            let job_of = |e: &mut Evaluation| {
                let i = e.jobs.iter().position(|j| j.id == "every_window");
                e.jobs.remove(i.expect("every_window planned"))
            };
            let (_, first) = m.ingest(vec![load_message_at("M1", "10:00", &m)]).await;
            first.finish().await.commit().await.unwrap();
            let start = m.core.lock().await.progress.get("every_window").copied();
            assert!(start.is_some(), "the first batch sets progress");

            // 12:00 closes the 10:00 window; 14:00 then closes the 12:00 one.
            let (_, mut b) = m.ingest(vec![load_message_at("M1", "12:00", &m)]).await;
            let (_, mut c) = m.ingest(vec![load_message_at("M1", "14:00", &m)]).await;
            let (jb, jc) = (job_of(&mut b), job_of(&mut c));
            assert_eq!(jb.old, start);
            assert_eq!(jc.old, Some(jb.new), "c starts where b ends");
            assert!(jc.new > jb.new);
            assert_eq!((jb.batches.len(), jc.batches.len()), (1, 1));

            // b fails, c succeeds: c's hits count, progress stays before b.
            let hits = m
                .run_job(&jc, jc.batches.iter().flatten().cloned().map(Ok).collect())
                .await
                .unwrap();
            assert_eq!(hits.len(), 1);
            {
                let mut core = m.core.lock().await;
                let failed = Err(MonitorError::BadRequest("injected failure".into()));
                m.settle_jobs(&mut core, vec![(jb, failed), (jc, Ok(hits))]);
                assert_eq!(core.progress.get("every_window").copied(), start);
                assert_eq!(core.planned.get("every_window").copied(), start);
                assert_eq!(hits_counted(&core), 1);
            }
            // The next batch plans b's and c's windows again; each counts once.
            let (_, d) = m.ingest(vec![load_message_at("M1", "14:15", &m)]).await;
            let jd = d
                .jobs
                .iter()
                .find(|j| j.id == "every_window")
                .map(|j| j.old);
            assert_eq!(jd, Some(start));
            d.finish().await.commit().await.unwrap();
            let core = m.core.lock().await;
            assert_eq!(hits_counted(&core), 2);
            assert!(core.progress.get("every_window").copied() > start);
        });
    }
}
