//! The dispatcher against the memory backend and a scripted sink: retries
//! with backoff, permanent refusals isolated to the events that cause
//! them, dead letters with progress moved past them, filters, shutdown
//! while waiting, and the drain at exit.

use super::*;
use crate::metrics::Metrics;
use crate::outbox::{EventId, EventKind, OutboxEvent, RetryPolicy};
use crate::state::{Commit, MemoryBackend, StateBackend};
use crate::theme::Severity;
use crate::workorder::{Escalation, HistoryAction, Status};
use futures::future::BoxFuture;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};

fn event(id: u64, severity: Severity) -> OutboxEvent {
    OutboxEvent {
        id: EventId(id),
        kind: EventKind::WorkorderOpened,
        at: 1_000,
        workorder_id: format!("WO{id:010}"),
        theme: "over_capacity".into(),
        customer_id: crate::ids::CustomerId::new("C1"),
        org_code: "41/4107/410727".into(),
        severity,
        from: Status::Open,
        to: Status::Open,
        action: HistoryAction::Create,
        actor: None,
        hits: 1,
        escalation: Escalation::None,
        window_start: None,
        window_end: None,
        assigned_org: None,
        estimated_loss_yuan: None,
    }
}

/// Fails its first `fail_first` deliveries (retryably), refuses for good
/// any batch holding an id in `reject`, and records what it took.
struct Scripted {
    name: String,
    fail_first: AtomicU32,
    reject: BTreeSet<u64>,
    min_severity: Severity,
    policy: RetryPolicy,
    calls: AtomicU32,
    got: Mutex<Vec<u64>>,
}

impl Scripted {
    fn new(name: &str) -> Scripted {
        Scripted {
            name: name.into(),
            fail_first: AtomicU32::new(0),
            reject: BTreeSet::new(),
            min_severity: Severity::Info,
            policy: RetryPolicy {
                max_attempts: 4,
                initial: Duration::from_millis(1),
                max: Duration::from_millis(4),
            },
            calls: AtomicU32::new(0),
            got: Mutex::new(Vec::new()),
        }
    }

    fn got(&self) -> Vec<u64> {
        self.got.lock().unwrap().clone()
    }
}

impl Sink for Scripted {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &str {
        "scripted"
    }
    fn accepts(&self, e: &OutboxEvent) -> bool {
        e.severity >= self.min_severity
    }
    fn retry(&self) -> RetryPolicy {
        self.policy
    }
    fn deliver<'a>(&'a self, events: &'a [OutboxEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail_first.load(Ordering::SeqCst) > 0 {
                self.fail_first.fetch_sub(1, Ordering::SeqCst);
                return Err(SinkError::Delivery {
                    sink: self.name.clone(),
                    message: "HTTP 503".into(),
                });
            }
            if let Some(bad) = events.iter().find(|e| self.reject.contains(&e.id.0)) {
                return Err(SinkError::Rejected {
                    sink: self.name.clone(),
                    message: format!("HTTP 400 for event {}", bad.id.0),
                });
            }
            self.got
                .lock()
                .unwrap()
                .extend(events.iter().map(|e| e.id.0));
            Ok(())
        })
    }
}

struct Rig {
    backend: Arc<MemoryBackend>,
    d: Arc<Dispatcher>,
    metrics: Metrics,
    stop: watch::Sender<bool>,
}

async fn rig(sinks: Vec<Arc<Scripted>>, events: Vec<OutboxEvent>) -> Rig {
    let backend = Arc::new(MemoryBackend::default());
    let metrics = Metrics::new();
    let sinks: Vec<Arc<dyn Sink>> = sinks.into_iter().map(|s| s as Arc<dyn Sink>).collect();
    let d = Arc::new(
        Dispatcher::new(backend.clone(), sinks, None)
            .unwrap()
            .with_metrics(SinkMetrics::of(&metrics)),
    );
    let (stop, rx) = watch::channel(false);
    // Registered, not started: the test drives the passes itself.
    drop(rx);
    let names: Vec<String> = d.sinks.iter().map(|s| s.name().to_string()).collect();
    backend.register_sinks(&names).await.unwrap();
    let c = Commit {
        outbox: events,
        ..Default::default()
    };
    backend.commit(&c).await.unwrap();
    Rig {
        backend,
        d,
        metrics,
        stop,
    }
}

impl Rig {
    async fn pass(&self, i: usize) -> Result<usize, DispatchError> {
        self.d.pass(i, &mut Mode::Run(self.stop.subscribe())).await
    }
    async fn report(&self, name: &str) -> crate::outbox::SinkReport {
        let all = self.backend.sink_reports().await.unwrap();
        all.into_iter().find(|r| r.name == name).unwrap()
    }
    fn counter(&self, c: &prometheus::CounterVec, sink: &str) -> f64 {
        c.with_label_values(&[sink]).get()
    }
}

#[tokio::test]
async fn a_retryable_failure_is_retried_until_it_goes_through() {
    let s = Arc::new(Scripted::new("s"));
    s.fail_first.store(2, Ordering::SeqCst);
    let r = rig(
        vec![s.clone()],
        (1..=3).map(|i| event(i, Severity::High)).collect(),
    )
    .await;
    assert_eq!(r.pass(0).await.unwrap(), 3);
    assert_eq!(s.got(), vec![1, 2, 3]);
    assert_eq!(s.calls.load(Ordering::SeqCst), 3);
    let rep = r.report("s").await;
    assert_eq!((rep.delivered, rep.backlog()), (EventId(3), 0));
    assert_eq!(rep.status.failures, 2);
    assert_eq!(rep.status.dead_letters, 0);
    assert!(rep.status.last_error.unwrap().contains("HTTP 503"));
    assert_eq!(r.counter(&r.metrics.sink_delivered, "s"), 3.0);
    assert_eq!(r.counter(&r.metrics.sink_failures, "s"), 2.0);
    assert_eq!(
        r.metrics.outbox_backlog.with_label_values(&["s"]).get(),
        0.0
    );
    assert_eq!(r.pass(0).await.unwrap(), 0, "nothing left");
}

#[tokio::test]
async fn a_refused_event_is_isolated_and_dead_lettered_the_others_delivered() {
    let mut s = Scripted::new("s");
    s.reject.insert(2);
    let s = Arc::new(s);
    let r = rig(
        vec![s.clone()],
        (1..=3).map(|i| event(i, Severity::High)).collect(),
    )
    .await;
    assert_eq!(r.pass(0).await.unwrap(), 3);
    // The batch once (refused at once, no retries), then each on its own.
    assert_eq!(s.calls.load(Ordering::SeqCst), 4);
    assert_eq!(s.got(), vec![1, 3]);
    let rep = r.report("s").await;
    assert_eq!(rep.delivered, EventId(3), "progress passes the dead letter");
    assert_eq!(rep.status.dead_letters, 1);
    let dead = r.backend.sink_dead_letters("s", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event, event(2, Severity::High));
    assert_eq!(dead[0].attempts, 2);
    assert!(
        dead[0].error.contains("HTTP 400 for event 2"),
        "{}",
        dead[0].error
    );
    assert_eq!(r.counter(&r.metrics.sink_dead_letters, "s"), 1.0);
    assert_eq!(r.counter(&r.metrics.sink_delivered, "s"), 2.0);
}

#[tokio::test]
async fn a_sink_down_past_its_attempts_dead_letters_the_batch_and_goes_on() {
    let s = Arc::new(Scripted::new("s"));
    // Down for the 4 attempts and the 2 single tries; back for event 3.
    s.fail_first.store(6, Ordering::SeqCst);
    let r = rig(
        vec![s.clone()],
        (1..=2).map(|i| event(i, Severity::High)).collect(),
    )
    .await;
    assert_eq!(r.pass(0).await.unwrap(), 2);
    assert!(s.got().is_empty());
    let dead = r.backend.sink_dead_letters("s", 10).await.unwrap();
    let ids: Vec<u64> = dead.iter().map(|d| d.event.id.0).collect();
    assert_eq!(ids, vec![1, 2]);
    assert_eq!(dead[0].attempts, 5);
    let rep = r.report("s").await;
    assert_eq!((rep.delivered, rep.status.failures), (EventId(2), 6));
    // Later events flow again.
    r.backend
        .commit(&Commit {
            outbox: vec![event(3, Severity::High)],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(r.pass(0).await.unwrap(), 1);
    assert_eq!(s.got(), vec![3]);
}

#[tokio::test]
async fn filtered_events_are_passed_not_delivered_and_other_sinks_unaffected() {
    let mut picky = Scripted::new("picky");
    picky.min_severity = Severity::High;
    let picky = Arc::new(picky);
    let all = Arc::new(Scripted::new("all"));
    let evs = vec![
        event(1, Severity::Low),
        event(2, Severity::Critical),
        event(3, Severity::Medium),
    ];
    let r = rig(vec![picky.clone(), all.clone()], evs).await;
    assert_eq!(r.pass(0).await.unwrap(), 3);
    assert_eq!(picky.got(), vec![2]);
    assert_eq!(r.counter(&r.metrics.sink_delivered, "picky"), 1.0);
    assert_eq!(r.report("picky").await.delivered, EventId(3));
    // The other sink has passed nothing yet: all three wait for it.
    assert_eq!(r.report("all").await.backlog(), 3);
    assert_eq!(r.pass(1).await.unwrap(), 3);
    assert_eq!(all.got(), vec![1, 2, 3]);

    // Only filtered-out events: passed without a call.
    r.backend
        .commit(&Commit {
            outbox: vec![event(4, Severity::Info)],
            ..Default::default()
        })
        .await
        .unwrap();
    let calls = picky.calls.load(Ordering::SeqCst);
    assert_eq!(r.pass(0).await.unwrap(), 1);
    assert_eq!(picky.calls.load(Ordering::SeqCst), calls);
    assert_eq!(r.report("picky").await.delivered, EventId(4));
}

#[tokio::test]
async fn shutdown_while_waiting_to_retry_keeps_the_events_pending() {
    let mut s = Scripted::new("s");
    s.fail_first.store(100, Ordering::SeqCst);
    s.policy = RetryPolicy {
        max_attempts: 0,
        initial: Duration::from_secs(3600),
        max: Duration::from_secs(3600),
    };
    let s = Arc::new(s);
    let r = rig(vec![s.clone()], vec![event(1, Severity::High)]).await;
    let d = r.d.clone();
    let mut mode = Mode::Run(r.stop.subscribe());
    let task = tokio::spawn(async move { d.pass(0, &mut mode).await });
    // Wait until the first attempt failed, then stop.
    for _ in 0..1000 {
        if s.calls.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    r.stop.send(true).unwrap();
    let res = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the pass returns at shutdown, not after its hour of backoff")
        .unwrap();
    assert!(matches!(res, Err(DispatchError::Stopped)), "{res:?}");
    assert_eq!(r.report("s").await.delivered, EventId(0));
    assert!(r
        .backend
        .sink_dead_letters("s", 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn drain_tries_once_keeps_a_failing_sinks_events_and_serves_the_others() {
    let down = Arc::new(Scripted::new("down"));
    down.fail_first.store(100, Ordering::SeqCst);
    let up = Arc::new(Scripted::new("up"));
    let r = rig(
        vec![down.clone(), up.clone()],
        vec![event(1, Severity::High)],
    )
    .await;
    assert!(r.d.drain().await.is_err());
    assert_eq!(down.calls.load(Ordering::SeqCst), 1);
    assert_eq!(up.got(), vec![1]);
    assert_eq!(r.report("down").await.delivered, EventId(0));
    assert!(r
        .backend
        .sink_dead_letters("down", 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn counters_survive_a_restart_of_the_dispatcher() {
    let mut s = Scripted::new("s");
    s.reject.insert(1);
    let s = Arc::new(s);
    let r = rig(vec![s.clone()], vec![event(1, Severity::High)]).await;
    r.pass(0).await.unwrap();
    let again = Arc::new(
        Dispatcher::new(r.backend.clone(), vec![s.clone() as Arc<dyn Sink>], None).unwrap(),
    );
    let (_tx, rx) = watch::channel(true);
    for t in again.start(rx).await.unwrap() {
        t.await.unwrap();
    }
    let st = again.status[0].lock().unwrap().clone();
    assert_eq!(
        (st.kind.as_str(), st.failures, st.dead_letters),
        ("scripted", 1, 1)
    );
}
