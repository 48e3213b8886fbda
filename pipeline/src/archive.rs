//! The customer archive (用电客户档案): the lookup from meter to customer,
//! multiplier, contract capacity and org unit, and the reference tables the
//! themes join against.

use crate::fields::{opt_date, opt_dec, opt_str, req_date, req_dec, req_str, Obj};
use crate::ids::{CustomerId, IdMap, MeterId};
use crate::records::Record;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeterSpec {
    pub meter_id: MeterId,
    /// 综合倍率: register delta × multiplier = primary-side energy.
    pub multiplier: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Suspend,
    Reduce,
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
    pub tariff_kind: String,
    pub tariff_category: String,
    pub contract_kva: Decimal,
    pub running_kva: Option<Decimal>,
    pub voltage_kv: Option<Decimal>,
    pub pf_standard: Option<Decimal>,
    pub basic_fee_mode: String,
    pub status: String,
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

fn one_of(
    value: String,
    field: &str,
    allowed: &[&str],
) -> Result<String, (crate::decode::Reason, String)> {
    if allowed.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err((
            crate::decode::Reason::BadValue,
            format!(
                "`{field}` is {value:?}; expected one of {}",
                allowed.join(", ")
            ),
        ))
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

    /// Parses an archive document (`{"customers": [...]}`). All or nothing:
    /// the first bad customer fails the whole document, naming it and the field.
    pub fn parse_document(body: &str) -> Result<Vec<Customer>, ArchiveError> {
        #[derive(Deserialize)]
        struct Doc<'a> {
            #[serde(borrow)]
            customers: Vec<&'a RawValue>,
        }
        let doc: Doc = serde_json::from_str(body).map_err(|e| {
            ArchiveError(format!(
                "archive must be {{\"customers\": [...]}} (interfaces.md §3): {e}"
            ))
        })?;
        doc.customers
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                parse_customer(raw).map_err(|(_, detail)| {
                    let id = Obj::parse(raw)
                        .ok()
                        .and_then(|o| req_str(o.get("customer_id"), "customer_id").ok())
                        .unwrap_or_else(|| "?".into());
                    ArchiveError(format!(
                        "customers[{i}] ({id}): {detail}; nothing from this request was stored"
                    ))
                })
            })
            .collect()
    }
}

type FieldResult<T> = crate::fields::FieldResult<T>;

fn parse_customer(raw: &RawValue) -> FieldResult<Customer> {
    let o = Obj::parse(raw)?;
    let customer_id = req_str(o.get("customer_id"), "customer_id")?;
    if customer_id.trim().is_empty() {
        return Err((
            crate::decode::Reason::BadValue,
            "`customer_id` is empty".into(),
        ));
    }
    let org_code = req_str(o.get("org_code"), "org_code")?;
    if org_code.split('/').count() < 3 {
        return Err((
            crate::decode::Reason::BadValue,
            format!("`org_code` {org_code:?} must be a province/city/county[/station] path such as 41/4107/410727"),
        ));
    }
    let meters = match o.get("meters") {
        None => Vec::new(),
        Some(raw) => {
            let items: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(|_| {
                (
                    crate::decode::Reason::WrongType,
                    "`meters` must be an array".to_string(),
                )
            })?;
            items
                .into_iter()
                .map(parse_meter)
                .collect::<FieldResult<Vec<_>>>()?
        }
    };
    let capacity_changes = match o.get("capacity_changes") {
        None => Vec::new(),
        Some(raw) if raw.get() == "null" => Vec::new(),
        Some(raw) => {
            let items: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(|_| {
                (
                    crate::decode::Reason::WrongType,
                    "`capacity_changes` must be an array".to_string(),
                )
            })?;
            items
                .into_iter()
                .map(parse_change)
                .collect::<FieldResult<Vec<_>>>()?
        }
    };
    Ok(Customer {
        customer_id: CustomerId::new(&customer_id),
        name: opt_str(o.get("name"), "name")?.unwrap_or_default(),
        org_code,
        usage_category: req_str(o.get("usage_category"), "usage_category")?,
        tariff_kind: one_of(
            req_str(o.get("tariff_kind"), "tariff_kind")?,
            "tariff_kind",
            &["two_part", "single"],
        )?,
        tariff_category: opt_str(o.get("tariff_category"), "tariff_category")?.unwrap_or_default(),
        contract_kva: req_dec(o.get("contract_kva"), "contract_kva")?,
        running_kva: opt_dec(o.get("running_kva"), "running_kva")?,
        voltage_kv: opt_dec(o.get("voltage_kv"), "voltage_kv")?,
        pf_standard: opt_dec(o.get("pf_standard"), "pf_standard")?,
        basic_fee_mode: one_of(
            opt_str(o.get("basic_fee_mode"), "basic_fee_mode")?.unwrap_or_else(|| "none".into()),
            "basic_fee_mode",
            &["capacity", "demand", "none"],
        )?,
        status: one_of(
            opt_str(o.get("status"), "status")?.unwrap_or_else(|| "normal".into()),
            "status",
            &["normal", "suspended", "closed"],
        )?,
        meters,
        capacity_changes,
    })
}

fn parse_meter(raw: &RawValue) -> FieldResult<MeterSpec> {
    let o = Obj::parse(raw)?;
    let id = req_str(o.get("meter_id"), "meters[].meter_id")?;
    let multiplier = opt_dec(o.get("multiplier"), "meters[].multiplier")?.unwrap_or(Decimal::ONE);
    if multiplier <= Decimal::ZERO {
        return Err((
            crate::decode::Reason::BadValue,
            format!("meter {id}: `multiplier` must be positive"),
        ));
    }
    Ok(MeterSpec {
        meter_id: MeterId::new(&id),
        multiplier,
    })
}

fn parse_change(raw: &RawValue) -> FieldResult<CapacityChange> {
    let o = Obj::parse(raw)?;
    let kind = match req_str(o.get("kind"), "capacity_changes[].kind")?.as_str() {
        "suspend" => ChangeKind::Suspend,
        "reduce" => ChangeKind::Reduce,
        other => {
            return Err((
                crate::decode::Reason::BadValue,
                format!("`capacity_changes[].kind` is {other:?}; expected suspend or reduce"),
            ))
        }
    };
    let start = req_date(o.get("start"), "capacity_changes[].start")?;
    let end = opt_date(o.get("end"), "capacity_changes[].end")?;
    if end.is_some_and(|e| e < start) {
        return Err((
            crate::decode::Reason::BadValue,
            "`capacity_changes[].end` is before its start".into(),
        ));
    }
    Ok(CapacityChange {
        kind,
        kva: req_dec(o.get("kva"), "capacity_changes[].kva")?,
        start,
        end,
    })
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
