//! Day themes on freezes: register_reversal, zero_consumption, energy_drop.
//! Day D closes when the freeze of D+1 arrives.

use crate::support::*;
use serde_json::{json, Value};

/// One meter's freezes from `first` on, as register readings in
/// ten-thousandths; `None` leaves the day out.
fn series(meter: &str, first: Day, regs: &[Option<i64>]) -> Vec<Option<Value>> {
    regs.iter()
        .enumerate()
        .map(|(i, r)| r.map(|r| freeze(meter, first.plus(i as i64), r4(r))))
        .collect()
}

/// Readings from `start` adding each delta in turn (first entry = `start`).
fn cumulative(start: i64, deltas: &[i64]) -> Vec<Option<i64>> {
    let mut v = vec![Some(start)];
    let mut r = start;
    for d in deltas {
        r += d;
        v.push(Some(r));
    }
    v
}

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

#[test]
fn register_reversal_hit_and_equal_reading_near_miss() {
    let env = Env::start(&archive(vec![
        customer("CA", 400, &[("MA", "1000")]),
        customer("CB", 400, &[("MB", "1000")]),
        customer("CC", 400, &[("MC1", "1000"), ("MC2", "1000")]),
    ]));
    let nov1 = day(2026, 11, 1);
    // Nov 1 … Nov 4; Nov 4 closes Nov 3.
    // CA: 1000.0000, 1000.5000, 1000.4900 (reversal on Nov 3), 1000.6000.
    let ca = series(
        "MA",
        nov1,
        &[
            Some(10_000_000),
            Some(10_005_000),
            Some(10_004_900),
            Some(10_006_000),
        ],
    );
    // CB: unchanged readings are no reversal.
    let cb = series("MB", nov1, &[Some(20_000_000); 4]);
    // CC: MC1 rises; MC2 goes back on Nov 2 only.
    let cc1 = series(
        "MC1",
        nov1,
        &cumulative(1_000_000, &[10_000, 10_000, 10_000]),
    );
    let cc2 = series(
        "MC2",
        nov1,
        &[
            Some(5_000_000),
            Some(4_999_000),
            Some(5_000_000),
            Some(5_001_000),
        ],
    );
    publish_days(&env, &[ca, cb, cc1, cc2]);

    let wa = env.wait_wo("register_reversal", "CA", |_| true);
    env.wait_evaluated(&["register_reversal"], day(2026, 11, 4).start());
    assert_eq!(env.customers_with("register_reversal"), vec!["CA", "CC"]);
    assert_time(&wa, "first_window_start", day(2026, 11, 3).start());
    assert_time(&wa, "first_window_end", day(2026, 11, 4).start());
    assert_eq!(wa["evidence"]["meter_id"], "MA", "{wa}");
    assert_num(
        &wa["evidence"]["prev_reg_total"],
        1000.5,
        "CA prev_reg_total",
    );
    assert_num(&wa["evidence"]["reg_total"], 1000.49, "CA reg_total");
    let wc = env.wos("register_reversal", "CC").remove(0);
    assert_eq!(wc["hits"], 1, "{wc}");
    assert_time(&wc, "first_window_start", day(2026, 11, 2).start());
    assert_time(&wc, "first_window_end", day(2026, 11, 3).start());
    assert_eq!(wc["evidence"]["meter_id"], "MC2", "{wc}");
    assert_num(
        &wc["evidence"]["prev_reg_total"],
        500.0,
        "CC prev_reg_total",
    );
    assert_num(&wc["evidence"]["reg_total"], 499.9, "CC reg_total");
}

#[test]
fn zero_consumption_seven_defined_zero_days_and_near_misses() {
    let suspended = with(
        customer("CB", 400, &[("MB", "100")]),
        "status",
        json!("suspended"),
    );
    let env = Env::start(&archive(vec![
        customer("CA", 400, &[("MA", "100")]),
        suspended,
        customer("CC", 400, &[("MC", "100")]),
        customer("CD", 400, &[("MD1", "100"), ("MD2", "100")]),
        customer("CE", 400, &[("ME1", "100"), ("ME2", "100")]),
    ]));
    let nov1 = day(2026, 11, 1);
    // Freezes Nov 1 … Nov 8 → energies of Nov 2 … Nov 8 (7 days); D = Nov 8.
    let flat = [Some(50_000_000i64); 8];
    let ca = series("MA", nov1, &flat);
    let cb = series("MB", nov1, &flat);
    // CC: 0.0001 × 100 = 0.01 kWh on Nov 2 → only 6 zero days.
    let mut c = flat.to_vec();
    for r in c.iter_mut().skip(1) {
        *r = Some(50_000_001);
    }
    let cc = series("MC", nov1, &c);
    // CD: MD2 has no freeze of Nov 5 → Nov 5 and Nov 6 are not defined.
    let cd1 = series("MD1", nov1, &flat);
    let mut d2 = flat.to_vec();
    d2[4] = None;
    let cd2 = series("MD2", nov1, &d2);
    let ce1 = series("ME1", nov1, &flat);
    let ce2 = series("ME2", nov1, &flat);
    publish_days(&env, &[ca, cb, cc, cd1, cd2, ce1, ce2]);
    // The freeze of Nov 9 closes Nov 8.
    env.freezes(vec![freeze(FILL_METER, day(2026, 11, 9), 1.0)]);

    let wa = env.wait_wo("zero_consumption", "CA", |_| true);
    env.wait_wo("zero_consumption", "CE", |_| true);
    env.wait_evaluated(&["zero_consumption"], day(2026, 11, 9).start());
    let mut got = env.customers_with("zero_consumption");
    got.retain(|c| c != FILL_CUSTOMER);
    assert_eq!(got, vec!["CA", "CE"]);
    assert_eq!(wa["hits"], 1, "{wa}");
    assert_time(&wa, "first_window_start", day(2026, 11, 2).start());
    assert_time(&wa, "first_window_end", day(2026, 11, 9).start());
    let days: Vec<String> = wa["evidence"]["days"]
        .as_array()
        .unwrap_or_else(|| panic!("evidence.days is not an array: {wa}"))
        .iter()
        .map(|d| {
            d.as_str()
                .unwrap_or_else(|| panic!("day {d} is not a string"))[..10]
                .to_string()
        })
        .collect();
    let want: Vec<String> = (1..=7).map(|i| nov1.plus(i).iso()).collect();
    assert_eq!(days, want, "evidence.days");
}

#[test]
fn energy_drop_hit_and_near_misses() {
    let suspended = with(
        customer("CC", 400, &[("MC", "100")]),
        "status",
        json!("suspended"),
    );
    let env = Env::start(&archive(vec![
        customer("CA", 400, &[("MA", "100")]),
        customer("CB", 400, &[("MB", "100")]),
        suspended,
        customer("CD", 400, &[("MD", "100")]),
        customer("CE", 400, &[("ME", "100")]),
        customer("CF", 400, &[("MF1", "100"), ("MF2", "100")]),
    ]));
    let nov1 = day(2026, 11, 1);
    // Freezes Nov 1 … Nov 9: energies Nov 2 … Nov 8 (the 7 days before) and
    // D = Nov 9. Multiplier 100: register delta 10 → 1000 kWh.
    let week = |d: i64, last: i64| -> Vec<Option<i64>> {
        let mut v = vec![d; 7];
        v.push(last);
        cumulative(100_000_000, &v)
    };
    // CA: mean 1000, D = 299.99 < 300 → hit.
    let ca = series("MA", nov1, &week(100_000, 29_999));
    // CB: D = 300 = 0.3 × mean exactly → no hit.
    let cb = series("MB", nov1, &week(100_000, 30_000));
    // CC: a drop, but suspended.
    let cc = series("MC", nov1, &week(100_000, 5_000));
    // CD: mean exactly 100 (the minimum, inclusive), D = 29.99 → hit.
    let cd = series("MD", nov1, &week(10_000, 2_999));
    // CE: mean 99.99 < 100 → ignored even with D = 0.
    let ce = series("ME", nov1, &week(9_999, 0));
    // CF: 500 + 500 a day, D = 100 + 100; MF2 lacks the Nov 4 freeze, so
    // Nov 4 and Nov 5 are not defined for the customer → no hit.
    let cf1 = series("MF1", nov1, &week(50_000, 10_000));
    let mut f2 = week(50_000, 10_000);
    f2[3] = None;
    let cf2 = series("MF2", nov1, &f2);
    publish_days(&env, &[ca, cb, cc, cd, ce, cf1, cf2]);
    env.freezes(vec![freeze(FILL_METER, day(2026, 11, 10), 1.0)]);

    let wa = env.wait_wo("energy_drop", "CA", |_| true);
    env.wait_wo("energy_drop", "CD", |_| true);
    env.wait_evaluated(&["energy_drop"], day(2026, 11, 10).start());
    assert_eq!(env.customers_with("energy_drop"), vec!["CA", "CD"]);
    assert_eq!(wa["hits"], 1, "{wa}");
    assert_time(&wa, "first_window_start", day(2026, 11, 9).start());
    assert_time(&wa, "first_window_end", day(2026, 11, 10).start());
    assert_num(&wa["evidence"]["kwh"], 299.99, "CA evidence.kwh");
    assert_num(&wa["evidence"]["mean_kwh"], 1000.0, "CA evidence.mean_kwh");
    let wd = env.wos("energy_drop", "CD").remove(0);
    assert_num(&wd["evidence"]["kwh"], 29.99, "CD evidence.kwh");
    assert_num(&wd["evidence"]["mean_kwh"], 100.0, "CD evidence.mean_kwh");
}
