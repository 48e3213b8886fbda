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
mod tests;
