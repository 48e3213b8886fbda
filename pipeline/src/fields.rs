//! Typed fields out of JSON text. Quantities are exact decimals parsed from
//! the literal text, never through `f64`, so `0.1` stays `0.1`; every failure
//! names the field and says what was expected.

use crate::decode::Reason;
use crate::time::{parse_timestamp, EpochMs};
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

pub type FieldResult<T> = Result<T, (Reason, String)>;

/// Largest magnitude a quantity may have (kW, kWh, kVA, 元): beyond any real
/// reading, and small enough that every table's `DECIMAL(28,6)` holds it.
const MAX_MAGNITUDE: i64 = 1_000_000_000_000_000;

fn bounded(d: Decimal, field: &str) -> FieldResult<Decimal> {
    // |d| is its mantissa over a power of ten, so a mantissa below the
    // bound settles it without a comparison of decimals (which rescales
    // one of them, a cost on every quantity decoded).
    let small = d.mantissa().unsigned_abs() < u128::from(MAX_MAGNITUDE.unsigned_abs());
    if !small && d.abs() >= Decimal::from(MAX_MAGNITUDE) {
        return Err((
            Reason::BadValue,
            format!("`{field}` = {d} is out of range (|value| must be below 1e15)"),
        ));
    }
    Ok(d)
}

pub fn missing(field: &str) -> (Reason, String) {
    (
        Reason::MissingField,
        format!("required field `{field}` is missing or null"),
    )
}

pub fn req_str(raw: Option<&RawValue>, field: &str) -> FieldResult<String> {
    opt_str(raw, field)?.ok_or_else(|| missing(field))
}

pub fn opt_str(raw: Option<&RawValue>, field: &str) -> FieldResult<Option<String>> {
    Ok(opt_text(raw, field)?.map(Cow::into_owned))
}

/// [`opt_str`] without the copy when the string has no escapes.
fn opt_text<'a>(raw: Option<&'a RawValue>, field: &str) -> FieldResult<Option<Cow<'a, str>>> {
    let Some(raw) = raw else { return Ok(None) };
    match classify(raw) {
        NumText::String(s) if s.len() <= 128 => Ok(Some(s)),
        NumText::String(_) => Err((
            Reason::BadValue,
            format!("`{field}` is longer than 128 characters"),
        )),
        NumText::Null => Ok(None),
        _ => Err((
            Reason::WrongType,
            format!("`{field}` must be a string, found {}", short(raw.get())),
        )),
    }
}

/// The text of a record's `meter_id`, borrowed when it has no escapes, so
/// a meter the archive knows is resolved without an allocation.
pub fn req_meter(raw: Option<&RawValue>) -> FieldResult<Cow<'_, str>> {
    let s = opt_text(raw, "meter_id")?.ok_or_else(|| missing("meter_id"))?;
    if s.trim().is_empty() {
        return Err((Reason::BadValue, "`meter_id` is empty".into()));
    }
    Ok(s)
}

pub fn opt_num(raw: Option<&RawValue>, field: &str) -> FieldResult<Option<Decimal>> {
    let Some(raw) = raw else { return Ok(None) };
    match classify(raw) {
        NumText::Number(n) => jicha_domain::money::parse_decimal(n)
            .map_err(|e| (Reason::BadValue, format!("`{field}`: {e}")))
            .and_then(|d| bounded(d, field))
            .map(Some),
        NumText::Null => Ok(None),
        _ => Err((
            Reason::WrongType,
            format!(
                "`{field}` must be a JSON number, found {}",
                short(raw.get())
            ),
        )),
    }
}

pub fn req_num(raw: Option<&RawValue>, field: &str) -> FieldResult<Decimal> {
    opt_num(raw, field)?.ok_or_else(|| missing(field))
}

pub fn req_ts(raw: Option<&RawValue>, field: &str) -> FieldResult<EpochMs> {
    let Some(raw) = raw else {
        return Err(missing(field));
    };
    let text = match classify(raw) {
        NumText::Number(n) => Cow::Borrowed(n),
        NumText::String(s) => s,
        NumText::Null => return Err(missing(field)),
        NumText::Other => {
            return Err((
                Reason::WrongType,
                format!(
                    "`{field}` must be an RFC 3339 string or epoch ms, found {}",
                    short(raw.get())
                ),
            ))
        }
    };
    parse_timestamp(&text).map_err(|e| (Reason::BadTimestamp, format!("`{field}`: {e}")))
}

/// A decimal given as a number or a decimal string (archive and billing
/// files carry money as strings; numbers are accepted too).
pub fn opt_dec(raw: Option<&RawValue>, field: &str) -> FieldResult<Option<Decimal>> {
    let Some(raw) = raw else { return Ok(None) };
    let text = match classify(raw) {
        NumText::Number(n) => Cow::Borrowed(n),
        NumText::String(s) => s,
        NumText::Null => return Ok(None),
        NumText::Other => {
            return Err((
                Reason::WrongType,
                format!(
                    "`{field}` must be a decimal number or string, found {}",
                    short(raw.get())
                ),
            ))
        }
    };
    jicha_domain::money::parse_decimal(&text)
        .map_err(|e| (Reason::BadValue, format!("`{field}`: {e}")))
        .and_then(|d| bounded(d, field))
        .map(Some)
}

pub fn req_dec(raw: Option<&RawValue>, field: &str) -> FieldResult<Decimal> {
    opt_dec(raw, field)?.ok_or_else(|| missing(field))
}

pub fn opt_date(raw: Option<&RawValue>, field: &str) -> FieldResult<Option<chrono::NaiveDate>> {
    match opt_str(raw, field)? {
        None => Ok(None),
        Some(s) => crate::time::parse_date(&s)
            .map(Some)
            .map_err(|e| (Reason::BadValue, format!("`{field}`: {e}"))),
    }
}

pub fn req_date(raw: Option<&RawValue>, field: &str) -> FieldResult<chrono::NaiveDate> {
    opt_date(raw, field)?.ok_or_else(|| missing(field))
}

pub fn req_bool(raw: Option<&RawValue>, field: &str) -> FieldResult<bool> {
    match raw.map(|r| r.get().trim()) {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        None | Some("null") => Err(missing(field)),
        Some(other) => Err((
            Reason::WrongType,
            format!("`{field}` must be true or false, found {}", short(other)),
        )),
    }
}

/// One JSON object's fields by name, each still raw text.
pub struct Obj<'a>(std::collections::HashMap<String, &'a RawValue>);

impl<'a> Obj<'a> {
    pub fn parse(raw: &'a RawValue) -> FieldResult<Self> {
        serde_json::from_str::<std::collections::HashMap<String, &'a RawValue>>(raw.get())
            .map(Obj)
            .map_err(|_| {
                (
                    Reason::NotAnObject,
                    format!("expected a JSON object, found {}", short(raw.get())),
                )
            })
    }

    pub fn get(&self, field: &str) -> Option<&'a RawValue> {
        self.0.get(field).copied()
    }
}
