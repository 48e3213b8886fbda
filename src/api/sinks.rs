//! `GET /api/v1/sinks` and `GET /api/v1/sinks/{name}/deadletters`: where
//! each push sink stands (progress, backlog, failures, dead letters, last
//! error) and the events it gave up on, within the caller's unit.

use super::dto::{at, Items};
use super::{ApiResult, App};
use crate::auth::Caller;
use axum::extract::{Path, Query, State};
use axum::Json;
use jicha_pipeline::outbox::{OutboxEvent, SinkDeadLetter, SinkReport};
use jicha_pipeline::time::BusinessClock;
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
pub struct SinkDto {
    pub name: String,
    pub kind: String,
    /// The last event id the sink has passed.
    pub delivered_upto: u64,
    /// Committed events it has not passed yet.
    pub backlog: u64,
    /// Failed attempts, each retry counted.
    pub failures: u64,
    pub dead_letters: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub last_delivered_at: Option<String>,
}

impl SinkDto {
    fn new(r: SinkReport, clock: &BusinessClock) -> SinkDto {
        SinkDto {
            backlog: r.backlog(),
            delivered_upto: r.delivered.0,
            kind: r.status.kind,
            failures: r.status.failures,
            dead_letters: r.status.dead_letters,
            last_error: r.status.last_error,
            last_error_at: r.status.last_error_at.map(|t| at(clock, t)),
            last_delivered_at: r.status.last_delivered_at.map(|t| at(clock, t)),
            name: r.name,
        }
    }
}

#[derive(Serialize)]
pub struct SinkDeadLetterDto {
    /// The event as the sink would have had it.
    pub event: OutboxEvent,
    pub error: String,
    pub attempts: u32,
    pub at: String,
}

impl SinkDeadLetterDto {
    fn new(d: SinkDeadLetter, clock: &BusinessClock) -> SinkDeadLetterDto {
        SinkDeadLetterDto {
            at: at(clock, d.at),
            event: d.event,
            error: d.error,
            attempts: d.attempts,
        }
    }
}

pub async fn list(State(m): App) -> ApiResult<Json<Items<SinkDto>>> {
    let items = m
        .sinks()
        .await?
        .into_iter()
        .map(|r| SinkDto::new(r, m.clock()))
        .collect();
    Ok(Json(Items { items }))
}

#[derive(Deserialize)]
pub struct LimitQuery {
    limit: Option<usize>,
}

/// Newest first; only events of orders within the caller's unit.
pub async fn dead_letters(
    State(m): App,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<LimitQuery>,
) -> ApiResult<Json<Items<SinkDeadLetterDto>>> {
    let limit = q.limit.unwrap_or(100).min(10_000);
    let items = m
        .sink_dead_letters(&name, limit, &caller.scope)
        .await?
        .into_iter()
        .map(|d| SinkDeadLetterDto::new(d, m.clock()))
        .collect();
    Ok(Json(Items { items }))
}
