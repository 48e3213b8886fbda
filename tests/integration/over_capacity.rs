//! over_capacity: the customer's total p_kw > 1.2 × contract_kva at two
//! consecutive 15-minute points t, t+15m → hit window [t, t+30m).

use crate::support::*;

const THEME: &str = "over_capacity";

fn t(h: i64, m: i64) -> Ts {
    ts(2026, 11, 3, h, m)
}

#[test]
fn over_capacity_two_consecutive_points_hit_and_near_misses() {
    // C = 400 kVA → threshold 480 kW.
    let env = Env::start(&archive(vec![
        customer("CA", 400, &[("MA", "1")]),
        customer("CB", 400, &[("MB", "1")]),
        customer("CC", 400, &[("MC", "1")]),
        customer("CD", 400, &[("MD", "1")]),
    ]));
    let times = [
        t(9, 30),
        t(9, 45),
        t(10, 0),
        t(10, 15),
        t(10, 30),
        t(10, 45),
    ];
    // CA: 500 at 10:00 and 520 at 10:15 → one hit [10:00, 10:30).
    let ca = [100.0, 100.0, 500.0, 520.0, 100.0, 100.0];
    // CB: exactly at the threshold all the time → strict >, no hit.
    let cb = [480.0; 6];
    // CC: exceeding points never consecutive.
    let cc = [100.0, 481.0, 479.0, 481.0, 100.0, 481.0];
    let mut recs = Vec::new();
    for (i, &tt) in times.iter().enumerate() {
        recs.push(load("MA", tt, ca[i]));
        recs.push(load("MB", tt, cb[i]));
        recs.push(load("MC", tt, cc[i]));
    }
    // CD: exceeds at 10:00 and 10:30 but reported nothing at 10:15.
    recs.push(load("MD", t(10, 0), 600.0));
    recs.push(load("MD", t(10, 30), 600.0));
    recs.sort_by_key(|r| r["ts"].as_str().unwrap().to_string());
    // Watermark 11:30: closes every window ending before it.
    recs.push(load(FILL_METER, t(12, 30), 1.0));
    env.loads(recs);

    let wo = env.wait_wo(THEME, "CA", |_| true);
    env.wait_evaluated(&[THEME], t(11, 30));
    assert_eq!(
        env.customers_with(THEME),
        vec!["CA"],
        "only CA exceeds 480 kW strictly at two consecutive points"
    );
    let wo = env.wos(THEME, "CA").pop().unwrap_or(wo);
    assert_time(&wo, "first_window_start", t(10, 0));
    assert_time(&wo, "first_window_end", t(10, 30));
    assert_time(&wo, "last_window_end", t(10, 30));
    assert_eq!(wo["hits"], 1, "{wo}");
    assert_eq!(wo["status"], "open");
    assert_eq!(wo["org_code"], "41/4107/410727");
    assert!(wo["id"].as_str().is_some_and(|s| !s.is_empty()), "{wo}");
    assert!(wo["created_at"].is_string(), "{wo}");
    assert!(wo["severity"].is_string(), "{wo}");
    let ev = &wo["evidence"];
    assert_num(&ev["first_kw"], 500.0, "evidence.first_kw");
    assert_num(&ev["second_kw"], 520.0, "evidence.second_kw");
    assert_num(&ev["threshold_kw"], 480.0, "evidence.threshold_kw");
}

#[test]
fn over_capacity_sums_the_meters_that_reported() {
    let env = Env::start(&archive(vec![
        customer("CM", 400, &[("MM1", "1"), ("MM2", "1")]),
        customer("CN", 400, &[("MN1", "1"), ("MN2", "1")]),
        customer("CO", 400, &[("MO1", "1"), ("MO2", "1")]),
    ]));
    env.loads(vec![
        // CM: 300 + 300 = 600 and 250 + 250 = 500, each meter below 480.
        load("MM1", t(10, 0), 300.0),
        load("MM2", t(10, 0), 300.0),
        // CN: 240 + 240 = 480, exactly the threshold.
        load("MN1", t(10, 0), 240.0),
        load("MN2", t(10, 0), 240.0),
        // CO: only one of its meters reports; its 490 is the customer's total.
        load("MO1", t(10, 0), 490.0),
        load("MM1", t(10, 15), 250.0),
        load("MM2", t(10, 15), 250.0),
        load("MN1", t(10, 15), 240.0),
        load("MN2", t(10, 15), 240.0),
        load("MO1", t(10, 15), 495.0),
        load(FILL_METER, t(12, 0), 1.0),
    ]);
    let cm = env.wait_wo(THEME, "CM", |_| true);
    let co = env.wait_wo(THEME, "CO", |_| true);
    env.wait_evaluated(&[THEME], t(11, 0));
    assert_eq!(env.customers_with(THEME), vec!["CM", "CO"]);
    assert_time(&cm, "first_window_start", t(10, 0));
    assert_time(&cm, "first_window_end", t(10, 30));
    assert_num(
        &cm["evidence"]["first_kw"],
        600.0,
        "CM first_kw (sum of two meters)",
    );
    assert_num(
        &cm["evidence"]["second_kw"],
        500.0,
        "CM second_kw (sum of two meters)",
    );
    assert_num(&co["evidence"]["first_kw"], 490.0, "CO first_kw");
    assert_num(&co["evidence"]["second_kw"], 495.0, "CO second_kw");
}

#[test]
fn over_capacity_points_out_of_order_within_lateness() {
    let env = Env::start(&archive(vec![customer("CA", 400, &[("MA", "1")])]));
    let base = env.ingested("load");
    let late0 = env.metric_sum("jicha_records_late_total", &[("stream", "load")]);
    // Each message on its own micro-batch: the window state must carry the
    // earlier arrivals while the watermark moves.
    let seq = [
        load("MA", t(10, 30), 500.0),
        load("MA", t(10, 15), 500.0),
        load(FILL_METER, t(10, 45), 1.0), // watermark 09:45
        load("MA", t(10, 0), 500.0),
        load("MA", t(10, 45), 100.0),
    ];
    for (i, r) in seq.iter().enumerate() {
        env.loads(vec![r.clone()]);
        env.wait_ingested("load", base + i as f64 + 1.0);
    }
    env.loads(vec![load(FILL_METER, t(12, 30), 1.0)]);
    // Windows [10:00,10:30) and [10:15,10:45) both exceed.
    let wo = env.wait_wo(THEME, "CA", |w| w["hits"] == 2);
    assert_time(&wo, "first_window_start", t(10, 0));
    assert_time(&wo, "first_window_end", t(10, 30));
    assert_time(&wo, "last_window_end", t(10, 45));
    assert_eq!(env.wos(THEME, "CA").len(), 1);
    assert_eq!(
        env.metric_sum("jicha_records_late_total", &[("stream", "load")]) - late0,
        0.0,
        "nothing was late"
    );
}
