//! The outbox in Redis (`docs/state.md`):
//! `{prefix}outbox` a sorted set of event JSON scored by event id, written in
//! the commit's MULTI/EXEC; `{prefix}outbox:seq` the last event id committed;
//! `{prefix}outbox:delivered` a hash of sink name → the last id it has.
//! Events every registered sink has are removed; with no sink registered
//! none are kept (only the sequence). Sink status and dead letters:
//! `sinks.rs`.

use super::{err, json, RedisBackend};
use jicha_pipeline::outbox::{EventId, OutboxEvent};
use jicha_pipeline::state::{Commit, PendingEvents, StateError};
use redis::AsyncCommands;
use std::collections::HashMap;

pub(super) fn not_registered(sink: &str) -> StateError {
    StateError(format!(
        "sink {sink} is not registered; the dispatcher registers its sinks at start-up"
    ))
}

/// A stored event id (a hash value or a sorted-set score).
pub(super) fn parse_id(what: &str, v: &str) -> Result<EventId, StateError> {
    v.parse::<u64>().map(EventId).map_err(|_| {
        StateError(format!(
            "{what} holds {v:?}, not an event id; fix or delete the key"
        ))
    })
}

impl RedisBackend {
    pub(super) fn sinks(&self) -> Result<Vec<String>, StateError> {
        self.sinks
            .lock()
            .map(|s| s.clone())
            .map_err(|_| StateError("sink list poisoned; restart jicha".into()))
    }

    /// Queues the commit's events into its transaction.
    pub(super) fn queue_outbox(
        &self,
        p: &mut redis::Pipeline,
        c: &Commit,
    ) -> Result<(), StateError> {
        let Some(last) = c.last_event() else {
            return Ok(());
        };
        p.set(self.key("outbox:seq"), last.0).ignore();
        if self.sinks()?.is_empty() {
            return Ok(());
        }
        let items: Vec<(u64, String)> = c
            .outbox
            .iter()
            .map(|e| Ok((e.id.0, json(e)?)))
            .collect::<Result<_, StateError>>()?;
        p.zadd_multiple(self.key("outbox"), &items[..]).ignore();
        Ok(())
    }

    pub(super) async fn load_outbox_seq(&self) -> Result<EventId, StateError> {
        let mut c = self.conn.clone();
        let v: Option<String> = c
            .get(self.key("outbox:seq"))
            .await
            .map_err(err("outbox:seq"))?;
        match v {
            None => Ok(EventId(0)),
            Some(v) => parse_id(&self.key("outbox:seq"), &v),
        }
    }

    pub(super) async fn delivered(&self) -> Result<HashMap<String, String>, StateError> {
        let mut c = self.conn.clone();
        c.hgetall(self.key("outbox:delivered"))
            .await
            .map_err(err("outbox:delivered"))
    }

    pub(super) async fn register(&self, sinks: &[String]) -> Result<(), StateError> {
        let head = self.load_outbox_seq().await?;
        let known = self.delivered().await?;
        let mut p = redis::pipe();
        p.atomic();
        for name in known.keys().filter(|k| !sinks.contains(k)) {
            // A sink no longer configured takes its counters and dead
            // letters along: configured again, it starts afresh.
            p.hdel(self.key("outbox:delivered"), name).ignore();
            p.hdel(self.key("outbox:status"), name).ignore();
            p.del(self.dead_key(name)).ignore();
        }
        for name in sinks {
            p.hset_nx(self.key("outbox:delivered"), name, head.0)
                .ignore();
        }
        let mut c = self.conn.clone();
        p.query_async::<()>(&mut c)
            .await
            .map_err(err("register sinks"))?;
        *self
            .sinks
            .lock()
            .map_err(|_| StateError("sink list poisoned; restart jicha".into()))? = sinks.to_vec();
        self.trim().await
    }

    pub(super) async fn progress(&self, sink: &str) -> Result<EventId, StateError> {
        let mut c = self.conn.clone();
        let v: Option<String> = c
            .hget(self.key("outbox:delivered"), sink)
            .await
            .map_err(err("outbox:delivered"))?;
        let v = v.ok_or_else(|| not_registered(sink))?;
        parse_id(
            &format!("{} field {sink}", self.key("outbox:delivered")),
            &v,
        )
    }

    pub(super) async fn pending(
        &self,
        sink: &str,
        limit: usize,
    ) -> Result<PendingEvents, StateError> {
        let after = self.progress(sink).await?;
        let mut c = self.conn.clone();
        let raw: Vec<(String, u64)> = c
            .zrangebyscore_limit_withscores(
                self.key("outbox"),
                format!("({}", after.0),
                "+inf",
                0,
                limit as isize,
            )
            .await
            .map_err(err("outbox"))?;
        let mut out = PendingEvents {
            after,
            head: self.load_outbox_seq().await?,
            ..PendingEvents::default()
        };
        for (v, score) in raw {
            out.upto = Some(EventId(score));
            match serde_json::from_str::<OutboxEvent>(&v) {
                Ok(e) => out.events.push(e),
                // Progress passes it: one bad entry must not stop delivery for good.
                Err(e) => {
                    tracing::warn!(event = score, error = %e, "stored outbox event unreadable; skipped")
                }
            }
        }
        Ok(out)
    }

    pub(super) async fn mark(&self, sink: &str, upto: EventId) -> Result<(), StateError> {
        if !self.sinks()?.iter().any(|s| s == sink) {
            return Err(not_registered(sink));
        }
        // One delivery task per sink: nothing else moves this field meanwhile.
        if self.progress(sink).await? < upto {
            let mut c = self.conn.clone();
            let () = c
                .hset(self.key("outbox:delivered"), sink, upto.0)
                .await
                .map_err(err("outbox:delivered"))?;
        }
        self.trim().await
    }

    /// Removes the events every registered sink has (all, with none).
    pub(super) async fn trim(&self) -> Result<(), StateError> {
        let sinks = self.sinks()?;
        let delivered = self.delivered().await?;
        let mut low: Option<EventId> = None;
        for s in &sinks {
            let v = delivered.get(s).ok_or_else(|| not_registered(s))?;
            let id = parse_id(&format!("{} field {s}", self.key("outbox:delivered")), v)?;
            low = Some(low.map_or(id, |l| l.min(id)));
        }
        let mut c = self.conn.clone();
        let () = match low {
            Some(low) => c.zrembyscore(self.key("outbox"), "-inf", low.0).await,
            None => c.del(self.key("outbox")).await,
        }
        .map_err(err("outbox trim"))?;
        Ok(())
    }
}
