//! The tables a theme can read, as Arrow batches, and the one registry of
//! them ([`SourceTable`]). Event tables carry the hidden window columns the
//! engine fills in; reference tables come from the archive; views are SQL
//! over both. `docs/themes.md` lists every column.
//!
//! A new column is one line in its table's builder: the engine learns which
//! columns a theme reads from the plan, not from a list kept here.

use crate::records::Stream;
use chrono::NaiveDate;
use datafusion::arrow::array::{ArrayRef, Decimal128Builder};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use rust_decimal::Decimal;
use std::sync::Arc;

/// The event table a theme reads; exactly one per theme (views over it
/// count as it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceTable {
    LoadPoint,
    MeterDay,
    MeterEvent,
    Bill,
}

impl SourceTable {
    pub const ALL: [SourceTable; 4] = [
        SourceTable::LoadPoint,
        SourceTable::MeterDay,
        SourceTable::MeterEvent,
        SourceTable::Bill,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SourceTable::LoadPoint => "load_point",
            SourceTable::MeterDay => "meter_day",
            SourceTable::MeterEvent => "meter_event",
            SourceTable::Bill => "bill",
        }
    }

    pub fn named(name: &str) -> Option<SourceTable> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The stream whose watermark closes the table's windows; None for
    /// bills, which are judged when a period is posted.
    pub fn stream(self) -> Option<Stream> {
        match self {
            SourceTable::LoadPoint => Some(Stream::Load),
            SourceTable::MeterDay => Some(Stream::Freeze),
            SourceTable::MeterEvent => Some(Stream::Event),
            SourceTable::Bill => None,
        }
    }

    /// The table with no rows and the columns `reads` asks for, window
    /// columns included; with every column, it is what themes are planned
    /// against.
    pub fn empty(self, reads: Reads) -> Result<RecordBatch, ArrowError> {
        let local = |t: i64| t;
        let rows = match self {
            SourceTable::LoadPoint => load_point(&[], local, reads)?,
            SourceTable::MeterDay => meter_day(&[], reads)?,
            SourceTable::MeterEvent => meter_event(&[], local, reads)?,
            SourceTable::Bill => return bill(&crate::billing::BillingPeriod::empty()),
        };
        in_windows(&rows, &[])
    }
}

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

/// Which optional columns of a source table the theme's plan reads
/// ([`crate::engine::Theme::reads`]); the others are left out of the
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

mod events;
mod reference;
mod views;

pub use events::{bill, in_windows, load_point, meter_day, meter_event, MeterDay, Run};
pub use reference::{capacity_changes, customers};
pub use views::VIEWS;
