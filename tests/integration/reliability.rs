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
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

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
    let mut rng = Lcg(20261101);
    // Episodes stay clear of the last 2.5 h: the final load watermark
    // (Nov 3 22:45) must close every window they make.
    let last_start = POINTS - 10 - 5;
    for e in 0..24 {
        let k = (rng.next() % CUSTOMERS as u64) as usize;
        let start = (rng.next() % last_start as u64) as i64;
        let len = 1 + (rng.next() % 5) as i64; // 1 = a lone spike, no hit
        for i in start..start + len {
            kw[k][i as usize] = if e % 6 == 5 {
                THRESHOLD_KW // exactly at the threshold: strict >, no hit
            } else {
                481.0 + (rng.next() % 300) as f64
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

fn publish_range(env: &Env, sc: &Scenario, r: std::ops::Range<usize>) {
    for m in &sc.msgs[r] {
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

/// Sum of every record counter: when it stops moving, input is drained.
fn counters(env: &Env) -> f64 {
    let m = env.metrics_text();
    [
        "jicha_records_ingested_total",
        "jicha_records_duplicate_total",
        "jicha_records_rejected_total",
        "jicha_records_late_total",
    ]
    .iter()
    .map(|n| metric_sum(&m, n, &[]))
    .sum()
}

fn watermark(env: &Env, stream: &str) -> i64 {
    env.metric_sum("jicha_watermark_seconds", &[("stream", stream)]) as i64
}

/// Waits until msgs[..upto] are processed: the load and freeze watermarks
/// are where those messages put them, and the work orders and the record
/// counters have stopped moving. Returns the work orders.
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
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut prev: Option<(Vec<String>, f64)> = None;
    let mut stable = 0;
    loop {
        let now = (wo_set(env), counters(env));
        if prev.as_ref() == Some(&now) {
            stable += 1;
            if stable >= 3 {
                return now.0;
            }
        } else {
            stable = 0;
            prev = Some(now);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: work orders / counters still moving after 60 s"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
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
    publish_range(&env, sc, 0..k);
    env.kill_app();
    publish_range(&env, sc, k..k2);
    env.restart_app();
    publish_range(&env, sc, k2..n);
    let set = settle_after(&env, sc, n, &format!("SIGKILL at {pct} %"));
    eprintln!(
        "kill -9 at {pct} %: {} duplicates after the restart",
        env.metric_sum("jicha_records_duplicate_total", &[])
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

#[test]
fn redis_restart_mid_stream_loses_nothing() {
    let sc = scenario();
    let n = sc.msgs.len();
    let half = n / 2;
    let mut env = Env::start_with(
        &sc.archive,
        ServiceOptions {
            redis_aof: true,
            ..Default::default()
        },
    );
    publish_range(&env, sc, 0..half);
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
    // Still degraded a moment later: nothing was committed meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(env.get("/healthz").status, 503, "Redis is still down");

    env.svc.start_redis_again();
    let back = Instant::now();
    publish_range(&env, sc, down_until..n);
    wait_until(
        Duration::from_secs(200),
        "GET /healthz to answer 200 after Redis is back",
        &env,
        || (env.get("/healthz").status == 200).then_some(()),
    );
    eprintln!("DIAG healthz 200 again {:?} after Redis restarted", back.elapsed());
    let set = settle_after(&env, sc, n, "Redis restart");
    assert_same(&set, baseline(), "Redis restart mid-stream");

    // What is in Redis is complete too: a fresh process reads it back.
    env.restart_app();
    assert_same(
        &wo_set(&env),
        baseline(),
        "after the Redis restart, reloaded",
    );
}

#[test]
fn broker_restart_mid_stream_loses_nothing() {
    let sc = scenario();
    let n = sc.msgs.len();
    let half = n / 2;
    let mut env = Env::start_with(
        &sc.archive,
        ServiceOptions {
            mosquitto_persistence: true,
            ..Default::default()
        },
    );
    publish_range(&env, sc, 0..half);
    env.svc.stop_mosquitto();
    std::thread::sleep(Duration::from_millis(1500));
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
    publish_range(&env, sc, half..k);
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
