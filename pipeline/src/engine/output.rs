//! Output rows of a theme → [`Hit`]s: the contract columns are read,
//! every other column becomes evidence.

use super::EngineError;
use crate::ids::CustomerId;
use crate::theme::{Severity, ThemeDef};
use crate::time::{BusinessClock, EpochMs};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use rust_decimal::Decimal;
use serde::Serialize;

/// One theme finding for one customer and window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub theme: String,
    pub customer_id: CustomerId,
    pub window_start: EpochMs,
    pub window_end: EpochMs,
    /// From the `severity` column; `None`: the theme's.
    pub severity: Option<Severity>,
    pub estimated_loss_yuan: Option<Decimal>,
    pub evidence: serde_json::Map<String, serde_json::Value>,
}

pub(super) fn hits_of(
    clock: &BusinessClock,
    theme: &ThemeDef,
    b: &RecordBatch,
    out: &mut Vec<Hit>,
) -> Result<(), String> {
    let schema = b.schema();
    let col = |name: &str| schema.index_of(name).ok().map(|i| b.column(i).clone());
    let as_str = |a: ArrayRef| cast(&a, &DataType::Utf8).map_err(|e| e.to_string());
    let as_ts = |a: ArrayRef| {
        cast(&a, &DataType::Timestamp(TimeUnit::Millisecond, None)).map_err(|e| e.to_string())
    };
    let cust = as_str(col("customer_id").ok_or("no customer_id column")?)?;
    let ws = as_ts(col("window_start").ok_or("no window_start column")?)?;
    let we = as_ts(col("window_end").ok_or("no window_end column")?)?;
    let sev = col("severity").map(as_str).transpose()?;
    let loss = col("estimated_loss_yuan").map(as_str).transpose()?;
    let (cust, ws, we) = (
        cust.as_string::<i32>(),
        ws.as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>(),
        we.as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>(),
    );
    let reserved = [
        "customer_id",
        "window_start",
        "window_end",
        "severity",
        "estimated_loss_yuan",
    ];
    for row in 0..b.num_rows() {
        if cust.is_null(row) || ws.is_null(row) || we.is_null(row) {
            return Err("customer_id, window_start and window_end must not be NULL".into());
        }
        let mut evidence = serde_json::Map::new();
        for (i, f) in schema.fields().iter().enumerate() {
            if !reserved.contains(&f.name().as_str()) {
                evidence.insert(f.name().clone(), json_value(clock, b.column(i), row));
            }
        }
        let text = |a: &Option<ArrayRef>| {
            a.as_ref().and_then(|a| {
                let s = a.as_string::<i32>();
                (!s.is_null(row)).then(|| s.value(row).to_string())
            })
        };
        let loss = match text(&loss) {
            Some(t) => Some(jicha_domain::money::round_yuan(
                jicha_domain::money::parse_decimal(&t)
                    .map_err(|e| format!("estimated_loss_yuan: {e}"))?,
            )),
            None => None,
        };
        // A value outside the set is kept as evidence, and the theme's
        // severity applies: the finding is not lost over a word.
        let severity = text(&sev).and_then(|s| {
            Severity::parse(&s).or_else(|| {
                evidence.insert("severity_unrecognised".into(), s.into());
                None
            })
        });
        out.push(Hit {
            theme: theme.id.clone(),
            customer_id: CustomerId::new(cust.value(row)),
            window_start: clock.to_utc(ws.value(row)),
            window_end: clock.to_utc(we.value(row)),
            severity,
            estimated_loss_yuan: loss,
            evidence,
        });
    }
    Ok(())
}

pub(super) fn check_output(
    theme: &ThemeDef,
    schema: &datafusion::arrow::datatypes::Schema,
) -> Result<(), EngineError> {
    for needed in ["customer_id", "window_start", "window_end"] {
        if schema.index_of(needed).is_err() {
            return Err(EngineError::Plan {
                theme: theme.id.clone(),
                message: format!(
                    "the query must output a `{needed}` column (every theme outputs customer_id, window_start, window_end; other columns become evidence)"
                ),
            });
        }
    }
    Ok(())
}

/// One cell as evidence JSON. Decimals become numbers (evidence is for
/// reading; money that counts travels as `estimated_loss_yuan`).
fn json_value(clock: &BusinessClock, a: &ArrayRef, row: usize) -> serde_json::Value {
    use serde_json::Value;
    if a.is_null(row) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Boolean => Value::Bool(a.as_boolean().value(row)),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => match cast(&a.slice(row, 1), &DataType::Int64) {
            Ok(v) => Value::from(
                v.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                    .value(0),
            ),
            Err(_) => Value::Null,
        },
        DataType::Decimal128(_, scale) => {
            let v = a
                .as_primitive::<datafusion::arrow::datatypes::Decimal128Type>()
                .value(row);
            match Decimal::try_from_i128_with_scale(v, *scale as u32) {
                Ok(d) => d
                    .normalize()
                    .to_string()
                    .parse::<serde_json::Number>()
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
                Err(_) => Value::Null,
            }
        }
        DataType::Timestamp(_, _) => match cast(
            &a.slice(row, 1),
            &DataType::Timestamp(TimeUnit::Millisecond, None),
        ) {
            Ok(v) => Value::String(
                clock.format(
                    clock.to_utc(
                        v.as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>()
                            .value(0),
                    ),
                ),
            ),
            Err(_) => Value::Null,
        },
        DataType::List(_) | DataType::LargeList(_) => {
            let list = match cast(
                &a.slice(row, 1),
                &DataType::new_list(list_inner(a.data_type()), true),
            ) {
                Ok(l) => l,
                Err(_) => return Value::Null,
            };
            let inner = list.as_list::<i32>().value(0);
            Value::Array(
                (0..inner.len())
                    .map(|i| json_value(clock, &inner, i))
                    .collect(),
            )
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            match cast(&a.slice(row, 1), &DataType::Float64) {
                Ok(v) => serde_json::Number::from_f64(
                    v.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                        .value(0),
                )
                .map(Value::Number)
                .unwrap_or(Value::Null),
                Err(_) => Value::Null,
            }
        }
        _ => match cast(&a.slice(row, 1), &DataType::Utf8) {
            Ok(v) => Value::String(v.as_string::<i32>().value(0).to_string()),
            Err(_) => Value::Null,
        },
    }
}

fn list_inner(t: &DataType) -> DataType {
    match t {
        DataType::List(f) | DataType::LargeList(f) => f.data_type().clone(),
        _ => DataType::Null,
    }
}
