//! The event tables: rows of the window store, and bills, as Arrow batches.

use super::{date32, dec6, dec_builder, Cols, Placed, Reads};
use crate::billing::BillingPeriod;
use crate::records::{Freeze, LoadPoint, MeterEvent};
use crate::theme::{WINDOW_END_COL, WINDOW_START_COL};
use crate::time::{date_to_local_ms, LocalMs};
use datafusion::arrow::array::{
    BooleanBuilder, Date32Builder, StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use rust_decimal::Decimal;
use std::sync::Arc;

fn common_cols<T>(
    cols: &mut Cols,
    reads: Reads,
    rows: &[Placed<T>],
    ts: impl Fn(&T) -> LocalMs,
    meter: impl Fn(&T) -> &str,
) {
    let mut t = TimestampMillisecondBuilder::with_capacity(rows.len());
    let mut c = StringBuilder::with_capacity(rows.len(), rows.len() * 12);
    for p in rows {
        t.append_value(ts(p.row));
        c.append_value(p.customer_id);
    }
    cols.add("ts", false, Arc::new(t.finish()));
    if reads("meter_id") {
        let mut m = StringBuilder::new();
        rows.iter().for_each(|p| m.append_value(meter(p.row)));
        cols.add("meter_id", false, Arc::new(m.finish()));
    }
    cols.add("customer_id", false, Arc::new(c.finish()));
}

/// A run of rows of a table built by [`load_point`], [`meter_day`] or
/// [`meter_event`], placed in one window (`None`: row-wise themes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub start: usize,
    pub len: usize,
    pub window: Option<(LocalMs, LocalMs)>,
}

/// The source table a theme reads: each run of `rows` in its window, with
/// the hidden window columns. A row in several windows (hop, cumulate)
/// appears once per window, copied column by column, so each record is
/// converted to Arrow once however many windows hold it.
pub fn in_windows(rows: &RecordBatch, runs: &[Run]) -> Result<RecordBatch, ArrowError> {
    let body = match runs {
        [one] => rows.slice(one.start, one.len),
        _ => {
            let parts: Vec<RecordBatch> = runs.iter().map(|r| rows.slice(r.start, r.len)).collect();
            datafusion::arrow::compute::concat_batches(&rows.schema(), &parts)?
        }
    };
    let n = body.num_rows();
    let mut ws = TimestampMillisecondBuilder::with_capacity(n);
    let mut we = TimestampMillisecondBuilder::with_capacity(n);
    for r in runs {
        match r.window {
            Some((s, e)) => {
                ws.append_value_n(s, r.len);
                we.append_value_n(e, r.len);
            }
            None => {
                ws.append_nulls(r.len);
                we.append_nulls(r.len);
            }
        }
    }
    let schema = body.schema();
    let mut cols = Cols {
        fields: schema.fields().iter().map(|f| f.as_ref().clone()).collect(),
        arrays: body.columns().to_vec(),
    };
    cols.add(WINDOW_START_COL, true, Arc::new(ws.finish()));
    cols.add(WINDOW_END_COL, true, Arc::new(we.finish()));
    cols.finish()
}

/// `load_point`: ts (local), meter_id, customer_id, p_kw, q_kvar, ua…ic, pf.
pub fn load_point(
    rows: &[Placed<LoadPoint>],
    local: impl Fn(i64) -> LocalMs,
    reads: Reads,
) -> Result<RecordBatch, ArrowError> {
    let mut cols = Cols::new();
    common_cols(
        &mut cols,
        reads,
        rows,
        |r| local(r.ts),
        |r| r.meter_id.as_str(),
    );
    let rs: Vec<&LoadPoint> = rows.iter().map(|p| p.row).collect();
    dec_cols!(cols, reads, rs,
        "p_kw" => |r: &&LoadPoint| Some(r.p_kw),
        "q_kvar" => |r: &&LoadPoint| r.q_kvar,
        "ua" => |r: &&LoadPoint| r.phases.as_ref().and_then(|p| p.ua),
        "ub" => |r: &&LoadPoint| r.phases.as_ref().and_then(|p| p.ub),
        "uc" => |r: &&LoadPoint| r.phases.as_ref().and_then(|p| p.uc),
        "ia" => |r: &&LoadPoint| r.phases.as_ref().and_then(|p| p.ia),
        "ib" => |r: &&LoadPoint| r.phases.as_ref().and_then(|p| p.ib),
        "ic" => |r: &&LoadPoint| r.phases.as_ref().and_then(|p| p.ic),
        "pf" => |r: &&LoadPoint| r.phases.as_ref().and_then(|p| p.pf),
    );
    cols.finish()
}

/// One meter's day: the freeze at the end of `day` and the one before it.
pub struct MeterDay<'a> {
    pub cur: &'a Freeze,
    pub prev: &'a Freeze,
    pub multiplier: Decimal,
}

fn delta(cur: Option<Decimal>, prev: Option<Decimal>, mult: Decimal) -> Option<Decimal> {
    Some((cur? - prev?) * mult)
}

/// `meter_day`: ts (local start of day), day, meter_id, customer_id,
/// multiplier, reg_total, prev_reg_total, kwh and kwh_sharp/peak/flat/valley,
/// kvarh (register deltas × multiplier; null where a register is missing).
pub fn meter_day(rows: &[Placed<MeterDay>], reads: Reads) -> Result<RecordBatch, ArrowError> {
    let mut cols = Cols::new();
    common_cols(
        &mut cols,
        reads,
        rows,
        |r| date_to_local_ms(r.cur.date),
        |r| r.cur.meter_id.as_str(),
    );
    let mut day = Date32Builder::with_capacity(rows.len());
    for p in rows {
        day.append_value(date32(p.row.cur.date));
    }
    cols.add("day", false, Arc::new(day.finish()));
    let rs: Vec<&MeterDay> = rows.iter().map(|p| p.row).collect();
    dec_cols!(cols, reads, rs,
        "multiplier" => |r: &&MeterDay| Some(r.multiplier),
        "reg_total" => |r: &&MeterDay| Some(r.cur.reg_total),
        "prev_reg_total" => |r: &&MeterDay| Some(r.prev.reg_total),
        "reg_valley" => |r: &&MeterDay| r.cur.reg_valley,
        "prev_reg_valley" => |r: &&MeterDay| r.prev.reg_valley,
        "kwh" => |r: &&MeterDay| delta(Some(r.cur.reg_total), Some(r.prev.reg_total), r.multiplier),
        "kwh_sharp" => |r: &&MeterDay| delta(r.cur.reg_sharp, r.prev.reg_sharp, r.multiplier),
        "kwh_peak" => |r: &&MeterDay| delta(r.cur.reg_peak, r.prev.reg_peak, r.multiplier),
        "kwh_flat" => |r: &&MeterDay| delta(r.cur.reg_flat, r.prev.reg_flat, r.multiplier),
        "kwh_valley" => |r: &&MeterDay| delta(r.cur.reg_valley, r.prev.reg_valley, r.multiplier),
        "kvarh" => |r: &&MeterDay| delta(r.cur.reg_q_total, r.prev.reg_q_total, r.multiplier),
    );
    cols.finish()
}

/// `meter_event`: ts (local), meter_id, customer_id, code, phase, state.
pub fn meter_event(
    rows: &[Placed<MeterEvent>],
    local: impl Fn(i64) -> LocalMs,
    reads: Reads,
) -> Result<RecordBatch, ArrowError> {
    let mut cols = Cols::new();
    common_cols(
        &mut cols,
        reads,
        rows,
        |r| local(r.ts),
        |r| r.meter_id.as_str(),
    );
    let (mut code, mut phase, mut state) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    for p in rows {
        code.append_value(&p.row.code);
        phase.append_option(p.row.phase.as_deref());
        state.append_option(p.row.state.as_deref());
    }
    cols.add("code", false, Arc::new(code.finish()));
    cols.add("phase", true, Arc::new(phase.finish()));
    cols.add("state", true, Arc::new(state.finish()));
    cols.finish()
}

/// `bill`: ts (local start of the period), period, period_start,
/// period_end (last day), customer_id, tariff_kind, tariff_category,
/// energy_kwh, basic_fee_kva, basic_fee_yuan, energy_fee_yuan,
/// pf_adjust_applied.
pub fn bill(period: &BillingPeriod) -> Result<RecordBatch, ArrowError> {
    let n = period.bills.len();
    let start = date_to_local_ms(period.first_day);
    let end = date_to_local_ms(period.next_first_day);
    let mut cols = Cols::new();
    let mut ts = TimestampMillisecondBuilder::with_capacity(n);
    let (mut ws, mut we) = (
        TimestampMillisecondBuilder::with_capacity(n),
        TimestampMillisecondBuilder::with_capacity(n),
    );
    let (mut p, mut ps, mut pe) = (
        StringBuilder::new(),
        Date32Builder::new(),
        Date32Builder::new(),
    );
    let (mut cid, mut tk, mut tc) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut pf = BooleanBuilder::new();
    for b in &period.bills {
        ts.append_value(start);
        ws.append_value(start);
        we.append_value(end);
        p.append_value(&period.period);
        ps.append_value(date32(period.first_day));
        pe.append_value(date32(period.last_day()));
        cid.append_value(b.customer_id.as_str());
        tk.append_value(b.tariff_kind.as_str());
        tc.append_value(&b.tariff_category);
        pf.append_value(b.pf_adjust_applied);
    }
    cols.add("ts", false, Arc::new(ts.finish()));
    cols.add(WINDOW_START_COL, true, Arc::new(ws.finish()));
    cols.add(WINDOW_END_COL, true, Arc::new(we.finish()));
    cols.add("period", false, Arc::new(p.finish()));
    cols.add("period_start", false, Arc::new(ps.finish()));
    cols.add("period_end", false, Arc::new(pe.finish()));
    cols.add("customer_id", false, Arc::new(cid.finish()));
    cols.add("tariff_kind", false, Arc::new(tk.finish()));
    cols.add("tariff_category", false, Arc::new(tc.finish()));
    dec_cols!(cols, |_: &str| true, period.bills,
        "energy_kwh" => |b: &crate::billing::Bill| Some(b.energy_kwh),
        "basic_fee_kva" => |b: &crate::billing::Bill| Some(b.basic_fee_kva),
        "basic_fee_yuan" => |b: &crate::billing::Bill| Some(b.basic_fee_yuan),
        "energy_fee_yuan" => |b: &crate::billing::Bill| Some(b.energy_fee_yuan),
    );
    cols.add("pf_adjust_applied", false, Arc::new(pf.finish()));
    cols.finish()
}
