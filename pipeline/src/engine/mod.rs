//! Runs theme SQL on DataFusion. A theme is planned once: its syntax tree
//! is planned and optimized in a read-only session ([`session`]) holding the
//! reference tables (shared, rebuilt when the archive changes), every event
//! table empty, the views and the domain UDFs. The optimized plan says what
//! the theme reads ([`reads`]); each evaluation points the plan's scans at
//! one source batch, already placed in windows, and runs it. Output rows
//! become [`Hit`]s ([`output`]).

mod output;
mod reads;
mod session;

pub use output::Hit;
pub use reads::ReadSet;

use crate::archive::Archive;
use crate::tables::SourceTable;
use crate::theme::ThemeDef;
use crate::time::BusinessClock;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::{SessionState, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::collect;
use datafusion::sql::parser::Statement;
use session::RefTables;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

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

/// A theme the engine has planned: its definition and what its plan reads.
#[derive(Debug, Clone)]
pub struct Theme {
    pub def: ThemeDef,
    reads: Arc<ReadSet>,
}

impl Theme {
    pub fn table(&self) -> SourceTable {
        self.reads.table
    }

    /// Whether the plan reads `column` of its event table; columns it does
    /// not read are left out of the batches built for it.
    pub fn reads(&self, column: &str) -> bool {
        self.reads.reads(column)
    }

    pub fn is_billing(&self) -> bool {
        self.table() == SourceTable::Bill
    }
}

/// A theme's optimized logical plan and the session it was planned in.
/// Planning costs more than running a theme on a typical batch (a new
/// session registers every built-in function), so it is done once.
struct Prepared {
    sql: String,
    state: SessionState,
    task: Arc<TaskContext>,
    plan: LogicalPlan,
    reads: Arc<ReadSet>,
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

impl Engine {
    pub fn new(
        clock: BusinessClock,
        limits: EngineLimits,
        archive: &Archive,
    ) -> Result<Self, EngineError> {
        Ok(Self {
            clock,
            limits,
            refs: RwLock::new(Arc::new(RefTables::of(archive)?)),
            prepared: RwLock::default(),
        })
    }

    /// Rebuilds the reference tables after an archive change.
    pub fn set_archive(&self, a: &Archive) -> Result<(), EngineError> {
        let refs = Arc::new(RefTables::of(a)?);
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

    /// The theme's optimized plan: taken from the cache, or planned now
    /// and cached.
    async fn prepared(&self, def: &ThemeDef) -> Result<Arc<Prepared>, EngineError> {
        let refs = self
            .refs
            .read()
            .map(|r| Arc::clone(&r))
            .map_err(|_| EngineError::Plan {
                theme: def.id.clone(),
                message: "reference tables are unavailable (a writer panicked); restart jicha"
                    .into(),
            })?;
        // A plan made over tables an archive change has since replaced
        // (planned while the change landed) is not used.
        let cached = self
            .prepared
            .read()
            .ok()
            .and_then(|c| c.get(&def.id).cloned())
            .filter(|p| p.sql == def.sql && Arc::ptr_eq(&p.refs, &refs));
        if let Some(p) = cached {
            return Ok(p);
        }
        let plan_err = plan_err(def);
        let state = session::planning_state(&refs, &self.limits)
            .await
            .map_err(&plan_err)?;
        let statement = Statement::Statement(Box::new(def.statement.clone()));
        let logical = state
            .statement_to_plan(statement)
            .await
            .map_err(&plan_err)?;
        session::sql_options()
            .verify_plan(&logical)
            .map_err(&plan_err)?;
        output::check_output(def, logical.schema().as_arrow())?;
        let plan = state.optimize(&logical).map_err(&plan_err)?;
        let reads = ReadSet::of_plan(&plan).map_err(|message| EngineError::Plan {
            theme: def.id.clone(),
            message,
        })?;
        let p = Arc::new(Prepared {
            sql: def.sql.clone(),
            task: Arc::new(TaskContext::from(&state)),
            state,
            plan,
            reads: Arc::new(reads),
            refs,
        });
        if let Ok(mut c) = self.prepared.write() {
            c.insert(def.id.clone(), p.clone());
        }
        Ok(p)
    }

    /// Plans a theme and runs it on an empty batch built as evaluation
    /// builds them: the check a theme must pass before it is loaded.
    pub async fn check(&self, def: ThemeDef) -> Result<Theme, EngineError> {
        let reads = self.prepared(&def).await?.reads.clone();
        let theme = Theme { def, reads };
        let empty = theme
            .table()
            .empty(&|c| theme.reads(c))
            .map_err(|e| EngineError::Table {
                table: theme.table().name(),
                message: e.to_string(),
            })?;
        let hits = self.run(&theme, empty).await?;
        debug_assert!(hits.is_empty());
        Ok(theme)
    }

    pub async fn run(&self, theme: &Theme, source: RecordBatch) -> Result<Vec<Hit>, EngineError> {
        let def = &theme.def;
        let plan_err = plan_err(def);
        let work = async {
            let prepared = self.prepared(def).await?;
            let plan = reads::with_batch(&prepared.plan, prepared.reads.table, source)
                .map_err(&plan_err)?;
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
                theme: def.id.clone(),
                secs: self.limits.eval_timeout.as_secs(),
            })??;
        let mut hits = Vec::new();
        for b in &batches {
            output::hits_of(&self.clock, def, b, &mut hits).map_err(|message| {
                EngineError::Plan {
                    theme: def.id.clone(),
                    message,
                }
            })?;
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests;
