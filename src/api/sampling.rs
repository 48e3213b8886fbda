//! 抽检 routes: draw a unit's archived orders of a month, list and read the
//! draws, record a drawn order's verdict. Auditors and admins only.

use super::dto::{at, Items, WorkOrderDto};
use super::{actor_of, ApiResult, App};
use crate::api::body::{Body, Format};
use crate::auth::Caller;
use axum::extract::{Path, State};
use axum::Json;
use jicha_pipeline::documents::sampling::{DrawRequest, VerdictRequest};
use jicha_pipeline::ids::CustomerId;
use jicha_pipeline::runtime::SampleBatch;
use jicha_pipeline::time::BusinessClock;
use jicha_pipeline::workorder::sampling::Sample;
use jicha_pipeline::workorder::WorkOrder;
use jicha_pipeline::MonitorError;
use serde::Serialize;

impl Format for DrawRequest {
    fn parse(text: &str) -> Result<Self, String> {
        DrawRequest::parse(text).map_err(|e| e.to_string())
    }
}

impl Format for VerdictRequest {
    fn parse(text: &str) -> Result<Self, String> {
        VerdictRequest::parse(text).map_err(|e| e.to_string())
    }
}

/// A drawn order's verdict, as its work order shows it.
#[derive(Serialize)]
pub struct SampleDto {
    batch: String,
    /// `pass`, `fail`, or none yet.
    result: Option<&'static str>,
    reason: Option<String>,
    judged_by: Option<String>,
    judged_at: Option<String>,
}

impl SampleDto {
    pub fn new(s: &Sample, clock: &BusinessClock) -> Self {
        let v = s.verdict.as_ref();
        SampleDto {
            batch: s.batch.id.clone(),
            result: v.map(|v| if v.passed { "pass" } else { "fail" }),
            reason: v.and_then(|v| v.reason.clone()),
            judged_by: v.and_then(|v| v.by.clone()),
            judged_at: v.map(|v| at(clock, v.at)),
        }
    }
}

#[derive(Serialize)]
pub struct SampledOrderDto {
    workorder_id: String,
    theme: String,
    customer_id: CustomerId,
    handling_unit: String,
    archived_at: Option<String>,
    #[serde(flatten)]
    sample: SampleDto,
}

#[derive(Serialize)]
pub struct SampleBatchDto {
    id: String,
    org: String,
    month: String,
    seed: u64,
    share: String,
    /// Orders drawn, of how many archived that month.
    size: usize,
    candidates: usize,
    drawn_at: String,
    drawn_by: Option<String>,
    judged: usize,
    failed: usize,
    orders: Vec<SampledOrderDto>,
}

impl SampleBatchDto {
    fn new(b: SampleBatch, clock: &BusinessClock) -> Self {
        let order = |w: &WorkOrder| {
            w.sampling.as_ref().map(|s| SampledOrderDto {
                workorder_id: w.id.clone(),
                theme: w.theme.clone(),
                customer_id: w.customer_id.clone(),
                handling_unit: w.handling_unit(),
                archived_at: w.archived_at().map(|t| at(clock, t)),
                sample: SampleDto::new(s, clock),
            })
        };
        let orders: Vec<SampledOrderDto> = b.orders.iter().filter_map(order).collect();
        let judged = orders.iter().filter(|o| o.sample.result.is_some()).count();
        let failed = orders
            .iter()
            .filter(|o| o.sample.result == Some("fail"))
            .count();
        let batch = b.batch;
        SampleBatchDto {
            id: batch.id,
            org: batch.org,
            month: batch.month,
            seed: batch.seed,
            share: batch.share.to_string(),
            size: batch.size,
            candidates: batch.candidates,
            drawn_at: at(clock, batch.drawn_at),
            drawn_by: batch.drawn_by,
            judged,
            failed,
            orders,
        }
    }
}

pub(super) async fn draw(
    State(m): App,
    caller: Caller,
    Body(req): Body<DrawRequest>,
) -> ApiResult<Json<SampleBatchDto>> {
    let b = m.draw_sample(req, &caller.scope, caller.name).await?;
    Ok(Json(SampleBatchDto::new(b, m.clock())))
}

pub(super) async fn list(State(m): App, caller: Caller) -> Json<Items<SampleBatchDto>> {
    let items = m.sample_batches(&caller.scope).await;
    let items = items
        .into_iter()
        .map(|b| SampleBatchDto::new(b, m.clock()))
        .collect();
    Json(Items { items })
}

pub(super) async fn get_one(
    State(m): App,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SampleBatchDto>> {
    match m.sample_batch(&id, &caller.scope).await {
        Some(b) => Ok(Json(SampleBatchDto::new(b, m.clock()))),
        None => Err(MonitorError::NotFound(format!("no sample {id}")).into()),
    }
}

pub(super) async fn judge(
    State(m): App,
    caller: Caller,
    Path(id): Path<String>,
    Body(mut req): Body<VerdictRequest>,
) -> ApiResult<Json<WorkOrderDto>> {
    let actor = actor_of(&caller, req.actor.take());
    let w = m.judge_sample(&id, req, &caller.scope, actor).await?;
    Ok(Json(WorkOrderDto::new(w, m.clock(), true)))
}
