//! Exact money (元) and quantity decimals: parsing and rounding.
//!
//! Why: audit amounts must reproduce to the fen in every engine and in every
//! report. Text from JSON (a number literal such as `12.30` or `1.5e3`, or a
//! decimal string such as `"12.30"`) is parsed digit by digit into a
//! `Decimal`, never through `f64`, so `0.1` is exactly one tenth. Money is
//! rounded once per line item, half-up (away from zero at the midpoint) to
//! 0.01 元, per domain.md "Money".

use rust_decimal::{Decimal, RoundingStrategy};
use thiserror::Error;

/// Decimal places of a yuan amount (fen).
const YUAN_DP: u32 = 2;

/// Largest scale (digits after the point) a `Decimal` can hold.
const MAX_SCALE: i64 = 28;

/// Largest mantissa of a `Decimal`: 2^96 − 1.
const MAX_MANTISSA: u128 = (1u128 << 96) - 1;

/// Decimal digits of [`MAX_MANTISSA`]; longer digit strings cannot fit.
const MAX_DIGITS: usize = 29;

/// Longest input echoed back in an error message.
const ECHO_CHARS: usize = 40;

/// Rounds a yuan amount to 0.01 元, half-up (a midpoint goes away from zero:
/// 2.345 → 2.35, −2.345 → −2.35), and returns it with exactly two decimal
/// places so that it prints as money (`2000` → `"2000.00"`).
///
/// Never panics. The only case where the scale stays below 2 is a magnitude
/// above ~7.9e26, where two more digits do not fit a `Decimal`; no amount of
/// money comes near it.
pub fn round_yuan(x: Decimal) -> Decimal {
    let mut rounded = x.round_dp_with_strategy(YUAN_DP, RoundingStrategy::MidpointAwayFromZero);
    // `rescale` pads with zeros up to scale 2 and stops, without panicking,
    // where the padded mantissa would not fit.
    rounded.rescale(YUAN_DP);
    rounded
}

/// Why a text is not an exact decimal. Messages say what was wrong and what
/// is expected, because they surface in ingest errors read by operators.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecimalError {
    /// Nothing but whitespace.
    #[error("empty text where a decimal was expected (e.g. 12.30, -0.5 or 1.5e3)")]
    Empty,
    /// `NaN`, `inf`, `Infinity` and the like.
    #[error("{text:?} is not a finite number; expected a decimal such as 12.30 (NaN and infinity are not amounts)")]
    NotFinite { text: String },
    /// Not of the form `[+-]digits[.digits][e[+-]digits]`.
    #[error("{text:?} is not a decimal number ({reason}); expected digits with an optional sign, point and exponent, e.g. -12.30 or 1.5e3")]
    Syntax { text: String, reason: &'static str },
    /// Magnitude above `Decimal::MAX` (79228162514264337593543950335).
    #[error(
        "{text:?} is out of range; expected a magnitude of at most 79228162514264337593543950335"
    )]
    OutOfRange { text: String },
    /// More significant fractional digits than a `Decimal` keeps exactly.
    #[error("{text:?} has more than 28 significant decimal places; expected at most 28 so that it is kept exactly")]
    TooPrecise { text: String },
}

/// Parses a JSON number literal or a decimal string exactly.
///
/// Accepted: optional surrounding whitespace, an optional `+`/`-` sign, digits
/// with an optional decimal point (`12`, `12.30`, `.5`, `5.`; at least one
/// digit), and an optional exponent `e`/`E` with optional sign (`1e3`,
/// `1.5E-2`). Rejected with a [`DecimalError`]: empty text, NaN/infinity, any
/// other character (hex, `_`, `,`, inner spaces), values whose magnitude does
/// not fit a `Decimal`, and values needing more than 28 decimal places (they
/// could only be stored rounded, which would not be exact).
///
/// The scale of the text is kept where possible (`"25.00"` → 25.00, which
/// prints `25.00`); trailing zeros are dropped only when needed to fit.
pub fn parse_decimal(text: &str) -> Result<Decimal, DecimalError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DecimalError::Empty);
    }
    let number = Number::lex(trimmed).map_err(|reason| {
        if looks_not_finite(trimmed) {
            DecimalError::NotFinite {
                text: echo(trimmed),
            }
        } else {
            DecimalError::Syntax {
                text: echo(trimmed),
                reason,
            }
        }
    })?;
    number.into_decimal().map_err(|kind| match kind {
        Overflow::Range => DecimalError::OutOfRange {
            text: echo(trimmed),
        },
        Overflow::Precision => DecimalError::TooPrecise {
            text: echo(trimmed),
        },
    })
}

/// `nan`, `inf`, `infinity` with an optional sign, any case.
fn looks_not_finite(text: &str) -> bool {
    let unsigned = text
        .strip_prefix(['+', '-'])
        .unwrap_or(text)
        .to_ascii_lowercase();
    matches!(unsigned.as_str(), "nan" | "inf" | "infinity")
}

/// The input as quoted in an error: at most [`ECHO_CHARS`] characters.
fn echo(text: &str) -> String {
    // `super`, not `crate`: the Arroyo UDF files embed these modules one
    // level down (arroyo-udfs/src/single_file.rs).
    super::text::clip(text, ECHO_CHARS).into_owned()
}

/// Why a well-formed number has no exact `Decimal`.
enum Overflow {
    Range,
    Precision,
}

/// A lexed decimal: value = (−1)^negative × digits × 10^(−scale).
struct Number {
    negative: bool,
    /// Significant digits (ASCII `0`–`9`), leading zeros removed.
    digits: Vec<u8>,
    /// Power-of-ten divisor; negative means the digits are multiplied.
    scale: i64,
}

impl Number {
    /// Splits `[+-]int[.frac][(e|E)[+-]exp]`; the error says what is wrong.
    fn lex(text: &str) -> Result<Number, &'static str> {
        let bytes = text.as_bytes();
        let mut i = 0;
        let negative = match bytes.first() {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };

        let int_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let int_digits = &bytes[int_start..i];

        let mut frac_digits: &[u8] = &[];
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            let frac_start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            frac_digits = &bytes[frac_start..i];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err("no digits");
        }

        let mut exponent: i64 = 0;
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            i += 1;
            let exp_negative = match bytes.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let exp_start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                // Saturate: any exponent this large is out of range or too
                // precise anyway, and the verdict does not change past it.
                exponent = exponent
                    .saturating_mul(10)
                    .saturating_add(i64::from(bytes[i] - b'0'))
                    .min(i64::from(u32::MAX));
                i += 1;
            }
            if i == exp_start {
                return Err("exponent without digits");
            }
            if exp_negative {
                exponent = -exponent;
            }
        }
        if i != bytes.len() {
            return Err("unexpected character");
        }

        let mut digits: Vec<u8> = int_digits.iter().chain(frac_digits).copied().collect();
        let leading_zeros = digits.iter().take_while(|&&b| b == b'0').count();
        digits.drain(..leading_zeros);
        // frac_digits.len() ≤ text length, exponent bounded: no overflow.
        let scale = frac_digits.len() as i64 - exponent;
        Ok(Number {
            negative,
            digits,
            scale,
        })
    }

    /// The exact `Decimal`, dropping trailing zeros only where the digits or
    /// the scale would not fit otherwise.
    fn into_decimal(mut self) -> Result<Decimal, Overflow> {
        if self.digits.is_empty() {
            // Zero: keep the written scale where it fits ("0.00" → 0.00).
            let scale = self.scale.clamp(0, MAX_SCALE) as u32;
            return Ok(Decimal::new(0, scale));
        }
        while self.scale > 0
            && (self.scale > MAX_SCALE || self.digits.len() > MAX_DIGITS)
            && self.digits.last() == Some(&b'0')
        {
            self.digits.pop();
            self.scale -= 1;
        }
        if self.scale > MAX_SCALE {
            return Err(Overflow::Precision);
        }
        if self.scale < 0 {
            // Multiply by 10^(−scale): append zeros if they can still fit.
            let zeros = usize::try_from(-self.scale).unwrap_or(usize::MAX);
            if zeros > MAX_DIGITS.saturating_sub(self.digits.len()) {
                return Err(Overflow::Range);
            }
            self.digits.extend(std::iter::repeat_n(b'0', zeros));
            self.scale = 0;
        }
        if self.digits.len() > MAX_DIGITS {
            // More than 29 significant digits with no droppable trailing zero:
            // either too big or too precise, depending on where the point is.
            let int_len = self.digits.len() as i64 - self.scale;
            return Err(if int_len > MAX_DIGITS as i64 {
                Overflow::Range
            } else {
                Overflow::Precision
            });
        }
        // ≤ 29 digits < 10^29 < 2^128: the fold cannot overflow a u128.
        let mut mantissa = self
            .digits
            .iter()
            .fold(0u128, |acc, &b| acc * 10 + u128::from(b - b'0'));
        while mantissa > MAX_MANTISSA && self.scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            self.scale -= 1;
        }
        if mantissa > MAX_MANTISSA {
            let int_len = self.digits.len() as i64 - self.scale;
            return Err(if int_len >= MAX_DIGITS as i64 {
                Overflow::Range
            } else {
                Overflow::Precision
            });
        }
        let signed = if self.negative {
            -(mantissa as i128)
        } else {
            mantissa as i128
        };
        // scale is in 0..=28 and |mantissa| < 2^96 here, so this is Ok.
        Decimal::try_from_i128_with_scale(signed, self.scale as u32).map_err(|_| Overflow::Range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("valid test decimal")
    }

    fn p(s: &str) -> Decimal {
        parse_decimal(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    #[test]
    fn tenths_add_exactly() {
        assert_eq!(p("0.1") + p("0.2"), p("0.3"));
        assert_eq!((p("0.1") + p("0.2")).to_string(), "0.3");
        assert_eq!(p("0.1"), Decimal::new(1, 1));
    }

    #[test]
    fn round_yuan_half_up_away_from_zero() {
        assert_eq!(round_yuan(dec("2.345")), dec("2.35"));
        assert_eq!(round_yuan(dec("-2.345")), dec("-2.35"));
        assert_eq!(round_yuan(dec("2.344")), dec("2.34"));
        assert_eq!(round_yuan(dec("-2.344")), dec("-2.34"));
        assert_eq!(round_yuan(dec("2.3449999")), dec("2.34"));
        assert_eq!(round_yuan(dec("2.335")), dec("2.34")); // not banker's (2.34 either way)
        assert_eq!(round_yuan(dec("2.325")), dec("2.33")); // banker's would give 2.32
        assert_eq!(round_yuan(dec("0.005")), dec("0.01"));
        assert_eq!(round_yuan(dec("-0.005")), dec("-0.01"));
        assert_eq!(round_yuan(dec("0.004999")), dec("0.00"));
    }

    #[test]
    fn round_yuan_always_two_places() {
        assert_eq!(round_yuan(dec("2000")).to_string(), "2000.00");
        assert_eq!(round_yuan(dec("2.5")).to_string(), "2.50");
        assert_eq!(round_yuan(dec("2.345")).to_string(), "2.35");
        assert_eq!(round_yuan(Decimal::ZERO).to_string(), "0.00");
        assert_eq!(round_yuan(dec("0.001")).to_string(), "0.00");
        assert_eq!(round_yuan(dec("-0.001")).scale(), 2);
        assert_eq!(round_yuan(dec("26460.000")).to_string(), "26460.00");
    }

    #[test]
    fn round_yuan_extremes_do_not_panic() {
        assert_eq!(round_yuan(Decimal::MAX), Decimal::MAX);
        assert_eq!(round_yuan(Decimal::MIN), Decimal::MIN);
        let tiny = Decimal::new(5, 28);
        assert_eq!(round_yuan(tiny).to_string(), "0.00");
        // Largest value that still takes two places.
        let big = dec("792281625142643375935439503.35");
        assert_eq!(round_yuan(big), big);
    }

    #[test]
    fn shortfall_loss_prints_as_money() {
        let expected_kva = p("400");
        let billed_kva = p("320");
        let price = p("25.00");
        let loss = (expected_kva - billed_kva) * price;
        assert_eq!(loss.to_string(), "2000.00");
        assert_eq!(round_yuan(loss).to_string(), "2000.00");
    }

    #[test]
    fn parses_plain_and_signed_decimals() {
        assert_eq!(p("12"), dec("12"));
        assert_eq!(p("-12.30"), dec("-12.30"));
        assert_eq!(p("+12.30"), dec("12.30"));
        assert_eq!(p("0"), Decimal::ZERO);
        assert_eq!(p("-0"), Decimal::ZERO);
        assert_eq!(p(".5"), dec("0.5"));
        assert_eq!(p("5."), dec("5"));
        assert_eq!(p("007.50"), dec("7.5"));
        assert_eq!(p("  12.5\n"), dec("12.5"));
    }

    #[test]
    fn keeps_the_written_scale() {
        assert_eq!(p("25.00").to_string(), "25.00");
        assert_eq!(p("0.00").to_string(), "0.00");
        assert_eq!(p("-1.10").to_string(), "-1.10");
        assert_eq!(p("1.50e1").to_string(), "15.0");
    }

    #[test]
    fn parses_exponents() {
        assert_eq!(p("1e3"), dec("1000"));
        assert_eq!(p("1E3"), dec("1000"));
        assert_eq!(p("1.5E-2"), dec("0.015"));
        assert_eq!(p("1.5e+2"), dec("150"));
        assert_eq!(p("-2.5e-1"), dec("-0.25"));
        assert_eq!(p("0e999999999999999999999"), Decimal::ZERO);
        assert_eq!(p("1e-28"), Decimal::new(1, 28));
        assert_eq!(p("1e28"), dec("10000000000000000000000000000"));
        assert_eq!(p("10e-29"), Decimal::new(1, 28));
        assert_eq!(p("123456e-3"), dec("123.456"));
    }

    #[test]
    fn range_limits() {
        assert_eq!(p("79228162514264337593543950335"), Decimal::MAX);
        assert_eq!(p("-79228162514264337593543950335"), Decimal::MIN);
        assert_eq!(p("79228162514264337593543950335.000"), Decimal::MAX);
        assert_eq!(p("0.0000000000000000000000000001"), Decimal::new(1, 28));
        assert_eq!(p("0.00000000000000000000000000010000"), Decimal::new(1, 28));
        assert!(matches!(
            parse_decimal("79228162514264337593543950336"),
            Err(DecimalError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_decimal("1e29"),
            Err(DecimalError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_decimal("-1e999999999999"),
            Err(DecimalError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_decimal("1000000000000000000000000000000000"),
            Err(DecimalError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_decimal("1e-29"),
            Err(DecimalError::TooPrecise { .. })
        ));
        assert!(matches!(
            parse_decimal("0.00000000000000000000000000001"),
            Err(DecimalError::TooPrecise { .. })
        ));
        assert!(matches!(
            parse_decimal("8.0000000000000000000000000001"),
            Err(DecimalError::TooPrecise { .. })
        ));
        // 29 digits at scale 28 still fit while the mantissa is below 2^96.
        assert_eq!(
            p("1.0000000000000000000000000001"),
            Decimal::try_from_i128_with_scale(10i128.pow(28) + 1, 28).expect("fits")
        );
        assert!(matches!(
            parse_decimal("1e-99999999999999"),
            Err(DecimalError::TooPrecise { .. })
        ));
    }

    #[test]
    fn long_inputs_do_not_panic() {
        let many_digits = "9".repeat(10_000);
        assert!(matches!(
            parse_decimal(&many_digits),
            Err(DecimalError::OutOfRange { .. })
        ));
        let many_zeros = format!("1.{}", "0".repeat(10_000));
        assert_eq!(p(&many_zeros), dec("1"));
        let long_garbage = "x".repeat(10_000);
        let msg = parse_decimal(&long_garbage).unwrap_err().to_string();
        assert!(
            msg.len() < 400,
            "error message should not echo the whole input"
        );
    }

    #[test]
    fn rejects_empty_non_finite_and_garbage() {
        assert_eq!(parse_decimal(""), Err(DecimalError::Empty));
        assert_eq!(parse_decimal("   "), Err(DecimalError::Empty));
        for text in ["NaN", "nan", "inf", "-inf", "+Infinity", "infinity"] {
            assert!(
                matches!(parse_decimal(text), Err(DecimalError::NotFinite { .. })),
                "{text}"
            );
        }
        for text in [
            "-", "+", ".", "e3", "1e", "1e+", "1.2.3", "0x10", "1_000", "1,5", "1 000", "12a",
            "--1", "+-1", "1e3.5", "١٢", "1d", "null", "\"1\"",
        ] {
            assert!(
                matches!(parse_decimal(text), Err(DecimalError::Syntax { .. })),
                "{text:?}"
            );
        }
    }

    #[test]
    fn error_messages_say_what_and_what_is_expected() {
        let msg = parse_decimal("12a").unwrap_err().to_string();
        assert!(
            msg.contains("\"12a\"")
                && msg.contains("unexpected character")
                && msg.contains("expected"),
            "{msg}"
        );
        let msg = parse_decimal("NaN").unwrap_err().to_string();
        assert!(msg.contains("not a finite number"), "{msg}");
        let msg = parse_decimal("").unwrap_err().to_string();
        assert!(msg.contains("empty") && msg.contains("expected"), "{msg}");
        let msg = parse_decimal("1e40").unwrap_err().to_string();
        assert!(msg.contains("out of range"), "{msg}");
    }

    #[test]
    fn round_trips_decimal_display() {
        // Deterministic spread of mantissas and scales, incl. extremes.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..5_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mantissa = (i128::from(seed) << 32 | i128::from(i)) % (1i128 << 95);
            let signed = if seed & 1 == 0 { mantissa } else { -mantissa };
            let scale = (seed >> 8) as u32 % 29;
            let value = Decimal::try_from_i128_with_scale(signed, scale).expect("in range");
            let text = value.to_string();
            assert_eq!(parse_decimal(&text), Ok(value), "{text}");
            assert_eq!(
                parse_decimal(&text).map(|d| d.scale()),
                Ok(value.scale()),
                "{text}"
            );
            // The same value in scientific notation.
            let sci = format!("{}e-{}", signed, scale);
            assert_eq!(parse_decimal(&sci), Ok(value), "{sci}");
        }
    }

    #[test]
    fn agrees_with_rust_decimal_from_str_exact_on_plain_text() {
        for text in [
            "0.1",
            "-0.0001",
            "123456789.987654321",
            "79228162514264337593543950335",
            "0.0000000000000000000000000001",
        ] {
            assert_eq!(
                parse_decimal(text).ok(),
                Decimal::from_str_exact(text).ok(),
                "{text}"
            );
        }
    }
    #[test]
    fn round_yuan_matches_integer_half_up_on_every_mill() {
        // Every amount with three decimals in ±20 元, against integer arithmetic.
        for mills in -20_000i64..=20_000 {
            let x = Decimal::new(mills, 3);
            let magnitude = (mills.abs() + 5) / 10; // half-up on |x| in fen
            let fen = if mills < 0 { -magnitude } else { magnitude };
            assert_eq!(round_yuan(x), Decimal::new(fen, 2), "{x}");
            assert_eq!(round_yuan(x).scale(), 2, "{x}");
        }
    }

    #[test]
    fn random_texts_never_panic_and_agree_with_rust_decimal() {
        const ALPHABET: &[u8] = b"0123456789.eE+- 9";
        let mut seed: u64 = 0xD1B5_4A32_D192_ED03;
        for _ in 0..50_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 12) as usize;
            let text: String = (0..len)
                .map(|k| ALPHABET[((seed >> (k * 5)) as usize) % ALPHABET.len()] as char)
                .collect();
            let Ok(value) = parse_decimal(&text) else {
                continue;
            };
            // A parsed value prints and re-parses to itself.
            assert_eq!(parse_decimal(&value.to_string()), Ok(value), "{text:?}");
            // Where rust_decimal also reads the plain form exactly, it agrees.
            let plain = text.trim();
            if !plain.contains(['e', 'E']) {
                if let Ok(theirs) = Decimal::from_str_exact(plain) {
                    assert_eq!(value, theirs, "{text:?}");
                }
            }
        }
    }
}
