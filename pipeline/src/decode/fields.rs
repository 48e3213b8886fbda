//! Typed fields of a payload's JSON text, read by hand on the decode hot
//! path (the posted documents use serde: `crate::documents`). Quantities are
//! exact decimals parsed from the literal text, never through `f64`, so
//! `0.1` stays `0.1`; every failure names the field and says what was
//! expected, with the rejection reason.

use super::Reason;
use crate::json_text::{classify, in_range, short, NumText, MAX_MAGNITUDE_TEXT};
use crate::time::{parse_timestamp, EpochMs};
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use std::borrow::Cow;

pub type FieldResult<T> = Result<T, (Reason, String)>;

fn bounded(d: Decimal, field: &str) -> FieldResult<Decimal> {
    if !in_range(d) {
        return Err((
            Reason::BadValue,
            format!("`{field}` = {d} is out of range (|value| must be below {MAX_MAGNITUDE_TEXT})"),
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
