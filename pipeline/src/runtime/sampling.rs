//! 抽检 through the API: draw a unit's archived orders of one month, list
//! the draws, record each drawn order's verdict. The rule (size, draw,
//! verdict) is `workorder::sampling`; the draw is kept on the orders.

use super::{Monitor, MonitorError};
use crate::documents::sampling::{DrawRequest, VerdictRequest};
use crate::org::{covers, Scope};
use crate::workorder::sampling::{self, Batch, SamplingRules};
use crate::workorder::{Actor, LifecycleError, Status, WorkOrder};
use std::collections::BTreeMap;

/// A draw and its orders (each with its verdict, once given).
#[derive(Debug, Clone)]
pub struct SampleBatch {
    pub batch: Batch,
    pub orders: Vec<WorkOrder>,
}

fn conflict(e: LifecycleError) -> MonitorError {
    match e {
        LifecycleError::BadRequest(m) => MonitorError::BadRequest(m),
        e => MonitorError::Conflict(e.to_string()),
    }
}

impl Monitor {
    /// Draws `req.share` (or the configured share) of the orders of
    /// `req.org`'s subtree archived in `req.month`. The same request again
    /// answers the batch already drawn; an order is in one batch at most.
    pub async fn draw_sample(
        &self,
        req: DrawRequest,
        scope: &Scope,
        by: Option<String>,
    ) -> Result<SampleBatch, MonitorError> {
        if !scope.covers(&req.org) {
            return Err(MonitorError::NotFound(format!(
                "no unit {} within your unit",
                req.org
            )));
        }
        let rules = SamplingRules {
            share: req.share.unwrap_or(self.config.sampling.share),
            ..self.config.sampling
        };
        let month = req.month.to_string();
        let id = sampling::batch_id(&req.org, &month, req.seed);
        let mut core = self.core.lock().await;
        if let Some(found) = batches(core.book.iter(), scope).remove(&id) {
            if found.batch.share != rules.share {
                return Err(MonitorError::Conflict(format!(
                    "sample {id} was drawn with share {}; draw another share with another seed",
                    found.batch.share
                )));
            }
            return Ok(found);
        }
        let clock = self.clock();
        let candidates: Vec<String> = core
            .book
            .iter()
            .filter(|w| {
                w.status == Status::Archived
                    && scope.covers(&w.org_code)
                    && covers(&req.org, &w.handling_unit())
                    && w.archived_at()
                        .is_some_and(|t| req.month.contains(clock, t))
            })
            .map(|w| w.id.clone())
            .collect();
        let drawn = sampling::draw(&candidates, rules.size(candidates.len()), req.seed);
        if let Some(taken) = drawn.iter().find_map(|i| {
            let s = core.book.get(i)?.sampling.as_ref()?;
            Some((i, s.batch.id.clone()))
        }) {
            return Err(MonitorError::Conflict(format!(
                "work order {} was already drawn in sample {}; an order is sampled once",
                taken.0, taken.1
            )));
        }
        let now = self.now();
        let batch = Batch {
            id,
            org: req.org,
            month,
            seed: req.seed,
            share: rules.share,
            size: drawn.len(),
            candidates: candidates.len(),
            drawn_at: now,
            drawn_by: by,
        };
        let mut orders = Vec::with_capacity(drawn.len());
        for i in &drawn {
            if let Some(w) = core.book.update(i, |w| {
                sampling::mark_drawn(w, &batch, now);
                w.clone()
            }) {
                orders.push(w);
            }
        }
        if !orders.is_empty() {
            self.flush(&mut core).await?;
        }
        Ok(SampleBatch { batch, orders })
    }

    /// The draws the caller may see, newest month first.
    pub async fn sample_batches(&self, scope: &Scope) -> Vec<SampleBatch> {
        let core = self.core.lock().await;
        let mut all: Vec<SampleBatch> = batches(core.book.iter(), scope).into_values().collect();
        all.sort_by(|a, b| (&b.batch.month, &a.batch.id).cmp(&(&a.batch.month, &b.batch.id)));
        all
    }

    pub async fn sample_batch(&self, id: &str, scope: &Scope) -> Option<SampleBatch> {
        let core = self.core.lock().await;
        batches(core.book.iter(), scope).remove(id)
    }

    /// Records the verdict on one drawn order of batch `id`.
    pub async fn judge_sample(
        &self,
        id: &str,
        req: VerdictRequest,
        scope: &Scope,
        actor: Actor,
    ) -> Result<WorkOrder, MonitorError> {
        let mut core = self.core.lock().await;
        let now = self.now();
        let wo_id = req.workorder_id;
        if !core
            .book
            .get(&wo_id)
            .is_some_and(|w| scope.covers(&w.org_code))
        {
            return Err(MonitorError::NotFound(format!("no work order {wo_id}")));
        }
        let wo = core
            .book
            .update(&wo_id, |w| {
                sampling::judge(w, id, req.passed, req.reason, actor, now).map(|_| w.clone())
            })
            .ok_or_else(|| MonitorError::NotFound(format!("no work order {wo_id}")))?
            .map_err(conflict)?;
        self.flush(&mut core).await?;
        Ok(wo)
    }
}

/// The batches of the orders the caller sees, by id. A batch is shown with
/// the drawn orders the caller may see.
fn batches<'a>(
    orders: impl Iterator<Item = &'a WorkOrder>,
    scope: &Scope,
) -> BTreeMap<String, SampleBatch> {
    let mut out: BTreeMap<String, SampleBatch> = BTreeMap::new();
    for w in orders.filter(|w| scope.covers(&w.org_code)) {
        let Some(s) = &w.sampling else { continue };
        out.entry(s.batch.id.clone())
            .or_insert_with(|| SampleBatch {
                batch: s.batch.clone(),
                orders: Vec::new(),
            })
            .orders
            .push(w.clone());
    }
    out
}
