//! Sink status and dead letters in Redis (`docs/state.md`):
//! `{prefix}outbox:status` a hash of sink name → its status as JSON
//! (kind, failure and dead-letter counts, last error), and
//! `{prefix}outbox:deadletters:{sink}` a list of the sink's dead letters as
//! JSON, oldest first, trimmed to the last `KEEP_SINK_DEAD_LETTERS`.
//! Dead-lettering appends, stores the status and moves the sink's progress
//! in one MULTI/EXEC.

use super::outbox::{not_registered, parse_id};
use super::{err, json, RedisBackend};
use jicha_pipeline::outbox::{
    EventId, SinkDeadLetter, SinkReport, SinkStatus, KEEP_SINK_DEAD_LETTERS,
};
use jicha_pipeline::state::StateError;
use redis::AsyncCommands;
use std::collections::HashMap;

impl RedisBackend {
    pub(super) fn dead_key(&self, sink: &str) -> String {
        self.key(&format!("outbox:deadletters:{sink}"))
    }

    pub(super) async fn put_status(
        &self,
        sink: &str,
        status: &SinkStatus,
    ) -> Result<(), StateError> {
        let mut c = self.conn.clone();
        let () = c
            .hset(self.key("outbox:status"), sink, json(status)?)
            .await
            .map_err(err("outbox:status"))?;
        Ok(())
    }

    pub(super) async fn dead_letter(
        &self,
        sink: &str,
        upto: EventId,
        dead: &[SinkDeadLetter],
        status: &SinkStatus,
    ) -> Result<(), StateError> {
        if !self.sinks()?.iter().any(|s| s == sink) {
            return Err(not_registered(sink));
        }
        let vals: Vec<String> = dead.iter().map(json).collect::<Result<_, _>>()?;
        let mut p = redis::pipe();
        p.atomic();
        if !vals.is_empty() {
            p.rpush(self.dead_key(sink), vals).ignore();
            p.ltrim(self.dead_key(sink), -(KEEP_SINK_DEAD_LETTERS as isize), -1)
                .ignore();
        }
        p.hset(self.key("outbox:status"), sink, json(status)?)
            .ignore();
        // One delivery task per sink: nothing else moves this field meanwhile.
        if self.progress(sink).await? < upto {
            p.hset(self.key("outbox:delivered"), sink, upto.0).ignore();
        }
        let mut c = self.conn.clone();
        p.query_async::<()>(&mut c)
            .await
            .map_err(err("outbox dead letters"))?;
        self.trim().await
    }

    pub(super) async fn reports(&self) -> Result<Vec<SinkReport>, StateError> {
        let head = self.load_outbox_seq().await?;
        let delivered = self.delivered().await?;
        let mut c = self.conn.clone();
        let status: HashMap<String, String> = c
            .hgetall(self.key("outbox:status"))
            .await
            .map_err(err("outbox:status"))?;
        let mut out = Vec::new();
        for (name, v) in delivered {
            let delivered = parse_id(
                &format!("{} field {name}", self.key("outbox:delivered")),
                &v,
            )?;
            let status = match status.get(&name) {
                None => SinkStatus::default(),
                Some(s) => serde_json::from_str(s).map_err(|e| {
                    StateError(format!(
                        "{} field {name} is not a sink status ({e}); delete the field, the counters start afresh",
                        self.key("outbox:status")
                    ))
                })?,
            };
            out.push(SinkReport {
                name,
                delivered,
                head,
                status,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub(super) async fn dead_letters(
        &self,
        sink: &str,
        limit: usize,
    ) -> Result<Vec<SinkDeadLetter>, StateError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut c = self.conn.clone();
        let raw: Vec<String> = c
            .lrange(
                self.dead_key(sink),
                -(limit.min(KEEP_SINK_DEAD_LETTERS) as isize),
                -1,
            )
            .await
            .map_err(err("outbox dead letters"))?;
        Ok(raw
            .iter()
            .filter_map(|v| match serde_json::from_str(v) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(sink, error = %e, "stored sink dead letter unreadable; skipped");
                    None
                }
            })
            .collect())
    }
}
