//! SQL-facing adapters: the UDF signatures Arroyo can call, over the domain
//! rules.
//!
//! Why a layer: `arroyo-udf-plugin` 0.2 crosses only primitives, `&str` and
//! `Option<T>`; it has no decimal and, for sync UDFs, no timestamp (its
//! `#[udf]` macro rejects `SystemTime` arguments). So money and energy arrive
//! as decimal text and leave as decimal text, and days arrive as naive local
//! date text. Invalid text gives `None` (SQL NULL) rather than a panic, which
//! would fail the whole batch.
//!
//! This file is written against `crate::domain::{calendar, money, tariff}`:
//! in the crate that is `jicha-domain`; in each generated single-file UDF
//! it is the same domain source, embedded. One text, two builds.

use crate::domain::{calendar, money, tariff};
use chrono::{Datelike, NaiveDate, NaiveDateTime};

/// Timestamp layouts accepted after the date: what `CAST(ts AS TEXT)` prints
/// for a naive timestamp (`T` separator) and the SQL form (space).
const DATE_TIME_FORMATS: [&str; 4] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
];

/// The business day of a naive local (+08:00) date or timestamp text:
/// `2024-02-29`, `2024-02-29T23:15:00`, `2024-02-29 23:15:00.5`.
///
/// Text with a zone or offset (`Z`, `+08:00`) is rejected: event time in the
/// Arroyo pipelines is naive local time, and silently reading a UTC instant
/// as local would shift days at 16:00 UTC.
pub fn parse_day(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(day);
    }
    DATE_TIME_FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|at| at.date())
}

/// `days_in_month(day TEXT) -> BIGINT`: days in the month of a naive local
/// date or timestamp; NULL for unreadable text.
pub fn days_in_month(day: &str) -> Option<i64> {
    let day = parse_day(day)?;
    calendar::days_in_month(day.year(), day.month()).map(i64::from)
}

/// `overlap_days(start TEXT, end TEXT NULL, from TEXT, to TEXT) -> BIGINT`:
/// days of `[start, end]` (NULL end: open-ended) inside `[from, to]`, all
/// inclusive; NULL when any given text is unreadable.
pub fn overlap_days(start: &str, end: Option<&str>, from: &str, to: &str) -> Option<i64> {
    let end = match end {
        Some(end) => Some(parse_day(end)?),
        None => None,
    };
    Some(calendar::overlap_days(
        parse_day(start)?,
        end,
        parse_day(from)?,
        parse_day(to)?,
    ))
}

/// `suspended_days_in_year(start TEXT, end TEXT NULL, period_last_day TEXT)
/// -> BIGINT`: days of one suspend change counted towards the calendar-year
/// limit (themes.md basic_fee_shortfall); NULL when any given text is
/// unreadable.
pub fn suspended_days_in_year(
    start: &str,
    end: Option<&str>,
    period_last_day: &str,
) -> Option<i64> {
    let end = match end {
        Some(end) => Some(parse_day(end)?),
        None => None,
    };
    Some(calendar::suspended_days_in_year(
        parse_day(start)?,
        end,
        parse_day(period_last_day)?,
    ))
}

/// `valley_limit_kwh(contract_kva TEXT, overload TEXT, hours TEXT,
/// day_of_month BIGINT) -> TEXT`: the valley_excess limit as exact decimal
/// text without trailing zeros (`"238080"`); NULL for unreadable decimals, a
/// day outside 1..=31, or a limit beyond the decimal range.
pub fn valley_limit_kwh(
    contract_kva: &str,
    overload: &str,
    hours: &str,
    day_of_month: i64,
) -> Option<String> {
    let day = u32::try_from(day_of_month)
        .ok()
        .filter(|day| (1..=31).contains(day))?;
    let limit = tariff::checked_valley_limit_kwh(
        money::parse_decimal(contract_kva).ok()?,
        money::parse_decimal(overload).ok()?,
        money::parse_decimal(hours).ok()?,
        day,
    )?;
    Some(limit.normalize().to_string())
}

/// `round_yuan(x TEXT) -> TEXT`: an amount rounded half-up to 0.01 元, as
/// text with two decimals (`"2000.00"`); NULL for unreadable text.
pub fn round_yuan(x: &str) -> Option<String> {
    Some(money::round_yuan(money::parse_decimal(x).ok()?).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    #[test]
    fn parse_day_reads_dates_and_naive_timestamps() {
        assert_eq!(parse_day("2024-02-29"), Some(d(2024, 2, 29)));
        assert_eq!(parse_day(" 2024-02-29 "), Some(d(2024, 2, 29)));
        assert_eq!(parse_day("2024-02-29T23:59:59"), Some(d(2024, 2, 29)));
        assert_eq!(
            parse_day("2024-02-29T23:59:59.999999"),
            Some(d(2024, 2, 29))
        );
        assert_eq!(parse_day("2024-02-29 00:00:00"), Some(d(2024, 2, 29)));
        assert_eq!(parse_day("2024-02-29T07:00"), Some(d(2024, 2, 29)));
    }

    #[test]
    fn parse_day_rejects_zones_and_garbage() {
        for text in [
            "",
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-02-30",
            "2024-02-29Z",
            "2024-02-29T10:00:00Z",
            "2024-02-29T10:00:00+08:00",
            "2024-02-29T25:00:00",
            "2024-02-29x",
            "29/02/2024",
            "1709164800",
        ] {
            assert_eq!(parse_day(text), None, "{text:?}");
        }
    }

    #[test]
    fn days_in_month_of_text() {
        assert_eq!(days_in_month("2024-02-10"), Some(29));
        assert_eq!(days_in_month("2023-02-10T23:00:00"), Some(28));
        assert_eq!(days_in_month("2024-01-31"), Some(31));
        assert_eq!(days_in_month("2024-04-30 12:00:00"), Some(30));
        assert_eq!(days_in_month("not a day"), None);
    }

    #[test]
    fn overlap_days_of_text() {
        assert_eq!(
            overlap_days("2024-03-01", Some("2024-03-10"), "2024-03-01", "2024-03-31"),
            Some(10)
        );
        assert_eq!(
            overlap_days("2024-03-20", None, "2024-03-01", "2024-03-31"),
            Some(12)
        );
        assert_eq!(
            overlap_days("2024-04-01", None, "2024-03-01", "2024-03-31"),
            Some(0)
        );
        // An unreadable end is not an open end.
        assert_eq!(
            overlap_days("2024-03-01", Some(""), "2024-03-01", "2024-03-31"),
            None
        );
        assert_eq!(overlap_days("2024-03-01", None, "bad", "2024-03-31"), None);
    }

    #[test]
    fn suspended_days_of_text() {
        assert_eq!(
            suspended_days_in_year("2023-10-01", None, "2024-07-01"),
            Some(183)
        );
        assert_eq!(
            suspended_days_in_year("2024-03-01", Some("2024-12-31"), "2024-03-31"),
            Some(31)
        );
        assert_eq!(
            suspended_days_in_year("2024-03-01", Some("2024-3-x"), "2024-03-31"),
            None
        );
    }

    #[test]
    fn valley_limit_of_text() {
        assert_eq!(
            valley_limit_kwh("800", "1.2", "8", 31).as_deref(),
            Some("238080")
        );
        assert_eq!(
            valley_limit_kwh("800", "1.2", "8", 30).as_deref(),
            Some("230400")
        );
        assert_eq!(
            valley_limit_kwh("8e2", "1.20", "8.0", 1).as_deref(),
            Some("7680")
        );
        assert_eq!(
            valley_limit_kwh("315.5", "1.1", "7.5", 3).as_deref(),
            Some("7808.625")
        );
        assert_eq!(valley_limit_kwh("800", "1.2", "8", 0), None);
        assert_eq!(valley_limit_kwh("800", "1.2", "8", 32), None);
        assert_eq!(valley_limit_kwh("800", "1.2", "8", -1), None);
        assert_eq!(valley_limit_kwh("800", "1.2", "8", i64::MAX), None);
        assert_eq!(valley_limit_kwh("abc", "1.2", "8", 31), None);
        assert_eq!(valley_limit_kwh("NaN", "1.2", "8", 31), None);
        assert_eq!(
            valley_limit_kwh("79228162514264337593543950335", "1.2", "8", 31),
            None
        );
    }

    #[test]
    fn round_yuan_of_text() {
        assert_eq!(round_yuan("2.345").as_deref(), Some("2.35"));
        assert_eq!(round_yuan("-2.345").as_deref(), Some("-2.35"));
        assert_eq!(round_yuan("2.344").as_deref(), Some("2.34"));
        assert_eq!(round_yuan("2000").as_deref(), Some("2000.00"));
        assert_eq!(round_yuan("2e3").as_deref(), Some("2000.00"));
        assert_eq!(round_yuan(" 0.005 ").as_deref(), Some("0.01"));
        assert_eq!(round_yuan(""), None);
        assert_eq!(round_yuan("1,000.00"), None);
        assert_eq!(round_yuan("inf"), None);
    }
}
