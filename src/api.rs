//! The HTTP API of interfaces.md §3–§6, plus dead letters, suppressed
//! alerts, watermarks and the wallboard.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use jicha_pipeline::monitor::WorkOrderQuery;
use jicha_pipeline::{Monitor, MonitorError};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

type App = State<Arc<Monitor>>;

/// Archive and billing uploads can be large (a province's bills).
const MAX_UPLOAD_BYTES: usize = 1 << 30;

pub fn router(m: Arc<Monitor>) -> Router {
    Router::new()
        .route("/", get(wallboard))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/archive", post(post_archive))
        .route("/api/v1/billing", post(post_billing))
        .route("/api/v1/workorders", get(list_workorders))
        .route("/api/v1/workorders/{id}", get(get_workorder))
        .route("/api/v1/workorders/{id}/actions", post(act))
        .route("/api/v1/whitelist", get(list_whitelist).post(add_whitelist))
        .route("/api/v1/whitelist/{id}", delete(remove_whitelist))
        .route("/api/v1/themes", get(list_themes).post(add_theme))
        .route("/api/v1/themes/dry-run", post(dry_run_source))
        .route("/api/v1/themes/{id}/enable", post(enable_theme))
        .route("/api/v1/themes/{id}/disable", post(disable_theme))
        .route("/api/v1/themes/{id}/dry-run", post(dry_run_theme))
        .route("/api/v1/deadletters", get(dead_letters))
        .route("/api/v1/alerts/suppressed", get(suppressed))
        .route("/api/v1/watermarks", get(watermarks))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .with_state(m)
}

struct ApiError(MonitorError);

impl From<MonitorError> for ApiError {
    fn from(e: MonitorError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            MonitorError::BadRequest(_) => StatusCode::BAD_REQUEST,
            MonitorError::NotFound(_) => StatusCode::NOT_FOUND,
            MonitorError::Conflict(_) => StatusCode::CONFLICT,
            MonitorError::State(_) => StatusCode::SERVICE_UNAVAILABLE,
            MonitorError::Engine(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({"error": self.0.to_string()}))).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

fn text(body: &Bytes) -> Result<&str, ApiError> {
    std::str::from_utf8(body)
        .map_err(|e| ApiError(MonitorError::BadRequest(format!("body is not UTF-8: {e}"))))
}

async fn wallboard() -> Html<&'static str> {
    Html(include_str!("../dashboards/wallboard.html"))
}

async fn healthz(State(m): App) -> Response {
    match m.degraded() {
        None => (StatusCode::OK, Json(json!({"status": "ok"}))).into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "reason": why})),
        )
            .into_response(),
    }
}

async fn metrics(State(m): App) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.metrics.render(),
    )
        .into_response()
}

async fn post_archive(State(m): App, body: Bytes) -> ApiResult {
    let n = m.upsert_archive(text(&body)?).await?;
    Ok(Json(json!({"upserted": n})).into_response())
}

async fn post_billing(State(m): App, body: Bytes) -> ApiResult {
    Ok(Json(m.post_billing(text(&body)?).await?).into_response())
}

async fn list_workorders(State(m): App, Query(q): Query<WorkOrderQuery>) -> ApiResult {
    let (items, next) = m.list_workorders(&q).await;
    Ok(Json(json!({"items": items, "next_cursor": next})).into_response())
}

async fn get_workorder(State(m): App, Path(id): Path<String>) -> ApiResult {
    match m.workorder(&id).await {
        Some(w) => Ok(Json(w).into_response()),
        None => Err(MonitorError::NotFound(format!("no work order {id}")).into()),
    }
}

async fn act(State(m): App, Path(id): Path<String>, body: Bytes) -> ApiResult {
    Ok(Json(m.act(&id, text(&body)?).await?).into_response())
}

async fn list_whitelist(State(m): App) -> ApiResult {
    Ok(Json(json!({"items": m.whitelist().await})).into_response())
}

async fn add_whitelist(State(m): App, body: Bytes) -> ApiResult {
    let e = m.add_whitelist(text(&body)?).await?;
    Ok((StatusCode::CREATED, Json(e)).into_response())
}

async fn remove_whitelist(State(m): App, Path(id): Path<String>) -> ApiResult {
    Ok(Json(m.remove_whitelist(&id).await?).into_response())
}

async fn list_themes(State(m): App) -> ApiResult {
    Ok(Json(json!({"items": m.themes().await})).into_response())
}

/// The body is the theme's SQL file, or `{"sql": "…"}`.
fn theme_source(body: &Bytes) -> Result<String, ApiError> {
    let t = text(body)?;
    if t.trim_start().starts_with('{') {
        #[derive(Deserialize)]
        struct B {
            sql: String,
        }
        return serde_json::from_str::<B>(t).map(|b| b.sql).map_err(|e| {
            ApiError(MonitorError::BadRequest(format!(
                "expected {{\"sql\": \"…\"}} or the SQL file itself: {e}"
            )))
        });
    }
    Ok(t.to_string())
}

async fn add_theme(State(m): App, body: Bytes) -> ApiResult {
    let id = m.add_theme(&theme_source(&body)?).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))).into_response())
}

async fn enable_theme(State(m): App, Path(id): Path<String>) -> ApiResult {
    m.set_theme_enabled(&id, true).await?;
    Ok(Json(json!({"id": id, "enabled": true})).into_response())
}

async fn disable_theme(State(m): App, Path(id): Path<String>) -> ApiResult {
    m.set_theme_enabled(&id, false).await?;
    Ok(Json(json!({"id": id, "enabled": false})).into_response())
}

async fn dry_run_theme(State(m): App, Path(id): Path<String>) -> ApiResult {
    Ok(Json(json!({"hits": m.dry_run(&id).await?})).into_response())
}

async fn dry_run_source(State(m): App, body: Bytes) -> ApiResult {
    Ok(Json(json!({"hits": m.dry_run(&theme_source(&body)?).await?})).into_response())
}

#[derive(Deserialize)]
struct DeadLetterQuery {
    stream: Option<String>,
    reason: Option<String>,
    limit: Option<usize>,
}

async fn dead_letters(State(m): App, Query(q): Query<DeadLetterQuery>) -> ApiResult {
    let items = m
        .dead_letters(
            q.stream.as_deref(),
            q.reason.as_deref(),
            q.limit.unwrap_or(100).min(10_000),
        )
        .await;
    Ok(Json(json!({"items": items})).into_response())
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<usize>,
}

async fn suppressed(State(m): App, Query(q): Query<LimitQuery>) -> ApiResult {
    Ok(
        Json(json!({"items": m.suppressed(q.limit.unwrap_or(100).min(10_000)).await}))
            .into_response(),
    )
}

async fn watermarks(State(m): App) -> ApiResult {
    Ok(Json(m.watermarks().await).into_response())
}
