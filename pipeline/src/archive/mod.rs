//! The customer archive (用电客户档案): the lookup from meter to customer,
//! multiplier, contract capacity and org unit, and the reference tables the
//! themes join against.

mod document;
mod kinds;

pub use kinds::{BasicFeeMode, ChangeKind, CustomerStatus, TariffKind};

use crate::ids::{CustomerId, IdMap, MeterId};
use crate::records::Record;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeterSpec {
    pub meter_id: MeterId,
    /// 综合倍率: register delta × multiplier = primary-side energy.
    pub multiplier: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityChange {
    pub kind: ChangeKind,
    pub kva: Decimal,
    #[serde(with = "crate::time::date_serde")]
    pub start: NaiveDate,
    /// `None`: open-ended.
    #[serde(with = "crate::time::opt_date_serde")]
    pub end: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub customer_id: CustomerId,
    pub name: String,
    pub org_code: String,
    pub usage_category: String,
    pub tariff_kind: TariffKind,
    pub tariff_category: String,
    pub contract_kva: Decimal,
    pub running_kva: Option<Decimal>,
    pub voltage_kv: Option<Decimal>,
    pub pf_standard: Option<Decimal>,
    pub basic_fee_mode: BasicFeeMode,
    pub status: CustomerStatus,
    pub meters: Vec<MeterSpec>,
    pub capacity_changes: Vec<CapacityChange>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MeterInfo {
    pub customer_id: CustomerId,
    pub multiplier: Decimal,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ArchiveError(pub String);

/// Customers by id plus the meter index. Upserting a customer replaces it
/// whole, meters included.
#[derive(Debug, Default, Clone)]
pub struct Archive {
    customers: HashMap<CustomerId, Customer>,
    meters: MeterIndex,
}

/// The archive's meters, shareable: decoding (off the monitor's lock)
/// resolves meter ids against a snapshot, and the monitor trusts those
/// results while the snapshot is still the archive's current index. An
/// archive change copies the index once if a snapshot is held.
#[derive(Debug, Default, Clone)]
pub struct MeterIndex(Arc<IdMap<MeterId, MeterInfo>>);

impl MeterIndex {
    /// The archive's own copy of a meter id, to share rather than keep
    /// another copy per record; None for a meter not in the archive. By the
    /// id's text, so a record's meter is looked up before (and, if known,
    /// without) allocating an id for it.
    pub fn canonical(&self, id: &str) -> Option<&MeterId> {
        self.0.get_key_value(id).map(|(k, _)| k)
    }

    /// Gives `rec` the archive's copy of its meter id; false, leaving it
    /// as it is, for a meter not in the archive.
    pub fn adopt_id(&self, rec: &mut Record) -> bool {
        match self.canonical(rec.meter_id().as_str()) {
            Some(id) => {
                rec.set_meter_id(id.clone());
                true
            }
            None => false,
        }
    }

    /// Whether both are the same, unchanged index.
    pub fn same(&self, other: &MeterIndex) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Archive {
    pub fn customer(&self, id: &CustomerId) -> Option<&Customer> {
        self.customers.get(id)
    }

    pub fn customers(&self) -> impl Iterator<Item = &Customer> {
        self.customers.values()
    }

    pub fn meter(&self, id: &MeterId) -> Option<&MeterInfo> {
        self.meters.0.get(id)
    }

    pub fn meter_index(&self) -> &MeterIndex {
        &self.meters
    }

    pub fn len(&self) -> usize {
        self.customers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }

    pub fn upsert(&mut self, c: Customer) {
        let meters = Arc::make_mut(&mut self.meters.0);
        if let Some(old) = self.customers.remove(&c.customer_id) {
            for m in &old.meters {
                if meters
                    .get(&m.meter_id)
                    .is_some_and(|i| i.customer_id == old.customer_id)
                {
                    meters.remove(&m.meter_id);
                }
            }
        }
        for m in &c.meters {
            meters.insert(
                m.meter_id.clone(),
                MeterInfo {
                    customer_id: c.customer_id.clone(),
                    multiplier: m.multiplier,
                },
            );
        }
        self.customers.insert(c.customer_id.clone(), c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_replaces_meters() {
        let doc = r#"{"customers":[{"customer_id":"C1","org_code":"41/4107/410727","usage_category":"large_industry",
            "tariff_kind":"two_part","contract_kva":400,"meters":[{"meter_id":"M1","multiplier":1000}],
            "capacity_changes":[{"kind":"suspend","kva":"80","start":"2026-06-01","end":null}]}]}"#;
        let mut a = Archive::default();
        for c in Archive::parse_document(doc).unwrap() {
            a.upsert(c);
        }
        assert_eq!(
            a.meter(&MeterId::new("M1")).unwrap().multiplier,
            Decimal::from(1000)
        );
        let doc2 = doc.replace("\"M1\"", "\"M2\"");
        for c in Archive::parse_document(&doc2).unwrap() {
            a.upsert(c);
        }
        assert!(a.meter(&MeterId::new("M1")).is_none());
        assert!(a.meter(&MeterId::new("M2")).is_some());
    }

    #[test]
    fn bad_customer_is_named() {
        let doc = r#"{"customers":[{"customer_id":"C9","org_code":"41/4107/410727","usage_category":"x","tariff_kind":"three_part","contract_kva":1}]}"#;
        let e = Archive::parse_document(doc).unwrap_err().to_string();
        assert!(e.contains("C9") && e.contains("tariff_kind"), "{e}");
    }
}
