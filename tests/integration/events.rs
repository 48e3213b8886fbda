//! meter_cover_open: a cover_open event (state start or none) → hit [ts, ts].

use crate::support::*;
use serde_json::Value;

const THEME: &str = "meter_cover_open";

fn t(h: i64, m: i64) -> Ts {
    ts(2026, 11, 3, h, m)
}

#[track_caller]
fn assert_event_ts(v: &Value, want: Ts) {
    match v {
        Value::String(s) => assert_eq!(
            parse_rfc3339(s),
            want.unix(),
            "evidence.event_ts {s} ≠ {}",
            want.rfc()
        ),
        Value::Number(n) => assert_eq!(
            n.as_i64().unwrap(),
            want.unix() * 1000,
            "evidence.event_ts (epoch ms)"
        ),
        _ => panic!("evidence.event_ts missing: {v}"),
    }
}

#[test]
fn meter_cover_open_hit_and_near_misses() {
    let env = Env::start(&archive(vec![
        customer("CA", 400, &[("MA", "1")]),
        customer("CB", 400, &[("MB", "1")]),
        customer("CC", 400, &[("MC", "1")]),
        customer("CD", 400, &[("MD", "1")]),
    ]));
    env.events(vec![
        event("MA", t(10, 0), "cover_open", Some("start")),
        event("MB", t(10, 0), "cover_open", Some("end")),
        event("MC", t(10, 0), "voltage_loss", None),
        event("MD", t(10, 7), "cover_open", None),
    ]);
    // Event watermark 11:00 closes both.
    env.events(vec![event(FILL_METER, t(12, 0), "clock_error", None)]);
    let wa = env.wait_wo(THEME, "CA", |_| true);
    let wd = env.wait_wo(THEME, "CD", |_| true);
    env.wait_evaluated(&[THEME], t(11, 0));
    assert_eq!(
        env.customers_with(THEME),
        vec!["CA", "CD"],
        "an ended cover or another code is no hit"
    );
    assert_time(&wa, "first_window_start", t(10, 0));
    assert_time(&wa, "first_window_end", t(10, 0));
    assert_eq!(wa["evidence"]["meter_id"], "MA", "{wa}");
    assert_event_ts(&wa["evidence"]["event_ts"], t(10, 0));
    assert_time(&wd, "first_window_start", t(10, 7));
    assert_time(&wd, "first_window_end", t(10, 7));
    assert_eq!(wd["evidence"]["meter_id"], "MD");
    assert_eq!(wa["severity"].as_str().map(|s| !s.is_empty()), Some(true));
}

#[test]
fn meter_cover_open_closes_with_the_load_watermark() {
    let env = Env::start(&archive(vec![customer(
        "CE",
        400,
        &[("ME1", "1"), ("ME2", "1")],
    )]));
    env.events(vec![event("ME2", t(13, 0), "cover_open", Some("start"))]);
    // No later event: the load stream's watermark (14:30 − 1 h) passes 13:00.
    env.loads(vec![load(FILL_METER, t(14, 30), 1.0)]);
    let w = env.wait_wo(THEME, "CE", |_| true);
    assert_time(&w, "first_window_start", t(13, 0));
    assert_time(&w, "first_window_end", t(13, 0));
    assert_eq!(w["evidence"]["meter_id"], "ME2", "{w}");
    assert_event_ts(&w["evidence"]["event_ts"], t(13, 0));
    assert_eq!(w["hits"], 1);
}
