//! Calendar arithmetic on business days (dates in the +08:00 business zone).
//!
//! Why: themes count days of months (valley limit: `day_of_month`), bound
//! billing periods (`[first day of month, first day of next month)`) and
//! count suspended days of capacity changes (basic_fee_shortfall). Doing this
//! once, on `NaiveDate` with inclusive ranges, keeps the off-by-one decisions
//! in one tested place. Callers convert instants to business-local dates
//! before calling; nothing here knows about time zones.

use chrono::{Datelike, NaiveDate};

/// Number of days of `month` (1..=12) in `year` of the proleptic Gregorian
/// calendar; `None` for a month outside 1..=12.
///
/// Pure arithmetic (no `NaiveDate` construction), so it answers for every
/// `i32` year, including those beyond chrono's date range.
pub fn days_in_month(year: i32, month: u32) -> Option<u32> {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
        4 | 6 | 9 | 11 => Some(30),
        2 if is_leap_year(year) => Some(29),
        2 => Some(28),
        _ => None,
    }
}

/// Gregorian leap year: divisible by 4, except centuries not divisible by 400.
fn is_leap_year(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// First day of the month that contains `date` (the start of its billing
/// period `P`).
pub fn month_start(date: NaiveDate) -> NaiveDate {
    // Day 1 exists in every month of every representable year, so
    // `with_day(1)` cannot fail; the fallback only keeps this total.
    date.with_day(1).unwrap_or(date)
}

/// First day of the month after the one that contains `date` (the exclusive
/// end of its billing period `P`); `None` only when that day is past the
/// last date chrono can represent.
pub fn next_month_start(date: NaiveDate) -> Option<NaiveDate> {
    if date.month() == 12 {
        NaiveDate::from_ymd_opt(date.year().checked_add(1)?, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
    }
}

/// Number of days of the inclusive range `[start, end]` (`end = None`:
/// open-ended, still running) that fall inside the inclusive range
/// `[from, to]`.
///
/// Returns 0 when the ranges are disjoint, when `from > to`, or when
/// `end < start` (an inverted range holds no day). Both ends are inclusive
/// because capacity changes and billing periods are stated as first and last
/// days, e.g. a change from 03-01 to 03-10 covers 10 days.
pub fn overlap_days(
    start: NaiveDate,
    end: Option<NaiveDate>,
    from: NaiveDate,
    to: NaiveDate,
) -> i64 {
    let lo = start.max(from);
    let hi = match end {
        Some(end) => end.min(to),
        None => to,
    };
    if lo > hi {
        0
    } else {
        // Dates span at most ~2^19 years, so the day count fits an i64.
        hi.signed_duration_since(lo).num_days() + 1
    }
}

/// Days of one `suspend` capacity change that count towards the calendar-year
/// limit (`suspend_max_days`, 183) of the basic_fee_shortfall theme.
///
/// Per `themes.md`: the days of the change inside the calendar year of
/// `period_last_day`, its `end` capped at `period_last_day` (an open or later
/// end counts only up to the period being billed), both ends inclusive. Equals
/// `overlap_days(start, Some(min(end, last)), Jan 1 of last's year, last)`.
/// Days before January 1 belong to the previous year's limit and do not count.
pub fn suspended_days_in_year(
    start: NaiveDate,
    end: Option<NaiveDate>,
    period_last_day: NaiveDate,
) -> i64 {
    // January 1 of a representable year is always representable; the
    // fallback only keeps this total.
    let year_start = period_last_day.with_ordinal(1).unwrap_or(period_last_day);
    let capped_end = match end {
        Some(end) => end.min(period_last_day),
        None => period_last_day,
    };
    overlap_days(start, Some(capped_end), year_start, period_last_day)
}

/// Whether a capacity change `[start, end]` is active for the whole billing
/// period `[period_first, period_last]`: `start <= period_first` and (`end`
/// is `None` or `end >= period_last`).
///
/// Why whole-period only: basic_fee_shortfall deducts a change's kVA from the
/// expected capacity only when it covered every day of the period; partial
/// months are prorated by other rules, not by this theme.
pub fn active_whole_period(
    start: NaiveDate,
    end: Option<NaiveDate>,
    period_first: NaiveDate,
    period_last: NaiveDate,
) -> bool {
    start <= period_first && end.is_none_or(|end| end >= period_last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    #[test]
    fn days_in_month_regular_months() {
        let expected = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        for (i, want) in expected.iter().enumerate() {
            assert_eq!(
                days_in_month(2023, i as u32 + 1),
                Some(*want),
                "month {}",
                i + 1
            );
        }
    }

    #[test]
    fn days_in_month_february_leap_rules() {
        assert_eq!(days_in_month(2024, 2), Some(29)); // divisible by 4
        assert_eq!(days_in_month(2023, 2), Some(28));
        assert_eq!(days_in_month(1900, 2), Some(28)); // century, not /400
        assert_eq!(days_in_month(2000, 2), Some(29)); // /400
        assert_eq!(days_in_month(2100, 2), Some(28));
        assert_eq!(days_in_month(0, 2), Some(29)); // year 0 is a leap year
        assert_eq!(days_in_month(-4, 2), Some(29));
        assert_eq!(days_in_month(-1, 2), Some(28));
    }

    #[test]
    fn days_in_month_rejects_months_outside_1_to_12() {
        assert_eq!(days_in_month(2024, 0), None);
        assert_eq!(days_in_month(2024, 13), None);
        assert_eq!(days_in_month(2024, u32::MAX), None);
    }

    #[test]
    fn days_in_month_agrees_with_chrono() {
        for year in [1600, 1700, 1999, 2000, 2023, 2024, 2100, 2400] {
            for month in 1..=12 {
                let first = d(year, month, 1);
                let next = next_month_start(first).expect("in range");
                let n = next.signed_duration_since(first).num_days();
                assert_eq!(days_in_month(year, month), Some(n as u32), "{year}-{month}");
            }
        }
    }

    #[test]
    fn days_in_month_extreme_years_do_not_panic() {
        assert_eq!(days_in_month(i32::MAX, 2), Some(28));
        // -2^31 is divisible by 4 but not by 100: leap.
        assert_eq!(days_in_month(i32::MIN, 2), Some(29));
    }

    #[test]
    fn month_start_and_next_month_start() {
        assert_eq!(month_start(d(2024, 2, 29)), d(2024, 2, 1));
        assert_eq!(month_start(d(2024, 3, 1)), d(2024, 3, 1));
        assert_eq!(month_start(d(2024, 12, 31)), d(2024, 12, 1));
        assert_eq!(next_month_start(d(2024, 1, 31)), Some(d(2024, 2, 1)));
        assert_eq!(next_month_start(d(2024, 2, 1)), Some(d(2024, 3, 1)));
        assert_eq!(next_month_start(d(2024, 12, 1)), Some(d(2025, 1, 1)));
        assert_eq!(next_month_start(d(2024, 12, 31)), Some(d(2025, 1, 1)));
    }

    #[test]
    fn month_bounds_at_the_edges_of_chrono() {
        assert_eq!(next_month_start(NaiveDate::MAX), None);
        assert_eq!(month_start(NaiveDate::MIN), NaiveDate::MIN);
        assert!(next_month_start(NaiveDate::MIN).is_some());
        let last_month = month_start(NaiveDate::MAX);
        assert_eq!(last_month.day(), 1);
    }

    #[test]
    fn overlap_days_inclusive_bounds() {
        let (from, to) = (d(2024, 3, 1), d(2024, 3, 31));
        // Fully inside.
        assert_eq!(
            overlap_days(d(2024, 3, 1), Some(d(2024, 3, 10)), from, to),
            10
        );
        // Single day range.
        assert_eq!(
            overlap_days(d(2024, 3, 5), Some(d(2024, 3, 5)), from, to),
            1
        );
        // Touches the window on its first / last day only.
        assert_eq!(
            overlap_days(d(2024, 2, 1), Some(d(2024, 3, 1)), from, to),
            1
        );
        assert_eq!(overlap_days(d(2024, 3, 31), None, from, to), 1);
        // Covers the window.
        assert_eq!(
            overlap_days(d(2024, 1, 1), Some(d(2024, 12, 31)), from, to),
            31
        );
        // Open-ended.
        assert_eq!(overlap_days(d(2024, 3, 20), None, from, to), 12);
        assert_eq!(overlap_days(d(2020, 1, 1), None, from, to), 31);
    }

    #[test]
    fn overlap_days_zero_when_disjoint_or_inverted() {
        let (from, to) = (d(2024, 3, 1), d(2024, 3, 31));
        assert_eq!(
            overlap_days(d(2024, 2, 1), Some(d(2024, 2, 29)), from, to),
            0
        );
        assert_eq!(overlap_days(d(2024, 4, 1), None, from, to), 0);
        // from > to.
        assert_eq!(overlap_days(d(2024, 1, 1), None, to, from), 0);
        // end < start.
        assert_eq!(
            overlap_days(d(2024, 3, 10), Some(d(2024, 3, 5)), from, to),
            0
        );
    }

    #[test]
    fn overlap_days_full_chrono_range_does_not_overflow() {
        let n = overlap_days(NaiveDate::MIN, None, NaiveDate::MIN, NaiveDate::MAX);
        assert_eq!(
            n,
            NaiveDate::MAX
                .signed_duration_since(NaiveDate::MIN)
                .num_days()
                + 1
        );
    }

    #[test]
    fn suspended_days_counts_only_this_year_up_to_period_end() {
        // Started last year, still open: Jan 1 .. Jun 30 2024 = 182 days (leap).
        assert_eq!(
            suspended_days_in_year(d(2023, 10, 1), None, d(2024, 6, 30)),
            182
        );
        // One more day crosses the 183 threshold only on July 1 / 2.
        assert_eq!(
            suspended_days_in_year(d(2023, 10, 1), None, d(2024, 7, 1)),
            183
        );
        assert_eq!(
            suspended_days_in_year(d(2023, 10, 1), None, d(2024, 7, 2)),
            184
        );
        // End later than the period's last day is capped.
        assert_eq!(
            suspended_days_in_year(d(2024, 3, 1), Some(d(2024, 12, 31)), d(2024, 3, 31)),
            31
        );
        // Ended before the period: counted in full (same year).
        assert_eq!(
            suspended_days_in_year(d(2024, 1, 10), Some(d(2024, 1, 19)), d(2024, 5, 31)),
            10
        );
        // Both ends inclusive per themes.md: 03-01..03-10 is 10 days. (domain.md
        // TV15 counts seal-to-unseal as 9 days; that is another rule's convention.)
        assert_eq!(
            suspended_days_in_year(d(2024, 3, 1), Some(d(2024, 3, 10)), d(2024, 3, 31)),
            10
        );
    }

    #[test]
    fn suspended_days_zero_outside_year_or_after_period() {
        // Entirely in the previous year.
        assert_eq!(
            suspended_days_in_year(d(2023, 5, 1), Some(d(2023, 12, 31)), d(2024, 1, 31)),
            0
        );
        // Starts after the period's last day.
        assert_eq!(
            suspended_days_in_year(d(2024, 2, 1), None, d(2024, 1, 31)),
            0
        );
        // Starts on the period's last day: one day.
        assert_eq!(
            suspended_days_in_year(d(2024, 1, 31), None, d(2024, 1, 31)),
            1
        );
        // Crosses Jan 1: only this year's days.
        assert_eq!(
            suspended_days_in_year(d(2023, 12, 30), Some(d(2024, 1, 2)), d(2024, 1, 31)),
            2
        );
        // Whole non-leap year.
        assert_eq!(
            suspended_days_in_year(d(2022, 1, 1), None, d(2023, 12, 31)),
            365
        );
    }

    #[test]
    fn suspended_days_at_chrono_edges() {
        assert_eq!(
            suspended_days_in_year(NaiveDate::MIN, None, NaiveDate::MIN),
            1
        );
        let last = NaiveDate::MAX;
        assert_eq!(suspended_days_in_year(last, Some(last), last), 1);
    }

    #[test]
    fn active_whole_period_boundaries() {
        let (first, last) = (d(2024, 3, 1), d(2024, 3, 31));
        assert!(active_whole_period(first, None, first, last));
        assert!(active_whole_period(first, Some(last), first, last));
        assert!(active_whole_period(
            d(2024, 1, 1),
            Some(d(2024, 4, 30)),
            first,
            last
        ));
        // Starts one day late.
        assert!(!active_whole_period(d(2024, 3, 2), None, first, last));
        // Ends one day early.
        assert!(!active_whole_period(
            first,
            Some(d(2024, 3, 30)),
            first,
            last
        ));
        // Ended before the period.
        assert!(!active_whole_period(
            d(2024, 1, 1),
            Some(d(2024, 2, 29)),
            first,
            last
        ));
    }
}
