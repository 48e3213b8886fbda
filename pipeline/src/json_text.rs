//! Reading a JSON value's literal text: a quantity as written (so a
//! decimal is exact, never through `f64`), a string without a copy, and the
//! bound every quantity must keep. Shared by the hand-written payload
//! decoder (`decode::fields`) and the serde documents
//! (`documents::decimal`); depends on nothing else in the crate.

use rust_decimal::Decimal;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// What a JSON value holding a quantity turned out to be.
pub enum NumText<'a> {
    Number(&'a str),
    String(Cow<'a, str>),
    Null,
    Other,
}

pub fn classify(raw: &RawValue) -> NumText<'_> {
    let t = raw.get().trim();
    match t.as_bytes().first() {
        Some(b'-' | b'0'..=b'9') => NumText::Number(t),
        Some(b'"') => string_content(t).map_or(NumText::Other, NumText::String),
        Some(b'n') if t == "null" => NumText::Null,
        _ => NumText::Other,
    }
}

/// The content of a JSON string literal. Without escapes (nearly every
/// string received) it is the text between the quotes, borrowed rather
/// than copied; escaped strings are unescaped by serde_json.
fn string_content(literal: &str) -> Option<Cow<'_, str>> {
    match literal.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Some(Cow::Borrowed(inner)),
        _ => serde_json::from_str::<String>(literal).ok().map(Cow::Owned),
    }
}

/// Longest piece of a rejected value quoted back in a rejection's detail.
const QUOTED_CHARS: usize = 40;

/// A rejected value as quoted in a rejection's detail.
pub fn short(s: &str) -> std::borrow::Cow<'_, str> {
    jicha_domain::text::clip(s, QUOTED_CHARS)
}

/// Largest magnitude a quantity may have (kW, kWh, kVA, 元): beyond any real
/// reading, and small enough that every table's `DECIMAL(28,6)` holds it.
const MAX_MAGNITUDE: i64 = 1_000_000_000_000_000;
pub const MAX_MAGNITUDE_TEXT: &str = "1e15";

/// Whether `|d|` is below [`MAX_MAGNITUDE`].
pub fn in_range(d: Decimal) -> bool {
    // |d| is its mantissa over a power of ten, so a mantissa below the
    // bound settles it without a comparison of decimals (which rescales
    // one of them, a cost on every quantity decoded).
    let small = d.mantissa().unsigned_abs() < u128::from(MAX_MAGNITUDE.unsigned_abs());
    small || d.abs() < Decimal::from(MAX_MAGNITUDE)
}
