//! What a theme reads, taken from its optimized plan: the one event table
//! its scans name (views are inlined by then) and the columns the
//! optimizer's projection keeps. And the reverse step at run time: the
//! plan's scans of that table pointed at a batch holding just those columns.

use crate::tables::SourceTable;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::datasource::{provider_as_source, MemTable};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{LogicalPlan, TableScanBuilder};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The event table a plan scans and the columns it reads from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSet {
    pub table: SourceTable,
    pub columns: BTreeSet<String>,
}

impl ReadSet {
    pub fn reads(&self, column: &str) -> bool {
        self.columns.contains(column)
    }

    /// Reads the plan's scans of event tables; a theme scans exactly one.
    pub fn of_plan(plan: &LogicalPlan) -> Result<ReadSet, String> {
        let mut tables = BTreeSet::new();
        let mut columns = BTreeSet::new();
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                if let Some(t) = SourceTable::named(scan.table_name.table()) {
                    tables.insert(t);
                    columns.extend(
                        scan.projected_schema
                            .fields()
                            .iter()
                            .map(|f| f.name().clone()),
                    );
                    for f in &scan.filters {
                        columns.extend(f.column_refs().into_iter().map(|c| c.name.clone()));
                    }
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .map_err(|e| e.to_string())?;
        let mut tables = tables.into_iter();
        match (tables.next(), tables.len()) {
            (Some(table), 0) => Ok(ReadSet { table, columns }),
            (None, _) => Err(format!(
                "reads no event table: use one of {} (or a view over one, such as customer_day)",
                names(SourceTable::ALL)
            )),
            (Some(first), _) => Err(format!(
                "reads {} event tables ({}); a theme reads exactly one (join reference tables such as customers freely)",
                tables.len() + 1,
                names(std::iter::once(first).chain(tables))
            )),
        }
    }
}

fn names(tables: impl IntoIterator<Item = SourceTable>) -> String {
    tables
        .into_iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `plan` with every scan of `table` reading `batch` instead of the empty
/// table it was planned against. The batch holds the read columns (and
/// maybe more); each scan picks its columns by name, so its output, and
/// with it every node above, is exactly what was planned.
pub fn with_batch(
    plan: &LogicalPlan,
    table: SourceTable,
    batch: RecordBatch,
) -> Result<LogicalPlan, DataFusionError> {
    let schema = batch.schema();
    let source = provider_as_source(Arc::new(MemTable::try_new(
        schema.clone(),
        vec![vec![batch]],
    )?));
    let swapped = plan
        .clone()
        .transform_up_with_subqueries(|node| match node {
            LogicalPlan::TableScan(scan) if scan.table_name.table() == table.name() => {
                let projection = scan
                    .projected_schema
                    .fields()
                    .iter()
                    .map(|f| schema.index_of(f.name()))
                    .collect::<Result<Vec<_>, _>>()?;
                let new = TableScanBuilder::new(scan.table_name.clone(), Arc::clone(&source))
                    .with_projection(Some(projection))
                    .with_filters(scan.filters.clone())
                    .with_fetch(scan.fetch)
                    .build()?;
                if new.projected_schema != scan.projected_schema {
                    return Err(DataFusionError::Internal(format!(
                        "the {} batch is shaped unlike the table the theme was planned on",
                        table.name()
                    )));
                }
                Ok(Transformed::yes(LogicalPlan::TableScan(new)))
            }
            other => Ok(Transformed::no(other)),
        })?;
    Ok(swapped.data)
}
