//! Runs theme SQL on DataFusion. A theme is planned once: its SQL is parsed,
//! planned and optimized against an empty source table in a read-only
//! session holding the reference tables (shared, rebuilt when the archive
//! changes) and the domain UDFs. Each evaluation then swaps one source
//! batch, already placed in windows, into that plan and runs it. Output
//! rows become [`Hit`]s.

use crate::archive::Archive;
use crate::ids::CustomerId;
use crate::tables;
use crate::theme::{SourceTable, ThemeDef};
use crate::time::{BusinessClock, EpochMs};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::{provider_as_source, MemTable};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SessionState, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::collect;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// One theme finding for one customer and window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub theme: String,
    pub customer_id: CustomerId,
    pub window_start: EpochMs,
    pub window_end: EpochMs,
    pub severity: Option<String>,
    pub estimated_loss_yuan: Option<Decimal>,
    pub evidence: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("theme {theme}: {message}")]
    Plan { theme: String, message: String },
    #[error("theme {theme}: evaluation exceeded {secs} s; simplify the query or raise engine.eval_timeout")]
    Timeout { theme: String, secs: u64 },
    #[error("building the {table} table failed: {message}")]
    Table {
        table: &'static str,
        message: String,
    },
}

#[derive(Debug, Clone)]
pub struct EngineLimits {
    pub eval_timeout: Duration,
    pub memory_bytes: usize,
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self {
            eval_timeout: Duration::from_secs(30),
            memory_bytes: 2 << 30,
        }
    }
}

struct RefTables {
    customers: RecordBatch,
    capacity_changes: RecordBatch,
}

/// A theme's optimized logical plan and the session it was planned in.
/// Planning costs more than running a theme on a typical batch (a new
/// session registers every built-in function), so it is done once.
struct Prepared {
    sql: String,
    source_schema: SchemaRef,
    state: SessionState,
    task: Arc<TaskContext>,
    plan: LogicalPlan,
    /// The reference tables the plan reads.
    refs: Arc<RefTables>,
}

pub struct Engine {
    clock: BusinessClock,
    limits: EngineLimits,
    refs: RwLock<Arc<RefTables>>,
    /// By theme id. Cleared when the reference tables change, since the
    /// plans hold them.
    prepared: RwLock<HashMap<String, Arc<Prepared>>>,
}

fn plan_err(theme: &ThemeDef) -> impl Fn(datafusion::error::DataFusionError) -> EngineError + '_ {
    move |e| EngineError::Plan {
        theme: theme.id.clone(),
        message: e.to_string(),
    }
}

/// Themes only read: no DDL, DML or session statements.
fn sql_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

fn table_err(table: &'static str) -> impl Fn(datafusion::arrow::error::ArrowError) -> EngineError {
    move |e| EngineError::Table {
        table,
        message: e.to_string(),
    }
}

impl Engine {
    pub fn new(
        clock: BusinessClock,
        limits: EngineLimits,
        archive: &Archive,
    ) -> Result<Self, EngineError> {
        let refs = Self::build_refs(archive)?;
        Ok(Self {
            clock,
            limits,
            refs: RwLock::new(Arc::new(refs)),
            prepared: RwLock::default(),
        })
    }

    fn build_refs(a: &Archive) -> Result<RefTables, EngineError> {
        Ok(RefTables {
            customers: tables::customers(a).map_err(table_err("customers"))?,
            capacity_changes: tables::capacity_changes(a).map_err(table_err("capacity_changes"))?,
        })
    }

    /// Rebuilds the reference tables after an archive change.
    pub fn set_archive(&self, a: &Archive) -> Result<(), EngineError> {
        let refs = Arc::new(Self::build_refs(a)?);
        if let Ok(mut slot) = self.refs.write() {
            *slot = refs;
        }
        if let Ok(mut plans) = self.prepared.write() {
            plans.clear();
        }
        Ok(())
    }

    pub fn clock(&self) -> &BusinessClock {
        &self.clock
    }

    /// A fresh session over the reference tables `refs` and the domain
    /// UDFs, with an empty table of `source` shape registered under the
    /// theme's table name.
    fn session(
        &self,
        theme: &ThemeDef,
        refs: &RefTables,
        source: SchemaRef,
    ) -> Result<SessionContext, EngineError> {
        let plan_err = plan_err(theme);
        let mut config = SessionConfig::new()
            .with_target_partitions(1)
            .with_information_schema(false);
        // `1.2` in a theme is the decimal 1.2, not a binary float.
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.limits.memory_bytes, 1.0)
            .build_arc()
            .map_err(&plan_err)?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        for f in crate::udf::all() {
            ctx.register_udf(f);
        }
        ctx.register_batch("customers", refs.customers.clone())
            .map_err(&plan_err)?;
        ctx.register_batch("capacity_changes", refs.capacity_changes.clone())
            .map_err(&plan_err)?;
        ctx.register_batch(theme.table.name(), RecordBatch::new_empty(source))
            .map_err(&plan_err)?;
        Ok(ctx)
    }

    /// The theme's optimized plan for sources shaped like `source`: taken
    /// from the cache, or planned now (against an empty table of that
    /// shape) and cached.
    async fn prepared(
        &self,
        theme: &ThemeDef,
        source: &RecordBatch,
    ) -> Result<Arc<Prepared>, EngineError> {
        let refs = self
            .refs
            .read()
            .map(|r| Arc::clone(&r))
            .map_err(|_| EngineError::Plan {
                theme: theme.id.clone(),
                message: "reference tables are unavailable (a writer panicked); restart jicha"
                    .into(),
            })?;
        // A plan made over tables an archive change has since replaced
        // (planned while the change landed) is not used.
        let cached = self
            .prepared
            .read()
            .ok()
            .and_then(|c| c.get(&theme.id).cloned())
            .filter(|p| {
                p.sql == theme.sql
                    && p.source_schema == source.schema()
                    && Arc::ptr_eq(&p.refs, &refs)
            });
        if let Some(p) = cached {
            return Ok(p);
        }
        let plan_err = plan_err(theme);
        let state = self.session(theme, &refs, source.schema())?.state();
        let logical = state
            .create_logical_plan(&theme.sql)
            .await
            .map_err(&plan_err)?;
        sql_options().verify_plan(&logical).map_err(&plan_err)?;
        check_output(theme, logical.schema().as_arrow())?;
        let plan = state.optimize(&logical).map_err(&plan_err)?;
        let p = Arc::new(Prepared {
            sql: theme.sql.clone(),
            source_schema: source.schema(),
            task: Arc::new(TaskContext::from(&state)),
            state,
            plan,
            refs,
        });
        if let Ok(mut c) = self.prepared.write() {
            c.insert(theme.id.clone(), p.clone());
        }
        Ok(p)
    }

    /// Plans the theme against empty tables: the check a new theme must pass.
    pub async fn validate(&self, theme: &ThemeDef) -> Result<(), EngineError> {
        let hits = self.run(theme, empty_source(theme)?).await?;
        debug_assert!(hits.is_empty());
        Ok(())
    }

    pub async fn run(
        &self,
        theme: &ThemeDef,
        source: RecordBatch,
    ) -> Result<Vec<Hit>, EngineError> {
        let plan_err = plan_err(theme);
        let work = async {
            let prepared = self.prepared(theme, &source).await?;
            let table = theme.table.name();
            let memory =
                MemTable::try_new(source.schema(), vec![vec![source]]).map_err(&plan_err)?;
            let memory = provider_as_source(Arc::new(memory));
            // The cached plan with this batch in place of the planning-time empty table.
            let plan = prepared
                .plan
                .clone()
                .transform_up(|node| match node {
                    LogicalPlan::TableScan(mut scan) if scan.table_name.table() == table => {
                        scan.source = memory.clone();
                        Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
                    }
                    other => Ok(Transformed::no(other)),
                })
                .map_err(&plan_err)?
                .data;
            // Already optimized: straight to the physical planner.
            let physical = prepared
                .state
                .query_planner()
                .create_physical_plan(&plan, &prepared.state)
                .await
                .map_err(&plan_err)?;
            collect(physical, prepared.task.clone())
                .await
                .map_err(&plan_err)
        };
        let batches = tokio::time::timeout(self.limits.eval_timeout, work)
            .await
            .map_err(|_| EngineError::Timeout {
                theme: theme.id.clone(),
                secs: self.limits.eval_timeout.as_secs(),
            })??;
        let mut hits = Vec::new();
        for b in &batches {
            self.hits_of(theme, b, &mut hits)
                .map_err(|message| EngineError::Plan {
                    theme: theme.id.clone(),
                    message,
                })?;
        }
        Ok(hits)
    }

    fn hits_of(&self, theme: &ThemeDef, b: &RecordBatch, out: &mut Vec<Hit>) -> Result<(), String> {
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
                    evidence.insert(f.name().clone(), json_value(&self.clock, b.column(i), row));
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
            out.push(Hit {
                theme: theme.id.clone(),
                customer_id: CustomerId::new(cust.value(row)),
                window_start: self.clock.to_utc(ws.value(row)),
                window_end: self.clock.to_utc(we.value(row)),
                severity: text(&sev),
                estimated_loss_yuan: loss,
                evidence,
            });
        }
        Ok(())
    }
}

fn check_output(
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

/// The theme's source table with no rows and the columns a real evaluation
/// gives it, so validation fails for a column the projection would miss.
fn empty_source(theme: &ThemeDef) -> Result<RecordBatch, EngineError> {
    let id = |t: i64| t;
    let reads = |c: &str| theme.reads(c);
    let table = theme.table;
    let r = match table {
        SourceTable::LoadPoint => tables::load_point(&[], id, &reads),
        SourceTable::MeterDay => tables::meter_day(&[], &reads),
        SourceTable::MeterEvent => tables::meter_event(&[], id, &reads),
        SourceTable::Bill => tables::bill(&crate::billing::BillingPeriod {
            period: String::new(),
            first_day: chrono::NaiveDate::MIN,
            next_first_day: chrono::NaiveDate::MIN,
            bills: Vec::new(),
        }),
    };
    // The bill table carries its window columns already.
    let r = match table {
        SourceTable::Bill => r,
        _ => r.and_then(|rows| tables::in_windows(&rows, &[])),
    };
    r.map_err(table_err(table.name()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MeterId;
    use crate::records::LoadPoint;
    use crate::tables::{Placed, Run};

    const KVA: &str = "-- theme: kva
-- title: test
SELECT p.window.start AS window_start, p.window.end AS window_end, p.customer_id, c.contract_kva AS kva
FROM (
    SELECT tumble(interval '15 minutes') AS window, customer_id
    FROM load_point GROUP BY window, customer_id
) p
JOIN customers c ON c.customer_id = p.customer_id";

    fn archive(kva: u32) -> Archive {
        let doc = format!(
            r#"{{"customers":[{{"customer_id":"C1","org_code":"41/4107/410727","usage_category":"large_industry",
            "tariff_kind":"two_part","contract_kva":{kva},"meters":[{{"meter_id":"M1","multiplier":1}}]}}]}}"#
        );
        let mut a = Archive::default();
        for c in Archive::parse_document(&doc).unwrap() {
            a.upsert(c);
        }
        a
    }

    fn one_point(theme: &ThemeDef) -> RecordBatch {
        let point = LoadPoint::power_only(MeterId::new("M1"), 0, Decimal::from(5));
        let placed = [Placed {
            row: &point,
            customer_id: "C1",
        }];
        let rows = tables::load_point(&placed, |t| t, &|c| theme.reads(c)).unwrap();
        let run = Run {
            start: 0,
            len: 1,
            window: Some((0, 900_000)),
        };
        tables::in_windows(&rows, &[run]).unwrap()
    }

    /// Plans are kept between evaluations, and they hold the reference
    /// tables: an archive change must reach the next evaluation.
    #[test]
    fn a_kept_plan_sees_the_archive_as_changed() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let theme = ThemeDef::parse(KVA, &Default::default()).unwrap();
            let engine = Engine::new(
                BusinessClock::default(),
                EngineLimits::default(),
                &archive(400),
            )
            .unwrap();
            let kva = |hits: Vec<Hit>| hits[0].evidence.get("kva").cloned();
            let first = engine.run(&theme, one_point(&theme)).await.unwrap();
            assert_eq!(kva(first), Some(serde_json::json!(400)));
            let again = engine.run(&theme, one_point(&theme)).await.unwrap();
            assert_eq!(again.len(), 1, "a kept plan runs on the new batch");
            engine.set_archive(&archive(800)).unwrap();
            let after = engine.run(&theme, one_point(&theme)).await.unwrap();
            assert_eq!(kva(after), Some(serde_json::json!(800)));
        });
    }
}
