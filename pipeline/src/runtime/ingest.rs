//! Accepting a decoded micro-batch into the window store: unknown meters,
//! late records and re-sent duplicates are sorted out here, each rejection
//! counted and dead-lettered while the rest of the batch goes on.

use super::{now_ms, Core, Evaluation, Monitor};
use crate::decode::{clip, DecodedMessage, Reason, Rejection};
use crate::records::{MeterEvent, Record, Stream};
use crate::state::{DeadLetter, KEEP_DEAD_LETTERS};
use crate::store::Upsert;
use crate::time::EpochMs;
use std::sync::Arc;

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

impl Monitor {
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
        (rep, Evaluation::new(self.clone(), jobs))
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

    pub(super) fn dead_letter(&self, core: &mut Core, stream: &str, topic: &str, rej: Rejection) {
        if rej.reason == Reason::Late {
            self.metrics.late.with_label_values(&[stream]).inc();
        } else {
            self.metrics
                .rejected
                .with_label_values(&[stream, rej.reason.as_str()])
                .inc();
        }
        let dl = DeadLetter {
            stream: stream.into(),
            topic: topic.into(),
            reason: rej.reason,
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
                        let origin = Origin {
                            stream,
                            topic: &topic,
                            raw: &raw,
                        };
                        self.accept(core, origin, rec, known, &mut rep)
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

    fn accept(
        &self,
        core: &mut Core,
        from: Origin<'_, '_>,
        mut rec: Record,
        known: Option<bool>,
        rep: &mut IngestReport,
    ) {
        let stream = from.stream;
        let known = known.unwrap_or_else(|| core.archive.meter_index().adopt_id(&mut rec));
        if !known {
            rep.rejected += 1;
            let detail = format!(
                "meter {} is not in the archive; load it with POST /api/v1/archive first",
                rec.meter_id()
            );
            self.reject(core, &from, Reason::UnknownMeter, detail);
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
            self.reject(core, &from, Reason::Late, detail);
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

    fn reject(&self, core: &mut Core, from: &Origin<'_, '_>, reason: Reason, detail: String) {
        let rejection = Rejection {
            reason,
            detail,
            raw: clip((from.raw)()),
        };
        self.dead_letter(core, from.stream.name(), from.topic, rejection);
    }
}

/// Where a record came from, for its dead letter.
struct Origin<'a, 'p> {
    stream: Stream,
    topic: &'a str,
    /// The record's text, looked up only when it is dead-lettered.
    raw: &'a dyn Fn() -> &'p str,
}
