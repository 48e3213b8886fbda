//! A report's period: a business day, an ISO week or a calendar month, in
//! the business time zone. The bounds are instants, start inclusive and
//! end exclusive, so consecutive periods neither overlap nor leave a gap.

use crate::time::{BusinessClock, EpochMs};
use chrono::{Datelike, NaiveDate, Weekday};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// `2026-11-03`: 日报.
    Day(NaiveDate),
    /// `2026-W45`: 周报, Monday to Sunday (ISO 8601).
    Week { year: i32, week: u32 },
    /// `2026-11`: 月度评价.
    Month { year: i32, month: u32 },
}

impl Period {
    /// `YYYY-MM-DD`, `YYYY-Www` or `YYYY-MM`; anything else is refused,
    /// saying which forms are accepted.
    pub fn parse(text: &str) -> Result<Period, String> {
        let bad = || {
            format!("period {text:?}: use a day (2026-11-03), an ISO week (2026-W45) or a month (2026-11)")
        };
        let t = text.trim();
        if let Some((y, w)) = t.split_once("-W") {
            let (year, week) = (y.parse().map_err(|_| bad())?, w.parse().map_err(|_| bad())?);
            NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).ok_or_else(bad)?;
            return Ok(Period::Week { year, week });
        }
        match t.len() {
            10 => NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .map(Period::Day)
                .map_err(|_| bad()),
            7 => {
                let (y, m) = t.split_once('-').ok_or_else(bad)?;
                let (year, month) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
                NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(bad)?;
                Ok(Period::Month { year, month })
            }
            _ => Err(bad()),
        }
    }

    /// The month of `t` in the business time zone.
    pub fn month_of(clock: &BusinessClock, t: EpochMs) -> Period {
        let d = clock.local_date(t);
        Period::Month {
            year: d.year(),
            month: d.month(),
        }
    }

    /// The first day, and the day after the last.
    pub fn days(&self) -> (NaiveDate, NaiveDate) {
        // The constructors checked these dates; the fallbacks are unreachable.
        match *self {
            Period::Day(d) => (d, d.succ_opt().unwrap_or(d)),
            Period::Week { year, week } => {
                let first =
                    NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).unwrap_or(NaiveDate::MIN);
                (first, first + chrono::Days::new(7))
            }
            Period::Month { year, month } => {
                let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(NaiveDate::MIN);
                (first, first + chrono::Months::new(1))
            }
        }
    }

    /// `[start, end)` as instants.
    pub fn bounds(&self, clock: &BusinessClock) -> (EpochMs, EpochMs) {
        let (first, after) = self.days();
        (clock.day_start(first), clock.day_start(after))
    }

    pub fn contains(&self, clock: &BusinessClock, t: EpochMs) -> bool {
        let (start, end) = self.bounds(clock);
        (start..end).contains(&t)
    }

    pub fn is_month(&self) -> bool {
        matches!(self, Period::Month { .. })
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Day(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Period::Week { year, week } => write!(f, "{year}-W{week:02}"),
            Period::Month { year, month } => write!(f, "{year}-{month:02}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_and_their_bounds() {
        let clock = BusinessClock::default();
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let m = Period::parse("2026-11").unwrap();
        assert_eq!(m.days(), (d(2026, 11, 1), d(2026, 12, 1)));
        assert_eq!(m.to_string(), "2026-11");
        let w = Period::parse("2026-W01").unwrap();
        assert_eq!(w.days(), (d(2025, 12, 29), d(2026, 1, 5)), "ISO week 1");
        assert_eq!(w.to_string(), "2026-W01");
        let day = Period::parse("2026-11-03").unwrap();
        let (start, end) = day.bounds(&clock);
        assert_eq!(end - start, crate::time::DAY_MS);
        assert_eq!(clock.format(start), "2026-11-03T00:00:00+08:00");
        assert!(day.contains(&clock, start) && !day.contains(&clock, end));
        assert_eq!(Period::month_of(&clock, end - 1), m);
        for bad in ["2026-13", "2026-W54", "2026-11-31", "11/2026", "2026", ""] {
            let e = Period::parse(bad).unwrap_err();
            assert!(e.contains("ISO week"), "{bad}: {e}");
        }
    }
}
