//! 白名单: a customer exempted from one theme, or from all (`theme` "*"),
//! between two dates (inclusive). A hit it covers raises no work order and
//! is kept as a suppressed alert. Each entry names who asked for it and the
//! admin who approved it; removing an entry ends it but keeps it, with who
//! removed it and when, so the history survives expiry and deletion.

use crate::documents::{read, short_text, DocumentError};
use crate::ids::CustomerId;
use crate::time::EpochMs;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `theme` of an entry that exempts the customer from every theme.
pub const ALL_THEMES: &str = "*";

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
    /// Who asked for the exemption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
    /// The admin who approved it (with access control).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    /// Set once the entry is removed; it then covers nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Removal {
    pub at: EpochMs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl WhitelistEntry {
    /// Days it is valid, both ends counted.
    pub fn days(&self) -> i64 {
        (self.valid_until - self.valid_from).num_days() + 1
    }

    fn covers(&self, theme: &str, customer: &CustomerId, date: NaiveDate) -> bool {
        self.removed.is_none()
            && (self.theme == theme || self.theme == ALL_THEMES)
            && &self.customer_id == customer
            && self.valid_from <= date
            && date <= self.valid_until
    }
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
    #[serde(default)]
    requester: Option<String>,
}

impl WhitelistEntry {
    /// Parses a POST body; the id is assigned by [`Whitelist::add`], the
    /// approver by whoever admits it.
    pub fn parse(body: &str) -> Result<WhitelistEntry, DocumentError> {
        let doc: EntryDoc = read(body)?;
        let reason = doc.reason.unwrap_or_default();
        for (path, text) in [
            ("customer_id", &doc.customer_id),
            ("theme", &doc.theme),
            ("reason", &reason),
            (
                "requester",
                doc.requester.as_ref().unwrap_or(&String::new()),
            ),
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
            requester: doc.requester.filter(|r| !r.trim().is_empty()),
            approver: None,
            removed: None,
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

    /// Ends an entry still in force, keeping it; `None` if there is none.
    pub fn remove(&mut self, id: &str, by: Option<String>, at: EpochMs) -> Option<WhitelistEntry> {
        let e = self.entries.get_mut(id).filter(|e| e.removed.is_none())?;
        e.removed = Some(Removal { at, by });
        Some(e.clone())
    }

    /// The entries not removed; with `history`, the removed ones too.
    pub fn list(&self, history: bool) -> impl Iterator<Item = &WhitelistEntry> {
        self.entries
            .values()
            .filter(move |e| history || e.removed.is_none())
    }

    /// The entry exempting `customer` from `theme` on `date`, if any.
    pub fn covering(
        &self,
        theme: &str,
        customer: &CustomerId,
        date: NaiveDate,
    ) -> Option<&WhitelistEntry> {
        self.entries
            .values()
            .find(|e| e.covers(theme, customer, date))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(theme: &str) -> WhitelistEntry {
        WhitelistEntry::parse(&format!(
            r#"{{"customer_id":"C1","theme":"{theme}","reason":"test","valid_from":"2026-10-01","valid_until":"2026-10-31","requester":"张三"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn covers_inclusive_dates_only_until_removed() {
        let mut w = Whitelist::default();
        let id = w.add(entry("over_capacity")).id;
        let c = CustomerId::new("C1");
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(w.covering("over_capacity", &c, d("2026-10-31")).is_some());
        assert!(w.covering("over_capacity", &c, d("2026-11-01")).is_none());
        assert!(w.covering("valley_excess", &c, d("2026-10-15")).is_none());
        let removed = w.remove(&id, Some("管理员".into()), 5).unwrap();
        assert_eq!(removed.removed.unwrap().by.as_deref(), Some("管理员"));
        assert!(w.remove(&id, None, 6).is_none(), "removed once");
        assert!(w.covering("over_capacity", &c, d("2026-10-15")).is_none());
        assert_eq!(w.list(false).count(), 0);
        assert_eq!(w.list(true).count(), 1, "the history keeps it");
        assert!(WhitelistEntry::parse(r#"{"customer_id":"C1"}"#)
            .unwrap_err()
            .to_string()
            .contains("theme"));
    }

    #[test]
    fn star_covers_every_theme() {
        let mut w = Whitelist::default();
        let e = w.add(entry(ALL_THEMES));
        assert_eq!((e.days(), e.requester.as_deref()), (31, Some("张三")));
        let c = CustomerId::new("C1");
        let day = NaiveDate::from_ymd_opt(2026, 10, 2).unwrap();
        for theme in ["over_capacity", "valley_excess"] {
            assert!(w.covering(theme, &c, day).is_some(), "{theme}");
        }
        assert!(w
            .covering("over_capacity", &CustomerId::new("C2"), day)
            .is_none());
    }
}
