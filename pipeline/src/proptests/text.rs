//! Small texts from configuration and documents: durations and exact
//! decimals (`jicha_domain::money::parse_decimal`).

use super::CASES;
use crate::time::{parse_duration_ms, DAY_MS, HOUR_MS, MINUTE_MS};
use jicha_domain::money::{parse_decimal, DecimalError};
use proptest::prelude::*;
use proptest::sample::select;
use rust_decimal::Decimal;

/// The largest decimal mantissa, 2^96 − 1.
const MAX_MANTISSA: i128 = (1 << 96) - 1;

fn any_decimal() -> impl Strategy<Value = Decimal> {
    (-MAX_MANTISSA..=MAX_MANTISSA, 0u32..=28)
        .prop_map(|(m, scale)| Decimal::try_from_i128_with_scale(m, scale).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Every unit, with surrounding blanks: the exact number of milliseconds.
    #[test]
    fn durations_parse_to_their_milliseconds(
        n in 0i64..1_000_000_000,
        (unit, ms) in select(vec![
            ("", 1000), ("s", 1000), ("ms", 1), ("m", MINUTE_MS), ("min", MINUTE_MS),
            ("h", HOUR_MS), ("d", DAY_MS),
        ]),
        pad in select(vec!["", " ", "\t", "\n "]),
    ) {
        prop_assert_eq!(parse_duration_ms(&format!("{pad}{n}{unit}{pad}")), Ok(n * ms));
    }

    /// An unknown unit is refused, naming it and the units there are.
    #[test]
    fn durations_with_unknown_units_are_refused(n in 0u32..100_000, unit in "[a-zA-Z]{1,6}") {
        prop_assume!(!["s", "ms", "m", "min", "h", "d"].contains(&unit.as_str()));
        let e = parse_duration_ms(&format!("{n}{unit}")).unwrap_err();
        prop_assert!(e.contains(&format!("unknown unit {unit:?}")) && e.contains("ms, s, m, h or d"), "{}", e);
    }

    /// Any text: a duration or an error that says what a duration looks
    /// like; never a panic, and never a negative duration.
    #[test]
    fn durations_never_panic(s in "\\PC{0,24}|[0-9]{0,30}[a-z -]{0,3}") {
        match parse_duration_ms(&s) {
            Ok(ms) => prop_assert!(ms >= 0, "{:?} → {}", s, ms),
            Err(e) => prop_assert!(e.contains("duration"), "{}", e),
        }
    }

    /// A decimal prints and parses back to itself, scale included, and
    /// reads the same in scientific notation.
    #[test]
    fn decimals_round_trip(d in any_decimal()) {
        let text = d.to_string();
        prop_assert_eq!(parse_decimal(&text), Ok(d));
        prop_assert_eq!(parse_decimal(&text).map(|p| p.scale()), Ok(d.scale()));
        let sci = format!("{}e-{}", d.mantissa(), d.scale());
        prop_assert_eq!(parse_decimal(&sci), Ok(d));
        prop_assert_eq!(parse_decimal(&format!(" {text}\n")), Ok(d));
    }

    /// Text from number-like characters: a decimal that agrees with
    /// rust_decimal where both read it, or an error that echoes the input
    /// (clipped) and says what was expected; never a panic.
    #[test]
    fn decimal_texts_parse_or_say_why(s in "[0-9.eE+\\- ]{0,40}|\\PC{0,60}") {
        match parse_decimal(&s) {
            Ok(d) => {
                prop_assert_eq!(parse_decimal(&d.to_string()), Ok(d));
                let plain = s.trim();
                if !plain.contains(['e', 'E']) {
                    if let Ok(theirs) = Decimal::from_str_exact(plain) {
                        prop_assert_eq!(d, theirs);
                    }
                }
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains("expected"), "{}", msg);
                // The echo is the input's first 40 characters at most
                // (checked where quoting it changes nothing).
                let echoed: String = s.trim().chars().take(40).collect();
                let plain = echoed.chars().all(|c| c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\'));
                if !matches!(e, DecimalError::Empty) && plain {
                    prop_assert!(msg.contains(&echoed), "{}", msg);
                }
                prop_assert!(msg.chars().count() < 400);
            }
        }
    }

    /// Magnitudes past a decimal's range, or more places than it keeps,
    /// are refused by kind.
    #[test]
    fn decimals_out_of_range_or_too_precise_are_refused(m in 1u32..1000, e in 29u32..10_000, neg in any::<bool>()) {
        let sign = if neg { "-" } else { "" };
        let big = parse_decimal(&format!("{sign}{m}e{e}"));
        prop_assert!(matches!(big, Err(DecimalError::OutOfRange { .. })), "{:?}", big);
        let small = parse_decimal(&format!("{sign}{m}e-{}", e + 3));
        prop_assert!(matches!(small, Err(DecimalError::TooPrecise { .. })), "{:?}", small);
    }
}
