//! Property tests (proptest, with shrinking) for everything that parses
//! outside input: the meter-stream decoder, the archive, billing, whitelist
//! and work-order documents, theme files, durations and decimals. Valid
//! input must come back as exactly the values sent; each kind of damage must
//! end in its own clear rejection, naming the field; nothing may panic.
//! Case counts are kept so the whole suite runs in seconds (it runs in CI).

mod decode;
mod documents;
mod text;

use proptest::prelude::*;
use rust_decimal::Decimal;

/// Cases for cheap properties; expensive ones (megabyte payloads, deep
/// nesting) take fewer.
const CASES: u32 = 256;

/// A value as sent and the value it must decode to.
#[derive(Debug, Clone)]
pub(crate) struct Sent<T> {
    pub value: T,
    /// Its JSON text.
    pub json: String,
}

/// `s` as a JSON string literal; with `escape_all` every character written
/// as `\uXXXX` (surrogate pairs beyond the BMP), so decoders meet both the
/// borrowed and the unescaped path.
pub(crate) fn json_string(s: &str, escape_all: bool) -> String {
    if !escape_all {
        return serde_json::to_string(s).unwrap();
    }
    let mut out = String::from("\"");
    for unit in s.encode_utf16() {
        out.push_str(&format!("\\u{unit:04x}"));
    }
    out.push('"');
    out
}

/// A JSON object from fields given as (name, JSON text), in that order.
pub(crate) fn object(fields: &[(String, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", json_string(k, false)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// Largest mantissa of a generated quantity: with up to six decimals it
/// stays below 1e15, the decoders' bound.
const QUANTITY_MAX: i64 = 1_000_000_000_000_000 - 1;

/// An exact quantity with at least `min` as mantissa, written as a JSON
/// number in one of its forms: plain, or with an exponent.
pub(crate) fn quantity(min: i64) -> impl Strategy<Value = Sent<Decimal>> {
    (min..=QUANTITY_MAX, 0u32..=6, 0..4u8).prop_map(|(m, scale, form)| {
        let value = Decimal::new(m, scale);
        let json = match form {
            0 | 1 => value.to_string(),
            2 => format!("{m}e-{scale}"),
            // One more zero and one more place: the same number.
            _ => format!("{}0E-{}", m, scale + 1),
        };
        Sent { value, json }
    })
}

/// A quantity, or absent: left out or sent as `null`, both meaning none.
pub(crate) fn optional<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = Sent<T>>,
) -> impl Strategy<Value = Option<Sent<T>>> {
    proptest::option::of(s)
}

/// Text of at most 32 characters (so at most 128 bytes), any script.
pub(crate) fn text(min: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("\\PC{{{min},32}}")).unwrap()
}

/// An id: letters, digits, Han characters, `_` and `-`, never blank.
pub(crate) fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9\\p{Han}][A-Za-z0-9\\p{Han}_-]{0,15}"
}
