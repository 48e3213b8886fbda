//! The pre-built messages of a run and the planted anomalies they carry.

use crate::fleet::{DAY_MS, FIRST_DAY};
use rumqttc::Publish;
use serde_json::Value;
use std::fmt::Write as _;

/// Hundredths as a decimal with two places: 1234 → "12.34".
pub(crate) fn dec2(out: &mut String, h: i64) {
    if h < 0 {
        out.push('-');
    }
    let a = h.unsigned_abs();
    let _ = write!(out, "{}.{:02}", a / 100, a % 100);
}

pub(crate) fn epoch_day() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// Days since 1970-01-01 of FIRST_DAY.
pub(crate) fn first_day() -> i64 {
    let (y, m, d) = FIRST_DAY;
    chrono::NaiveDate::from_ymd_opt(y, m, d)
        .map(|f| (f - epoch_day()).num_days())
        .unwrap_or_default()
}

pub(crate) fn iso_date(day: i64) -> String {
    (epoch_day() + chrono::Duration::days(day))
        .format("%Y-%m-%d")
        .to_string()
}

/// Local (+08:00) milliseconds since 1970-01-01T00:00 local → RFC 3339.
pub(crate) fn rfc3339_local(local_ms: i64) -> String {
    let day = local_ms.div_euclid(DAY_MS);
    let s = local_ms.rem_euclid(DAY_MS) / 1000;
    format!(
        "{}T{:02}:{:02}:{:02}+08:00",
        iso_date(day),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Stream {
    Load,
    Freeze,
    Event,
}

/// One pre-built MQTT message.
pub(crate) struct Msg {
    pub(crate) publish: Publish,
    pub(crate) records: u64,
    pub(crate) stream: Stream,
    /// Largest event time in the message, UTC ms (what moves jicha's watermark).
    pub(crate) max_event_ms: i64,
}

/// A planted anomaly that must become a work order, and what closes its window.
#[derive(Clone, Debug)]
pub(crate) struct Planted {
    pub(crate) theme: &'static str,
    pub(crate) customer_id: String,
    /// The trigger of `stream` (its watermark; events also follow load) must
    /// pass this event time (UTC ms) for the window to be evaluated.
    pub(crate) stream: Stream,
    pub(crate) closes_after_ms: i64,
    /// Index of the message that moves the trigger past it (computed).
    pub(crate) closing: Option<usize>,
}

pub(crate) struct Workload {
    pub(crate) fleet_meters: usize,
    pub(crate) n_msgs: usize,
    pub(crate) customers: usize,
    pub(crate) msgs: Vec<Msg>,
    pub(crate) load: u64,
    pub(crate) freezes: u64,
    pub(crate) events: u64,
    pub(crate) bytes: u64,
    pub(crate) planted: Vec<Planted>,
    pub(crate) archive: Value,
}

impl Workload {
    pub(crate) fn records(&self) -> u64 {
        self.load + self.freezes + self.events
    }
}

pub(crate) struct PlanEvent {
    pub(crate) local_ms: i64,
    pub(crate) meter: usize,
    pub(crate) code: &'static str,
    pub(crate) state: Option<&'static str>,
}
