//! The archive document (interfaces.md §3), `{"customers": [...]}`, read
//! customer by customer: all or nothing, and the first bad customer fails
//! the document naming its index, its id and the field.

use super::{
    Archive, ArchiveError, BasicFeeMode, CapacityChange, ChangeKind, Customer, CustomerStatus,
    MeterSpec, TariffKind,
};
use crate::documents::{customer_id_of, decimal, read, short_text, DocumentError};
use crate::ids::{CustomerId, MeterId};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct CustomerDoc {
    customer_id: String,
    #[serde(default)]
    name: Option<String>,
    org_code: String,
    usage_category: String,
    tariff_kind: TariffKind,
    #[serde(default)]
    tariff_category: Option<String>,
    #[serde(deserialize_with = "decimal::required")]
    contract_kva: Decimal,
    #[serde(default, deserialize_with = "decimal::optional")]
    running_kva: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal::optional")]
    voltage_kv: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal::optional")]
    pf_standard: Option<Decimal>,
    #[serde(default)]
    basic_fee_mode: Option<BasicFeeMode>,
    #[serde(default)]
    status: Option<CustomerStatus>,
    #[serde(default)]
    meters: Vec<MeterDoc>,
    /// `null` is an empty list.
    #[serde(default)]
    capacity_changes: Option<Vec<ChangeDoc>>,
}

#[derive(Deserialize)]
struct MeterDoc {
    meter_id: String,
    #[serde(default, deserialize_with = "decimal::optional")]
    multiplier: Option<Decimal>,
}

#[derive(Deserialize)]
struct ChangeDoc {
    kind: ChangeKind,
    #[serde(deserialize_with = "decimal::required")]
    kva: Decimal,
    #[serde(with = "crate::time::date_serde")]
    start: NaiveDate,
    #[serde(default, with = "crate::time::opt_date_serde")]
    end: Option<NaiveDate>,
}

impl CustomerDoc {
    fn into_customer(self) -> Result<Customer, DocumentError> {
        for (path, text) in [
            ("customer_id", Some(&self.customer_id)),
            ("name", self.name.as_ref()),
            ("org_code", Some(&self.org_code)),
            ("usage_category", Some(&self.usage_category)),
            ("tariff_category", self.tariff_category.as_ref()),
        ] {
            short_text(path, text.map_or("", String::as_str))?;
        }
        if self.customer_id.trim().is_empty() {
            return Err(DocumentError::at("customer_id", "is empty"));
        }
        if self.org_code.split('/').count() < 3 {
            return Err(DocumentError::at(
                "org_code",
                format!(
                    "{:?} must be a province/city/county[/station] path such as 41/4107/410727",
                    self.org_code
                ),
            ));
        }
        let meters = self
            .meters
            .into_iter()
            .enumerate()
            .map(|(i, m)| m.into_spec(i))
            .collect::<Result<_, _>>()?;
        let capacity_changes = self
            .capacity_changes
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, c)| c.into_change(i))
            .collect::<Result<_, _>>()?;
        Ok(Customer {
            customer_id: CustomerId::new(&self.customer_id),
            name: self.name.unwrap_or_default(),
            org_code: self.org_code,
            usage_category: self.usage_category,
            tariff_kind: self.tariff_kind,
            tariff_category: self.tariff_category.unwrap_or_default(),
            contract_kva: self.contract_kva,
            running_kva: self.running_kva,
            voltage_kv: self.voltage_kv,
            pf_standard: self.pf_standard,
            basic_fee_mode: self.basic_fee_mode.unwrap_or(BasicFeeMode::None),
            status: self.status.unwrap_or(CustomerStatus::Normal),
            meters,
            capacity_changes,
        })
    }
}

impl MeterDoc {
    fn into_spec(self, i: usize) -> Result<MeterSpec, DocumentError> {
        short_text(&format!("meters[{i}].meter_id"), &self.meter_id)?;
        let multiplier = self.multiplier.unwrap_or(Decimal::ONE);
        if multiplier <= Decimal::ZERO {
            return Err(DocumentError::at(
                &format!("meters[{i}].multiplier"),
                format!("of meter {} must be positive", self.meter_id),
            ));
        }
        Ok(MeterSpec {
            meter_id: MeterId::new(&self.meter_id),
            multiplier,
        })
    }
}

impl ChangeDoc {
    fn into_change(self, i: usize) -> Result<CapacityChange, DocumentError> {
        if self.end.is_some_and(|e| e < self.start) {
            return Err(DocumentError::at(
                &format!("capacity_changes[{i}].end"),
                "is before its start",
            ));
        }
        Ok(CapacityChange {
            kind: self.kind,
            kva: self.kva,
            start: self.start,
            end: self.end,
        })
    }
}

impl Archive {
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
                read::<CustomerDoc>(raw.get())
                    .and_then(CustomerDoc::into_customer)
                    .map_err(|e| {
                        ArchiveError(format!(
                            "customers[{i}] ({}): {e}; nothing from this request was stored",
                            customer_id_of(raw)
                        ))
                    })
            })
            .collect()
    }
}
