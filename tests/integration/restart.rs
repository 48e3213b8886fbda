//! State survives a crash: Redis keeps the work orders, the persistent MQTT
//! session keeps what was published while the process was down.

use crate::support::*;

#[test]
fn restart_keeps_workorders_and_processes_messages_sent_while_down() {
    let t = |h, m| ts(2026, 11, 3, h, m);
    let mut env = Env::start(&archive(vec![
        customer("CA", 400, &[("MA", "1")]),
        customer("CB", 400, &[("MB", "1")]),
    ]));
    env.loads(vec![
        load("MA", t(10, 0), 500.0),
        load("MA", t(10, 15), 510.0),
        load("MA", t(10, 30), 100.0),
        load(FILL_METER, t(12, 0), 1.0),
    ]);
    let before = env.wait_wo("over_capacity", "CA", |_| true);
    assert_eq!(before["hits"], 1);
    let id = before["id"].as_str().unwrap().to_string();

    env.kill_app();
    // Published while jicha is down: a second hit for CA, a first for CB,
    // and the point that closes their window.
    env.loads(vec![
        load("MA", t(13, 0), 600.0),
        load("MB", t(13, 0), 600.0),
        load("MA", t(13, 15), 600.0),
        load("MB", t(13, 15), 600.0),
    ]);
    env.loads(vec![load(FILL_METER, t(15, 0), 1.0)]);
    env.restart_app();

    let wb = env.wait_wo("over_capacity", "CB", |_| true);
    assert_time(&wb, "first_window_start", t(13, 0));
    let wa = env.wait_wo("over_capacity", "CA", |w| w["hits"] == 2);
    assert_eq!(
        env.wos("over_capacity", "CA").len(),
        1,
        "the later hit adds to the surviving order"
    );
    assert_eq!(wa["id"], id.as_str(), "the order keeps its id");
    assert_eq!(wa["created_at"], before["created_at"]);
    assert_time(&wa, "first_window_start", t(10, 0));
    assert_time(&wa, "last_window_end", t(13, 30));
    assert!(wa["evidence"].is_object(), "{wa}");

    // A late point after the restart: the watermark was restored too.
    let late0 = env.metric_sum("jicha_records_late_total", &[("stream", "load")]);
    env.loads(vec![load("MB", t(11, 0), 600.0)]);
    wait_until(
        std::time::Duration::from_secs(30),
        "the 11:00 point to be late after the restart",
        &env,
        || {
            (env.metric_sum("jicha_records_late_total", &[("stream", "load")]) > late0)
                .then_some(())
        },
    );
}

/// After an outage the broker hands over its backlog at full speed, faster
/// than jicha's acknowledgements go out. The backlog here is three times
/// what jicha's internal queues hold (a full ack queue once stopped the
/// source for good): it must all be ingested, and all acknowledged, so a
/// later crash gets nothing of it delivered again.
#[test]
fn a_backlog_larger_than_the_internal_queues_is_ingested_and_acknowledged() {
    const MESSAGES: i64 = 30_000;
    let start = ts(2025, 1, 1, 0, 0);
    let mut env = Env::start(&archive(vec![customer("CA", 100_000, &[("MA", "1")])]));
    env.kill_app();
    for i in 0..MESSAGES {
        env.loads(vec![load("MA", start.plus_min(15 * i), 1.0)]);
    }
    env.restart_app();
    let mut last = (0.0, std::time::Instant::now());
    wait_until(
        std::time::Duration::from_secs(300),
        "the whole backlog to be ingested",
        &env,
        || {
            let n = env.ingested("load");
            if n >= MESSAGES as f64 {
                return Some(());
            }
            if n > last.0 {
                last = (n, std::time::Instant::now());
            }
            assert!(
                last.1.elapsed() < std::time::Duration::from_secs(30),
                "ingestion stopped at {n} of {MESSAGES} load records for 30 s; stderr:\n{}",
                env.app_stderr()
            );
            None
        },
    );
    // Crash once every PUBACK is written to the broker's socket, and the
    // broker has had a moment to read them: a process killed with unread
    // input resets its connection (RST), and the broker's kernel drops what
    // Mosquitto had not read yet. Mosquitto offers no per-session count of
    // unacknowledged messages to wait on instead.
    wait_until(
        std::time::Duration::from_secs(60),
        "a PUBACK for every load record",
        &env,
        || {
            let sent = env.metric_sum("jicha_source_acks_sent_total", &[("source", "mqtt")]);
            (sent >= MESSAGES as f64).then_some(())
        },
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    env.restart_app();
    // A new point, published after the crash, arrives after anything the
    // broker still held for the session.
    let before = env.ingested("load");
    let next = start.plus_min(15 * MESSAGES);
    env.loads(vec![load("MA", next, 1.0)]);
    env.wait_ingested("load", before + 1.0);
    let redelivered = env.metric_sum("jicha_records_late_total", &[("stream", "load")])
        + env.metric_sum("jicha_records_duplicate_total", &[("stream", "load")]);
    assert_eq!(
        redelivered, 0.0,
        "load records delivered again after the crash: their acks never went out"
    );
}

/// Earlier versions kept records in per-meter hashes
/// (`jicha:rec:{stream}:{meter}`, binary or, older still, JSON values).
/// After an upgrade those records must still count: they are read at
/// start-up, moved to segments, and survive the next crash as segments.
#[test]
fn records_of_the_per_meter_layout_are_migrated_at_start_up() {
    use jicha_pipeline::ids::MeterId;
    use jicha_pipeline::record_codec;
    use jicha_pipeline::records::{LoadPoint, Record};
    use redis::Commands;

    let t = |h, m| ts(2026, 11, 3, h, m);
    let mut env = Env::start(&archive(vec![
        customer("CA", 400, &[("MA", "1")]),
        customer("CB", 400, &[("MB", "1")]),
    ]));
    env.kill_app();
    let point = |meter: &str, at: Ts| {
        Record::Load(LoadPoint::power_only(
            MeterId::new(meter),
            at.unix() * 1000,
            rust_decimal::Decimal::from(500),
        ))
    };
    let field = (t(10, 0).unix() * 1000).to_string();
    let mut redis = redis::Client::open(format!("redis://127.0.0.1:{}/0", env.svc.redis_port))
        .and_then(|c| c.get_connection())
        .expect("connect to the test's Redis");
    let _: () = redis
        .hset(
            "jicha:rec:load:MA",
            &field,
            record_codec::encode(&point("MA", t(10, 0))),
        )
        .unwrap();
    let _: () = redis
        .hset(
            "jicha:rec:load:MB",
            &field,
            serde_json::to_string(&point("MB", t(10, 0))).unwrap(),
        )
        .unwrap();
    env.restart_app();

    // Each stored 10:00 point (500 kW > 1.2 × 400) and a published 10:15
    // one make a window over capacity.
    env.loads(vec![
        load("MA", t(10, 15), 510.0),
        load("MB", t(10, 15), 510.0),
        load(FILL_METER, t(12, 0), 1.0),
    ]);
    for c in ["CA", "CB"] {
        let wo = env.wait_wo("over_capacity", c, |_| true);
        assert_time(&wo, "first_window_start", t(10, 0));
    }
    let old: Vec<String> = redis.keys("jicha:rec:*").unwrap();
    assert!(
        old.is_empty(),
        "per-meter hashes left after migration: {old:?}"
    );

    // A point held only in a segment survives a restart: after a clean
    // stop its message is acknowledged, so only Redis can bring it back.
    env.loads(vec![load("MA", t(13, 0), 600.0)]);
    let pattern = format!("jicha:seg:load:{}:*", t(13, 0).unix() * 1000);
    wait_until(
        std::time::Duration::from_secs(30),
        "the 13:00 point's segment in Redis",
        &env,
        || {
            let found: Vec<String> = redis.keys(&pattern).unwrap_or_default();
            (!found.is_empty()).then_some(())
        },
    );
    let (stopped, _) = env.terminate_app(std::time::Duration::from_secs(30));
    assert!(
        stopped.is_some_and(|s| s.success()),
        "jicha did not stop cleanly: {stopped:?}"
    );
    env.restart_app();
    env.loads(vec![
        load("MA", t(13, 15), 600.0),
        load(FILL_METER, t(15, 0), 1.0),
    ]);
    let wo = env.wait_wo("over_capacity", "CA", |w| w["hits"] == 2);
    assert_time(&wo, "last_window_end", t(13, 30));
}
