//! The reference tables, built from the archive.

use super::{date32, dec6, dec_builder, Cols};
use crate::archive::Archive;
use datafusion::arrow::array::{Date32Builder, Int64Builder, StringBuilder};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use std::sync::Arc;

/// `customers`: one row per customer of the archive, with `meter_count`.
pub fn customers(a: &Archive) -> Result<RecordBatch, ArrowError> {
    let cs: Vec<_> = a.customers().collect();
    let mut cols = Cols::new();
    type Text = fn(&crate::archive::Customer) -> &str;
    let strs: [(&str, Text); 8] = [
        ("customer_id", |c| c.customer_id.as_str()),
        ("name", |c| &c.name),
        ("org_code", |c| &c.org_code),
        ("usage_category", |c| &c.usage_category),
        ("tariff_kind", |c| c.tariff_kind.as_str()),
        ("tariff_category", |c| &c.tariff_category),
        ("basic_fee_mode", |c| c.basic_fee_mode.as_str()),
        ("status", |c| c.status.as_str()),
    ];
    for (name, get) in strs {
        let mut b = StringBuilder::new();
        for c in &cs {
            b.append_value(get(c));
        }
        cols.add(name, false, Arc::new(b.finish()));
    }
    dec_cols!(cols, |_: &str| true, cs,
        "contract_kva" => |c: &&crate::archive::Customer| Some(c.contract_kva),
        "running_kva" => |c: &&crate::archive::Customer| c.running_kva,
        "voltage_kv" => |c: &&crate::archive::Customer| c.voltage_kv,
        "pf_standard" => |c: &&crate::archive::Customer| c.pf_standard,
    );
    let mut mc = Int64Builder::new();
    for c in &cs {
        mc.append_value(c.meters.len() as i64);
    }
    cols.add("meter_count", false, Arc::new(mc.finish()));
    cols.finish()
}

/// `capacity_changes`: customer_id, kind (suspend|reduce), kva, start_date,
/// end_date (null = open-ended).
pub fn capacity_changes(a: &Archive) -> Result<RecordBatch, ArrowError> {
    let rows: Vec<_> = a
        .customers()
        .flat_map(|c| c.capacity_changes.iter().map(move |ch| (c, ch)))
        .collect();
    let mut cols = Cols::new();
    let (mut cid, mut kind) = (StringBuilder::new(), StringBuilder::new());
    let (mut sd, mut ed) = (Date32Builder::new(), Date32Builder::new());
    let mut kva = dec_builder(rows.len());
    for (c, ch) in &rows {
        cid.append_value(c.customer_id.as_str());
        kind.append_value(ch.kind.as_str());
        kva.append_value(dec6(ch.kva));
        sd.append_value(date32(ch.start));
        ed.append_option(ch.end.map(date32));
    }
    cols.add("customer_id", false, Arc::new(cid.finish()));
    cols.add("kind", false, Arc::new(kind.finish()));
    cols.add("kva", false, Arc::new(kva.finish()));
    cols.add("start_date", false, Arc::new(sd.finish()));
    cols.add("end_date", true, Arc::new(ed.finish()));
    cols.finish()
}
