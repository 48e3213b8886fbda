//! The tables a theme can read, as Arrow batches. Event tables carry the
//! hidden window columns the engine fills in; reference tables come from
//! the archive. `docs/themes.md` lists every column.

use crate::archive::{Archive, ChangeKind};
use crate::billing::BillingPeriod;
use crate::records::{Freeze, LoadPoint, MeterEvent};
use crate::theme::{WINDOW_END_COL, WINDOW_START_COL};
use crate::time::{date_to_local_ms, LocalMs};
use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use rust_decimal::Decimal;
use std::sync::Arc;

/// Every quantity is `Decimal128(28, 6)`: exact, and wide enough for any
/// register reading times any multiplier.
pub const DEC_PRECISION: u8 = 28;
pub const DEC_SCALE: i8 = 6;

pub fn dec_type() -> DataType {
    DataType::Decimal128(DEC_PRECISION, DEC_SCALE)
}

/// Decimal at scale 6 as the i128 Arrow stores. Inputs are bounded at
/// decode time, so the rescale cannot overflow.
pub fn dec6(d: Decimal) -> i128 {
    let mut d = d;
    d.rescale(DEC_SCALE as u32);
    d.mantissa()
}

pub fn date32(d: NaiveDate) -> i32 {
    crate::time::days_since_epoch(d) as i32
}

fn dec_builder(n: usize) -> Decimal128Builder {
    Decimal128Builder::with_capacity(n).with_data_type(dec_type())
}

/// Columns of one table under construction, all with the same row count.
struct Cols {
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
}

impl Cols {
    fn new() -> Self {
        Self {
            fields: Vec::new(),
            arrays: Vec::new(),
        }
    }

    fn add(&mut self, name: &str, nullable: bool, a: ArrayRef) {
        self.fields
            .push(Field::new(name, a.data_type().clone(), nullable));
        self.arrays.push(a);
    }

    fn finish(self) -> Result<RecordBatch, ArrowError> {
        RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.arrays)
    }
}

/// Which optional columns of a source table the theme reads
/// ([`crate::theme::ThemeDef::reads`]); the others are left out of the
/// table, so a theme summing `p_kw` does not pay for eight other columns.
pub type Reads<'a> = &'a dyn Fn(&str) -> bool;

macro_rules! dec_cols {
    ($cols:expr, $reads:expr, $rows:expr, $( $name:literal => $get:expr ),* $(,)?) => {{
        $(
            if ($reads)($name) {
                let mut b = dec_builder($rows.len());
                for r in $rows.iter() {
                    b.append_option(($get)(r).map(dec6));
                }
                $cols.add($name, true, Arc::new(b.finish()));
            }
        )*
    }};
}

/// A source row with the customer its meter belongs to.
pub struct Placed<'a, T> {
    pub row: &'a T,
    pub customer_id: &'a str,
}

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
        tk.append_value(&b.tariff_kind);
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
        ("tariff_kind", |c| &c.tariff_kind),
        ("tariff_category", |c| &c.tariff_category),
        ("basic_fee_mode", |c| &c.basic_fee_mode),
        ("status", |c| &c.status),
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
        kind.append_value(match ch.kind {
            ChangeKind::Suspend => "suspend",
            ChangeKind::Reduce => "reduce",
        });
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
