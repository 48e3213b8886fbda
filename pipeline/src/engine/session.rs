//! The read-only DataFusion session a theme is planned in: the domain UDFs,
//! the reference tables of the archive in force, every event table empty
//! with all its columns, and the views over them.

use super::EngineLimits;
use crate::archive::Archive;
use crate::tables::{self, SourceTable, VIEWS};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::ViewTable;
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SessionState;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use std::sync::Arc;

/// The archive's tables, shared by every plan made while it is in force.
pub(super) struct RefTables {
    customers: RecordBatch,
    capacity_changes: RecordBatch,
}

impl RefTables {
    pub(super) fn of(a: &Archive) -> Result<RefTables, super::EngineError> {
        let err = |table: &'static str| {
            move |e: datafusion::arrow::error::ArrowError| super::EngineError::Table {
                table,
                message: e.to_string(),
            }
        };
        Ok(RefTables {
            customers: tables::customers(a).map_err(err("customers"))?,
            capacity_changes: tables::capacity_changes(a).map_err(err("capacity_changes"))?,
        })
    }
}

/// Themes only read: no DDL, DML or session statements.
pub(super) fn sql_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// A fresh session over `refs`, empty event tables and the views.
pub(super) async fn planning_state(
    refs: &RefTables,
    limits: &EngineLimits,
) -> Result<SessionState, DataFusionError> {
    let mut config = SessionConfig::new()
        .with_target_partitions(1)
        .with_information_schema(false);
    // `1.2` in a theme is the decimal 1.2, not a binary float.
    config.options_mut().sql_parser.parse_float_as_decimal = true;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory_bytes, 1.0)
        .build_arc()?;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    for f in crate::udf::all() {
        ctx.register_udf(f);
    }
    ctx.register_batch("customers", refs.customers.clone())?;
    ctx.register_batch("capacity_changes", refs.capacity_changes.clone())?;
    for table in SourceTable::ALL {
        ctx.register_batch(table.name(), table.empty(&|_| true)?)?;
    }
    for (name, sql) in VIEWS {
        let plan = ctx.state().create_logical_plan(sql).await?;
        sql_options().verify_plan(&plan)?;
        ctx.register_table(*name, Arc::new(ViewTable::new(plan, Some(sql.to_string()))))?;
    }
    Ok(ctx.state())
}
