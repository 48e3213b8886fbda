//! Redis as the state backend. One commit is one MULTI/EXEC transaction, so
//! a crash leaves either the whole micro-batch or none of it. The layout is
//! documented in `docs/state.md`.

use anyhow::{Context, Result};
use futures::future::BoxFuture;
use jicha_pipeline::archive::Customer;
use jicha_pipeline::billing::BillingPeriod;
use jicha_pipeline::ids::MeterId;
use jicha_pipeline::outbox::{EventId, SinkDeadLetter, SinkReport, SinkStatus};
use jicha_pipeline::record_codec;
use jicha_pipeline::records::{Record, Stream};
use jicha_pipeline::state::{
    Commit, DeadLetter, PendingEvents, Snapshot, StateBackend, StateError, StoredTheme,
    KEEP_DEAD_LETTERS, KEEP_SUPPRESSED,
};
use jicha_pipeline::store::RecordChanges;
use jicha_pipeline::whitelist::WhitelistEntry;
use jicha_pipeline::workorder::{SuppressedAlert, WorkOrder};
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::de::DeserializeOwned;
use std::sync::Mutex;
use std::time::Duration;

mod outbox;
mod segments;
mod sinks;
use segments::{SegmentIndex, SegmentKey, SegmentPlan};

const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RedisBackend {
    conn: ConnectionManager,
    prefix: String,
    segments: Mutex<SegmentIndex>,
    /// The sinks the dispatcher registered (events are kept only for them).
    sinks: Mutex<Vec<String>>,
}

fn err(what: &str) -> impl Fn(redis::RedisError) -> StateError + '_ {
    move |e| StateError(format!("redis {what}: {e}"))
}

impl RedisBackend {
    /// Connects and checks the server answers; fails with one clear error.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisBackend> {
        let client = redis::Client::open(url)
            .with_context(|| format!("invalid Redis URL {url:?}; use redis://host:port/db"))?;
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(5))
            .set_response_timeout(Duration::from_secs(30))
            .set_number_of_retries(2)
            // Reconnect quickly once Redis is back: the default backoff grows to
            // minutes, during which input stays paused.
            .set_exponent_base(2)
            .set_factor(100)
            .set_max_delay(1000);
        let mut conn = tokio::time::timeout(
            Duration::from_secs(10),
            ConnectionManager::new_with_config(client, cfg),
        )
        .await
        .map_err(|_| anyhow::anyhow!("Redis at {url} did not answer within 10 s; check --redis"))?
        .with_context(|| {
            format!("cannot connect to Redis at {url}; check --redis and that redis-server runs")
        })?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .with_context(|| format!("Redis at {url} does not answer PING"))?;
        Ok(RedisBackend {
            conn,
            prefix: prefix.to_string(),
            segments: Mutex::default(),
            sinks: Mutex::default(),
        })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The meter of a legacy `rec:{stream}:{meter}` key.
    fn meter_of(&self, key: &str) -> Option<MeterId> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix("rec:")?;
        let (_, meter) = rest.split_once(':')?;
        (!meter.is_empty()).then(|| MeterId::new(meter))
    }

    fn index(&self) -> Result<std::sync::MutexGuard<'_, SegmentIndex>, StateError> {
        self.segments.lock().map_err(|_| {
            StateError("segment index poisoned (a commit panicked); restart jicha".into())
        })
    }

    /// Queues a commit's segment writes and unlinks; returns the keys written.
    fn queue_records(
        &self,
        p: &mut redis::Pipeline,
        changes: &RecordChanges,
    ) -> Result<Vec<String>, StateError> {
        let SegmentPlan { writes, unlink } = self.index()?.plan(&self.prefix, changes);
        let mut written = Vec::with_capacity(writes.len());
        for (key, blob) in writes {
            p.set(&key, blob).ignore();
            written.push(key);
        }
        // One UNLINK per few thousand keys: Redis frees the values in the background.
        for keys in unlink.chunks(4096) {
            p.unlink(keys).ignore();
        }
        Ok(written)
    }

    async fn hvals<T: DeserializeOwned>(&self, name: &str) -> Result<Vec<T>, StateError> {
        let mut c = self.conn.clone();
        let vals: Vec<String> = c.hvals(self.key(name)).await.map_err(err(name))?;
        vals.iter()
            .map(|v| {
                serde_json::from_str(v)
                    .map_err(|e| StateError(format!("{name}: stored value unreadable: {e}")))
            })
            .collect()
    }

    async fn list<T: DeserializeOwned>(&self, name: &str) -> Result<Vec<T>, StateError> {
        let mut c = self.conn.clone();
        let vals: Vec<String> = c.lrange(self.key(name), 0, -1).await.map_err(err(name))?;
        Ok(vals
            .iter()
            .filter_map(|v| serde_json::from_str(v).ok())
            .collect())
    }

    /// Every stored record, oldest commit first. Segment keys are indexed
    /// before records of the per-meter layout of earlier versions are
    /// migrated, so the migrated segment gets a sequence number of its own.
    async fn load_records(&self) -> Result<Vec<Record>, StateError> {
        let mut c = self.conn.clone();
        let keys = scan_keys(&mut c, &format!("{}seg:*", self.prefix))
            .await
            .map_err(err("scan"))?;
        let mut found = Vec::new();
        for key in keys {
            match SegmentKey::parse(&self.prefix, &key) {
                Some(k) => {
                    self.index()?.restore(&k, key.clone());
                    found.push((k, key));
                }
                None => tracing::warn!(%key, "key under seg: that is not a segment skipped"),
            }
        }
        for key in self.migrate_legacy_records().await? {
            if let Some(k) = SegmentKey::parse(&self.prefix, &key) {
                found.push((k, key));
            }
        }
        let mut segments = Vec::with_capacity(found.len());
        for chunk in found.chunks(64) {
            let mut p = redis::pipe();
            for (_, key) in chunk {
                p.get(key);
            }
            let blobs: Vec<Option<Vec<u8>>> = p.query_async(&mut c).await.map_err(err("get"))?;
            for ((k, key), blob) in chunk.iter().zip(blobs) {
                if let Some(blob) = blob {
                    segments.push((k.clone(), key.clone(), blob));
                }
            }
        }
        Ok(segments::records_of(
            segments,
            |key, e| tracing::warn!(%key, error = %e, "stored segment skipped"),
        ))
    }

    /// Rewrites the records of the per-meter hashes (`rec:{stream}:{meter}`)
    /// earlier versions wrote as segments, in one transaction that also
    /// deletes the hashes. Returns the segments' keys.
    async fn migrate_legacy_records(&self) -> Result<Vec<String>, StateError> {
        let mut c = self.conn.clone();
        let keys = scan_keys(&mut c, &format!("{}rec:*", self.prefix))
            .await
            .map_err(err("scan"))?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for chunk in keys.chunks(500) {
            let mut p = redis::pipe();
            for k in chunk {
                p.hvals(k);
            }
            let vals: Vec<Vec<Vec<u8>>> = p.query_async(&mut c).await.map_err(err("hvals"))?;
            for (key, vals) in chunk.iter().zip(vals) {
                let Some(meter) = self.meter_of(key) else {
                    tracing::warn!(%key, "key under rec: without a meter id skipped");
                    continue;
                };
                for v in vals {
                    match read_record(&meter, &v) {
                        Ok(r) => out.push(r),
                        Err(e) => tracing::warn!(%key, error = %e, "stored record skipped"),
                    }
                }
            }
        }
        let changes = RecordChanges {
            puts: out,
            evicted: None,
        };
        let mut p = redis::pipe();
        p.atomic();
        let written = self.queue_records(&mut p, &changes)?;
        for chunk in keys.chunks(4096) {
            p.unlink(chunk).ignore();
        }
        p.query_async::<()>(&mut c)
            .await
            .map_err(err("migrate records"))?;
        tracing::info!(
            records = changes.puts.len(),
            keys = keys.len(),
            "records of the per-meter layout migrated to segments"
        );
        Ok(written)
    }
}

/// Every key matching `pattern`, by SCAN (KEYS would block Redis).
pub async fn scan_keys<C: redis::aio::ConnectionLike + Send>(
    con: &mut C,
    pattern: &str,
) -> redis::RedisResult<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(con)
            .await?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// A stored record: the binary form, or JSON as earlier versions wrote it.
fn read_record(meter: &MeterId, v: &[u8]) -> Result<Record, String> {
    if record_codec::is_binary(v) {
        record_codec::decode(meter, v).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(v).map_err(|e| format!("stored JSON record unreadable: {e}"))
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StateError> {
    serde_json::to_string(v).map_err(|e| StateError(format!("serialise: {e}")))
}

impl StateBackend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn load(&self) -> BoxFuture<'_, Result<Snapshot, StateError>> {
        Box::pin(async move {
            let mut c = self.conn.clone();
            let wm: Vec<(String, i64)> = c.hgetall(self.key("wm")).await.map_err(err("wm"))?;
            let progress: Vec<(String, i64)> = c
                .hgetall(self.key("progress"))
                .await
                .map_err(err("progress"))?;
            Ok(Snapshot {
                records: self.load_records().await?,
                watermarks: wm
                    .into_iter()
                    .filter_map(|(s, t)| Stream::parse(&s).map(|s| (s, t)))
                    .collect(),
                progress: progress.into_iter().collect(),
                workorders: self.hvals::<WorkOrder>("wo").await?,
                suppressed: self.list::<SuppressedAlert>("suppressed").await?,
                dead_letters: self.list::<DeadLetter>("deadletters").await?,
                whitelist: self.hvals::<WhitelistEntry>("whitelist").await?,
                customers: self.hvals::<Customer>("customers").await?,
                billing: self.hvals::<BillingPeriod>("billing").await?,
                themes: self.hvals::<StoredTheme>("themes").await?,
                outbox_seq: self.load_outbox_seq().await?,
            })
        })
    }

    fn commit<'a>(&'a self, c: &'a Commit) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let mut p = redis::pipe();
            p.atomic();
            self.queue_records(&mut p, &c.records)?;
            for (s, t) in &c.watermarks {
                p.hset(self.key("wm"), s.name(), *t).ignore();
            }
            for (theme, t) in &c.progress {
                p.hset(self.key("progress"), theme, *t).ignore();
            }
            for (id, w) in &c.workorders {
                p.hset(self.key("wo"), id, json(w)?).ignore();
            }
            if !c.suppressed.is_empty() {
                let vals: Vec<String> = c.suppressed.iter().map(json).collect::<Result<_, _>>()?;
                p.rpush(self.key("suppressed"), vals).ignore();
                p.ltrim(self.key("suppressed"), -(KEEP_SUPPRESSED as isize), -1)
                    .ignore();
            }
            if !c.dead_letters.is_empty() {
                let vals: Vec<String> =
                    c.dead_letters.iter().map(json).collect::<Result<_, _>>()?;
                p.rpush(self.key("deadletters"), vals).ignore();
                p.ltrim(self.key("deadletters"), -(KEEP_DEAD_LETTERS as isize), -1)
                    .ignore();
            }
            for (id, e) in &c.whitelist {
                match e {
                    Some(e) => p.hset(self.key("whitelist"), id, json(e)?).ignore(),
                    None => p.hdel(self.key("whitelist"), id).ignore(),
                };
            }
            for (id, cust) in &c.customers {
                p.hset(self.key("customers"), id, json(cust)?).ignore();
            }
            for (period, b) in &c.billing {
                p.hset(self.key("billing"), period, json(b)?).ignore();
            }
            for (id, t) in &c.themes {
                match t {
                    Some(t) => p.hset(self.key("themes"), id, json(t)?).ignore(),
                    None => p.hdel(self.key("themes"), id).ignore(),
                };
            }
            self.queue_outbox(&mut p, c)?;
            let mut conn = self.conn.clone();
            // Bounded: a commit that cannot finish fails and is retried,
            // rather than holding the monitor (and its API) indefinitely.
            match tokio::time::timeout(COMMIT_TIMEOUT, p.query_async::<()>(&mut conn)).await {
                Ok(Ok(())) => {
                    if let Some(e) = &c.records.evicted {
                        self.index()?.evicted(e);
                    }
                    Ok(())
                }
                Ok(Err(e)) => Err(err("commit")(e)),
                Err(_) => Err(StateError(format!(
                    "redis commit: no answer within {} s",
                    COMMIT_TIMEOUT.as_secs()
                ))),
            }
        })
    }

    fn register_sinks<'a>(&'a self, sinks: &'a [String]) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(self.register(sinks))
    }

    fn outbox_pending<'a>(
        &'a self,
        sink: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<PendingEvents, StateError>> {
        Box::pin(self.pending(sink, limit))
    }

    fn mark_delivered<'a>(
        &'a self,
        sink: &'a str,
        upto: EventId,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(self.mark(sink, upto))
    }

    fn put_sink_status<'a>(
        &'a self,
        sink: &'a str,
        status: &'a SinkStatus,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(self.put_status(sink, status))
    }

    fn dead_letter<'a>(
        &'a self,
        sink: &'a str,
        upto: EventId,
        dead: &'a [SinkDeadLetter],
        status: &'a SinkStatus,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(RedisBackend::dead_letter(self, sink, upto, dead, status))
    }

    fn sink_reports(&self) -> BoxFuture<'_, Result<Vec<SinkReport>, StateError>> {
        Box::pin(self.reports())
    }

    fn sink_dead_letters<'a>(
        &'a self,
        sink: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<SinkDeadLetter>, StateError>> {
        Box::pin(self.dead_letters(sink, limit))
    }
}
