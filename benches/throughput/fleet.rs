//! The generated fleet: customers of four kinds with their meters, their
//! archive document and their daily load shapes.

use crate::rng::BenchRng;
use serde_json::{json, Value};

pub(crate) const SLOTS: usize = 96;
pub(crate) const SLOT_MS: i64 = 15 * 60_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 86_400_000;
/// Business time zone +08:00 (Asia/Shanghai, no DST).
pub(crate) const OFFSET_MS: i64 = 8 * HOUR_MS;
/// Jicha's default allowed out-of-orderness for every stream.
pub(crate) const OOO_MS: i64 = HOUR_MS;
pub(crate) const FIRST_DAY: (i32, u32, u32) = (2026, 6, 1);

pub(crate) const ORGS: [&str; 7] = [
    "41/4101/410102",
    "41/4101/410105",
    "41/4101/410122",
    "41/4103/410311",
    "41/4103/410323",
    "41/4107/410711",
    "41/4107/410727",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Residential,
    Commerce,
    Industry,
    Agriculture,
}

pub(crate) struct MeterSpec {
    pub(crate) id: String,
    pub(crate) multiplier: i64,
    /// Share of the customer's load, in permille (a customer's shares sum to 1000).
    pub(crate) share_pm: i64,
}

pub(crate) struct Cust {
    pub(crate) id: String,
    pub(crate) kind: Kind,
    pub(crate) kva: i64,
    pub(crate) load_factor: f64,
    pub(crate) org: &'static str,
    pub(crate) meters: Vec<MeterSpec>,
}

/// The archive: 45 % households (1 meter), 30 % commerce (40 % of them 2
/// meters), 15 % industry (1–3 meters), 10 % agriculture: ≈ 1.30 meters per
/// customer, as issue 5 says (20,000 customers ≈ 26,000 meters).
pub(crate) fn build_fleet(n: usize, seed: u64) -> Vec<Cust> {
    let mut rng = BenchRng::new(seed ^ 0x006A_6963_6861);
    let mut next_meter = 1u64;
    (0..n)
        .map(|i| {
            let roll = rng.unit();
            let kind = if roll < 0.45 {
                Kind::Residential
            } else if roll < 0.75 {
                Kind::Commerce
            } else if roll < 0.90 {
                Kind::Industry
            } else {
                Kind::Agriculture
            };
            let (kva, n_meters, mults): (i64, usize, &[i64]) = match kind {
                Kind::Residential => (16, 1, &[1]),
                Kind::Commerce => (
                    rng.pick(&[50, 100, 200, 315, 400]),
                    if rng.unit() < 0.4 { 2 } else { 1 },
                    &[30, 40, 60, 80],
                ),
                Kind::Industry => (
                    rng.pick(&[315, 400, 630, 800, 1000, 1250, 1600]),
                    rng.pick(&[1, 2, 2, 3, 3]),
                    &[200, 300, 500, 1000],
                ),
                Kind::Agriculture => (rng.pick(&[50, 100, 200]), 1, &[20, 30, 40]),
            };
            let weights: Vec<f64> = (0..n_meters).map(|_| 0.7 + 0.6 * rng.unit()).collect();
            let sum: f64 = weights.iter().sum();
            let mut left = 1000;
            let meters = weights
                .iter()
                .enumerate()
                .map(|(k, w)| {
                    let share_pm = if k + 1 == n_meters {
                        left
                    } else {
                        ((w / sum) * 1000.0) as i64
                    };
                    left -= share_pm;
                    let id = format!("M{next_meter:010}");
                    next_meter += 1;
                    MeterSpec {
                        id,
                        multiplier: rng.pick(mults),
                        share_pm,
                    }
                })
                .collect();
            Cust {
                id: format!("C{:010}", 100_001 + i as u64),
                kind,
                kva,
                load_factor: 0.55 + 0.3 * rng.unit(),
                org: rng.pick(&ORGS),
                meters,
            }
        })
        .collect()
}

pub(crate) fn archive_json(fleet: &[Cust]) -> Value {
    let customers: Vec<Value> = fleet
        .iter()
        .map(|c| {
            let (cat, tariff, fee, volt, pf) = match c.kind {
                Kind::Residential => ("residential", "single", "none", json!(0.22), json!(0.85)),
                Kind::Commerce => (
                    "general_industry_commerce",
                    "single",
                    "none",
                    json!(0.4),
                    json!(0.85),
                ),
                Kind::Industry => ("large_industry", "two_part", "capacity", json!(10), json!(0.9)),
                Kind::Agriculture => ("agriculture", "single", "none", json!(0.4), json!(0.8)),
            };
            json!({
                "customer_id": c.id,
                "name": format!("基准客户{}", c.id),
                "org_code": c.org,
                "usage_category": cat,
                "tariff_kind": tariff,
                "tariff_category": cat,
                "contract_kva": c.kva,
                "running_kva": c.kva,
                "voltage_kv": volt,
                "pf_standard": pf,
                "basic_fee_mode": fee,
                "status": "normal",
                "meters": c.meters.iter().map(|m| json!({"meter_id": m.id, "multiplier": m.multiplier})).collect::<Vec<_>>(),
                "capacity_changes": [],
            })
        })
        .collect();
    json!({ "customers": customers })
}

/// Fraction of the contract capacity at a slot, before load factor and noise
/// (always ≤ 0.95, so background load stays far below 1.2 × C).
pub(crate) fn level(kind: Kind, slot: usize) -> f64 {
    let h = slot / 4;
    match kind {
        Kind::Residential => match h {
            0..=5 => 0.12,
            6..=8 => 0.40,
            18..=21 => 0.85,
            _ => 0.30,
        },
        Kind::Commerce => match h {
            9..=20 => 0.85,
            7 | 8 | 21 => 0.45,
            _ => 0.15,
        },
        Kind::Industry => match h {
            8..=17 => 0.95,
            6 | 7 | 18..=21 => 0.60,
            _ => 0.35,
        },
        Kind::Agriculture => match h {
            23 | 0..=6 => 0.90,
            _ => 0.10,
        },
    }
}

/// Time-of-use bucket of a slot: 0 sharp, 1 peak, 2 flat, 3 valley.
pub(crate) fn bucket(slot: usize) -> usize {
    match slot / 4 {
        23 | 0..=6 => 3,
        19 | 20 => 0,
        8..=11 | 17 | 18 | 21 | 22 => 1,
        _ => 2,
    }
}
