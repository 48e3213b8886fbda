//! What the fleet plants: each anomaly (must become a work order) and each
//! near miss (must not), with the run day by whose end the data shows it.

use chrono::{Datelike, Duration, NaiveDate};

use super::days::{at, hms_text, valley_cycle};
use super::fleet::{Fleet, Role, SimCustomer};
use super::wire::dec2;
use super::Planted;

/// A planted anomaly or near miss and the 0-based run day whose data
/// (points, or the freeze at its end) completes it.
pub(super) struct Plant {
    pub day: u32,
    pub planted: Planted,
}

fn plant(day: u32, theme: &'static str, c: &SimCustomer, note: String) -> Plant {
    Plant {
        day,
        planted: Planted {
            theme,
            customer_id: c.id.clone(),
            note,
        },
    }
}

fn date(fleet: &Fleet, day: u32) -> NaiveDate {
    fleet.start + Duration::days(i64::from(day))
}

fn meter_ids(c: &SimCustomer) -> String {
    c.meters
        .iter()
        .map(|m| m.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// kW at `pct` percent of the contract capacity, as text.
fn kw(c: &SimCustomer, pct: i64) -> String {
    dec2(c.contract_kva * pct)
}

pub(super) fn anomalies(fleet: &Fleet) -> Vec<Plant> {
    let mut out = Vec::new();
    let f = |role| fleet.with_role(role);
    if let Some(c) = f(Role::OverCapSingle) {
        let d = at::OVER_CAP_SINGLE_DAY;
        let note = format!(
            "{} 14:00–15:00: 4 consecutive points at {} kW > 1.2 × {} kVA = {} kW",
            date(fleet, d),
            kw(c, at::OVER_CAP_SINGLE_PCT),
            c.contract_kva,
            kw(c, 120)
        );
        out.push(plant(d, "over_capacity", c, note));
    }
    if let Some(c) = f(Role::OverCapMulti) {
        let d = at::OVER_CAP_MULTI_DAY;
        let note = format!(
            "{} 10:00 and 10:15: meters {} together {} kW > 1.2 × {} kVA = {} kW (no meter alone exceeds it)",
            date(fleet, d), meter_ids(c), kw(c, at::OVER_CAP_MULTI_PCT), c.contract_kva, kw(c, 120)
        );
        out.push(plant(d, "over_capacity", c, note));
    }
    if let Some(c) = f(Role::ValleyExcess) {
        let (high, low) = valley_cycle(fleet.start);
        let note = format!(
            "every night 23:00–07:00 points alternate {} / ~{} kW (mean {} kW): month-to-date valley energy > \
             1.2 × {} kVA × 8 h × day_of_month from {}; never two consecutive points > 1.2 × C",
            kw(c, high), kw(c, low), kw(c, (high + low) / 2), c.contract_kva, date(fleet, 0)
        );
        out.push(plant(0, "valley_excess", c, note));
    }
    if let Some(c) = f(Role::RegisterReversal) {
        let d = at::REVERSAL_DAY;
        let note = format!(
            "meter {}: register wound back {} kWh at the end of {}, below its reading at the end of {}; counts on afterwards",
            meter_ids(c), dec2(at::REVERSAL_HUNDREDTHS), date(fleet, d), date(fleet, d - 1)
        );
        out.push(plant(d, "register_reversal", c, note));
    }
    if let Some(c) = f(Role::ZeroConsumption) {
        let d = at::ZERO_DAYS - 1;
        let note = format!(
            "status normal, 0 kWh every day from {} (registers frozen, p_kw 0); {} zero days complete on {}",
            date(fleet, 0), at::ZERO_DAYS, date(fleet, d)
        );
        out.push(plant(d, "zero_consumption", c, note));
    }
    if let Some(c) = f(Role::EnergyDrop) {
        let d = at::DROP_DAY;
        let note = format!(
            "from {} daily energy falls to {} % of normal (mean of the 7 days before ≥ 100 kWh)",
            date(fleet, d),
            at::DROP_PCT
        );
        out.push(plant(d, "energy_drop", c, note));
    }
    if let Some(c) = f(Role::CoverOpen) {
        let note = format!(
            "meter {}: cover_open state start at {}, end at {}",
            meter_ids(c),
            hms_text(date(fleet, 0), at::COVER_START),
            hms_text(date(fleet, 0), at::COVER_END)
        );
        out.push(plant(0, "meter_cover_open", c, note));
    }
    out
}

pub(super) fn near_misses(fleet: &Fleet) -> Vec<Plant> {
    let mut out = Vec::new();
    let f = |role| fleet.with_role(role);
    if let Some(c) = f(Role::NearOverCapExact) {
        let note = format!(
            "every valley point exactly {} kW = 1.2 × {} kVA (not above)",
            kw(c, at::EXACT_PCT),
            c.contract_kva
        );
        out.push(plant(0, "over_capacity", c, note));
        let note = format!(
            "valley energy exactly 1.2 × C × 8 h every day: month-to-date equals the limit{} (not above)",
            if fleet.start.day() == 1 { "" } else { " only from the 1st of a month" }
        );
        out.push(plant(0, "valley_excess", c, note));
    }
    if let Some(c) = f(Role::NearOverCapSpike) {
        let d = at::SPIKE_DAY;
        let note = format!(
            "{} 11:00: a single point at {} kW > {} kW, neighbours normal",
            date(fleet, d),
            kw(c, at::SPIKE_PCT),
            kw(c, 120)
        );
        out.push(plant(d, "over_capacity", c, note));
    }
    if let Some(c) = f(Role::NearDropExact) {
        let d = at::DROP_DAY;
        let note = format!(
            "{}: daily energy exactly 0.3 × the mean of the 7 days before (not below)",
            date(fleet, d)
        );
        out.push(plant(d, "energy_drop", c, note));
    }
    if let Some(c) = f(Role::NearZeroAlmost) {
        let note = format!(
            "0 kWh on six days of every seven, 0.01 kWh on every {}th run day",
            at::ALMOST_ZERO_EVERY
        );
        out.push(plant(at::ZERO_DAYS - 1, "zero_consumption", c, note));
    }
    if let Some(c) = f(Role::NearSuspendedZero) {
        out.push(plant(
            at::ZERO_DAYS - 1,
            "zero_consumption",
            c,
            "status suspended, 0 kWh every day".to_owned(),
        ));
    }
    if let Some(c) = f(Role::NearCoverEnd) {
        let note = format!(
            "meter {}: only a cover_open with state end at {}",
            meter_ids(c),
            hms_text(date(fleet, 0), at::COVER_END_ONLY)
        );
        out.push(plant(0, "meter_cover_open", c, note));
    }
    out
}
