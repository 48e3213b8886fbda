//! valley_excess: month-to-date valley energy through D >
//! 1.2 × C × 8 h × day_of_month(D) → hit [D, D+1). With C = 100 kVA the
//! limit is 960 kWh per day of the month.
//!
//! Registers are written in ten-thousandths (`r4`) so every reading is an
//! exact decimal; reg_total is kept at twice the valley register.

use crate::support::*;
use serde_json::Value;

const THEME: &str = "valley_excess";

/// Freezes for consecutive days starting at `first`, given the daily valley
/// register deltas (ten-thousandths) after a base reading on `first`.
/// Returns one Vec per day (index 0 = `first`); `None` deltas skip the freeze.
fn meter_days(meter: &str, first: Day, deltas: &[Option<i64>]) -> Vec<Option<Value>> {
    let mut reg = 1_000_000i64; // 100.0000
    let mut out = vec![Some(freeze_valley(meter, first, r4(2 * reg), r4(reg)))];
    for (i, d) in deltas.iter().enumerate() {
        match d {
            Some(d) => {
                reg += d;
                out.push(Some(freeze_valley(
                    meter,
                    first.plus(i as i64 + 1),
                    r4(2 * reg),
                    r4(reg),
                )));
            }
            None => out.push(None),
        }
    }
    out
}

/// Publishes day by day, all meters of a day in one batch.
fn publish_days(env: &Env, meters: &[Vec<Option<Value>>]) {
    let n = meters.iter().map(Vec::len).max().unwrap();
    for i in 0..n {
        let batch: Vec<Value> = meters
            .iter()
            .filter_map(|m| m.get(i).cloned().flatten())
            .collect();
        if !batch.is_empty() {
            env.freezes(batch);
        }
    }
}

fn all(d: i64, n: usize) -> Vec<Option<i64>> {
    vec![Some(d); n]
}

#[test]
fn valley_excess_hit_and_limit_exactly_reached() {
    let env = Env::start(&archive(vec![
        customer("CA", 100, &[("MA", "10")]),
        customer("CB", 100, &[("MB", "10")]),
        customer("CC", 100, &[("MC", "10")]),
    ]));
    let oct31 = day(2026, 10, 31);
    // Deltas for Nov 1..4 (× multiplier 10); Nov 4 closes Nov 3.
    // CA: 500, 1500 → MTD 2000 > 1920 on Nov 2 (500 ≤ 960 on Nov 1); Nov 3: +0 → 2000 ≤ 2880.
    let ca = meter_days(
        "MA",
        oct31,
        &[Some(500_000), Some(1_500_000), Some(0), Some(0)],
    );
    // CB: 960 a day: MTD = 960 × day, never strictly above.
    let cb = meter_days("MB", oct31, &all(960_000, 4));
    // CC: 960, 960, 960.01 → 2880.01 > 2880 on Nov 3.
    let cc = meter_days(
        "MC",
        oct31,
        &[Some(960_000), Some(960_000), Some(960_010), Some(0)],
    );
    publish_days(&env, &[ca, cb, cc]);

    env.wait_wo(THEME, "CC", |_| true);
    env.wait_evaluated(&[THEME], day(2026, 11, 4).start());
    assert_eq!(env.customers_with(THEME), vec!["CA", "CC"]);
    let wa = env.wos(THEME, "CA").remove(0);
    assert_eq!(wa["hits"], 1, "{wa}");
    assert_time(&wa, "first_window_start", day(2026, 11, 2).start());
    assert_time(&wa, "first_window_end", day(2026, 11, 3).start());
    assert_num(
        &wa["evidence"]["valley_kwh_mtd"],
        2000.0,
        "CA valley_kwh_mtd",
    );
    assert_num(&wa["evidence"]["limit_kwh"], 1920.0, "CA limit_kwh");
    assert_num(&wa["evidence"]["day_of_month"], 2.0, "CA day_of_month");
    let wc = env.wos(THEME, "CC").remove(0);
    assert_time(&wc, "first_window_start", day(2026, 11, 3).start());
    assert_num(
        &wc["evidence"]["valley_kwh_mtd"],
        2880.01,
        "CC valley_kwh_mtd",
    );
}

#[test]
fn valley_excess_month_to_date_resets_on_the_first() {
    let env = Env::start(&archive(vec![
        customer("CA", 100, &[("MA", "10")]),
        customer("CB", 100, &[("MB", "10")]),
    ]));
    let sep30 = day(2026, 9, 30);
    // CA: October 1–30 at exactly 960 kWh (MTD = limit), October 31 961
    // → 29 761 > 29 760; November 1 and 2: 500 each (a fresh month: 500 ≤ 960,
    // 1000 ≤ 1920; without the reset they would hit).
    let mut d = all(96_000 * 10, 30);
    d.push(Some(961_000));
    d.push(Some(500_000));
    d.push(Some(500_000));
    d.push(Some(0)); // Nov 3 closes Nov 2
    let ca = meter_days("MA", sep30, &d);
    // CB: nothing until November 2, then 2000 > 1920: the positive control of Nov 2.
    let mut e = all(0, 32);
    e.push(Some(2_000_000));
    e.push(Some(0));
    let cb = meter_days("MB", sep30, &e);
    publish_days(&env, &[ca, cb]);

    let wb = env.wait_wo(THEME, "CB", |_| true);
    assert_time(&wb, "first_window_start", day(2026, 11, 2).start());
    env.wait_evaluated(&[THEME], day(2026, 11, 3).start());
    let wa = env.wos(THEME, "CA");
    assert_eq!(wa.len(), 1, "CA: one work order for October 31: {wa:?}");
    let wa = &wa[0];
    assert_eq!(
        wa["hits"], 1,
        "November 1 and 2 must not hit (month-to-date restarts): {wa}"
    );
    assert_time(wa, "first_window_start", day(2026, 10, 31).start());
    assert_time(wa, "first_window_end", day(2026, 11, 1).start());
    assert_time(wa, "last_window_end", day(2026, 11, 1).start());
    assert_num(
        &wa["evidence"]["valley_kwh_mtd"],
        29761.0,
        "CA valley_kwh_mtd on Oct 31",
    );
    assert_num(
        &wa["evidence"]["limit_kwh"],
        29760.0,
        "CA limit_kwh on Oct 31",
    );
    assert_num(&wa["evidence"]["day_of_month"], 31.0, "CA day_of_month");
}

#[test]
fn valley_excess_resent_freezes_are_not_counted_twice() {
    let env = Env::start(&archive(vec![
        customer("CA", 100, &[("MA", "10")]),
        customer("CB", 100, &[("MB", "10")]),
        customer("CR", 100, &[("MR", "10")]),
    ]));
    let dup0 = env.metric_sum("jicha_records_duplicate_total", &[]);
    let oct31 = day(2026, 10, 31);
    // CA: exactly at the limit every day; counted twice it would hit on Nov 1.
    let ca = meter_days("MA", oct31, &all(960_000, 4));
    // CB: 960, 960, 1000 → 2920 > 2880 on Nov 3 (doubled, it would hit on Nov 1).
    let cb = meter_days(
        "MB",
        oct31,
        &[Some(960_000), Some(960_000), Some(1_000_000), Some(0)],
    );
    // CR: 960 a day; Nov 2 first sent with 2000 kWh, then corrected.
    let cr = meter_days("MR", oct31, &all(960_000, 4));
    for i in 0..5 {
        let batch: Vec<Value> = [&ca, &cb, &cr]
            .iter()
            .filter_map(|m| m[i].clone())
            .collect();
        let mut first = batch.clone();
        if i == 2 {
            // wrong Nov 2 reading of MR: +2000 kWh instead of +960
            let wrong = freeze_valley(
                "MR",
                day(2026, 11, 2),
                r4(2 * (1_000_000 + 960_000 + 2_000_000)),
                r4(1_000_000 + 960_000 + 2_000_000),
            );
            for r in first.iter_mut() {
                if r["meter_id"] == "MR" {
                    *r = wrong.clone();
                }
            }
        }
        env.freezes(first.clone());
        env.freezes(first); // identical re-send of the whole day
        if i == 2 {
            env.freezes(vec![cr[2].clone().unwrap()]); // the correction replaces it
        }
    }
    let wb = env.wait_wo(THEME, "CB", |_| true);
    env.wait_evaluated(&[THEME], day(2026, 11, 4).start());
    assert_eq!(
        env.customers_with(THEME),
        vec!["CB"],
        "CA sits exactly at the limit; CR's wrong reading was replaced"
    );
    assert_eq!(wb["hits"], 1, "{wb}");
    assert_time(&wb, "first_window_start", day(2026, 11, 3).start());
    assert_num(
        &wb["evidence"]["valley_kwh_mtd"],
        2920.0,
        "CB valley_kwh_mtd (re-sent freezes counted once)",
    );
    let dups = env.metric_sum("jicha_records_duplicate_total", &[]) - dup0;
    assert_eq!(dups, 15.0, "5 days × 3 meters re-sent identically");
}

#[test]
fn valley_energy_is_the_sum_of_register_deltas_times_multipliers() {
    let env = Env::start(&archive(vec![
        customer("CM", 100, &[("MM1", "50"), ("MM2", "200")]),
        customer("CW", 100, &[("MW1", "50"), ("MW2", "200")]),
        customer("CX", 100, &[("MX1", "50"), ("MX2", "200")]),
    ]));
    let oct31 = day(2026, 10, 31);
    let nov1 = day(2026, 11, 1);
    // CM: 10 × 50 + 2.5 × 200 = 1000 > 960 on Nov 1.
    let cm1 = meter_days("MM1", oct31, &[Some(100_000), Some(0)]);
    let cm2 = meter_days("MM2", oct31, &[Some(25_000), Some(0)]);
    // CW: 10 × 50 + 2.3 × 200 = 960, exactly the limit.
    let cw1 = meter_days("MW1", oct31, &[Some(100_000), Some(0)]);
    let cw2 = meter_days("MW2", oct31, &[Some(23_000), Some(0)]);
    // CX: MX1 alone has 20 × 50 = 1000, but MX2 has no freeze of Nov 1:
    // the customer's valley energy of Nov 1 is not defined.
    let cx1 = meter_days("MX1", oct31, &[Some(200_000), Some(0)]);
    let cx2 = meter_days("MX2", oct31, &[None, Some(0)]);
    publish_days(&env, &[cm1, cm2, cw1, cw2, cx1, cx2]);
    let w = env.wait_wo(THEME, "CM", |_| true);
    env.wait_evaluated(&[THEME], nov1.plus(1).start());
    assert_eq!(env.customers_with(THEME), vec!["CM"]);
    assert_time(&w, "first_window_start", nov1.start());
    assert_time(&w, "first_window_end", nov1.plus(1).start());
    assert_num(
        &w["evidence"]["valley_kwh_mtd"],
        1000.0,
        "CM valley_kwh_mtd = Σ delta × multiplier",
    );
    assert_num(&w["evidence"]["limit_kwh"], 960.0, "CM limit_kwh");
    assert_num(&w["evidence"]["day_of_month"], 1.0, "CM day_of_month");
}
