//! Input handling: lateness, bad records inside batches, duplicates and
//! replacements, dead letters and their counters.

use crate::support::*;
use serde_json::{json, Value};

fn t(h: i64, m: i64) -> Ts {
    ts(2026, 11, 3, h, m)
}

fn dead_letters(env: &Env, query: &str) -> Vec<Value> {
    let v = env
        .get(&format!("/api/v1/deadletters?limit=1000&{query}"))
        .ok()
        .json();
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {v}"))
        .clone()
}

/// The record of a dead letter as text, whatever shape it is kept in.
fn record_text(d: &Value) -> String {
    match &d["record"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn late_load_record_is_counted_dead_lettered_and_not_used() {
    let env = Env::start(&archive(vec![
        customer("CA", 400, &[("MA", "1")]),
        customer("CB", 400, &[("MB", "1")]),
        customer("CC", 400, &[("MC", "1")]),
    ]));
    let base = env.ingested("load");
    let late0 = env.metric_sum("jicha_records_late_total", &[("stream", "load")]);
    env.loads(vec![
        load("MA", t(10, 0), 500.0),
        load("MB", t(10, 0), 500.0),
        load("MB", t(10, 15), 500.0),
    ]);
    env.loads(vec![load(FILL_METER, t(12, 0), 1.0)]); // load watermark 11:00
    env.wait_ingested("load", base + 4.0);
    // The watermark metric is the max event time minus 1 h.
    let wm = env.metric_sum("jicha_watermark_seconds", &[("stream", "load")]);
    assert_eq!(
        wm as i64,
        t(11, 0).unix(),
        "jicha_watermark_seconds{{stream=\"load\"}} after a 12:00 point"
    );
    // CB (both points in time) is the positive control of [10:00, 10:30).
    let cb = env.wait_wo("over_capacity", "CB", |_| true);
    assert_time(&cb, "first_window_start", t(10, 0));

    // 10:15 < 11:00: late. It would have completed CA's window.
    env.loads(vec![load("MA", t(10, 15), 500.0)]);
    // 11:00 is not older than the watermark: accepted.
    env.loads(vec![load("MC", t(11, 0), 100.0)]);
    env.wait_ingested("load", base + 5.0);
    let late = env.metric_sum("jicha_records_late_total", &[("stream", "load")]) - late0;
    assert_eq!(late, 1.0, "exactly the 10:15 point is late");
    let dl = dead_letters(&env, "stream=load&reason=late");
    let ours: Vec<&Value> = dl
        .iter()
        .filter(|d| record_text(d).contains("\"MA\""))
        .collect();
    assert_eq!(ours.len(), 1, "one late dead letter for MA: {dl:?}");
    let d = ours[0];
    assert_eq!(d["stream"], "load", "{d}");
    assert_eq!(d["reason"], "late", "{d}");
    assert_eq!(d["topic"], LOAD_TOPIC, "{d}");
    // The record is kept (its ts as written, or as epoch milliseconds).
    let rt = record_text(d);
    assert!(
        rt.contains(&t(10, 15).rfc()) || rt.contains(&(t(10, 15).unix() * 1000).to_string()),
        "the dead letter keeps the record: {d}"
    );
    assert!(
        d["received_at"].is_string() || d["received_at"].is_number(),
        "{d}"
    );
    assert!(
        dead_letters(&env, "stream=load&reason=late")
            .iter()
            .all(|d| !record_text(d).contains("\"MC\"")),
        "MC's 11:00 point was not late"
    );

    env.loads(vec![load(FILL_METER, t(14, 0), 1.0)]);
    env.wait_ingested("load", base + 6.0);
    // The 14:00 point puts the load watermark at 13:00.
    env.wait_evaluated(&["over_capacity"], t(13, 0));
    assert!(
        env.wos("over_capacity", "CA").is_empty(),
        "the late point must not complete CA's window: {:?}",
        env.wos("over_capacity", "CA")
    );
    assert_eq!(env.customers_with("over_capacity"), vec!["CB"]);
}

#[test]
fn bad_records_are_dead_lettered_and_the_rest_of_their_batch_counts() {
    let env = Env::start(&archive(vec![
        customer("CA", 400, &[("MA", "1")]),
        customer("CB", 400, &[("MB", "1")]),
    ]));
    let m = env.metrics_text();
    let ing0 = metric_sum(&m, "jicha_records_ingested_total", &[("stream", "load")]);
    let rej = |m: &str, stream: &str, reason: &str| {
        metric_sum(
            m,
            "jicha_records_rejected_total",
            &[("stream", stream), ("reason", reason)],
        )
    };
    let before: Vec<f64> = [
        ("load", "unknown_meter"),
        ("load", "wrong_type"),
        ("load", "not_an_object"),
        ("load", "missing_field"),
        ("load", "bad_timestamp"),
        ("freeze", "malformed_json"),
        ("freeze", "bad_value"),
        ("event", "unknown_meter"),
    ]
    .iter()
    .map(|(s, r)| rej(&m, s, r))
    .collect();

    let batch = json!([
        load("MA", t(10, 0), 500.0),
        {"meter_id": "MX404", "ts": t(10, 0).rfc(), "p_kw": 900.0},
        load("MA", t(10, 15), 500.0),
        {"meter_id": "MB", "ts": t(10, 0).rfc(), "p_kw": true},
        42,
        {"meter_id": "MB", "p_kw": 1.0},
        {"meter_id": "MB", "ts": "2026-11-03T10:07:00+08:00", "p_kw": 1.0},
        {"meter_id": "MB", "ts": "yesterday at ten", "p_kw": 1.0},
        load("MB", t(10, 15), 100.0),
        load(FILL_METER, t(12, 0), 1.0)
    ]);
    env.publish(LOAD_TOPIC, &batch);
    env.publish_raw(FREEZE_TOPIC, "{\"meter_id\": \"MA\", \"date\": ");
    env.freezes(vec![
        json!({"meter_id": "MA", "date": "2026-11-02", "ts": "2026-11-03T00:00:00+08:00", "reg_total": -5}),
        freeze("MA", day(2026, 11, 2), 100.0),
    ]);
    env.events(vec![event("MX405", t(10, 0), "cover_open", None)]);

    env.wait_ingested("load", ing0 + 4.0);
    env.wait_ingested("freeze", 1.0);
    // The good records of the batch were used: CA's two points hit.
    let wo = env.wait_wo("over_capacity", "CA", |_| true);
    assert_time(&wo, "first_window_start", t(10, 0));
    // Everything published is processed once the last message (the event
    // for an unknown meter) is counted and the 12:00 point's watermark
    // (11:00) is evaluated: the exact counts below can no longer grow.
    wait_until(
        std::time::Duration::from_secs(30),
        "the last message (event for MX405) to be counted",
        &env,
        || (rej(&env.metrics_text(), "event", "unknown_meter") > before[7]).then_some(()),
    );
    env.wait_evaluated(&["over_capacity"], t(11, 0));
    let m = env.metrics_text();
    assert_eq!(
        metric_sum(&m, "jicha_records_ingested_total", &[("stream", "load")]) - ing0,
        4.0,
        "the 4 good load records are ingested"
    );
    let expect = [1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0];
    let names = [
        ("load", "unknown_meter"),
        ("load", "wrong_type"),
        ("load", "not_an_object"),
        ("load", "missing_field"),
        ("load", "bad_timestamp"),
        ("freeze", "malformed_json"),
        ("freeze", "bad_value"),
        ("event", "unknown_meter"),
    ];
    for (i, (s, r)) in names.iter().enumerate() {
        assert_eq!(
            rej(&m, s, r) - before[i],
            expect[i],
            "jicha_records_rejected_total{{stream=\"{s}\",reason=\"{r}\"}}"
        );
    }

    let unknown = dead_letters(&env, "stream=load&reason=unknown_meter");
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert!(record_text(&unknown[0]).contains("MX404"), "{}", unknown[0]);
    assert_eq!(unknown[0]["topic"], LOAD_TOPIC);
    assert!(
        unknown[0]["detail"].as_str().is_some_and(|s| !s.is_empty()),
        "a dead letter explains itself: {}",
        unknown[0]
    );
    let bad_ts = dead_letters(&env, "stream=load&reason=bad_timestamp");
    assert_eq!(bad_ts.len(), 2, "{bad_ts:?}");
    assert!(
        bad_ts.iter().any(|d| record_text(d).contains("10:07:00")),
        "{bad_ts:?}"
    );
    let all_load = dead_letters(&env, "stream=load");
    let reasons: std::collections::BTreeSet<&str> = all_load
        .iter()
        .filter_map(|d| d["reason"].as_str())
        .collect();
    for r in [
        "unknown_meter",
        "wrong_type",
        "not_an_object",
        "missing_field",
        "bad_timestamp",
    ] {
        assert!(reasons.contains(r), "no {r} dead letter among {reasons:?}");
    }
    assert!(
        all_load.iter().all(|d| d["stream"] == "load"),
        "stream filter"
    );
    let ev = dead_letters(&env, "stream=event&reason=unknown_meter");
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(record_text(&ev[0]).contains("MX405"));
    assert_eq!(ev[0]["topic"], EVENT_TOPIC);
    let fr = dead_letters(&env, "stream=freeze");
    let fr_reasons: std::collections::BTreeSet<&str> =
        fr.iter().filter_map(|d| d["reason"].as_str()).collect();
    assert!(
        fr_reasons.contains("malformed_json") && fr_reasons.contains("bad_value"),
        "{fr:?}"
    );
    // Newest first: the bad_value freeze came after the malformed payload.
    let pos = |r: &str| fr.iter().position(|d| d["reason"] == r).unwrap();
    assert!(
        pos("bad_value") < pos("malformed_json"),
        "dead letters are listed newest first: {fr:?}"
    );
}

#[test]
fn resent_load_is_a_duplicate_and_a_changed_one_replaces() {
    let env = Env::start(&archive(vec![
        customer("CA", 400, &[("MA", "1")]),
        customer("CB", 400, &[("MB", "1")]),
        customer("CC", 400, &[("MC", "1")]),
    ]));
    let dup0 = env.metric_sum("jicha_records_duplicate_total", &[]);
    let base = env.ingested("load");
    let ca = vec![load("MA", t(10, 0), 500.0), load("MA", t(10, 15), 500.0)];
    env.loads(ca.clone());
    env.loads(ca.clone()); // identical re-send
                           // CB: 500 at 10:00 corrected to 100 before the window closes → no hit.
    env.loads(vec![load("MB", t(10, 0), 500.0)]);
    env.loads(vec![load("MB", t(10, 0), 100.0)]);
    env.loads(vec![load("MB", t(10, 15), 500.0)]);
    // CC: 100 at 10:00 corrected to 500 → hit.
    env.loads(vec![load("MC", t(10, 0), 100.0)]);
    env.loads(vec![
        load("MC", t(10, 0), 500.0),
        load("MC", t(10, 15), 500.0),
    ]);
    env.wait_ingested("load", base + 2.0);
    env.loads(vec![load(FILL_METER, t(12, 0), 1.0)]);
    let cc = env.wait_wo("over_capacity", "CC", |_| true);
    env.wait_evaluated(&["over_capacity"], t(11, 0));
    assert_eq!(env.customers_with("over_capacity"), vec!["CA", "CC"]);
    let ca_wo = env.wos("over_capacity", "CA");
    assert_eq!(ca_wo.len(), 1);
    assert_eq!(
        ca_wo[0]["hits"], 1,
        "the re-sent points are not a second hit: {}",
        ca_wo[0]
    );
    assert_num(
        &cc["evidence"]["first_kw"],
        500.0,
        "CC first_kw is the replacing value",
    );
    let dups = env.metric_sum("jicha_records_duplicate_total", &[]) - dup0;
    assert_eq!(dups, 2.0, "the two identical re-sent points are duplicates");
}
