//! The whitelist (白名单) and its governance, and the test clock: the
//! admin's routes besides archive and billing uploads.

use super::dto::{self, ClockSet, Items, WhitelistDto};
use super::{ApiError, ApiResult, App};
use crate::api::body::Body;
use crate::auth::Caller;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jicha_pipeline::whitelist::WhitelistEntry;
use jicha_pipeline::MonitorError;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClockRequest {
    /// How far ahead of the wall clock, e.g. `"25h"`.
    offset: String,
}

/// Moves the monitor's clock ahead (only with `test_clock`) and runs the
/// 督办 pass at once.
pub(super) async fn set_clock(
    State(m): App,
    Json(req): Json<ClockRequest>,
) -> ApiResult<Json<ClockSet>> {
    let offset = jicha_pipeline::time::parse_duration_ms(&req.offset)
        .map_err(|e| ApiError(MonitorError::BadRequest(format!("`offset`: {e}"))))?;
    m.set_clock_offset(offset);
    let changed = m.escalate_overdue().await?;
    Ok(Json(ClockSet {
        offset_ms: offset,
        now: dto::at(m.clock(), m.now()),
        escalated: changed,
    }))
}

#[derive(Deserialize)]
pub(super) struct WhitelistQuery {
    /// `history`: removed entries too.
    include: Option<String>,
}

pub(super) async fn list_whitelist(
    State(m): App,
    Query(q): Query<WhitelistQuery>,
) -> ApiResult<Json<Items<WhitelistDto>>> {
    let history = match q.include.as_deref() {
        None | Some("") => false,
        Some("history") => true,
        Some(other) => {
            return Err(ApiError(MonitorError::BadRequest(format!(
                "include={other}: the only choice is include=history"
            ))))
        }
    };
    let items = m.whitelist(history).await;
    let items = items
        .into_iter()
        .map(|e| WhitelistDto::new(e, m.clock()))
        .collect();
    Ok(Json(Items { items }))
}

/// With access control the posting admin approves the entry, and it must
/// name its requester, someone else.
pub(super) async fn add_whitelist(
    State(m): App,
    caller: Caller,
    Body(entry): Body<WhitelistEntry>,
) -> ApiResult<Response> {
    if caller.name.is_some() && entry.requester.is_none() {
        return Err(ApiError(MonitorError::BadRequest(
            "`requester`: name who asked for the exemption; you, the admin posting it, approve it"
                .into(),
        )));
    }
    let e = m.add_whitelist(entry, caller.name).await?;
    Ok((StatusCode::CREATED, Json(WhitelistDto::new(e, m.clock()))).into_response())
}

pub(super) async fn remove_whitelist(
    State(m): App,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<WhitelistDto>> {
    let e = m.remove_whitelist(&id, caller.name).await?;
    Ok(Json(WhitelistDto::new(e, m.clock())))
}
