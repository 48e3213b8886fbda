//! Tariff-derived limits.
//!
//! Why: the valley_excess theme (超低谷用电, suspected private transformer)
//! compares month-to-date valley energy with what the contracted capacity can
//! physically draw in the valley hours. The bound is a product of exact
//! decimals so the same limit (e.g. 238,080 kWh) comes out in every engine and
//! in evidence records, with no float rounding at the threshold.

use rust_decimal::Decimal;

/// Month-to-date valley energy limit in kWh through day `day_of_month`:
/// `valley_overload × contract_kva × valley_hours × day_of_month`, exact.
///
/// Example (domain.md §10 TV1): 800 kVA, overload 1.2, 8 h, day 31 →
/// 238,080 kWh.
///
/// Never panics: a product beyond `Decimal`'s range (about 7.9e28) saturates
/// at `Decimal::MAX` (or `MIN` for a negative product). No real reading can
/// reach such a limit, so saturating answers "not exceeded" as the exact
/// value would. Use [`checked_valley_limit_kwh`] to detect that case. With
/// more than 28 decimal places in total the product is rounded to 28, as
/// `Decimal` multiplication does; realistic parameters are far from that.
pub fn valley_limit_kwh(
    contract_kva: Decimal,
    valley_overload: Decimal,
    valley_hours: Decimal,
    day_of_month: u32,
) -> Decimal {
    valley_overload
        .saturating_mul(contract_kva)
        .saturating_mul(valley_hours)
        .saturating_mul(Decimal::from(day_of_month))
}

/// As [`valley_limit_kwh`], but `None` when the product does not fit a
/// `Decimal` (instead of saturating). The Arroyo UDF uses this to return
/// SQL NULL rather than a meaningless huge limit.
pub fn checked_valley_limit_kwh(
    contract_kva: Decimal,
    valley_overload: Decimal,
    valley_hours: Decimal,
    day_of_month: u32,
) -> Option<Decimal> {
    valley_overload
        .checked_mul(contract_kva)?
        .checked_mul(valley_hours)?
        .checked_mul(Decimal::from(day_of_month))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("valid test decimal")
    }

    #[test]
    fn tv1_seed_valley_bound_january() {
        let limit = valley_limit_kwh(dec("800"), dec("1.2"), dec("8"), 31);
        assert_eq!(limit, dec("238080"));
    }

    #[test]
    fn thirty_day_month() {
        assert_eq!(
            valley_limit_kwh(dec("800"), dec("1.2"), dec("8"), 30),
            dec("230400")
        );
    }

    #[test]
    fn limit_grows_by_one_day_of_valley_energy_per_day() {
        let per_day = valley_limit_kwh(dec("800"), dec("1.2"), dec("8"), 1);
        assert_eq!(per_day, dec("7680"));
        for day in 1..=31 {
            let limit = valley_limit_kwh(dec("800"), dec("1.2"), dec("8"), day);
            assert_eq!(limit, per_day * Decimal::from(day), "day {day}");
        }
    }

    #[test]
    fn exact_with_fractional_inputs() {
        // 0.1 would not be exact in f64; here 315.5 × 1.1 × 7.5 × 3 = 7808.625.
        assert_eq!(
            valley_limit_kwh(dec("315.5"), dec("1.1"), dec("7.5"), 3),
            dec("7808.625")
        );
    }

    #[test]
    fn day_zero_gives_zero() {
        assert_eq!(
            valley_limit_kwh(dec("800"), dec("1.2"), dec("8"), 0),
            Decimal::ZERO
        );
    }

    #[test]
    fn overflow_saturates_or_is_none_never_panics() {
        let huge = Decimal::MAX;
        assert_eq!(
            valley_limit_kwh(huge, dec("1.2"), dec("8"), 31),
            Decimal::MAX
        );
        assert_eq!(
            valley_limit_kwh(huge, dec("-1.2"), dec("8"), u32::MAX),
            Decimal::MIN
        );
        assert_eq!(
            checked_valley_limit_kwh(huge, dec("1.2"), dec("8"), 31),
            None
        );
        assert_eq!(
            checked_valley_limit_kwh(dec("800"), dec("1.2"), dec("8"), 31),
            Some(dec("238080"))
        );
    }
}
