//! Business time (+08:00) in whole minutes and days, RFC 3339 in and out.

use serde_json::Value;

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A business day (+08:00), as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

pub fn day(y: i64, m: i64, d: i64) -> Day {
    Day(days_from_civil(y, m, d))
}

impl Day {
    pub fn iso(self) -> String {
        let (y, m, d) = civil_from_days(self.0);
        format!("{y:04}-{m:02}-{d:02}")
    }
    pub fn plus(self, n: i64) -> Day {
        Day(self.0 + n)
    }
    /// Local midnight starting this day.
    pub fn start(self) -> Ts {
        Ts(self.0 * 1440)
    }
    pub fn at(self, h: i64, mi: i64) -> Ts {
        Ts(self.0 * 1440 + h * 60 + mi)
    }
}

/// A local (+08:00) instant in whole minutes since 1970-01-01T00:00 local.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub i64);

pub fn ts(y: i64, mo: i64, d: i64, h: i64, mi: i64) -> Ts {
    day(y, mo, d).at(h, mi)
}

impl Ts {
    pub fn rfc(self) -> String {
        let d = self.0.div_euclid(1440);
        let m = self.0.rem_euclid(1440);
        format!("{}T{:02}:{:02}:00+08:00", Day(d).iso(), m / 60, m % 60)
    }
    pub fn plus_min(self, n: i64) -> Ts {
        Ts(self.0 + n)
    }
    /// Unix seconds.
    pub fn unix(self) -> i64 {
        self.0 * 60 - 8 * 3600
    }
}

/// RFC 3339 → Unix seconds (fractions dropped). Panics on anything else.
pub fn parse_rfc3339(s: &str) -> i64 {
    let bad = || panic!("not an RFC 3339 timestamp: {s:?}");
    let b = s.as_bytes();
    if b.len() < 20 {
        bad();
    }
    let n = |r: std::ops::Range<usize>| -> i64 {
        s.get(r).and_then(|x| x.parse().ok()).unwrap_or_else(&bad)
    };
    let (y, mo, d, h, mi, se) = (n(0..4), n(5..7), n(8..10), n(11..13), n(14..16), n(17..19));
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    let off = match b.get(i) {
        Some(b'Z') | Some(b'z') => 0,
        Some(b'+') | Some(b'-') => {
            let sign = if b[i] == b'+' { 1 } else { -1 };
            sign * (n(i + 1..i + 3) * 3600 + n(i + 4..i + 6) * 60)
        }
        _ => bad(),
    };
    days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off
}

/// Asserts that a work-order time field is RFC 3339 with +08:00 and is `want`.
#[track_caller]
pub fn assert_time(wo: &Value, field: &str, want: Ts) {
    let s = wo[field]
        .as_str()
        .unwrap_or_else(|| panic!("work order has no string {field}: {wo}"));
    assert!(
        s.ends_with("+08:00"),
        "{field} {s:?} is not written with +08:00 (work order {wo})"
    );
    assert_eq!(
        parse_rfc3339(s),
        want.unix(),
        "{field} is {s}, expected {} (work order {wo})",
        want.rfc()
    );
}
