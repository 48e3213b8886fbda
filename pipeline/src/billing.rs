//! A billing period (电费发行): the month's bills, validated whole before
//! anything is stored, money as exact decimals.

use crate::archive::TariffKind;
use crate::documents::{customer_id_of, decimal, read, short_text, DocumentError};
use crate::ids::CustomerId;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bill {
    pub customer_id: CustomerId,
    pub tariff_kind: TariffKind,
    pub tariff_category: String,
    pub energy_kwh: Decimal,
    pub basic_fee_kva: Decimal,
    pub basic_fee_yuan: Decimal,
    pub energy_fee_yuan: Decimal,
    pub pf_adjust_applied: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingPeriod {
    /// `YYYY-MM`
    pub period: String,
    #[serde(with = "crate::time::date_serde")]
    pub first_day: NaiveDate,
    #[serde(with = "crate::time::date_serde")]
    pub next_first_day: NaiveDate,
    pub bills: Vec<Bill>,
}

impl BillingPeriod {
    /// A period with no bills, for planning billing themes.
    pub fn empty() -> Self {
        BillingPeriod {
            period: String::new(),
            first_day: NaiveDate::MIN,
            next_first_day: NaiveDate::MIN,
            bills: Vec::new(),
        }
    }

    pub fn last_day(&self) -> NaiveDate {
        self.next_first_day.pred_opt().unwrap_or(self.first_day)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BillingError(pub String);

pub fn parse_period(text: &str) -> Result<(NaiveDate, NaiveDate), BillingError> {
    let bad = || {
        BillingError(format!(
            "`period` {text:?} must be a month written YYYY-MM, e.g. 2026-10"
        ))
    };
    let (y, m) = text.split_once('-').ok_or_else(bad)?;
    let (y, m): (i32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let first = NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?;
    let next = jicha_domain::calendar::next_month_start(first).ok_or_else(bad)?;
    Ok((first, next))
}

/// Parses `{"period": "2026-10", "bills": [...]}`; the first bad bill fails
/// the whole request, naming the bill and the field.
pub fn parse_billing(body: &str) -> Result<BillingPeriod, BillingError> {
    #[derive(Deserialize)]
    struct Doc<'a> {
        period: String,
        #[serde(borrow)]
        bills: Vec<&'a RawValue>,
    }
    let doc: Doc = serde_json::from_str(body).map_err(|e| {
        BillingError(format!(
            "billing must be {{\"period\": \"YYYY-MM\", \"bills\": [...]}} (interfaces.md §3): {e}"
        ))
    })?;
    let (first_day, next_first_day) = parse_period(&doc.period)?;
    let mut seen = std::collections::HashSet::new();
    let mut bills = Vec::with_capacity(doc.bills.len());
    for (i, raw) in doc.bills.iter().enumerate() {
        let bill = read::<BillDoc>(raw.get())
            .and_then(BillDoc::into_bill)
            .map_err(|e| {
                BillingError(format!(
                    "bills[{i}] (customer {}): {e}; nothing from this request was stored",
                    customer_id_of(raw)
                ))
            })?;
        if !seen.insert(bill.customer_id.clone()) {
            return Err(BillingError(format!(
                "bills[{i}]: customer {} has two bills in period {}; send one bill per customer",
                bill.customer_id, doc.period
            )));
        }
        bills.push(bill);
    }
    Ok(BillingPeriod {
        period: doc.period,
        first_day,
        next_first_day,
        bills,
    })
}

/// One bill as sent. Negative amounts are legitimate (退补 refunds
/// re-issue a period), so only the form of a number is checked.
#[derive(Deserialize)]
struct BillDoc {
    customer_id: String,
    tariff_kind: TariffKind,
    #[serde(default)]
    tariff_category: Option<String>,
    #[serde(deserialize_with = "decimal::required")]
    energy_kwh: Decimal,
    #[serde(deserialize_with = "decimal::required")]
    basic_fee_kva: Decimal,
    #[serde(deserialize_with = "decimal::required")]
    basic_fee_yuan: Decimal,
    #[serde(deserialize_with = "decimal::required")]
    energy_fee_yuan: Decimal,
    pf_adjust_applied: bool,
}

impl BillDoc {
    fn into_bill(self) -> Result<Bill, DocumentError> {
        short_text("customer_id", &self.customer_id)?;
        let tariff_category = self.tariff_category.unwrap_or_default();
        short_text("tariff_category", &tariff_category)?;
        Ok(Bill {
            customer_id: CustomerId::new(&self.customer_id),
            tariff_kind: self.tariff_kind,
            tariff_category,
            energy_kwh: self.energy_kwh,
            basic_fee_kva: self.basic_fee_kva,
            basic_fee_yuan: self.basic_fee_yuan,
            energy_fee_yuan: self.energy_fee_yuan,
            pf_adjust_applied: self.pf_adjust_applied,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_exact_from_strings_and_numbers() {
        let b = parse_billing(
            r#"{"period":"2026-10","bills":[{"customer_id":"C1","tariff_kind":"two_part","tariff_category":"large_industry",
            "energy_kwh":0.1,"basic_fee_kva":"320","basic_fee_yuan":"8000.00","energy_fee_yuan":"43289.64","pf_adjust_applied":true}]}"#,
        )
        .unwrap();
        assert_eq!(
            b.bills[0].energy_kwh + Decimal::new(2, 1),
            Decimal::new(3, 1)
        );
        assert_eq!(b.bills[0].energy_fee_yuan.to_string(), "43289.64");
        assert_eq!(b.last_day().to_string(), "2026-10-31");
    }

    #[test]
    fn bad_bill_names_bill_and_field() {
        let e = parse_billing(
            r#"{"period":"2026-10","bills":[{"customer_id":"C7","tariff_kind":"single","energy_kwh":"1","basic_fee_kva":"0",
            "basic_fee_yuan":"abc","energy_fee_yuan":"1","pf_adjust_applied":false}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("bills[0]") && e.contains("C7") && e.contains("basic_fee_yuan"),
            "{e}"
        );
        assert!(parse_billing(r#"{"period":"2026-13","bills":[]}"#).is_err());
    }
}
