//! Day-by-day generation: each meter's 96 points, the registers they drive,
//! the daily freezes and the events, including every planted scenario.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};

use super::curves::{bucket, fit, normal_curve, reactive, MeterDay, SLOTS};
use super::fleet::{Fleet, Role, SimCustomer, FLAT, VALLEY};
use super::rng::Rng;

const TAG_EVENT: u64 = 12;

/// Run day (0-based) and slots of each scenario, shared with `plan` so the
/// notes always say what the data does.
pub(super) mod at {
    /// over_capacity, single meter: run day 0, 14:00–15:00 at 1.35 × C.
    pub const OVER_CAP_SINGLE_DAY: u32 = 0;
    pub const OVER_CAP_SINGLE_SLOTS: std::ops::Range<usize> = 56..60;
    pub const OVER_CAP_SINGLE_PCT: i64 = 135;
    /// over_capacity, two meters: run day 1, 10:00 and 10:15, total 1.3 × C.
    pub const OVER_CAP_MULTI_DAY: u32 = 1;
    pub const OVER_CAP_MULTI_SLOTS: std::ops::Range<usize> = 40..42;
    pub const OVER_CAP_MULTI_PCT: i64 = 130;
    /// register_reversal: the register is set back at the end of run day 1.
    pub const REVERSAL_DAY: u32 = 1;
    pub const REVERSAL_HUNDREDTHS: i64 = 30_000;
    /// energy_drop: from run day 7 (the first day with 7 defined days
    /// before it, counting the opening freeze), load falls to 12 %.
    pub const DROP_DAY: u32 = 7;
    pub const DROP_PCT: i64 = 12;
    /// The near miss drops to exactly 0.3 × the mean of run days 0–6.
    pub const NEAR_DROP_VARIATION: [i64; 7] = [5, -5, 2, -2, 0, 0, 0];
    /// Single-point spike near miss: run day 0, 11:00, 1.4 × C.
    pub const SPIKE_DAY: u32 = 0;
    pub const SPIKE_SLOT: usize = 44;
    pub const SPIKE_PCT: i64 = 140;
    /// Exact-limit near miss: every valley point at exactly 1.2 × C.
    pub const EXACT_PCT: i64 = 120;
    /// The almost-zero household uses 0.01 kWh every 7th run day.
    pub const ALMOST_ZERO_EVERY: u32 = 7;
    /// Cover events: run day 0; (hour, minute, second).
    pub const COVER_START: (u32, u32, u32) = (3, 17, 42);
    pub const COVER_END: (u32, u32, u32) = (3, 52, 10);
    pub const COVER_END_ONLY: (u32, u32, u32) = (10, 20, 0);
    /// Days of the fleet's zero-consumption rule window.
    pub const ZERO_DAYS: u32 = 7;
}

/// Secondary-side registers of one meter, in hundredths, plus the energy
/// below one hundredth carried to the next day (units of p-hundredths × slot).
#[derive(Clone, Debug)]
pub(super) struct Regs {
    pub b: [i64; 4],
    carry: [i64; 4],
    pub q: i64,
    q_carry: i64,
}

impl Regs {
    fn new(b: [i64; 4], q: i64) -> Self {
        Regs {
            b,
            carry: [0; 4],
            q,
            q_carry: 0,
        }
    }

    pub(super) fn total(&self) -> i64 {
        self.b.iter().sum()
    }

    /// Advance by one day of points: register hundredths = Σp / (4 m).
    fn add(&mut self, p: &[i64; SLOTS], q: &[i64; SLOTS], unit: i64) {
        let mut sums = [0i64; 4];
        for (slot, v) in p.iter().enumerate() {
            sums[bucket(slot)] += v;
        }
        for (b, s) in sums.iter().enumerate() {
            let acc = self.carry[b] + s;
            self.b[b] += acc.div_euclid(unit);
            self.carry[b] = acc.rem_euclid(unit);
        }
        let acc = self.q_carry + q.iter().sum::<i64>();
        self.q += acc.div_euclid(unit);
        self.q_carry = acc.rem_euclid(unit);
    }
}

/// One daily freeze: registers at the end of `date` (freeze time = next midnight).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Freeze {
    pub meter: usize,
    pub date: NaiveDate,
    pub b: [i64; 4],
    pub total: i64,
    pub q: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Event {
    pub meter: usize,
    pub at: NaiveDateTime,
    pub code: &'static str,
    pub state: Option<&'static str>,
}

/// Everything one business day publishes.
pub(super) struct DayData {
    pub date: NaiveDate,
    /// Per flat meter: 96 powers, hundredths of kW / kvar.
    pub p: Vec<[i64; SLOTS]>,
    pub q: Vec<[i64; SLOTS]>,
    pub freezes: Vec<Freeze>,
    /// Sorted by time.
    pub events: Vec<Event>,
}

pub(super) fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_time(NaiveTime::MIN)
}

pub(super) fn slot_time(date: NaiveDate, slot: usize) -> NaiveDateTime {
    midnight(date) + Duration::minutes(15 * slot as i64)
}

fn hms(date: NaiveDate, (h, m, s): (u32, u32, u32)) -> NaiveDateTime {
    midnight(date) + Duration::seconds(i64::from(h * 3600 + m * 60 + s))
}

/// The RFC 3339 text of a time of day on `date` (for notes).
pub(super) fn hms_text(date: NaiveDate, t: (u32, u32, u32)) -> String {
    super::wire::ts(hms(date, t))
}

/// Generates the fleet's days in order, carrying the registers.
pub(super) struct Generator<'a> {
    fleet: &'a Fleet,
    regs: Vec<Regs>,
    /// Flat index of each customer's first meter.
    first_flat: Vec<usize>,
    day: u32,
}

impl<'a> Generator<'a> {
    pub(super) fn new(fleet: &'a Fleet) -> Self {
        let regs = fleet
            .meters
            .iter()
            .filter_map(|r| fleet.customers.get(r.customer)?.meters.get(r.meter))
            .map(|m| Regs::new(m.reg0, m.q0))
            .collect();
        let mut first_flat = Vec::with_capacity(fleet.customers.len());
        let mut n = 0;
        for c in &fleet.customers {
            first_flat.push(n);
            n += c.meters.len();
        }
        Generator {
            fleet,
            regs,
            first_flat,
            day: 0,
        }
    }

    /// Freezes for the day before the run, so the first run day's energy is
    /// defined (energy needs the freeze at the end of the day before).
    pub(super) fn opening(&self) -> Vec<Freeze> {
        let date = self.fleet.start - Duration::days(1);
        self.regs
            .iter()
            .enumerate()
            .map(|(meter, r)| freeze(meter, date, r))
            .collect()
    }

    pub(super) fn next_day(&mut self) -> DayData {
        let (day, fleet) = (self.day, self.fleet);
        let date = fleet.start + Duration::days(i64::from(day));
        let n = self.regs.len();
        let (mut p, mut q) = (vec![[0i64; SLOTS]; n], vec![[0i64; SLOTS]; n]);
        let mut events = Vec::new();
        for (c, first) in fleet.customers.iter().zip(self.first_flat.iter().copied()) {
            let plan = customer_day(fleet, c, first, day);
            for (k, (mut md, target)) in plan.meters.into_iter().enumerate() {
                let (flat, unit) = (first + k, 4 * c.meters.get(k).map_or(1, |m| m.multiplier));
                fit(&mut md, unit, target);
                let qk = reactive(&md.p, c.tan_phi);
                if let (Some(r), Some(pp), Some(qq)) =
                    (self.regs.get_mut(flat), p.get_mut(flat), q.get_mut(flat))
                {
                    r.add(&md.p, &qk, unit);
                    *pp = md.p;
                    *qq = qk;
                }
            }
            events.extend(plan.events);
            if c.role == Role::RegisterReversal && day == at::REVERSAL_DAY {
                // Someone winds the register back (then it counts on normally).
                if let Some(r) = self.regs.get_mut(first) {
                    r.b[FLAT] -= at::REVERSAL_HUNDREDTHS;
                }
            }
        }
        events.sort_by(|a, b| (a.at, a.meter, a.code).cmp(&(b.at, b.meter, b.code)));
        let freezes = self
            .regs
            .iter()
            .enumerate()
            .map(|(meter, r)| freeze(meter, date, r))
            .collect();
        self.day += 1;
        DayData {
            date,
            p,
            q,
            freezes,
            events,
        }
    }
}

fn freeze(meter: usize, date: NaiveDate, r: &Regs) -> Freeze {
    Freeze {
        meter,
        date,
        b: r.b,
        total: r.total(),
        q: r.q,
    }
}

/// One customer's day: a curve (and optional register target) per meter, events.
struct CustomerDay {
    meters: Vec<(MeterDay, Option<i64>)>,
    events: Vec<Event>,
}

fn customer_day(fleet: &Fleet, c: &SimCustomer, first: usize, day: u32) -> CustomerDay {
    let date = fleet.start + Duration::days(i64::from(day));
    let mut meters: Vec<(MeterDay, Option<i64>)> = c
        .meters
        .iter()
        .enumerate()
        .map(|(k, m)| {
            (
                MeterDay::free(normal_curve(fleet, c, first + k, m.share, day)),
                None,
            )
        })
        .collect();
    let mut events = Vec::new();
    let cap = c.contract_kva; // hundredths of kW per percent of C
    let n_meters = meters.len().max(1) as i64;
    match c.role {
        Role::Normal => {
            for (k, (md, _)) in meters.iter_mut().enumerate() {
                events.extend(benign_events(fleet, first + k, day, date, md));
            }
        }
        Role::Suspended | Role::NearSuspendedZero | Role::ZeroConsumption => {
            meters.iter_mut().for_each(|(md, _)| *md = MeterDay::zero());
        }
        Role::OverCapSingle if day == at::OVER_CAP_SINGLE_DAY => {
            pin_all(
                &mut meters,
                at::OVER_CAP_SINGLE_SLOTS,
                cap * at::OVER_CAP_SINGLE_PCT / n_meters,
            );
        }
        Role::OverCapMulti if day == at::OVER_CAP_MULTI_DAY => {
            pin_all(
                &mut meters,
                at::OVER_CAP_MULTI_SLOTS,
                cap * at::OVER_CAP_MULTI_PCT / n_meters,
            );
        }
        Role::ValleyExcess => {
            let (high, low) = valley_cycle(fleet.start);
            for (md, _) in meters.iter_mut() {
                for slot in (0..SLOTS).filter(|s| bucket(*s) == VALLEY) {
                    if slot % 2 == 0 {
                        md.pin(slot, cap * high / n_meters);
                    } else {
                        md.p[slot] = cap * low / n_meters; // free: fitting may nudge it
                    }
                }
            }
        }
        Role::EnergyDrop if day >= at::DROP_DAY => {
            for (md, _) in meters.iter_mut() {
                md.p.iter_mut().for_each(|v| *v = *v * at::DROP_PCT / 100);
            }
        }
        Role::CoverOpen if day == 0 => {
            events.push(Event {
                meter: first,
                at: hms(date, at::COVER_START),
                code: "cover_open",
                state: Some("start"),
            });
            events.push(Event {
                meter: first,
                at: hms(date, at::COVER_END),
                code: "cover_open",
                state: Some("end"),
            });
        }
        Role::NearOverCapExact => {
            let slots = (0..SLOTS).filter(|s| bucket(*s) == VALLEY);
            for slot in slots {
                meters
                    .iter_mut()
                    .for_each(|(md, _)| md.pin(slot, cap * at::EXACT_PCT / n_meters));
            }
        }
        Role::NearOverCapSpike if day == at::SPIKE_DAY => {
            pin_all(
                &mut meters,
                at::SPIKE_SLOT..at::SPIKE_SLOT + 1,
                cap * at::SPIKE_PCT / n_meters,
            );
        }
        Role::NearDropExact if day <= at::DROP_DAY => {
            if let Some(t) = near_drop_targets(fleet, c, first).get(day as usize) {
                meters.iter_mut().for_each(|(_, target)| *target = Some(*t));
            }
        }
        Role::NearZeroAlmost => {
            meters.iter_mut().for_each(|(md, _)| *md = MeterDay::zero());
            if day % at::ALMOST_ZERO_EVERY == at::ALMOST_ZERO_EVERY - 1 {
                // 0.04 kW for 15 min = 0.01 kWh on a direct (×1) meter.
                meters.iter_mut().for_each(|(md, _)| md.pin(8, 4));
            }
        }
        Role::NearCoverEnd if day == 0 => {
            events.push(Event {
                meter: first,
                at: hms(date, at::COVER_END_ONLY),
                code: "cover_open",
                state: Some("end"),
            });
        }
        _ => {}
    }
    CustomerDay { meters, events }
}

fn pin_all(meters: &mut [(MeterDay, Option<i64>)], slots: std::ops::Range<usize>, value: i64) {
    for (md, _) in meters.iter_mut() {
        for slot in slots.clone() {
            md.pin(slot, value);
        }
    }
}

/// Valley pattern of the valley_excess customer, in percent of C: points
/// alternate high / low, so the valley average is 1.35 × C × day_of_month of
/// the run's first day (the month-to-date limit is 1.2 × C × 8 h × day of
/// month, and a run starting mid-month has only its own days of data), yet no
/// two consecutive points exceed 1.2 × C, keeping over_capacity silent.
pub(super) fn valley_cycle(start: NaiveDate) -> (i64, i64) {
    let dom = i64::from(start.day());
    let low = 10;
    (2 * 135 * dom - low, low)
}

/// Register hundredths per run day 0..=7 for the exact-0.3 near miss: days
/// 0–6 average M (a multiple of 100 near the customer's normal energy, so the
/// days after it stay ordinary), day 7 is exactly 3 M / 10.
pub(super) fn near_drop_targets(fleet: &Fleet, c: &SimCustomer, first: usize) -> Vec<i64> {
    let (m, share) = c
        .meters
        .first()
        .map_or((1, 1.0), |m| (m.multiplier, m.share));
    let normal: i64 = normal_curve(fleet, c, first, share, 0).iter().sum();
    let mean = ((normal / (4 * m) + 50) / 100 * 100).max(100);
    let mut t: Vec<i64> = at::NEAR_DROP_VARIATION
        .iter()
        .map(|v| mean * (100 + v) / 100)
        .collect();
    t.push(mean * 3 / 10);
    t
}

/// Background events on normal meters: clock drift alarms, and short
/// outages (power_off start/end) during which the meter records no load.
fn benign_events(
    fleet: &Fleet,
    flat: usize,
    day: u32,
    date: NaiveDate,
    md: &mut MeterDay,
) -> Vec<Event> {
    let mut rng = Rng::derive(fleet.seed, &[TAG_EVENT, flat as u64, u64::from(day)]);
    let mut out = Vec::new();
    if rng.chance(0.01) {
        let at = midnight(date) + Duration::seconds(rng.below(86_400) as i64);
        out.push(Event {
            meter: flat,
            at,
            code: "clock_error",
            state: None,
        });
    }
    if rng.chance(0.005) {
        let slot = 4 + rng.below(84) as usize;
        let len = 2 + rng.below(5) as usize;
        let offset = Duration::seconds(rng.below(900) as i64);
        let start = slot_time(date, slot) + offset;
        out.push(Event {
            meter: flat,
            at: start,
            code: "power_off",
            state: Some("start"),
        });
        out.push(Event {
            meter: flat,
            at: slot_time(date, slot + len) + offset,
            code: "power_off",
            state: Some("end"),
        });
        for s in slot + 1..slot + len {
            md.pin(s, 0);
        }
    }
    out
}
