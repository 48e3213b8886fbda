//! Exact decimals in documents: a JSON number or a decimal string, read
//! from its literal text (serde_json would pass a number through `f64`).
//! Use as `#[serde(deserialize_with = "decimal::required")]` or, with
//! `#[serde(default)]`, `decimal::optional`.

use crate::json_text::{classify, in_range, short, NumText, MAX_MAGNITUDE_TEXT};
use rust_decimal::Decimal;
use serde::de::Error;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

fn value(raw: &RawValue) -> Result<Option<Decimal>, String> {
    let text = match classify(raw) {
        NumText::Number(n) => std::borrow::Cow::Borrowed(n),
        NumText::String(s) => s,
        NumText::Null => return Ok(None),
        NumText::Other => {
            return Err(format!(
                "must be a decimal number or string, found {}",
                short(raw.get())
            ))
        }
    };
    let d = jicha_domain::money::parse_decimal(&text).map_err(|e| e.to_string())?;
    if !in_range(d) {
        return Err(format!(
            "{d} is out of range (|value| must be below {MAX_MAGNITUDE_TEXT})"
        ));
    }
    Ok(Some(d))
}

pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    value(&raw).map_err(D::Error::custom)
}

pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    optional(d)?.ok_or_else(|| D::Error::custom("must be a decimal, not null"))
}

#[cfg(test)]
mod tests {
    use crate::documents::read;
    use rust_decimal::Decimal;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct Doc {
        #[serde(deserialize_with = "super::required")]
        a: Decimal,
        #[serde(default, deserialize_with = "super::optional")]
        b: Option<Decimal>,
    }

    #[test]
    fn numbers_and_strings_are_exact_and_bad_ones_name_the_field() {
        let d: Doc = read(r#"{"a": 1234567890.123456789, "b": "0.1"}"#).unwrap();
        assert_eq!(d.a.to_string(), "1234567890.123456789");
        assert_eq!(d.b.map(|b| b.to_string()).as_deref(), Some("0.1"));
        let d: Doc = read(r#"{"a": "-7", "b": null}"#).unwrap();
        assert_eq!((d.a, d.b), (Decimal::from(-7), None));
        let e = read::<Doc>(r#"{"a": true}"#).unwrap_err().to_string();
        assert!(e.starts_with("`a`: must be a decimal"), "{e}");
        let e = read::<Doc>(r#"{"a": "1e40"}"#).unwrap_err().to_string();
        assert!(e.starts_with("`a`:"), "{e}");
        let e = read::<Doc>(r#"{"a": 1, "b": [1]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("`b`: must be a decimal"), "{e}");
        let e = read::<Doc>(r#"{"b": 1}"#).unwrap_err().to_string();
        assert!(e.contains("missing field `a`"), "{e}");
    }
}
