//! Archive, record and billing builders: JSON documents with defaults that
//! raise nothing, for each test to tweak.

use super::time::{Day, Ts};
use serde_json::{json, Value};

pub const LOAD_TOPIC: &str = "meter/load/T1";
pub const FREEZE_TOPIC: &str = "meter/freeze/T1";
pub const EVENT_TOPIC: &str = "meter/event/T1";

/// The filler customer every archive carries: its meter pushes watermarks
/// forward without ever hitting a theme of interest.
pub const FILL_CUSTOMER: &str = "CFILL";
pub const FILL_METER: &str = "MFILL";

// ───────────────────────────── JSON helpers ─────────────────────────────

/// A number that may be written as a JSON number or a decimal string.
#[track_caller]
pub fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {v}")),
        _ => panic!("not a number: {v}"),
    }
}

#[track_caller]
pub fn assert_num(v: &Value, want: f64, what: &str) {
    let got = num(v);
    assert!(
        (got - want).abs() < 1e-6 * want.abs().max(1.0),
        "{what}: got {v}, expected {want}"
    );
}

// ───────────────────────────── archive builders ─────────────────────────────

/// An archive customer with sensible defaults; tweak the returned JSON.
pub fn customer(id: &str, contract_kva: u32, meters: &[(&str, &str)]) -> Value {
    json!({
        "customer_id": id,
        "name": format!("客户 {id}"),
        "org_code": "41/4107/410727",
        "usage_category": "large_industry",
        "tariff_kind": "two_part",
        "tariff_category": "large_industry",
        "contract_kva": contract_kva,
        "running_kva": contract_kva,
        "voltage_kv": 10,
        "pf_standard": 0.9,
        "basic_fee_mode": "capacity",
        "status": "normal",
        "meters": meters.iter().map(|(m, mult)| json!({"meter_id": m, "multiplier": serde_json::from_str::<Value>(mult).unwrap()})).collect::<Vec<_>>(),
        "capacity_changes": []
    })
}

/// Same with one field changed.
pub fn with(mut c: Value, field: &str, v: Value) -> Value {
    c[field] = v;
    c
}

/// An archive document of `customers` plus the filler customer.
pub fn archive(mut customers: Vec<Value>) -> Value {
    let mut fill = customer(FILL_CUSTOMER, 100_000, &[(FILL_METER, "1")]);
    fill["org_code"] = json!("99/9999/999999");
    customers.push(fill);
    json!({ "customers": customers })
}

// ───────────────────────────── record builders ─────────────────────────────

/// A register reading given in ten-thousandths (exact decimal text, e.g.
/// 10_000_500 → 1000.05): sums of floats would write 196.10000000000002.
pub fn r4(units: i64) -> f64 {
    units as f64 / 10_000.0
}

pub fn load(meter: &str, t: Ts, p_kw: f64) -> Value {
    json!({"meter_id": meter, "ts": t.rfc(), "p_kw": p_kw})
}

/// A daily freeze of `date` (event time: the next midnight).
pub fn freeze(meter: &str, date: Day, reg_total: f64) -> Value {
    json!({"meter_id": meter, "date": date.iso(), "ts": date.plus(1).start().rfc(), "reg_total": reg_total})
}

pub fn freeze_valley(meter: &str, date: Day, reg_total: f64, reg_valley: f64) -> Value {
    let mut f = freeze(meter, date, reg_total);
    f["reg_valley"] = json!(reg_valley);
    f
}

pub fn event(meter: &str, t: Ts, code: &str, state: Option<&str>) -> Value {
    let mut e = json!({"meter_id": meter, "ts": t.rfc(), "code": code});
    if let Some(s) = state {
        e["state"] = json!(s);
    }
    e
}

// ───────────────────────────── billing builders ─────────────────────────────

/// A bill with defaults that raise nothing for a normal two-part large
/// industry customer of 400 kVA.
pub fn bill(customer_id: &str) -> Value {
    json!({
        "customer_id": customer_id,
        "tariff_kind": "two_part",
        "tariff_category": "large_industry",
        "energy_kwh": "69822.00",
        "basic_fee_kva": "400",
        "basic_fee_yuan": "10000.00",
        "energy_fee_yuan": "43289.64",
        "pf_adjust_applied": true
    })
}

/// Same with fields changed.
pub fn bill_with(customer_id: &str, fields: &[(&str, Value)]) -> Value {
    let mut b = bill(customer_id);
    for (k, v) in fields {
        b[*k] = v.clone();
    }
    b
}

pub fn billing(period: &str, bills: Vec<Value>) -> Value {
    json!({"period": period, "bills": bills})
}
