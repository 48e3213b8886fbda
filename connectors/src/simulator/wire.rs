//! The MQTT messages of interfaces.md §2, written as JSON text by hand so
//! registers and powers carry exactly two decimals (a JSON number built from
//! an f64 would print 12.5 for 12.50 and could not show the exact value).

use chrono::NaiveDateTime;
use serde_json::Value;

use super::curves::SLOTS;
use super::days::{slot_time, DayData, Event, Freeze};
use super::fleet::{Fleet, FLAT, PEAK, SHARP, VALLEY};

/// A meter no archive knows: its records must be rejected as `unknown_meter`.
pub(super) const UNKNOWN_METER: &str = "M9999999999";

/// One MQTT publish, with how many of its records are well-formed readings
/// and how many are deliberately malformed (to be rejected).
#[derive(Clone, Debug)]
pub(super) struct Message {
    pub topic: String,
    pub payload: String,
    pub readings: u64,
    pub malformed: u64,
}

/// RFC 3339 with the business offset. Asia/Shanghai has had no DST since
/// 1991, so its offset is the constant +08:00.
pub(super) fn ts(at: NaiveDateTime) -> String {
    format!("{}+08:00", at.format("%Y-%m-%dT%H:%M:%S"))
}

/// Hundredths as a decimal with exactly two places: 1234 → "12.34".
pub(super) fn dec2(h: i64) -> String {
    let sign = if h < 0 { "-" } else { "" };
    let a = h.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

fn jstr(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

pub(super) fn load_record(meter_id: &str, at: NaiveDateTime, p: i64, q: i64) -> String {
    format!(
        r#"{{"meter_id":{},"ts":"{}","p_kw":{},"q_kvar":{}}}"#,
        jstr(meter_id),
        ts(at),
        dec2(p),
        dec2(q)
    )
}

/// `ts` is the freeze time: midnight at the end of `date`.
pub(super) fn freeze_record(meter_id: &str, f: &Freeze) -> String {
    let at = super::days::midnight(f.date) + chrono::Duration::days(1);
    format!(
        r#"{{"meter_id":{},"date":"{}","ts":"{}","reg_total":{},"reg_sharp":{},"reg_peak":{},"reg_flat":{},"reg_valley":{},"reg_q_total":{}}}"#,
        jstr(meter_id),
        f.date,
        ts(at),
        dec2(f.total),
        dec2(f.b[SHARP]),
        dec2(f.b[PEAK]),
        dec2(f.b[FLAT]),
        dec2(f.b[VALLEY]),
        dec2(f.q)
    )
}

pub(super) fn event_record(meter_id: &str, e: &Event) -> String {
    let state = e
        .state
        .map(|s| format!(r#","state":{}"#, jstr(s)))
        .unwrap_or_default();
    format!(
        r#"{{"meter_id":{},"ts":"{}","code":{}{}}}"#,
        jstr(meter_id),
        ts(e.at),
        jstr(e.code),
        state
    )
}

/// The deliberately bad record slipped into the first terminal's batch at a
/// few morning slots of every day, to show the rejection path: a string
/// power, an unknown meter, an unparsable timestamp. The bad-power record
/// comes before the good record with the same key, so nothing real is lost.
fn malformed_record(slot: usize, meter_id: &str, at: NaiveDateTime) -> Option<String> {
    match slot {
        32 => Some(format!(
            r#"{{"meter_id":{},"ts":"{}","p_kw":"abc","q_kvar":0.00}}"#,
            jstr(meter_id),
            ts(at)
        )),
        33 => Some(load_record(UNKNOWN_METER, at, 1250, 120)),
        34 => Some(format!(
            r#"{{"meter_id":{},"ts":"not-a-time","p_kw":1.00,"q_kvar":0.00}}"#,
            jstr(meter_id)
        )),
        _ => None,
    }
}

/// Malformed records per day.
#[cfg(test)]
pub(super) const MALFORMED_PER_DAY: u64 = 3;

/// Chunk `records` (text, well-formed?) into array payloads of at most `batch`.
fn batches(topic: &str, records: Vec<(String, bool)>, batch: usize, out: &mut Vec<Message>) {
    for chunk in records.chunks(batch.max(1)) {
        let payload = format!(
            "[{}]",
            chunk
                .iter()
                .map(|(r, _)| r.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        let readings = chunk.iter().filter(|(_, good)| *good).count() as u64;
        out.push(Message {
            topic: topic.to_owned(),
            payload,
            readings,
            malformed: chunk.len() as u64 - readings,
        });
    }
}

/// The load points of one slot, per terminal, then that slot's events.
pub(super) fn slot_messages(
    fleet: &Fleet,
    day: &DayData,
    slot: usize,
    batch: usize,
) -> Vec<Message> {
    let at = slot_time(day.date, slot);
    let mut out = Vec::new();
    for (ti, t) in fleet.terminals.iter().enumerate() {
        let mut records: Vec<(String, bool)> = Vec::with_capacity(t.meters.len() + 1);
        if ti == 0 {
            let first = t
                .meters
                .first()
                .and_then(|f| fleet.meter(*f))
                .map(|(_, m)| m.id.as_str());
            if let Some(bad) = first.and_then(|id| malformed_record(slot, id, at)) {
                records.push((bad, false));
            }
        }
        for flat in &t.meters {
            let point = day
                .p
                .get(*flat)
                .zip(day.q.get(*flat))
                .and_then(|(p, q)| Some((*p.get(slot)?, *q.get(slot)?)));
            if let (Some((_, m)), Some((p, q))) = (fleet.meter(*flat), point) {
                records.push((load_record(&m.id, at, p, q), true));
            }
        }
        batches(&format!("meter/load/{}", t.id), records, batch, &mut out);
    }
    let end = slot_time(day.date, slot + 1);
    for e in day
        .events
        .iter()
        .filter(|e| e.at >= at && (e.at < end || slot + 1 == SLOTS))
    {
        out.extend(event_message(fleet, e));
    }
    out
}

/// An event goes out on its own, as a single JSON object (the non-batch form).
fn event_message(fleet: &Fleet, e: &Event) -> Option<Message> {
    let (_, m) = fleet.meter(e.meter)?;
    let terminal = fleet
        .terminal_of
        .get(e.meter)
        .and_then(|t| fleet.terminals.get(*t))?;
    Some(Message {
        topic: format!("meter/event/{}", terminal.id),
        payload: event_record(&m.id, e),
        readings: 1,
        malformed: 0,
    })
}

/// A day's freezes, per terminal.
pub(super) fn freeze_messages(fleet: &Fleet, freezes: &[Freeze], batch: usize) -> Vec<Message> {
    let mut out = Vec::new();
    for t in &fleet.terminals {
        let records: Vec<(String, bool)> = t
            .meters
            .iter()
            .filter_map(|flat| {
                let f = freezes.get(*flat).filter(|f| f.meter == *flat)?;
                Some((freeze_record(&fleet.meter(*flat)?.1.id, f), true))
            })
            .collect();
        batches(&format!("meter/freeze/{}", t.id), records, batch, &mut out);
    }
    out
}
