//! Crash and outage reliability (docs/reliability.md): whatever happens in
//! between — SIGKILL at any point, Redis or the broker restarting, SIGTERM —
//! the final work orders equal those of an uninterrupted run: nothing lost,
//! nothing doubled. And bad input at volume is counted, dead-lettered and
//! survived.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// ───────────────────────────── the stream ─────────────────────────────

const CUSTOMERS: usize = 20;
/// 15-minute load points: Nov 1 00:00 … Nov 3 23:45.
const POINTS: i64 = 3 * 96;
const THRESHOLD_KW: f64 = 480.0; // 1.2 × 400 kVA

fn cust(k: usize) -> String {
    format!("R{:02}", k + 1)
}
fn meter(k: usize) -> String {
    format!("RM{:02}", k + 1)
}
fn first_day() -> Day {
    day(2026, 11, 1)
}
fn point(i: i64) -> Ts {
    first_day().start().plus_min(15 * i)
}

struct Msg {
    topic: &'static str,
    payload: Vec<u8>,
}

/// What an uninterrupted run must produce, per (theme, customer):
/// first_window_start, first_window_end, last_window_end, hits.
type Expected = BTreeMap<(String, String), (Ts, Ts, Ts, u64)>;

struct Scenario {
    archive: Value,
    msgs: Vec<Msg>,
    /// After msgs[..=i]: the largest load / freeze event time (Unix s).
    load_max: Vec<Option<i64>>,
    freeze_max: Vec<Option<i64>>,
    expected: Expected,
}

/// A tiny deterministic generator (no randomness between runs).
/// 20 customers (400 kVA, one meter each, multiplier 10), three days of
/// load points with over_capacity episodes and near misses, daily freezes
/// with register reversals and valley excesses, and meter events — as ~300
/// MQTT messages in event-time order.
fn build_scenario() -> Scenario {
    let archive = archive(
        (0..CUSTOMERS)
            .map(|k| customer(&cust(k), 400, &[(&meter(k), "10")]))
            .collect(),
    );

    // ── load: base below the threshold, then episodes ──
    let mut kw: Vec<Vec<f64>> = (0..CUSTOMERS)
        .map(|k| {
            (0..POINTS)
                .map(|i| 100.0 + ((i * 7 + k as i64 * 31) % 250) as f64)
                .collect()
        })
        .collect();
    let mut rng = seeded(20261101);
    // Episodes stay clear of the last 2.5 h: the final load watermark
    // (Nov 3 22:45) must close every window they make.
    let last_start = POINTS - 10 - 5;
    for e in 0..24 {
        let k = rng.random_range(0..CUSTOMERS);
        let start = rng.random_range(0..last_start);
        let len = rng.random_range(1..=5); // 1 = a lone spike, no hit
        for i in start..start + len {
            kw[k][i as usize] = if e % 6 == 5 {
                THRESHOLD_KW // exactly at the threshold: strict >, no hit
            } else {
                481.0 + rng.random_range(0..300) as f64
            };
        }
    }
    let mut expected: Expected = BTreeMap::new();
    for (k, v) in kw.iter().enumerate() {
        let starts: Vec<i64> = (0..POINTS - 1)
            .filter(|&i| v[i as usize] > THRESHOLD_KW && v[i as usize + 1] > THRESHOLD_KW)
            .collect();
        if let (Some(&f), Some(&l)) = (starts.first(), starts.last()) {
            assert!(l + 2 <= POINTS - 4, "episode too close to the end");
            expected.insert(
                ("over_capacity".into(), cust(k)),
                (point(f), point(f + 2), point(l + 2), starts.len() as u64),
            );
        }
    }

    // ── freezes: Oct 31 … Nov 3 (reg_total, reg_valley in ten-thousandths) ──
    let days: Vec<Day> = (-1..3).map(|d| first_day().plus(d)).collect();
    let mut freezes: Vec<Vec<Value>> = vec![Vec::new(); days.len()];
    for k in 0..CUSTOMERS {
        let mut total = 10_000_000i64 + k as i64 * 1_000_000;
        let mut valley = 1_000_000i64;
        for (d, &date) in days.iter().enumerate() {
            if d > 0 {
                let dv = match (cust(k).as_str(), d) {
                    // 400 × 10 = 4000 kWh > 3840 on Nov 1; nothing on Nov 2.
                    ("R11", 1) => 4_000_000,
                    ("R11", 2) => 0,
                    // 3840 = the limit on Nov 1 (no hit); 7681 > 7680 on Nov 2.
                    ("R15", 1) => 3_840_000,
                    ("R15", 2) => 3_841_000,
                    _ => 100_000,
                };
                valley += dv;
                total += dv + 200_000;
            }
            let reg_total = match (cust(k).as_str(), d) {
                // Back on Nov 2 only.
                ("R03", 2) => total - 400_000,
                // Back on Nov 1 and again on Nov 2.
                ("R07", 1) => 9_990_000,
                ("R07", 2) => 9_980_000,
                _ => total,
            };
            freezes[d].push(freeze_valley(&meter(k), date, r4(reg_total), r4(valley)));
        }
    }
    let nov = |d: i64| first_day().plus(d - 1);
    expected.insert(
        ("register_reversal".into(), "R03".into()),
        (nov(2).start(), nov(3).start(), nov(3).start(), 1),
    );
    expected.insert(
        ("register_reversal".into(), "R07".into()),
        (nov(1).start(), nov(2).start(), nov(3).start(), 2),
    );
    expected.insert(
        ("valley_excess".into(), "R11".into()),
        (nov(1).start(), nov(2).start(), nov(2).start(), 1),
    );
    expected.insert(
        ("valley_excess".into(), "R15".into()),
        (nov(2).start(), nov(3).start(), nov(3).start(), 1),
    );

    // ── events ──
    let events = [
        event(
            &meter(4),
            ts(2026, 11, 2, 10, 7),
            "cover_open",
            Some("start"),
        ),
        event(&meter(5), ts(2026, 11, 2, 10, 0), "voltage_loss", None),
        event(&meter(7), ts(2026, 11, 2, 11, 0), "cover_open", Some("end")),
        event(&meter(4), ts(2026, 11, 3, 3, 0), "cover_open", None),
    ];
    let c05 = ts(2026, 11, 2, 10, 7);
    expected.insert(
        ("meter_cover_open".into(), "R05".into()),
        (c05, c05, ts(2026, 11, 3, 3, 0), 2),
    );

    // ── messages in event-time order ──
    let mut msgs = Vec::new();
    let mut load_max = Vec::new();
    let mut freeze_max = Vec::new();
    let (mut lm, mut fm) = (None, None);
    let mut push = |msgs: &mut Vec<Msg>, topic, v: Value, l: Option<i64>, f: Option<i64>| {
        lm = l.or(lm);
        fm = f.or(fm);
        msgs.push(Msg {
            topic,
            payload: v.to_string().into_bytes(),
        });
        load_max.push(lm);
        freeze_max.push(fm);
    };
    let freeze_ts = |d: usize| days[d].plus(1).start().unix();
    push(
        &mut msgs,
        FREEZE_TOPIC,
        Value::Array(freezes[0].clone()),
        None,
        Some(freeze_ts(0)),
    );
    for i in 0..POINTS {
        let recs: Vec<Value> = (0..CUSTOMERS)
            .map(|k| load(&meter(k), point(i), kw[k][i as usize]))
            .collect();
        push(
            &mut msgs,
            LOAD_TOPIC,
            Value::Array(recs),
            Some(point(i).unix()),
            None,
        );
        for e in &events {
            let t = parse_rfc3339(e["ts"].as_str().unwrap());
            if t >= point(i).unix() && t < point(i + 1).unix() {
                push(&mut msgs, EVENT_TOPIC, json!([e]), None, None);
            }
        }
        if (i + 1) % 96 == 0 {
            let d = ((i + 1) / 96) as usize; // Nov 1 → index 1
            push(
                &mut msgs,
                FREEZE_TOPIC,
                Value::Array(freezes[d].clone()),
                None,
                Some(freeze_ts(d)),
            );
        }
    }
    assert_eq!(msgs.len(), 1 + POINTS as usize + events.len() + 3);
    Scenario {
        archive,
        msgs,
        load_max,
        freeze_max,
        expected,
    }
}

fn scenario() -> &'static Scenario {
    static S: OnceLock<Scenario> = OnceLock::new();
    S.get_or_init(build_scenario)
}

/// Publishes as fast as the broker takes it (the app gets big micro-batches).
fn publish_range(env: &Env, sc: &Scenario, r: std::ops::Range<usize>) {
    for m in &sc.msgs[r] {
        env.publisher.publish(m.topic, &m.payload);
    }
}

/// How many messages the paced publisher keeps ahead of the app.
const LAG: usize = 6;

/// Publishes at the app's pace: message i goes out once the app has
/// evaluated message i − LAG (its load watermark shows it), so the state
/// is committed batch by batch and an interruption right after the last
/// message finds a few messages in flight and a long committed history.
fn publish_paced(env: &Env, sc: &Scenario, r: std::ops::Range<usize>) {
    for i in r {
        if i >= LAG {
            if let Some(t) = sc.load_max[i - LAG] {
                let target = t - 3600;
                let deadline = Instant::now() + Duration::from_secs(60);
                while watermark(env, "load") < target {
                    assert!(
                        Instant::now() < deadline,
                        "the app did not get past message {} within 60 s",
                        i - LAG
                    );
                    std::thread::sleep(Duration::from_millis(3));
                }
            }
        }
        let m = &sc.msgs[i];
        env.publisher.publish(m.topic, &m.payload);
    }
}

// ───────────────────────────── comparing work orders ─────────────────────────────

/// JSON text with object keys sorted, whatever the map implementation.
fn canon(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut kv: Vec<(&String, &Value)> = m.iter().collect();
            kv.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = kv
                .iter()
                .map(|(k, v)| format!("{}:{}", Value::String((*k).clone()), canon(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canon).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// The deterministic part of a work order (no id, no wall-clock times).
const WO_FIELDS: [&str; 11] = [
    "theme",
    "customer_id",
    "org_code",
    "status",
    "severity",
    "first_window_start",
    "first_window_end",
    "last_window_end",
    "hits",
    "evidence",
    "estimated_loss_yuan",
];

/// All work orders, projected and sorted (a multiset: a doubled order shows).
fn wo_set(env: &Env) -> Vec<String> {
    let v = env.get("/api/v1/workorders?limit=500").ok().json();
    assert!(
        v["next_cursor"].is_null(),
        "more than 500 work orders: {}",
        v["next_cursor"]
    );
    let mut out: Vec<String> = v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {v}"))
        .iter()
        .map(|w| {
            let mut p = serde_json::Map::new();
            for f in WO_FIELDS {
                p.insert(f.into(), w.get(f).cloned().unwrap_or(Value::Null));
            }
            canon(&Value::Object(p))
        })
        .collect();
    out.sort();
    out
}

fn watermark(env: &Env, stream: &str) -> i64 {
    env.metric_sum("jicha_watermark_seconds", &[("stream", stream)]) as i64
}

/// Waits until msgs[..upto] are processed: the load and freeze watermarks
/// are where those messages put them, and every streaming theme has
/// evaluated up to them (load and event themes to the load watermark,
/// freeze themes to the freeze watermark). Returns the work orders.
#[track_caller]
fn settle_after(env: &Env, sc: &Scenario, upto: usize, what: &str) -> Vec<String> {
    let want_load = sc.load_max[upto - 1].map(|t| t - 3600);
    let want_freeze = sc.freeze_max[upto - 1].map(|t| t - 3600);
    wait_until(
        Duration::from_secs(90),
        &format!("{what}: watermarks load={want_load:?} freeze={want_freeze:?}"),
        env,
        || {
            (want_load.is_none_or(|w| watermark(env, "load") == w)
                && want_freeze.is_none_or(|w| watermark(env, "freeze") == w))
            .then_some(())
        },
    );
    wait_until(
        Duration::from_secs(60),
        &format!("{what}: themes evaluated up to the watermarks"),
        env,
        || {
            let themes = env.get("/api/v1/themes").ok().json();
            let items = themes["items"].as_array().cloned().unwrap_or_default();
            items
                .iter()
                .filter(|t| t["kind"] == "streaming" && t["enabled"] == true)
                .all(|t| {
                    let want = match t["table"].as_str() {
                        Some("meter_day") => want_freeze,
                        _ => want_load,
                    };
                    let done = t["evaluated_until"].as_str().map(parse_rfc3339);
                    want.is_none_or(|w| done.is_some_and(|d| d >= w))
                })
                .then_some(())
        },
    );
    wo_set(env)
}

#[track_caller]
fn assert_same(got: &[String], want: &[String], what: &str) {
    if got == want {
        return;
    }
    let missing: Vec<&String> = want.iter().filter(|w| !got.contains(w)).collect();
    let extra: Vec<&String> = got.iter().filter(|g| !want.contains(g)).collect();
    panic!(
        "{what}: work orders differ from the uninterrupted run ({} vs {})\n\
         missing (in the uninterrupted run only):\n  {}\n\
         extra (here only):\n  {}",
        got.len(),
        want.len(),
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
        extra
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
    );
}

/// The uninterrupted run (computed once per test process), checked against
/// the work orders the stream was built to produce.
fn baseline() -> &'static Vec<String> {
    static B: OnceLock<Vec<String>> = OnceLock::new();
    B.get_or_init(|| {
        let sc = scenario();
        let env = Env::start(&sc.archive);
        publish_range(&env, sc, 0..sc.msgs.len());
        let set = settle_after(&env, sc, sc.msgs.len(), "uninterrupted run");
        let got: Expected = set
            .iter()
            .map(|s| {
                let w: Value = serde_json::from_str(s).unwrap();
                let t = |f: &str| Ts((parse_rfc3339(w[f].as_str().unwrap()) + 8 * 3600) / 60);
                (
                    (
                        w["theme"].as_str().unwrap().to_string(),
                        w["customer_id"].as_str().unwrap().to_string(),
                    ),
                    (
                        t("first_window_start"),
                        t("first_window_end"),
                        t("last_window_end"),
                        w["hits"].as_u64().unwrap(),
                    ),
                )
            })
            .collect();
        assert_eq!(
            got.len(),
            set.len(),
            "one work order per (theme, customer): {set:#?}"
        );
        let show = |e: &Expected| {
            e.iter()
                .map(|((th, c), (a, b, l, h))| {
                    format!("{th} {c}: [{}, {}) … {} hits={h}", a.rfc(), b.rfc(), l.rfc())
                })
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        assert_eq!(
            show(&got),
            show(&sc.expected),
            "the uninterrupted run's work orders (left) are not what the stream was built to produce (right)"
        );
        for s in &set {
            assert!(s.contains("\"status\":\"open\""), "{s}");
        }
        set
    })
}

// ───────────────────────────── crash tests ─────────────────────────────

/// SIGKILL after `pct` % of the messages, publish another 10 % while the
/// app is down, restart it on the same Redis and broker, publish the rest.
fn kill9_run(pct: usize) -> Vec<String> {
    let sc = scenario();
    let n = sc.msgs.len();
    let k = n * pct / 100;
    let k2 = (k + n / 10).min(n);
    let mut env = Env::start(&sc.archive);
    publish_paced(&env, sc, 0..k);
    env.kill_app();
    publish_range(&env, sc, k..k2);
    env.restart_app();
    publish_range(&env, sc, k2..n);
    let set = settle_after(&env, sc, n, &format!("SIGKILL at {pct} %"));
    // For the log: how much the restarted process saw again (messages the
    // killed one had taken in but not acknowledged).
    let after_kill: f64 = sc.msgs[k..]
        .iter()
        .map(|m| {
            serde_json::from_slice::<Value>(&m.payload)
                .ok()
                .and_then(|v| v.as_array().map(Vec::len))
                .unwrap_or(1) as f64
        })
        .sum();
    let m = env.metrics_text();
    let seen: f64 = [
        "jicha_records_ingested_total",
        "jicha_records_duplicate_total",
    ]
    .iter()
    .map(|n| metric_sum(&m, n, &[]))
    .sum();
    eprintln!(
        "kill -9 at {pct} %: the restarted process saw {} records again ({} of them duplicates)",
        seen - after_kill,
        metric_sum(&m, "jicha_records_duplicate_total", &[])
    );
    set
}

#[test]
fn kill9_at_several_points_gives_the_same_workorders() {
    // The three interrupted runs go in parallel with the uninterrupted one.
    let runs: Vec<(usize, std::thread::Result<Vec<String>>)> = std::thread::scope(|s| {
        let hs: Vec<_> = [25usize, 50, 75]
            .into_iter()
            .map(|p| (p, s.spawn(move || kill9_run(p))))
            .collect();
        let base = baseline();
        assert!(base.len() >= 8, "the stream makes work orders: {base:#?}");
        hs.into_iter().map(|(p, h)| (p, h.join())).collect()
    });
    let base = baseline();
    for (p, r) in runs {
        match r {
            Ok(set) => assert_same(&set, base, &format!("SIGKILL at {p} %")),
            Err(e) => std::panic::resume_unwind(e),
        }
    }
}

/// A fresh app on services started with `opts`, with the first half of
/// the scenario published (paced) to it.
fn first_half_published(opts: ServiceOptions) -> (Env, &'static Scenario) {
    let sc = scenario();
    let env = Env::start_with(&sc.archive, opts);
    publish_paced(&env, sc, 0..sc.msgs.len() / 2);
    (env, sc)
}

#[test]
fn redis_restart_mid_stream_loses_nothing() {
    let (mut env, sc) = first_half_published(ServiceOptions {
        redis_aof: true,
        ..Default::default()
    });
    let (n, half) = (sc.msgs.len(), sc.msgs.len() / 2);
    env.svc.stop_redis();
    // New input while Redis is down: its commit fails.
    let down_until = (half + 15).min(n);
    publish_range(&env, sc, half..down_until);
    let health = wait_until(
        Duration::from_secs(30),
        "GET /healthz to answer 503 degraded while Redis is down",
        &env,
        || {
            let r = env.get("/healthz");
            (r.status == 503).then_some(r)
        },
    );
    let h = health.json();
    assert_eq!(h["status"], "degraded", "{h}");
    assert!(
        h["reason"].as_str().is_some_and(|s| !s.trim().is_empty()),
        "a degraded answer gives its reason: {h}"
    );
    assert!(
        env.app_exit_status().is_none(),
        "jicha exited while Redis was down"
    );
    // Still degraded after a further commit attempt failed: nothing was
    // committed meanwhile.
    let failures = env.metric_sum("jicha_state_commit_failures_total", &[]);
    wait_until(
        Duration::from_secs(30),
        "another failed commit attempt while Redis is down",
        &env,
        || (env.metric_sum("jicha_state_commit_failures_total", &[]) > failures).then_some(()),
    );
    assert_eq!(env.get("/healthz").status, 503, "Redis is still down");

    env.svc.start_redis_again();
    let back = Instant::now();
    publish_range(&env, sc, down_until..n);
    // The app's own retry backs off to 5 s at most; allow far more before
    // giving up, so that the data check below runs even when recovery is
    // slow, and judge the recovery time at the end.
    wait_until(
        Duration::from_secs(150),
        "GET /healthz to answer 200 after Redis is back",
        &env,
        || (env.get("/healthz").status == 200).then_some(()),
    );
    let recovered_after = back.elapsed();
    let set = settle_after(&env, sc, n, "Redis restart");
    assert_same(&set, baseline(), "Redis restart mid-stream");

    // What is in Redis is complete too: a fresh process reads it back.
    env.restart_app();
    assert_same(
        &wo_set(&env),
        baseline(),
        "after the Redis restart, reloaded",
    );

    assert!(
        recovered_after < Duration::from_secs(30),
        "Redis was back, but jicha stayed degraded (input paused) for {recovered_after:?} \
         (its commit retry backs off to 5 s at most)"
    );
}

#[test]
fn broker_restart_mid_stream_loses_nothing() {
    let (mut env, sc) = first_half_published(ServiceOptions {
        mosquitto_persistence: true,
        ..Default::default()
    });
    let (n, half) = (sc.msgs.len(), sc.msgs.len() / 2);
    env.svc.stop_mosquitto();
    // Alive after noticing the loss and failing to reconnect at least once.
    wait_until(
        Duration::from_secs(30),
        "jicha to log the lost MQTT connection twice (a failed reconnect)",
        &env,
        || (env.app_stderr().matches("MQTT connection lost").count() >= 2).then_some(()),
    );
    assert!(
        env.app_exit_status().is_none(),
        "jicha exited when the broker went away:\n{}",
        env.app_stderr()
    );
    env.svc.start_mosquitto_again();
    env.reconnect_publisher();
    publish_range(&env, sc, half..n);
    let set = settle_after(&env, sc, n, "broker restart");
    assert_same(&set, baseline(), "broker restart mid-stream");
    assert_eq!(env.get("/healthz").status, 200);
}

#[test]
fn sigterm_exits_zero_after_committing() {
    let sc = scenario();
    let n = sc.msgs.len();
    let half = n / 2;
    let mut env = Env::start(&sc.archive);
    publish_range(&env, sc, 0..half);
    let before = settle_after(&env, sc, half, "first half");
    assert!(!before.is_empty(), "the first half makes work orders");
    let wm_before = env.get("/api/v1/watermarks").ok().json();
    let wm_load = watermark(&env, "load");
    assert_eq!(Some(wm_load), sc.load_max[half - 1].map(|t| t - 3600));

    let (st, took) = env.terminate_app(Duration::from_secs(10));
    let st = st.unwrap_or_else(|| {
        panic!(
            "jicha did not exit within 10 s of SIGTERM; stderr:\n{}",
            env.app_stderr()
        )
    });
    assert!(
        st.success(),
        "jicha exited with {st} after SIGTERM (took {took:?}); stderr:\n{}",
        env.app_stderr()
    );
    assert!(
        !env.app_stderr().contains("panicked"),
        "{}",
        env.app_stderr()
    );

    env.restart_app();
    assert_same(&wo_set(&env), &before, "after SIGTERM and restart");
    assert_eq!(
        env.get("/api/v1/watermarks").ok().json(),
        wm_before,
        "the watermarks survive the restart"
    );
    // The gauge is checked at the end (so that the rest is checked too).
    let wm_metric_after_restart = watermark(&env, "load");
    // The restored watermark is in force: a point behind it is late.
    let late0 = env.metric_sum("jicha_records_late_total", &[("stream", "load")]);
    env.loads(vec![load(&meter(0), point(3), 100.0)]);
    wait_until(
        Duration::from_secs(30),
        "a point behind the restored watermark to count as late",
        &env,
        || {
            (env.metric_sum("jicha_records_late_total", &[("stream", "load")]) == late0 + 1.0)
                .then_some(())
        },
    );
    assert_eq!(
        watermark(&env, "load"),
        wm_load,
        "watermark after a late point"
    );

    // SIGTERM in full flow: what was taken in is committed, the rest stays
    // with the broker; the end result is the uninterrupted run's.
    let k = (half + n / 5).min(n);
    publish_paced(&env, sc, half..k);
    let (st, took) = env.terminate_app(Duration::from_secs(10));
    let st = st.unwrap_or_else(|| {
        panic!(
            "jicha did not exit within 10 s of SIGTERM under load; stderr:\n{}",
            env.app_stderr()
        )
    });
    assert!(
        st.success(),
        "jicha exited with {st} after SIGTERM under load (took {took:?}); stderr:\n{}",
        env.app_stderr()
    );
    env.restart_app();
    publish_range(&env, sc, k..n);
    let set = settle_after(&env, sc, n, "after SIGTERM under load");
    assert_same(&set, baseline(), "SIGTERM under load, restart, rest");

    assert_eq!(
        wm_metric_after_restart, wm_load,
        "jicha_watermark_seconds{{stream=\"load\"}} right after the restart (before any input) \
         should report the restored watermark (GET /api/v1/watermarks already does)"
    );
}

// ───────────────────────────── bad input at volume ─────────────────────────────

/// Expected rejections per (stream, reason).
type Rejections = BTreeMap<(&'static str, &'static str), f64>;

#[test]
fn bad_input_at_volume() {
    let t = |h: i64, m: i64| ts(2026, 11, 3, h, m);
    let env = Env::start(&archive(vec![
        customer("BA", 400, &[("BMA", "1")]),
        customer("BB", 400, &[("BMB", "1")]),
        customer("BC", 400, &[("BMC", "1")]),
    ]));

    // ── good data: 48 load timestamps (00:00 … 11:45) for three meters ──
    // BA exceeds 480 kW at 02:00 and 02:15 (one hit), BB at 05:00, 05:15 and
    // 05:30 (two hits); BC has a cover_open at 03:07; BMA's register goes
    // back on Nov 2.
    let mut good: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let mut good_count: BTreeMap<&'static str, f64> = BTreeMap::new();
    let mut add_good = |topic: &'static str, stream: &'static str, recs: Vec<Value>| {
        *good_count.entry(stream).or_default() += recs.len() as f64;
        good.push((topic, Value::Array(recs).to_string().into_bytes()));
    };
    add_good(
        FREEZE_TOPIC,
        "freeze",
        vec![freeze("BMA", day(2026, 11, 1), 100.0)],
    );
    add_good(
        FREEZE_TOPIC,
        "freeze",
        vec![freeze("BMA", day(2026, 11, 2), 99.5)],
    );
    for i in 0..48 {
        let at = t(0, 0).plus_min(15 * i);
        let kw = |m: &str| -> f64 {
            match (m, i) {
                ("BMA", 8) | ("BMA", 9) => 500.0,
                ("BMB", 20) | ("BMB", 21) | ("BMB", 22) => 600.0,
                _ => 100.0 + i as f64,
            }
        };
        add_good(
            LOAD_TOPIC,
            "load",
            ["BMA", "BMB", "BMC"]
                .iter()
                .map(|m| load(m, at, kw(m)))
                .collect(),
        );
        if i == 12 {
            add_good(
                EVENT_TOPIC,
                "event",
                vec![
                    event("BMC", t(3, 7), "cover_open", Some("start")),
                    event("BMB", t(3, 10), "voltage_loss", None),
                ],
            );
        }
    }
    add_good(
        FREEZE_TOPIC,
        "freeze",
        vec![freeze("BMA", day(2026, 11, 3), 101.0)],
    );

    // ── bad payloads ──
    let mut want: Rejections = BTreeMap::new();
    let count = |want: &mut Rejections, s: &'static str, r: &'static str, n: f64| {
        *want.entry((s, r)).or_default() += n;
    };
    // Deeply nested payloads: rejected, one rejection each; the contract
    // leaves the reason open (checked through the totals).
    let mut deep: BTreeMap<&'static str, f64> = BTreeMap::new();
    let big_pad = " ".repeat(1_100_000);
    let ts_ok = t(10, 0).rfc();
    let bad = |i: usize,
               want: &mut Rejections,
               deep: &mut BTreeMap<&'static str, f64>|
     -> (&'static str, Vec<u8>) {
        match i % 11 {
            0 => {
                count(want, "load", "malformed_json", 1.0);
                (
                    LOAD_TOPIC,
                    format!("{{\"meter_id\": \"BMA\", \"ts\": \"{ts_ok}\", \"p_kw\": ")
                        .into_bytes(),
                )
            }
            1 => {
                count(want, "load", "wrong_type", 1.0);
                (
                    LOAD_TOPIC,
                    format!("{{\"meter_id\": \"BMA\", \"ts\": \"{ts_ok}\", \"p_kw\": \"abc\"}}")
                        .into_bytes(),
                )
            }
            2 => {
                count(want, "load", "wrong_type", 1.0);
                (
                    LOAD_TOPIC,
                    format!("[{{\"meter_id\": 7, \"ts\": \"{ts_ok}\", \"p_kw\": 1}}]").into_bytes(),
                )
            }
            3 => {
                count(want, "load", "unknown_meter", 1.0);
                (
                    LOAD_TOPIC,
                    json!([load(&format!("MX{i}"), t(10, 0), 900.0)])
                        .to_string()
                        .into_bytes(),
                )
            }
            4 => {
                count(want, "load", "malformed_json", 1.0);
                let mut p = b"{\"meter_id\": \"BM".to_vec();
                p.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
                p.extend_from_slice(b"\", \"p_kw\": 1}");
                (LOAD_TOPIC, p)
            }
            5 => {
                count(want, "load", "malformed_json", 1.0);
                (LOAD_TOPIC, Vec::new())
            }
            6 => {
                count(want, "load", "not_an_object", 3.0);
                (LOAD_TOPIC, b"[1, \"x\", null]".to_vec())
            }
            7 => {
                count(want, "freeze", "malformed_json", 1.0);
                (FREEZE_TOPIC, b"{\"meter_id\": \"BMA\", \"date\": ".to_vec())
            }
            8 => {
                count(want, "event", "wrong_type", 1.0);
                (
                    EVENT_TOPIC,
                    format!("{{\"meter_id\": \"BMC\", \"ts\": \"{ts_ok}\", \"code\": 5}}")
                        .into_bytes(),
                )
            }
            9 => {
                // One batch, three bad records.
                count(want, "load", "unknown_meter", 1.0);
                count(want, "load", "wrong_type", 1.0);
                count(want, "load", "not_an_object", 1.0);
                (
                    LOAD_TOPIC,
                    format!(
                        "[{}, {{\"meter_id\": \"BMB\", \"ts\": \"{ts_ok}\", \"p_kw\": [1]}}, 42]",
                        load("MY404", t(10, 0), 1.0)
                    )
                    .into_bytes(),
                )
            }
            _ => match (i / 11) % 40 {
                // Rarely: oversized and deeply nested payloads.
                0 => {
                    // Valid JSON, over 1 MiB: BC's points would hit if used.
                    count(want, "load", "payload_too_large", 1.0);
                    let p = format!(
                        "[{}, {}{big_pad}]",
                        load("BMC", t(6, 0), 900.0),
                        load("BMC", t(6, 15), 900.0)
                    );
                    (LOAD_TOPIC, p.into_bytes())
                }
                1 => {
                    count(want, "event", "payload_too_large", 1.0);
                    let p = format!(
                        "{{\"meter_id\": \"BMB\", \"ts\": \"{ts_ok}\", \"code\": \"cover_open\", \"phase\": \"{big_pad}\"}}"
                    );
                    (EVENT_TOPIC, p.into_bytes())
                }
                2 => {
                    *deep.entry("load").or_default() += 1.0;
                    let n = 100_000;
                    (
                        LOAD_TOPIC,
                        format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes(),
                    )
                }
                3 => {
                    *deep.entry("freeze").or_default() += 1.0;
                    let n = 100_000;
                    (
                        FREEZE_TOPIC,
                        format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n)).into_bytes(),
                    )
                }
                _ => {
                    count(want, "load", "malformed_json", 1.0);
                    (LOAD_TOPIC, b"\x00\x01 not json at all".to_vec())
                }
            },
        }
    };

    let m0 = env.metrics_text();
    let ingested0 = |s: &str| metric_sum(&m0, "jicha_records_ingested_total", &[("stream", s)]);
    let rejected0 = |s: &str, r: Option<&str>| {
        let mut l = vec![("stream", s)];
        if let Some(r) = r {
            l.push(("reason", r));
        }
        metric_sum(&m0, "jicha_records_rejected_total", &l)
    };

    const BAD: usize = 3300;
    let every = BAD / good.len();
    let mut gi = 0;
    let started = Instant::now();
    for i in 0..BAD {
        let (topic, payload) = bad(i, &mut want, &mut deep);
        env.publisher.publish(topic, &payload);
        if i % every == every - 1 && gi < good.len() {
            env.publisher.publish(good[gi].0, &good[gi].1);
            gi += 1;
        }
    }
    for (topic, payload) in &good[gi..] {
        env.publisher.publish(topic, payload);
    }
    eprintln!("bad_input_at_volume: published in {:?}", started.elapsed());
    assert!(
        want[&("load", "payload_too_large")] >= 2.0 && deep.values().sum::<f64>() >= 4.0,
        "the volume includes oversized and deeply nested payloads: {want:?} {deep:?}"
    );

    // Everything counted: wait for the totals, then check they stay exact.
    let streams = ["load", "freeze", "event"];
    let total_want = |s: &str| -> f64 {
        want.iter()
            .filter(|((st, _), _)| *st == s)
            .map(|(_, n)| n)
            .sum::<f64>()
            + deep.get(s).copied().unwrap_or(0.0)
    };
    wait_until(
        Duration::from_secs(90),
        "every good and bad record to be counted",
        &env,
        || {
            let m = env.metrics_text();
            streams
                .iter()
                .all(|s| {
                    metric_sum(&m, "jicha_records_ingested_total", &[("stream", s)]) - ingested0(s)
                        >= good_count[s]
                        && metric_sum(&m, "jicha_records_rejected_total", &[("stream", s)])
                            - rejected0(s, None)
                            >= total_want(s)
                })
                .then_some(())
        },
    );
    let wa = env.wait_wo("over_capacity", "BA", |_| true);
    env.wait_wo("over_capacity", "BB", |w| w["hits"] == 2);
    env.wait_wo("register_reversal", "BA", |_| true);
    let wc = env.wait_wo("meter_cover_open", "BC", |_| true);
    // The last good load point (11:45) puts the load watermark at 10:45,
    // the freeze of Nov 3 closes Nov 2.
    env.wait_evaluated(&["over_capacity", "meter_cover_open"], t(10, 45));
    env.wait_evaluated(&["register_reversal"], day(2026, 11, 3).start());

    let m = env.metrics_text();
    for s in streams {
        assert_eq!(
            metric_sum(&m, "jicha_records_ingested_total", &[("stream", s)]) - ingested0(s),
            good_count[s],
            "jicha_records_ingested_total{{stream=\"{s}\"}}: every good record, once"
        );
        assert_eq!(
            metric_sum(&m, "jicha_records_rejected_total", &[("stream", s)]) - rejected0(s, None),
            total_want(s),
            "jicha_records_rejected_total{{stream=\"{s}\"}} over all reasons"
        );
    }
    for ((s, r), n) in &want {
        let got = metric_sum(
            &m,
            "jicha_records_rejected_total",
            &[("stream", s), ("reason", r)],
        ) - rejected0(s, Some(r));
        // A deeply nested payload may be refused as malformed JSON, as a
        // batch whose record is not an object, …: the contract leaves its
        // reason open, the per-stream totals above count it exactly.
        let slack = deep.get(s).copied().unwrap_or(0.0);
        assert!(
            got >= *n && got <= n + slack,
            "jicha_records_rejected_total{{stream=\"{s}\",reason=\"{r}\"}} is {got}, expected {n}{}",
            if slack > 0.0 {
                format!(" (+ up to {slack} deeply nested payloads)")
            } else {
                String::new()
            }
        );
    }
    assert_eq!(
        metric_sum(&m, "jicha_records_late_total", &[]),
        0.0,
        "nothing was late"
    );

    // Alive and healthy; the good data did its work, the bad did nothing.
    let mut env = env;
    assert!(
        env.app_exit_status().is_none(),
        "jicha died:\n{}",
        env.app_stderr()
    );
    let h = env.get("/healthz");
    assert_eq!(h.status, 200, "{}", h.body);
    let mut got: Vec<(String, String, u64)> = env
        .workorders("")
        .iter()
        .map(|w| {
            (
                w["theme"].as_str().unwrap().to_string(),
                w["customer_id"].as_str().unwrap().to_string(),
                w["hits"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    let s = |a: &str, b: &str, h: u64| (a.to_string(), b.to_string(), h);
    assert_eq!(
        got,
        vec![
            s("meter_cover_open", "BC", 1),
            s("over_capacity", "BA", 1),
            s("over_capacity", "BB", 2),
            s("register_reversal", "BA", 1),
        ],
        "exactly the good data's work orders (the oversized batch's BC points are not used)"
    );
    assert_time(&wa, "first_window_start", t(2, 0));
    assert_time(&wa, "first_window_end", t(2, 30));
    assert_num(&wa["evidence"]["first_kw"], 500.0, "BA first_kw");
    let wb = env.wos("over_capacity", "BB").remove(0);
    assert_time(&wb, "first_window_start", t(5, 0));
    assert_time(&wb, "last_window_end", t(5, 45));
    assert_time(&wc, "first_window_start", t(3, 7));
    let wr = env.wos("register_reversal", "BA").remove(0);
    assert_time(&wr, "first_window_start", day(2026, 11, 2).start());

    // The oversized payloads are dead letters that say why.
    let dl = env
        .get("/api/v1/deadletters?limit=1000&reason=payload_too_large")
        .ok()
        .json();
    let items = dl["items"].as_array().unwrap_or_else(|| panic!("{dl}"));
    assert!(!items.is_empty(), "no payload_too_large dead letter: {dl}");
    for d in items {
        assert!(d["detail"].as_str().is_some_and(|s| !s.is_empty()), "{d}");
        assert!(
            d["record"].to_string().len() < 64 * 1024,
            "a dead letter does not keep a megabyte: {} bytes",
            d["record"].to_string().len()
        );
    }
}
