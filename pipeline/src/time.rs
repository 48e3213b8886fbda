//! Business time: instants are kept as UTC epoch milliseconds; days, months,
//! valley hours and windows are reckoned in the business time zone
//! (Asia/Shanghai by default), because that is where a "day" of a tariff is.
//!
//! Tables handed to themes carry *naive local* timestamps (the wall clock of
//! the business zone), exactly as Arroyo wants its event time, so a
//! `tumble(interval '1 day')` starts at local midnight on both engines.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Milliseconds since the Unix epoch, UTC.
pub type EpochMs = i64;
/// Milliseconds since 1970-01-01T00:00 of the business wall clock.
pub type LocalMs = i64;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

#[derive(Debug, Clone, Copy)]
pub struct BusinessClock {
    tz: Tz,
}

impl Default for BusinessClock {
    fn default() -> Self {
        Self {
            tz: chrono_tz::Asia::Shanghai,
        }
    }
}

impl BusinessClock {
    pub fn new(tz: Tz) -> Self {
        Self { tz }
    }

    pub fn parse_tz(name: &str) -> Result<Self, String> {
        name.parse::<Tz>().map(Self::new).map_err(|_| {
            format!("unknown time zone {name:?}: use an IANA name such as Asia/Shanghai")
        })
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    pub fn to_local(&self, t: EpochMs) -> LocalMs {
        match self.tz.timestamp_millis_opt(t).single() {
            Some(dt) => dt.naive_local().and_utc().timestamp_millis(),
            None => t,
        }
    }

    /// Local wall-clock time back to an instant. Ambiguous or skipped local
    /// times (only in zones with DST) take the earlier instant.
    pub fn to_utc(&self, l: LocalMs) -> EpochMs {
        let Some(naive) = DateTime::from_timestamp_millis(l).map(|d| d.naive_utc()) else {
            return l;
        };
        match self.tz.from_local_datetime(&naive).earliest() {
            Some(dt) => dt.timestamp_millis(),
            None => l - self.offset_ms(l),
        }
    }

    fn offset_ms(&self, t: EpochMs) -> i64 {
        self.to_local(t) - t
    }

    pub fn local_date(&self, t: EpochMs) -> NaiveDate {
        local_ms_to_date(self.to_local(t))
    }

    /// Start of a business day as an instant.
    pub fn day_start(&self, d: NaiveDate) -> EpochMs {
        self.to_utc(date_to_local_ms(d))
    }

    /// RFC 3339 with the business offset, e.g. `2026-11-03T14:00:00+08:00`.
    pub fn format(&self, t: EpochMs) -> String {
        match self.tz.timestamp_millis_opt(t).single() {
            Some(dt) => {
                let fixed: DateTime<FixedOffset> = dt.fixed_offset();
                fixed.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
            }
            None => t.to_string(),
        }
    }
}

fn epoch_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// 1970-01-01 as chrono's `num_days_from_ce` counts days (0001-01-01 is 1).
const EPOCH_DAYS_FROM_CE: i64 = 719_163;

/// Days since 1970-01-01 (Arrow's `Date32`, stored dates). From chrono's
/// day count rather than a date difference: it runs for every timestamp
/// decoded, and the difference builds the epoch date each time.
pub fn days_since_epoch(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce()) - EPOCH_DAYS_FROM_CE
}

/// The date `days` after 1970-01-01; None outside chrono's range.
pub fn date_from_days(days: i64) -> Option<NaiveDate> {
    epoch_day().checked_add_signed(chrono::Duration::try_days(days)?)
}

pub fn date_to_local_ms(d: NaiveDate) -> LocalMs {
    d.and_hms_opt(0, 0, 0)
        .map(|n| n.and_utc().timestamp_millis())
        .unwrap_or_default()
}

/// The local date of a local instant; instants beyond chrono's range (the
/// `LocalMs::MIN`/`MAX` bounds of open ranges) saturate to its first or
/// last date.
pub fn local_ms_to_date(l: LocalMs) -> NaiveDate {
    match DateTime::from_timestamp_millis(l) {
        Some(d) => d.date_naive(),
        None if l < 0 => NaiveDate::MIN,
        None => NaiveDate::MAX,
    }
}

pub fn local_ms_to_naive(l: LocalMs) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_millis(l).map(|d| d.naive_utc())
}

/// Parses a record timestamp: RFC 3339 with an offset, or integer epoch ms.
pub fn parse_timestamp(text: &str) -> Result<EpochMs, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return t
            .parse::<i64>()
            .map_err(|_| format!("timestamp {t:?} is not an epoch-millisecond integer"));
    }
    if let Some(ms) = meter_timestamp(t) {
        return Ok(ms);
    }
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc).timestamp_millis())
        .map_err(|_| {
            format!("timestamp {t:?} is neither RFC 3339 with offset (2026-11-03T14:00:00+08:00) nor epoch milliseconds")
        })
}

/// The form meters send, `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`,
/// read directly: chrono's general RFC 3339 parser was a large part of
/// decoding a record. None for anything else or out of range (a leap
/// second, an impossible date), which chrono then decides, so the result
/// is always chrono's.
fn meter_timestamp(t: &str) -> Option<EpochMs> {
    let [y0, y1, y2, y3, b'-', mo0, mo1, b'-', d0, d1, b'T', h0, h1, b':', mi0, mi1, b':', s0, s1, rest @ ..] =
        t.as_bytes()
    else {
        return None;
    };
    let year = i32::try_from(digits(&[*y0, *y1, *y2, *y3])?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, digits(&[*mo0, *mo1])?, digits(&[*d0, *d1])?)?;
    let (hour, minute, second) = (
        digits(&[*h0, *h1])?,
        digits(&[*mi0, *mi1])?,
        digits(&[*s0, *s1])?,
    );
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let (millis, zone) = fraction_ms(rest)?;
    let offset_minutes = match zone {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), oh0, oh1, b':', om0, om1] => {
            let (oh, om) = (digits(&[*oh0, *oh1])?, digits(&[*om0, *om1])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let minutes = i64::from(oh * 60 + om);
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let seconds = days_since_epoch(date) * 86_400 + i64::from(hour * 3600 + minute * 60 + second)
        - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// An optional `.` and 1 to 9 digits of a second, as whole milliseconds
/// (cut, not rounded, as chrono does), and the text after them.
fn fraction_ms(text: &[u8]) -> Option<(i64, &[u8])> {
    let Some(after_dot) = text.strip_prefix(b".") else {
        return Some((0, text));
    };
    let n = after_dot.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=9).contains(&n) {
        return None;
    }
    let (fraction, rest) = after_dot.split_at(n);
    let ms = fraction
        .iter()
        .chain(b"00")
        .take(3)
        .fold(0, |ms, d| ms * 10 + i64::from(d - b'0'));
    Some((ms, rest))
}

/// ASCII decimal digits as a number; None if any byte is not a digit.
fn digits(ds: &[u8]) -> Option<u32> {
    ds.iter().try_fold(0u32, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("date {text:?} is not of the form YYYY-MM-DD"))
}

/// Parses durations such as `1h`, `30m`, `90s`, `7d` or plain seconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("duration {t:?} must look like 90s, 30m, 1h or 7d"))?;
    let mult = match unit {
        "" | "s" => 1000,
        "ms" => 1,
        "m" | "min" => MINUTE_MS,
        "h" => HOUR_MS,
        "d" => DAY_MS,
        _ => {
            return Err(format!(
                "duration {t:?}: unknown unit {unit:?}; use ms, s, m, h or d"
            ))
        }
    };
    Ok(n.saturating_mul(mult))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shanghai_days_start_at_local_midnight() {
        let c = BusinessClock::default();
        let t = parse_timestamp("2026-11-03T00:00:00+08:00").unwrap();
        assert_eq!(c.local_date(t).to_string(), "2026-11-03");
        assert_eq!(c.local_date(t - 1).to_string(), "2026-11-02");
        let d = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        assert_eq!(c.day_start(d), t);
        assert_eq!(c.format(t), "2026-11-03T00:00:00+08:00");
    }

    /// Open ranges use `LocalMs::MIN`/`MAX` as bounds; their dates saturate
    /// (with overflow checks on, this once panicked in the evaluator).
    #[test]
    fn dates_of_unbounded_instants_saturate() {
        assert_eq!(local_ms_to_date(LocalMs::MIN), NaiveDate::MIN);
        assert_eq!(local_ms_to_date(LocalMs::MAX), NaiveDate::MAX);
        assert_eq!(local_ms_to_date(-1).to_string(), "1969-12-31");
        assert_eq!(local_ms_to_date(DAY_MS).to_string(), "1970-01-02");
    }

    /// The direct reading of the meters' form gives chrono's result for
    /// every input it takes, and takes every valid one: month ends, leap
    /// days of leap and common years, each field at and past its range,
    /// fractions, offsets, and random damage to all of them.
    #[test]
    fn meter_timestamps_read_as_chrono_reads_them() {
        let chrono_ms = |t: &str| {
            DateTime::parse_from_rfc3339(t)
                .ok()
                .map(|d| d.timestamp_millis())
        };
        let in_form = [
            ("00:00:00", "Z"),
            ("23:59:59", "+08:00"),
            ("14:15:00.5", "-23:59"),
            ("07:08:09.123456789", "+23:59"),
            ("07:08:09.04", "-00:30"),
            ("24:00:00", "Z"),
            ("12:60:00", "+08:00"),
        ];
        let outside = [
            ("12:00:60", "+00:00"),
            ("07:08:09.1234567891", "Z"),
            ("07:08:09.", "Z"),
            ("01:02:03", "+24:00"),
            ("01:02:03", "+08:60"),
            ("01:02:03", "+0800"),
            ("01:02:03", "z"),
        ];
        let years = [
            "0000", "0001", "1900", "1969", "1970", "2000", "2024", "2026", "2100", "9999",
        ];
        let mut samples = Vec::new();
        for year in years {
            for month in 0..=13 {
                for day in [0, 1, 15, 28, 29, 30, 31, 32] {
                    for (time, zone) in in_form {
                        let t = format!("{year}-{month:02}-{day:02}T{time}{zone}");
                        assert_eq!(meter_timestamp(&t), chrono_ms(&t), "{t}");
                        samples.push(t);
                    }
                    for (time, zone) in outside {
                        samples.push(format!("{year}-{month:02}-{day:02}T{time}{zone}"));
                    }
                }
            }
        }
        // Random damage: each byte may become a digit or a separator.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let alphabet = b"0123456789-:+TZ. t";
        let base = samples.clone();
        for t in &base {
            for _ in 0..20 {
                let mut b = t.clone().into_bytes();
                for c in b.iter_mut() {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    if state.trailing_zeros() >= 5 {
                        *c = alphabet[(state >> 8) as usize % alphabet.len()];
                    }
                }
                samples.push(String::from_utf8(b).unwrap_or_default());
            }
        }
        let mut taken = 0;
        for t in &samples {
            let fast = meter_timestamp(t);
            if fast.is_some() {
                taken += 1;
                assert_eq!(fast, chrono_ms(t), "{t}");
            }
            if !t.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                assert_eq!(parse_timestamp(t).ok(), chrono_ms(t), "{t}");
            }
        }
        assert!(taken > samples.len() / 10, "only {taken} taken");
    }

    #[test]
    fn days_since_epoch_counts_from_1970() {
        let mut d = NaiveDate::from_ymd_opt(0, 1, 1).unwrap();
        while d.year() < 2500 {
            assert_eq!(days_since_epoch(d), (d - epoch_day()).num_days(), "{d}");
            assert_eq!(date_from_days(days_since_epoch(d)), Some(d));
            d += chrono::Duration::days(7);
        }
        assert_eq!(days_since_epoch(epoch_day()), 0);
    }

    #[test]
    fn epoch_and_rfc3339_agree() {
        let a = parse_timestamp("2026-11-03T14:00:00+08:00").unwrap();
        let b = parse_timestamp("2026-11-03T06:00:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_timestamp(&a.to_string()).unwrap(), a);
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("2026-11-03 14:00").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("1h").unwrap(), HOUR_MS);
        assert_eq!(parse_duration_ms("15m").unwrap(), 15 * MINUTE_MS);
        assert!(parse_duration_ms("1 fortnight").is_err());
    }
}

/// `NaiveDate` as `YYYY-MM-DD` in stored JSON (chrono's own serde feature
/// would rebuild the whole DataFusion tree for one format).
pub mod date_serde {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&d.format("%Y-%m-%d"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_date(&s).map_err(serde::de::Error::custom)
    }
}

pub mod opt_date_serde {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(&d.format("%Y-%m-%d")),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => super::parse_date(&s)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}
