//! The runner with a source written here (an in-process channel of load
//! messages) over the in-memory state backend, whose commits can be made to
//! fail: acknowledgements come only after the commit that covers them, and a
//! failing commit holds them back until a retry succeeds.

use super::*;
use crate::archive::Archive;
use crate::outbox::EventId;
use crate::records::Record;
use crate::state::{Commit, MemoryBackend, PendingEvents, Snapshot, StateBackend};
use crate::MonitorConfig;
use futures::future::BoxFuture;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// 2026-11-03T10:00+08:00; message `i` carries the load point `i` quarters later.
const BASE_MS: i64 = 1_793_671_200_000;

fn ts_of(id: u32) -> i64 {
    BASE_MS + i64::from(id) * 900_000
}

/// The in-memory backend, with commits that fail while `fail` is set; it
/// remembers the instants of the load points it has committed.
#[derive(Default)]
struct Flaky {
    inner: MemoryBackend,
    fail: AtomicBool,
    committed: Mutex<BTreeSet<i64>>,
    failures: Mutex<u32>,
    failed: tokio::sync::Notify,
}

impl StateBackend for Flaky {
    fn name(&self) -> &'static str {
        "flaky-memory"
    }

    fn load(&self) -> BoxFuture<'_, Result<Snapshot, StateError>> {
        self.inner.load()
    }

    fn register_sinks<'a>(&'a self, sinks: &'a [String]) -> BoxFuture<'a, Result<(), StateError>> {
        self.inner.register_sinks(sinks)
    }

    fn outbox_pending<'a>(
        &'a self,
        sink: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<PendingEvents, StateError>> {
        self.inner.outbox_pending(sink, limit)
    }

    fn mark_delivered<'a>(
        &'a self,
        sink: &'a str,
        upto: EventId,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        self.inner.mark_delivered(sink, upto)
    }

    fn commit<'a>(&'a self, c: &'a Commit) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            if self.fail.load(Ordering::SeqCst) {
                *self.failures.lock().unwrap() += 1;
                self.failed.notify_waiters();
                return Err(StateError("injected: backend down".into()));
            }
            self.inner.commit(c).await?;
            let mut committed = self.committed.lock().unwrap();
            for r in &c.records.puts {
                if let Record::Load(l) = r {
                    committed.insert(l.ts);
                }
            }
            Ok(())
        })
    }
}

impl Flaky {
    fn failures(&self) -> u32 {
        *self.failures.lock().unwrap()
    }
}

/// Each acknowledged message id, and whether its load point had been
/// committed when it was acknowledged.
type AckLog = tokio::sync::watch::Sender<Vec<(u32, bool)>>;

struct ChannelSource {
    rx: mpsc::UnboundedReceiver<Message<u32>>,
    log: Arc<AckLog>,
    backend: Arc<Flaky>,
}

struct Acks {
    log: Arc<AckLog>,
    backend: Arc<Flaky>,
}

impl Acknowledge<u32> for Acks {
    fn acknowledge(&self, acks: Vec<u32>) {
        let committed = self.backend.committed.lock().unwrap().clone();
        self.log.send_modify(|log| {
            log.extend(acks.iter().map(|&id| (id, committed.contains(&ts_of(id)))))
        });
    }
}

impl Source for ChannelSource {
    type Ack = u32;
    type Acknowledger = Acks;

    fn acknowledger(&self) -> Acks {
        Acks {
            log: self.log.clone(),
            backend: self.backend.clone(),
        }
    }

    async fn next(&mut self) -> Option<Message<u32>> {
        self.rx.recv().await
    }
}

fn message(id: u32) -> Message<u32> {
    let t = chrono::DateTime::from_timestamp_millis(ts_of(id))
        .unwrap()
        .to_rfc3339();
    Message {
        stream: Some(crate::records::Stream::Load),
        origin: format!("test/{id}"),
        payload: Ok(format!(r#"{{"meter_id":"M1","ts":"{t}","p_kw":5}}"#).into_bytes()),
        ack: id,
    }
}

struct Rig {
    backend: Arc<Flaky>,
    tx: mpsc::UnboundedSender<Message<u32>>,
    acked: tokio::sync::watch::Receiver<Vec<(u32, bool)>>,
    run: JoinHandle<RunReport>,
}

async fn rig() -> Rig {
    let backend = Arc::new(Flaky::default());
    let archive = Archive::parse_document(
        r#"{"customers":[{"customer_id":"C1","org_code":"41/4107/410727","usage_category":"large_industry",
        "tariff_kind":"two_part","contract_kva":400,"meters":[{"meter_id":"M1","multiplier":1}]}]}"#,
    )
    .unwrap();
    let monitor = Monitor::open(
        MonitorConfig::default(),
        backend.clone(),
        Vec::new(),
        Some(archive),
    )
    .await
    .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let (log, acked) = tokio::sync::watch::channel(Vec::new());
    let source = ChannelSource {
        rx,
        log: Arc::new(log),
        backend: backend.clone(),
    };
    let settings = BatchSettings {
        max_messages: 4,
        max_wait: Duration::from_millis(5),
    };
    // The shutdown sender is dropped: this run ends with its input.
    let (_, shutdown) = watch::channel(false);
    let run = tokio::spawn(run(monitor, source, settings, shutdown));
    Rig {
        backend,
        tx,
        acked,
        run,
    }
}

async fn acked_at_least(rig: &mut Rig, n: usize) -> Vec<(u32, bool)> {
    tokio::time::timeout(
        Duration::from_secs(10),
        rig.acked.wait_for(|log| log.len() >= n),
    )
    .await
    .expect("acknowledgements did not come within 10 s")
    .unwrap()
    .clone()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn every_message_is_acknowledged_once_and_only_after_its_commit() {
    runtime().block_on(async {
        let mut rig = rig().await;
        for id in 0..20 {
            rig.tx.send(message(id)).unwrap();
        }
        let log = acked_at_least(&mut rig, 20).await;
        let ids: Vec<u32> = log.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, (0..20).collect::<Vec<_>>(), "each once, in order");
        assert!(
            log.iter().all(|(_, committed)| *committed),
            "acknowledged before its commit: {log:?}"
        );
        drop(rig.tx);
        let report = rig.run.await.unwrap();
        assert_eq!((report.messages, report.accepted), (20, 20));
        assert!(report.input_ended && report.all_committed, "{report:?}");
    });
}

#[test]
fn a_failing_commit_holds_acknowledgements_back_until_a_retry_succeeds() {
    runtime().block_on(async {
        let mut rig = rig().await;
        rig.tx.send(message(0)).unwrap();
        acked_at_least(&mut rig, 1).await;

        rig.backend.fail.store(true, Ordering::SeqCst);
        {
            let failed = rig.backend.failed.notified();
            tokio::pin!(failed);
            failed.as_mut().enable();
            rig.tx.send(message(1)).unwrap();
            rig.tx.send(message(2)).unwrap();
            tokio::time::timeout(Duration::from_secs(10), failed)
                .await
                .expect("the commit of messages 1-2 was never attempted");
        }
        // Two more failed retries: the runner keeps the acks back meanwhile.
        let first_failures = rig.backend.failures();
        while rig.backend.failures() < first_failures + 2 {
            let more = rig.backend.failed.notified();
            tokio::time::timeout(Duration::from_secs(10), more)
                .await
                .expect("the failed commit was not retried");
        }
        // Taken while the commit is failing: input is paused, not dropped.
        rig.tx.send(message(3)).unwrap();
        assert_eq!(
            rig.acked
                .borrow()
                .iter()
                .map(|(id, _)| *id)
                .collect::<Vec<_>>(),
            [0],
            "nothing past message 0 may be acknowledged while its commit fails"
        );

        rig.backend.fail.store(false, Ordering::SeqCst);
        let log = acked_at_least(&mut rig, 4).await;
        assert_eq!(
            log.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert!(
            log.iter().all(|(_, c)| *c),
            "acknowledged before its commit: {log:?}"
        );
        drop(rig.tx);
        let report = rig.run.await.unwrap();
        assert_eq!(report.accepted, 4);
        assert!(report.all_committed, "{report:?}");
    });
}
