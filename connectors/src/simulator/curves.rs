//! 96-point daily load curves, and fitting them so that the frozen registers
//! are exact: every time-of-use bucket's Σ p × 0.25 h is a whole number of
//! register hundredths × multiplier. Powers are integer hundredths of kW
//! (primary side), registers integer hundredths of kWh (secondary side), so
//! for a meter with multiplier m one register hundredth is 4·m power-slot
//! units (Σp in hundredths of kW × 0.25 h / m).

use chrono::{Datelike, NaiveDate, Weekday};

use super::fleet::{Fleet, Shape, SimCustomer, FLAT, PEAK, SHARP, VALLEY};
use super::rng::Rng;

/// 15-minute points per day; slot `s` covers `[s × 15 min, (s+1) × 15 min)`.
pub(super) const SLOTS: usize = 96;

const TAG_DAY: u64 = 10;
const TAG_POINT: u64 = 11;

/// Time-of-use bucket of a slot: 谷 23:00–07:00 (8 h), 尖 19:00–21:00,
/// 峰 08:00–12:00, 17:00–19:00, 21:00–23:00, 平 the rest.
pub(super) fn bucket(slot: usize) -> usize {
    match slot / 4 {
        23 | 0..=6 => VALLEY,
        19 | 20 => SHARP,
        8..=11 | 17 | 18 | 21 | 22 => PEAK,
        _ => FLAT,
    }
}

/// One meter's day before registers: powers and which points a scenario
/// pinned to an exact value (fitting must not move those).
#[derive(Clone, Debug)]
pub(super) struct MeterDay {
    pub p: [i64; SLOTS],
    pub locked: [bool; SLOTS],
}

impl MeterDay {
    pub(super) fn free(p: [i64; SLOTS]) -> Self {
        MeterDay {
            p,
            locked: [false; SLOTS],
        }
    }

    /// No load at all, pinned (suspended or dead meters).
    pub(super) fn zero() -> Self {
        MeterDay {
            p: [0; SLOTS],
            locked: [true; SLOTS],
        }
    }

    pub(super) fn pin(&mut self, slot: usize, value: i64) {
        if let (Some(p), Some(l)) = (self.p.get_mut(slot), self.locked.get_mut(slot)) {
            *p = value;
            *l = true;
        }
    }

    #[cfg(test)]
    pub(super) fn sum(&self) -> i64 {
        self.p.iter().sum()
    }
}

/// The curve level of a shape at a slot, as a fraction of the contract
/// capacity, before the customer's load factor and noise.
fn level(shape: Shape, slot: usize, date: NaiveDate) -> f64 {
    let weekday = date.weekday();
    let weekend = |sat: f64, sun: f64| match weekday {
        Weekday::Sat => sat,
        Weekday::Sun => sun,
        _ => 1.0,
    };
    match shape {
        Shape::DayShift => day_shift(slot) * weekend(0.8, 0.6),
        Shape::ThreeShift => {
            (if matches!(slot, 0 | 32 | 64) {
                0.50
            } else {
                0.62
            }) * weekend(0.95, 0.95)
        } // shift changes
        Shape::Commerce => commerce(slot) * weekend(1.05, 1.05),
        Shape::Residential => residential(slot) * seasonal(date, &RESIDENTIAL_SEASON),
        Shape::Agriculture => {
            let pumping = if matches!(slot / 4, 21..=23 | 0..=6) {
                0.70
            } else {
                0.25
            };
            pumping * seasonal(date, &IRRIGATION_SEASON)
        }
    }
}

fn day_shift(slot: usize) -> f64 {
    match slot {
        28..=31 => 0.30 + 0.10 * (slot - 28) as f64, // 07:00 start-up ramp
        48..=51 => 0.55,                             // lunch break
        32..=71 => 0.72,                             // 08:00–18:00 shift
        72..=79 => 0.40,
        80..=91 => 0.25,
        _ => 0.18, // night: lighting, compressors, standby
    }
}

fn commerce(slot: usize) -> f64 {
    match slot {
        36..=83 => 0.55,
        32..=35 | 84..=87 => 0.35,
        _ => 0.12, // refrigeration and security at night
    }
}

fn residential(slot: usize) -> f64 {
    match slot / 4 {
        0..=5 => 0.02,
        6 | 7 => 0.08,
        8..=10 => 0.04,
        11 | 12 => 0.08,
        13..=16 => 0.04,
        17 => 0.10,
        18..=21 => 0.18, // evening peak
        _ => 0.07,
    }
}

/// (day of year, factor) control points, linearly interpolated: smooth, so
/// that no normal customer's daily energy can fall by 70 % within a week
/// (which would look like `energy_drop`). Linear rather than cosine keeps the
/// numbers bit-exact across platforms.
const IRRIGATION_SEASON: [(f64, f64); 10] = [
    (0.0, 0.30),
    (40.0, 0.30),
    (75.0, 1.00), // spring wheat irrigation
    (120.0, 0.35),
    (160.0, 0.40),
    (190.0, 1.00), // summer maize irrigation
    (240.0, 0.30),
    (300.0, 0.30),
    (330.0, 0.80), // winter irrigation (冬灌)
    (367.0, 0.30),
];
const RESIDENTIAL_SEASON: [(f64, f64); 7] = [
    (0.0, 1.2),
    (60.0, 1.0),
    (150.0, 1.0),
    (200.0, 1.3),
    (250.0, 1.0),
    (330.0, 1.0),
    (367.0, 1.2),
];

fn seasonal(date: NaiveDate, points: &[(f64, f64)]) -> f64 {
    let x = date.ordinal0() as f64;
    for pair in points.windows(2) {
        if let [(x0, y0), (x1, y1)] = pair {
            if x >= *x0 && x <= *x1 {
                return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
            }
        }
    }
    1.0
}

/// A normal day of one meter, in hundredths of kW (primary side): shape ×
/// load factor × a day factor shared by the customer's meters × point noise.
/// Peaks stay below ~0.85 × C, well under the 1.2 × C over-capacity limit.
pub(super) fn normal_curve(
    fleet: &Fleet,
    c: &SimCustomer,
    flat: usize,
    share: f64,
    day: u32,
) -> [i64; SLOTS] {
    let date = fleet.start + chrono::Duration::days(i64::from(day));
    let mut day_rng = Rng::derive(fleet.seed, &[TAG_DAY, c.index as u64, u64::from(day)]);
    let mut day_factor = 1.0 + 0.06 * day_rng.signed();
    if c.shape == Shape::Agriculture {
        day_factor *= day_rng.range(0.8, 1.0); // some days the pumps rest part of the night
    }
    let mut rng = Rng::derive(fleet.seed, &[TAG_POINT, flat as u64, u64::from(day)]);
    let scale = c.contract_kva as f64 * share * c.load_factor * day_factor * 100.0;
    let mut p = [0i64; SLOTS];
    for (slot, v) in p.iter_mut().enumerate() {
        let noise = 1.0 + 0.05 * rng.signed();
        *v = (scale * level(c.shape, slot, date) * noise)
            .round()
            .max(0.0) as i64;
    }
    p
}

/// Reactive power from active power and the customer's tan φ.
pub(super) fn reactive(p: &[i64; SLOTS], tan_phi: f64) -> [i64; SLOTS] {
    let mut q = [0i64; SLOTS];
    for (q, p) in q.iter_mut().zip(p) {
        *q = (*p as f64 * tan_phi).round() as i64;
    }
    q
}

/// Make every bucket's Σp a multiple of `unit` (= 4 × multiplier), moving
/// only unpinned points, so each register delta × multiplier equals the
/// curve's energy exactly. With `target` (register hundredths for the day),
/// the unpinned points are first scaled to hit it. A bucket whose points are
/// all pinned is left alone (the register carry takes any remainder).
pub(super) fn fit(day: &mut MeterDay, unit: i64, target: Option<i64>) {
    if unit <= 0 {
        return;
    }
    if let Some(t) = target {
        scale_to(day, t * unit);
    }
    let mut sums = [0i64; 4];
    let mut pinned = [0i64; 4];
    let mut free = [false; 4];
    for slot in 0..SLOTS {
        let b = bucket(slot);
        sums[b] += day.p[slot];
        if day.locked[slot] {
            pinned[b] += day.p[slot];
        } else {
            free[b] = true;
        }
    }
    let total: i64 = sums.iter().sum();
    let total_units = target.unwrap_or((total + unit / 2) / unit);
    let fixed_units: i64 = (0..4).filter(|b| !free[*b]).map(|b| sums[b] / unit).sum();
    let alloc = apportion((total_units - fixed_units).max(0), sums, free);
    for b in 0..4 {
        if free[b] {
            nudge(day, b, alloc[b] * unit - pinned[b]);
        }
    }
}

/// Scale the unpinned points so the day's Σp is about `want`.
fn scale_to(day: &mut MeterDay, want: i64) {
    let (mut pinned, mut free) = (0i64, 0i64);
    for (p, l) in day.p.iter().zip(day.locked.iter()) {
        if *l {
            pinned += p;
        } else {
            free += p;
        }
    }
    if free <= 0 {
        return;
    }
    let k = ((want - pinned) as f64 / free as f64).max(0.0);
    for (p, l) in day.p.iter_mut().zip(day.locked.iter()) {
        if !*l {
            *p = (*p as f64 * k).round() as i64;
        }
    }
}

/// Split `units` over the free buckets in proportion to their current sums
/// (largest remainder method), so fitting moves each bucket by < 1 unit.
fn apportion(units: i64, weights: [i64; 4], free: [bool; 4]) -> [i64; 4] {
    let mut out = [0i64; 4];
    let w: Vec<i128> = (0..4)
        .map(|b| {
            if free[b] {
                i128::from(weights[b].max(0))
            } else {
                0
            }
        })
        .collect();
    let wsum: i128 = w.iter().sum();
    if wsum == 0 {
        // Nothing to weigh by: give it all to the first free bucket.
        if let Some(b) = (0..4).find(|b| free[*b]) {
            out[b] = units;
        }
        return out;
    }
    let mut rems: Vec<(i128, usize)> = Vec::with_capacity(4);
    for b in 0..4 {
        let q = i128::from(units) * w[b];
        out[b] = (q / wsum) as i64;
        rems.push((q % wsum, b));
    }
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let left = units - out.iter().sum::<i64>();
    for (_, b) in rems.iter().take(left.max(0) as usize) {
        out[*b] += 1;
    }
    out
}

/// Move the unpinned points of bucket `b` so they sum to `want`: additions
/// spread evenly; removals taken from positive points (never below zero).
fn nudge(day: &mut MeterDay, b: usize, want: i64) {
    let idx: Vec<usize> = (0..SLOTS)
        .filter(|s| bucket(*s) == b && !day.locked[*s])
        .collect();
    if idx.is_empty() || want < 0 {
        return;
    }
    let have: i64 = idx.iter().map(|s| day.p[*s]).sum();
    let mut diff = want - have;
    if diff > 0 {
        let n = idx.len() as i64;
        for (k, s) in idx.iter().enumerate() {
            day.p[*s] += diff / n + i64::from((k as i64) < diff % n);
        }
        return;
    }
    while diff < 0 {
        let positive: Vec<usize> = idx.iter().copied().filter(|s| day.p[*s] > 0).collect();
        if positive.is_empty() {
            return;
        }
        let per = ((-diff) / positive.len() as i64).max(1);
        for s in positive {
            let d = per.min(day.p[s]).min(-diff);
            day.p[s] -= d;
            diff += d;
            if diff == 0 {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_the_day_as_tou_periods() {
        let count = |b| (0..SLOTS).filter(|s| bucket(*s) == b).count();
        assert_eq!(count(VALLEY), 32, "valley is 8 h");
        assert_eq!(
            count(SHARP) + count(PEAK) + count(FLAT) + count(VALLEY),
            SLOTS
        );
        assert_eq!(bucket(92), VALLEY); // 23:00
        assert_eq!(bucket(27), VALLEY); // 06:45
        assert_eq!(bucket(28), FLAT); // 07:00
    }

    #[test]
    fn fit_makes_buckets_exact_and_keeps_pins() {
        let mut p = [0i64; SLOTS];
        for (s, v) in p.iter_mut().enumerate() {
            *v = 1_000 + (s as i64 * 7919) % 5_000;
        }
        let mut day = MeterDay::free(p);
        day.pin(10, 12_345);
        let unit = 4 * 1_500;
        fit(&mut day, unit, None);
        assert_eq!(day.p[10], 12_345);
        for b in 0..4 {
            let s: i64 = (0..SLOTS)
                .filter(|s| bucket(*s) == b)
                .map(|s| day.p[s])
                .sum();
            assert_eq!(s % unit, 0, "bucket {b}");
        }
        let mut target = MeterDay::free(p);
        fit(&mut target, unit, Some(77));
        assert_eq!(target.sum(), 77 * unit);
        assert!(target.p.iter().all(|v| *v >= 0));
    }
}
