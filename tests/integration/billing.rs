//! Billing themes, evaluated when a period is posted (themes.md).

use crate::support::*;
use serde_json::{json, Value};

fn oct() -> (Ts, Ts) {
    (day(2026, 10, 1).start(), day(2026, 11, 1).start())
}

fn li(id: &str, kva: u32) -> Value {
    customer(id, kva, &[(&format!("M{id}"), "1")])
}

fn usage(c: Value, u: &str) -> Value {
    with(c, "usage_category", json!(u))
}

fn changes(c: Value, ch: Value) -> Value {
    with(c, "capacity_changes", ch)
}

/// Waits for the listed customers of `theme`, then asserts nobody else has one.
#[track_caller]
fn expect_exactly(env: &Env, theme: &str, want: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    for c in want {
        out.push(env.wait_wo(theme, c, |_| true));
    }
    // Billing themes are evaluated by the POST itself: its answer means
    // every order it raises is in place.
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    assert_eq!(env.customers_with(theme), want, "{theme}");
    out
}

#[test]
fn two_part_missing_for_large_industry_from_315_kva() {
    let env = Env::start(&archive(vec![
        li("T1", 400),
        li("T2", 315),
        li("T3", 314),
        with(li("T4", 400), "status", json!("suspended")),
        li("T5", 400),
        usage(li("T6", 400), "general_industry_commerce"),
    ]));
    let single = |id: &str| {
        bill_with(
            id,
            &[
                ("tariff_kind", json!("single")),
                ("basic_fee_yuan", json!("0")),
            ],
        )
    };
    env.post_billing(
        "2026-10",
        vec![
            single("T1"),                                          // not two-part → hit
            bill_with("T2", &[("basic_fee_yuan", json!("0.00"))]), // two-part without basic fee, C = 315 → hit
            single("T3"),                                          // 314 < 315
            single("T4"),                                          // suspended
            bill("T5"),                                            // billed correctly
            bill_with("T6", &[("tariff_kind", json!("single"))]),  // not large industry
        ],
    );
    let w = expect_exactly(&env, "two_part_missing", &["T1", "T2"]);
    let (s, e) = oct();
    assert_time(&w[0], "first_window_start", s);
    assert_time(&w[0], "first_window_end", e);
    assert_eq!(w[0]["status"], "open");
    assert_eq!(w[0]["hits"], 1);
}

#[test]
fn basic_fee_undue_on_single_part_tariff() {
    let single = |id: &str| {
        with(
            with(
                usage(li(id, 200), "general_industry_commerce"),
                "tariff_kind",
                json!("single"),
            ),
            "basic_fee_mode",
            json!("none"),
        )
    };
    let env = Env::start(&archive(vec![
        single("U1"),
        single("U2"),
        usage(li("U3", 200), "general_industry_commerce"),
    ]));
    let b = |id: &str, fee: &str| {
        bill_with(
            id,
            &[
                ("tariff_kind", json!("single")),
                ("tariff_category", json!("general_industry_commerce")),
                ("basic_fee_yuan", json!(fee)),
            ],
        )
    };
    env.post_billing(
        "2026-10",
        vec![
            b("U1", "0.01"),
            b("U2", "0"),
            bill_with(
                "U3",
                &[("tariff_category", json!("general_industry_commerce"))],
            ),
        ],
    );
    let w = expect_exactly(&env, "basic_fee_undue", &["U1"]);
    assert_time(&w[0], "first_window_start", oct().0);
}

#[test]
fn large_industry_tariff_misuse_without_basic_fee() {
    let com = |id: &str| usage(li(id, 200), "general_industry_commerce");
    let env = Env::start(&archive(vec![
        com("L1"),
        com("L2"),
        li("L3", 400),
        com("L4"),
    ]));
    let b = |id: &str, cat: &str, fee: &str| {
        bill_with(
            id,
            &[
                ("tariff_category", json!(cat)),
                ("basic_fee_yuan", json!(fee)),
            ],
        )
    };
    env.post_billing(
        "2026-10",
        vec![
            b("L1", "large_industry", "0"),            // hit
            b("L2", "large_industry", "100.00"),       // basic fee charged
            b("L3", "large_industry", "0"),            // really large industry
            b("L4", "general_industry_commerce", "0"), // not billed as large industry
        ],
    );
    expect_exactly(&env, "large_industry_tariff_misuse", &["L1"]);
}

#[test]
fn pf_adjust_missing_from_100_kva_except_residential() {
    let com = |id: &str, kva| usage(li(id, kva), "general_industry_commerce");
    let env = Env::start(&archive(vec![
        com("P1", 100),
        com("P2", 99),
        usage(li("P3", 200), "residential"),
        com("P4", 200),
        with(com("P5", 200), "status", json!("suspended")),
        li("P6", 400),
    ]));
    let no_pf = |id: &str| {
        bill_with(
            id,
            &[
                ("pf_adjust_applied", json!(false)),
                ("basic_fee_kva", json!("400")),
            ],
        )
    };
    env.post_billing(
        "2026-10",
        vec![
            no_pf("P1"),
            no_pf("P2"),
            no_pf("P3"),
            bill("P4"),
            no_pf("P5"),
            no_pf("P6"),
        ],
    );
    expect_exactly(&env, "pf_adjust_missing", &["P1", "P6"]);
}

#[test]
fn basic_fee_shortfall_suspension_and_reduction_rules() {
    let susp =
        |start: &str, end: Value| json!({"kind": "suspend", "kva": 80, "start": start, "end": end});
    let env = Env::start(&archive(vec![
        li("S1", 400), // no change, billed 400
        li("S2", 400), // no change, billed 320 → 2000.00
        changes(
            li("S3", 400),
            json!([susp("2026-06-01", json!("2026-12-31"))]),
        ), // 153 days → 320 expected, billed 320
        changes(li("S4", 400), json!([susp("2026-09-01", Value::Null)])), // open-ended, 61 days → 320; billed 300 → 500.00
        changes(li("S5", 400), json!([susp("2026-05-01", Value::Null)])), // 184 days > 183 → 400; billed 320 → 2000.00
        changes(
            li("S6", 400),
            json!([susp("2026-05-02", json!("2026-11-30"))]),
        ), // 183 days (capped at Oct 31) → 320; billed 320
        changes(
            li("S7", 400),
            json!([{"kind": "reduce", "kva": 100, "start": "2026-01-01", "end": null}]),
        ), // 300 expected; billed 250 → 1250.00
        changes(li("S8", 400), json!([susp("2026-10-10", Value::Null)])), // not the whole period → 400; billed 320 → 2000.00
        changes(
            li("S9", 400),
            json!([
                susp("2026-01-01", json!("2026-03-31")),
                susp("2026-07-01", Value::Null)
            ]),
        ), // 90 + 123 = 213 > 183 → 400; billed 320 → 2000.00
        li("S10", 400), // billed 399.9998 → 0.005 → 0.01
        with(li("S11", 400), "status", json!("suspended")), // not normal
        with(li("S12", 400), "basic_fee_mode", json!("demand")), // billed on demand
    ]));
    let b = |id: &str, kva: &str| bill_with(id, &[("basic_fee_kva", json!(kva))]);
    env.post_billing(
        "2026-10",
        vec![
            b("S1", "400"),
            b("S2", "320"),
            b("S3", "320"),
            b("S4", "300"),
            b("S5", "320"),
            b("S6", "320"),
            b("S7", "250"),
            b("S8", "320"),
            b("S9", "320"),
            b("S10", "399.9998"),
            b("S11", "0"),
            b("S12", "100"),
        ],
    );
    let hits = ["S10", "S2", "S4", "S5", "S7", "S8", "S9"];
    let ws = expect_exactly(&env, "basic_fee_shortfall", &hits);
    let loss: std::collections::BTreeMap<&str, &str> = [
        ("S2", "2000.00"),
        ("S4", "500.00"),
        ("S5", "2000.00"),
        ("S7", "1250.00"),
        ("S8", "2000.00"),
        ("S9", "2000.00"),
        ("S10", "0.01"),
    ]
    .into_iter()
    .collect();
    for (c, w) in hits.iter().zip(&ws) {
        assert_eq!(
            w["estimated_loss_yuan"], loss[c],
            "estimated_loss_yuan of {c}: {w}"
        );
    }
    let (s, e) = oct();
    assert_time(&ws[1], "first_window_start", s);
    assert_time(&ws[1], "first_window_end", e);
}

#[test]
fn reposting_a_period_does_not_duplicate_workorders() {
    let env = Env::start(&archive(vec![li("T1", 400), li("S2", 400)]));
    let bills = vec![
        bill_with(
            "T1",
            &[
                ("tariff_kind", json!("single")),
                ("basic_fee_yuan", json!("0")),
            ],
        ),
        bill_with("S2", &[("basic_fee_kva", json!("320"))]),
    ];
    env.post_billing("2026-10", bills.clone());
    env.wait_wo("two_part_missing", "T1", |_| true);
    env.wait_wo("basic_fee_shortfall", "S2", |_| true);
    env.post_billing("2026-10", bills.clone());
    // Billing themes are evaluated by the POST itself: its answer means
    // every order it raises is in place.
    for (theme, c) in [("two_part_missing", "T1"), ("basic_fee_shortfall", "S2")] {
        let w = env.wos(theme, c);
        assert_eq!(w.len(), 1, "{theme}/{c} after re-posting: {w:?}");
        assert_eq!(
            w[0]["hits"], 1,
            "re-posting the same period is not a new hit: {}",
            w[0]
        );
    }
    assert_eq!(
        env.wos("basic_fee_shortfall", "S2")[0]["estimated_loss_yuan"],
        "2000.00"
    );
    assert_eq!(env.workorders("").len(), 2);
    // The next period is a new hit on the open order.
    env.post_billing("2026-11", bills);
    let w = env.wait_wo("two_part_missing", "T1", |w| w["hits"] == 2);
    assert_eq!(env.wos("two_part_missing", "T1").len(), 1);
    assert_time(&w, "first_window_start", day(2026, 10, 1).start());
    assert_time(&w, "last_window_end", day(2026, 12, 1).start());
}

#[test]
fn malformed_bill_is_rejected_whole_with_its_name_and_field() {
    let env = Env::start(&archive(vec![li("T1", 400), li("T7", 400)]));
    let hit_t1 = bill_with(
        "T1",
        &[
            ("tariff_kind", json!("single")),
            ("basic_fee_yuan", json!("0")),
        ],
    );
    let bad_value = bill_with("CBAD9", &[("basic_fee_yuan", json!("12x.00"))]);
    let r = env.post(
        "/api/v1/billing",
        &billing("2026-10", vec![hit_t1.clone(), bad_value]),
    );
    assert_eq!(r.status, 400, "a malformed bill: {} {}", r.status, r.body);
    for needle in ["bills[1]", "CBAD9", "basic_fee_yuan"] {
        assert!(
            r.body.contains(needle),
            "the 400 names {needle}: {}",
            r.body
        );
    }
    let mut missing = bill("CMISS");
    missing.as_object_mut().unwrap().remove("pf_adjust_applied");
    let r = env.post(
        "/api/v1/billing",
        &billing("2026-10", vec![hit_t1.clone(), bill("T7"), missing]),
    );
    assert_eq!(
        r.status, 400,
        "a bill without pf_adjust_applied: {} {}",
        r.status, r.body
    );
    for needle in ["bills[2]", "CMISS", "pf_adjust_applied"] {
        assert!(
            r.body.contains(needle),
            "the 400 names {needle}: {}",
            r.body
        );
    }
    // Nothing was stored: a good post of another period raises T7's order
    // only (T1 is not in it).
    let t7 = bill_with(
        "T7",
        &[
            ("tariff_kind", json!("single")),
            ("basic_fee_yuan", json!("0")),
        ],
    );
    env.post_billing("2026-11", vec![t7]);
    let w = env.wait_wo("two_part_missing", "T7", |_| true);
    assert_time(&w, "first_window_start", day(2026, 11, 1).start());
    // Billing themes are evaluated by the POST itself: its answer means
    // every order it raises is in place.
    let custs: std::collections::BTreeSet<String> = env
        .workorders("")
        .iter()
        .map(|w| w["customer_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        custs.into_iter().collect::<Vec<_>>(),
        vec!["T7"],
        "the rejected posts stored nothing"
    );
}
