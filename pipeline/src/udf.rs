//! The domain functions themes call, registered as DataFusion scalar UDFs.
//! The rules themselves live once, in `jicha-domain`; this file only moves
//! Arrow values in and out (the Arroyo plugin wraps the same functions).

use crate::tables::DEC_SCALE;
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Builder, Int64Builder};
use datafusion::arrow::datatypes::{DataType, Date32Type, Decimal128Type};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use jicha_domain::{calendar, money, tariff};
use rust_decimal::Decimal;
use std::sync::Arc;

fn from_date32(d: i32) -> NaiveDate {
    crate::time::date_from_days(i64::from(d)).unwrap_or_default()
}

/// Money enters `round_yuan` at scale 10 so that products such as
/// kVA × 元/kVA (scale 8) arrive unrounded.
const MONEY_IN_SCALE: i8 = 10;

fn dec_in(scale: i8) -> DataType {
    DataType::Decimal128(38, scale)
}

fn to_decimal(v: i128, scale: i8) -> Option<Decimal> {
    Decimal::try_from_i128_with_scale(v, scale as u32).ok()
}

fn from_decimal(d: Decimal, scale: i8) -> Option<i128> {
    let mut d = d;
    d.rescale(scale as u32);
    (d.scale() == scale as u32).then(|| d.mantissa())
}

type Kernel = fn(&[ArrayRef]) -> Result<ArrayRef>;

/// A domain function as a DataFusion UDF. Arguments are cast to the
/// declared types (`coerce_types`), so `round_yuan(kva * 25.00)` works at
/// any decimal scale and `valley_limit_kwh(c, 1.2, 8, d)` takes integers.
#[derive(Debug)]
struct DomainUdf {
    name: &'static str,
    args: Vec<DataType>,
    ret: DataType,
    signature: Signature,
    kernel: Kernel,
}

// A domain function is identified by its name.
impl PartialEq for DomainUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for DomainUdf {}

impl std::hash::Hash for DomainUdf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl DomainUdf {
    fn udf(name: &'static str, args: Vec<DataType>, ret: DataType, kernel: Kernel) -> ScalarUDF {
        ScalarUDF::new_from_impl(DomainUdf {
            name,
            args,
            ret,
            signature: Signature::user_defined(Volatility::Immutable),
            kernel,
        })
    }
}

impl ScalarUDFImpl for DomainUdf {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.ret.clone())
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != self.args.len() {
            return Err(DataFusionError::Plan(format!(
                "{} takes {} arguments, got {}",
                self.name,
                self.args.len(),
                arg_types.len()
            )));
        }
        Ok(self.args.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        (self.kernel)(&arrays).map(ColumnarValue::Array)
    }
}

fn dates(a: &ArrayRef) -> Result<&datafusion::arrow::array::PrimitiveArray<Date32Type>> {
    a.as_primitive_opt::<Date32Type>()
        .ok_or_else(|| DataFusionError::Execution("expected DATE arguments".into()))
}

fn decs(a: &ArrayRef) -> Result<&datafusion::arrow::array::PrimitiveArray<Decimal128Type>> {
    a.as_primitive_opt::<Decimal128Type>()
        .ok_or_else(|| DataFusionError::Execution("expected DECIMAL arguments".into()))
}

/// `overlap_days(start, end, from, to)`: days of [start, end] (end NULL =
/// open-ended) inside [from, to], both inclusive.
fn overlap_days() -> ScalarUDF {
    DomainUdf::udf(
        "overlap_days",
        vec![DataType::Date32; 4],
        DataType::Int64,
        |a: &[ArrayRef]| {
            let (s, e, f, t) = (dates(&a[0])?, dates(&a[1])?, dates(&a[2])?, dates(&a[3])?);
            let mut out = Int64Builder::with_capacity(s.len());
            for i in 0..s.len() {
                if s.is_null(i) || f.is_null(i) || t.is_null(i) {
                    out.append_null();
                    continue;
                }
                let end = (!e.is_null(i)).then(|| from_date32(e.value(i)));
                out.append_value(calendar::overlap_days(
                    from_date32(s.value(i)),
                    end,
                    from_date32(f.value(i)),
                    from_date32(t.value(i)),
                ));
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        },
    )
}

/// `suspended_days_in_year(start, end, period_last_day)`: days of one
/// suspension inside the calendar year of the period, capped at its last day.
fn suspended_days_in_year() -> ScalarUDF {
    DomainUdf::udf(
        "suspended_days_in_year",
        vec![DataType::Date32; 3],
        DataType::Int64,
        |a: &[ArrayRef]| {
            let (s, e, l) = (dates(&a[0])?, dates(&a[1])?, dates(&a[2])?);
            let mut out = Int64Builder::with_capacity(s.len());
            for i in 0..s.len() {
                if s.is_null(i) || l.is_null(i) {
                    out.append_null();
                    continue;
                }
                let end = (!e.is_null(i)).then(|| from_date32(e.value(i)));
                out.append_value(calendar::suspended_days_in_year(
                    from_date32(s.value(i)),
                    end,
                    from_date32(l.value(i)),
                ));
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        },
    )
}

/// `days_in_month(date)`.
fn days_in_month() -> ScalarUDF {
    use chrono::Datelike;
    DomainUdf::udf(
        "days_in_month",
        vec![DataType::Date32],
        DataType::Int64,
        |a: &[ArrayRef]| {
            let d = dates(&a[0])?;
            let mut out = Int64Builder::with_capacity(d.len());
            for i in 0..d.len() {
                let day = from_date32(d.value(i));
                out.append_option(
                    (!d.is_null(i))
                        .then(|| calendar::days_in_month(day.year(), day.month()).map(i64::from))
                        .flatten(),
                );
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        },
    )
}

/// `valley_limit_kwh(contract_kva, valley_overload, valley_hours, day_of_month)`.
fn valley_limit_kwh() -> ScalarUDF {
    DomainUdf::udf(
        "valley_limit_kwh",
        vec![
            dec_in(DEC_SCALE),
            dec_in(DEC_SCALE),
            dec_in(DEC_SCALE),
            DataType::Int64,
        ],
        dec_in(DEC_SCALE),
        |a: &[ArrayRef]| {
            let (c, o, h) = (decs(&a[0])?, decs(&a[1])?, decs(&a[2])?);
            let d = a[3]
                .as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()
                .ok_or_else(|| {
                    DataFusionError::Execution(
                        "valley_limit_kwh: day_of_month must be an integer".into(),
                    )
                })?;
            let mut out =
                Decimal128Builder::with_capacity(c.len()).with_data_type(dec_in(DEC_SCALE));
            for i in 0..c.len() {
                let v = (|| {
                    if c.is_null(i) || o.is_null(i) || h.is_null(i) || d.is_null(i) {
                        return None;
                    }
                    let day = u32::try_from(d.value(i)).ok()?;
                    let limit = tariff::valley_limit_kwh(
                        to_decimal(c.value(i), DEC_SCALE)?,
                        to_decimal(o.value(i), DEC_SCALE)?,
                        to_decimal(h.value(i), DEC_SCALE)?,
                        day,
                    );
                    from_decimal(limit, DEC_SCALE)
                })();
                out.append_option(v);
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        },
    )
}

/// `round_yuan(x)`: half-up to 0.01 元.
fn round_yuan() -> ScalarUDF {
    DomainUdf::udf(
        "round_yuan",
        vec![dec_in(MONEY_IN_SCALE)],
        DataType::Decimal128(38, 2),
        |a: &[ArrayRef]| {
            let x = decs(&a[0])?;
            let mut out = Decimal128Builder::with_capacity(x.len())
                .with_data_type(DataType::Decimal128(38, 2));
            for i in 0..x.len() {
                let v = (!x.is_null(i))
                    .then(|| {
                        to_decimal(x.value(i), MONEY_IN_SCALE)
                            .and_then(|d| from_decimal(money::round_yuan(d), 2))
                    })
                    .flatten();
                out.append_option(v);
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        },
    )
}

pub fn all() -> Vec<ScalarUDF> {
    vec![
        overlap_days(),
        suspended_days_in_year(),
        days_in_month(),
        valley_limit_kwh(),
        round_yuan(),
    ]
}
