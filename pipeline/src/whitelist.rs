//! 白名单: a customer exempted from a theme between two dates (inclusive).
//! A hit it covers raises no work order and is kept as a suppressed alert.

use crate::documents::{read, short_text, DocumentError};
use crate::ids::CustomerId;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhitelistEntry {
    pub id: String,
    pub customer_id: CustomerId,
    pub theme: String,
    pub reason: String,
    #[serde(with = "crate::time::date_serde")]
    pub valid_from: NaiveDate,
    #[serde(with = "crate::time::date_serde")]
    pub valid_until: NaiveDate,
}

#[derive(Debug, Default, Clone)]
pub struct Whitelist {
    entries: BTreeMap<String, WhitelistEntry>,
    next: u64,
}

/// The body of `POST /api/v1/whitelist`, as sent.
#[derive(Deserialize)]
struct EntryDoc {
    customer_id: String,
    theme: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(with = "crate::time::date_serde")]
    valid_from: NaiveDate,
    #[serde(with = "crate::time::date_serde")]
    valid_until: NaiveDate,
}

impl WhitelistEntry {
    /// Parses a POST body; the id is assigned by [`Whitelist::add`].
    pub fn parse(body: &str) -> Result<WhitelistEntry, DocumentError> {
        let doc: EntryDoc = read(body)?;
        let reason = doc.reason.unwrap_or_default();
        for (path, text) in [
            ("customer_id", &doc.customer_id),
            ("theme", &doc.theme),
            ("reason", &reason),
        ] {
            short_text(path, text)?;
        }
        if doc.valid_until < doc.valid_from {
            return Err(DocumentError::at("valid_until", "is before `valid_from`"));
        }
        Ok(WhitelistEntry {
            id: String::new(),
            customer_id: CustomerId::new(&doc.customer_id),
            theme: doc.theme,
            reason,
            valid_from: doc.valid_from,
            valid_until: doc.valid_until,
        })
    }
}

impl Whitelist {
    pub fn add(&mut self, mut e: WhitelistEntry) -> WhitelistEntry {
        self.next += 1;
        e.id = format!("WL{:08}", self.next);
        self.entries.insert(e.id.clone(), e.clone());
        e
    }

    pub fn restore(&mut self, e: WhitelistEntry) {
        if let Some(n) = e.id.strip_prefix("WL").and_then(|n| n.parse::<u64>().ok()) {
            self.next = self.next.max(n);
        }
        self.entries.insert(e.id.clone(), e);
    }

    pub fn remove(&mut self, id: &str) -> Option<WhitelistEntry> {
        self.entries.remove(id)
    }

    pub fn list(&self) -> impl Iterator<Item = &WhitelistEntry> {
        self.entries.values()
    }

    /// The entry exempting `customer` from `theme` on `date`, if any.
    pub fn covering(
        &self,
        theme: &str,
        customer: &CustomerId,
        date: NaiveDate,
    ) -> Option<&WhitelistEntry> {
        self.entries.values().find(|e| {
            e.theme == theme
                && &e.customer_id == customer
                && e.valid_from <= date
                && date <= e.valid_until
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_inclusive_dates_only() {
        let mut w = Whitelist::default();
        let e = WhitelistEntry::parse(
            r#"{"customer_id":"C1","theme":"over_capacity","reason":"test","valid_from":"2026-10-01","valid_until":"2026-10-31"}"#,
        )
        .unwrap();
        let id = w.add(e).id;
        let c = CustomerId::new("C1");
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(w.covering("over_capacity", &c, d("2026-10-31")).is_some());
        assert!(w.covering("over_capacity", &c, d("2026-11-01")).is_none());
        assert!(w.covering("valley_excess", &c, d("2026-10-15")).is_none());
        w.remove(&id);
        assert!(w.covering("over_capacity", &c, d("2026-10-15")).is_none());
        assert!(WhitelistEntry::parse(r#"{"customer_id":"C1"}"#)
            .unwrap_err()
            .to_string()
            .contains("theme"));
    }
}
