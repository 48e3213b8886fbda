//! The documents of interfaces.md §3–§5 that come from outside the
//! streams: archive, billing period, whitelist entry, work-order action,
//! 抽检 draw and verdict.
//! Each is a serde-derived type read with its field path
//! (`serde_path_to_error`), then checked and turned into the domain value;
//! the HTTP layer and `jicha replay` read them the same way. Quantities are
//! exact decimals read from the literal text ([`decimal`]), never `f64`.
//!
//! MQTT payloads are not read here: their decoder is hand-written on a
//! measured hot path (`crate::decode`).

pub mod decimal;
pub mod sampling;

use serde::de::DeserializeOwned;
use std::fmt;

/// Why a document was refused: where (the field path, `.` for the whole
/// document) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path == "." {
            f.write_str(&self.message)
        } else {
            write!(f, "`{}`: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for DocumentError {}

impl DocumentError {
    /// A refusal by a check after reading (a value out of range, two
    /// fields that disagree), naming the field it is about.
    pub fn at(path: &str, message: impl Into<String>) -> Self {
        DocumentError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Reads `text` as a `T`, or says which field is wrong and how.
pub fn read<T: DeserializeOwned>(text: &str) -> Result<T, DocumentError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| DocumentError {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// Strings longer than this are refused: no id, name or code is this long.
pub const MAX_TEXT: usize = 128;

/// Free text (measures, findings, reasons) longer than this is refused.
pub const MAX_NOTE: usize = 2000;

fn within(path: &str, s: &str, max: usize) -> Result<(), DocumentError> {
    if s.chars().count() > max {
        return Err(DocumentError::at(
            path,
            format!("is longer than {max} characters"),
        ));
    }
    Ok(())
}

/// Refuses an over-long free-text field.
pub fn note_text(path: &str, s: &str) -> Result<(), DocumentError> {
    within(path, s, MAX_NOTE)
}

/// Refuses an over-long string field.
pub fn short_text(path: &str, s: &str) -> Result<(), DocumentError> {
    within(path, s, MAX_TEXT)
}

/// The `customer_id` of an element that failed to read, to name it in the
/// message (`?` when it has none).
pub fn customer_id_of(raw: &serde_json::value::RawValue) -> String {
    #[derive(serde::Deserialize)]
    struct Id {
        customer_id: String,
    }
    serde_json::from_str::<Id>(raw.get()).map_or_else(|_| "?".into(), |i| i.customer_id)
}
