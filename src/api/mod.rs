//! The HTTP API of interfaces.md §3–§6, plus dead letters, suppressed
//! alerts, watermarks and the wallboard. Handlers take typed extractors
//! and answer with the response types of [`dto`]; the pipeline never sees
//! HTTP.

mod admin;
mod body;
mod dto;
mod live;
mod report_html;
mod reports;
mod sampling;
mod sinks;
mod wallboard_view;

use crate::auth::{authenticate, Auth, Caller, Right};
use admin::{add_whitelist, list_whitelist, remove_whitelist, set_clock};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use body::{ActionRequest, ArchiveDocument, Body, ThemeSource};
use dto::*;
use jicha_pipeline::billing::BillingPeriod;
use jicha_pipeline::decode::Reason;
use jicha_pipeline::runtime::WorkOrderQuery;
use jicha_pipeline::workorder::Actor;
use jicha_pipeline::{Monitor, MonitorError};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

type App = State<Arc<Monitor>>;

/// Body limits by route: archive and billing uploads carry a province's
/// customers or bills; everything else is a small JSON object or one SQL file.
const UPLOAD_LIMIT: usize = 1 << 30;
const THEME_LIMIT: usize = 1 << 20;
const SMALL_LIMIT: usize = 64 << 10;

/// A request still running after this answers 503; uploads and billing
/// evaluation of a large province take their own, longer limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// How the API is served.
pub struct Options {
    pub auth: Arc<Auth>,
    /// Serve the admin clock (`POST /api/v1/admin/clock`).
    pub test_clock: bool,
}

impl Options {
    /// No access control, no test clock: `jicha demo` and `jicha replay`.
    pub fn open() -> Options {
        Options {
            auth: Auth::off(),
            test_clock: false,
        }
    }
}

/// Every route, with the right its caller's role needs (`auth`), its body
/// limit and its time limit.
/// Live views end when `shutdown` flips, so a graceful shutdown is not
/// held up by open event streams.
pub fn router(m: Arc<Monitor>, options: Options, shutdown: watch::Receiver<bool>) -> Router {
    let hub = live::LiveHub::start(m.clone(), shutdown);
    let admin_uploads = Router::new()
        .route("/api/v1/archive", post(post_archive))
        .route("/api/v1/billing", post(post_billing))
        .route_layer(middleware::from_fn_with_state(Right::Admin, require))
        .layer(DefaultBodyLimit::max(UPLOAD_LIMIT))
        .layer(middleware::from_fn(|r, n| within(UPLOAD_TIMEOUT, r, n)));
    let theme_changes = Router::new()
        .route("/api/v1/themes", post(add_theme))
        .route("/api/v1/themes/dry-run", post(dry_run_source))
        .route("/api/v1/themes/{id}/dry-run", post(dry_run_theme))
        .route("/api/v1/themes/{id}/enable", post(enable_theme))
        .route("/api/v1/themes/{id}/disable", post(disable_theme))
        .route_layer(middleware::from_fn_with_state(Right::Themes, require))
        .layer(DefaultBodyLimit::max(THEME_LIMIT))
        .layer(middleware::from_fn(|r, n| within(REQUEST_TIMEOUT, r, n)));
    let mut admin = Router::new()
        .route("/api/v1/whitelist", post(add_whitelist))
        .route("/api/v1/whitelist/{id}", delete(remove_whitelist));
    if options.test_clock {
        admin = admin.route("/api/v1/admin/clock", post(set_clock));
    }
    let admin = admin.route_layer(middleware::from_fn_with_state(Right::Admin, require));
    let audits = Router::new()
        .route("/api/v1/sampling", post(sampling::draw).get(sampling::list))
        .route("/api/v1/sampling/{id}", get(sampling::get_one))
        .route("/api/v1/sampling/{id}/verdicts", post(sampling::judge))
        .route("/api/v1/reports/evaluation", get(reports::evaluation))
        .route_layer(middleware::from_fn_with_state(Right::Audit, require));
    let reads = Router::new()
        .route("/api/v1/workorders", get(list_workorders))
        .route("/api/v1/workorders/{id}", get(get_workorder))
        .route("/api/v1/whitelist", get(list_whitelist))
        .route("/api/v1/themes", get(list_themes))
        .route("/api/v1/deadletters", get(dead_letters))
        .route("/api/v1/alerts/suppressed", get(suppressed))
        .route("/api/v1/watermarks", get(watermarks))
        .route("/api/v1/sinks", get(sinks::list))
        .route("/api/v1/sinks/{name}/deadletters", get(sinks::dead_letters))
        .route("/api/v1/wallboard", get(live::summary))
        .route("/api/v1/wallboard/stream", get(live::stream))
        .layer(axum::Extension(hub))
        .route_layer(middleware::from_fn_with_state(Right::Read, require));
    // The right depends on the action: checked in the handler.
    let actions = Router::new().route("/api/v1/workorders/{id}/actions", post(act));
    // Open, or (`/metrics` unless `metrics_public`) any valid token: `authenticate`.
    let open = Router::new()
        .route("/", get(wallboard))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics));
    let small = admin
        .merge(audits)
        .merge(reads)
        .merge(actions)
        .merge(open)
        .layer(DefaultBodyLimit::max(SMALL_LIMIT))
        .layer(middleware::from_fn(|r, n| within(REQUEST_TIMEOUT, r, n)));
    admin_uploads
        .merge(theme_changes)
        .merge(small)
        .layer(middleware::from_fn_with_state(options.auth, authenticate))
        .with_state(m)
}

/// Refuses (403) a caller whose role lacks the route's right.
async fn require(State(right): State<Right>, caller: Caller, req: Request, next: Next) -> Response {
    match caller.require(right) {
        Ok(()) => next.run(req).await,
        Err(refused) => refused.into_response(),
    }
}

/// Answers 503 when the handler takes longer than `limit`. The handler's
/// work is dropped with it; anything it committed stays committed.
async fn within(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than {} s; retry later or with a smaller body",
                limit.as_secs()
            ),
        ),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorBody { error: message })).into_response()
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
        error(status, self.0.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

async fn wallboard() -> Html<&'static str> {
    Html(include_str!("../../dashboards/wallboard.html"))
}

async fn healthz(State(m): App) -> Response {
    match m.degraded() {
        None => Json(Health {
            status: "ok",
            reason: None,
        })
        .into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "degraded",
                reason: Some(why),
            }),
        )
            .into_response(),
    }
}

async fn metrics(State(m): App) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render_metrics().await,
    )
        .into_response()
}

async fn post_archive(
    State(m): App,
    Body(ArchiveDocument(customers)): Body<ArchiveDocument>,
) -> ApiResult<Json<Upserted>> {
    let upserted = m.upsert_archive(customers).await?;
    Ok(Json(Upserted { upserted }))
}

async fn post_billing(
    State(m): App,
    Body(period): Body<BillingPeriod>,
) -> ApiResult<Json<BillingDto>> {
    Ok(Json(m.post_billing(period).await?.into()))
}

async fn list_workorders(
    State(m): App,
    caller: Caller,
    Query(mut q): Query<WorkOrderQuery>,
) -> Json<Page<WorkOrderDto>> {
    q.scope = caller.scope;
    let (items, next_cursor) = m.list_workorders(&q).await;
    let items = items
        .into_iter()
        .map(|w| WorkOrderDto::new(w, m.clock(), false))
        .collect();
    Json(Page { items, next_cursor })
}

async fn get_workorder(
    State(m): App,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<WorkOrderDto>> {
    match m.workorder(&id, &caller.scope).await {
        Some(w) => Ok(Json(WorkOrderDto::new(w, m.clock(), true))),
        None => Err(MonitorError::NotFound(format!("no work order {id}")).into()),
    }
}

async fn act(
    State(m): App,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<ActionRequest>,
) -> Result<Json<WorkOrderDto>, Response> {
    caller
        .require(if req.action.is_handling() {
            Right::Handle
        } else {
            Right::Audit
        })
        .map_err(IntoResponse::into_response)?;
    let actor = actor_of(&caller, req.actor);
    let w = m
        .act(&id, &caller.scope, req.action, actor)
        .await
        .map_err(|e| ApiError(e).into_response())?;
    Ok(Json(WorkOrderDto::new(w, m.clock(), true)))
}

/// Who acts: with access control the token's name and role, whatever the
/// body says; without it, the body's `actor`.
fn actor_of(caller: &Caller, stated: Option<String>) -> Actor {
    Actor {
        role: caller
            .name
            .as_ref()
            .map(|_| caller.role.as_str().to_string()),
        name: caller.name.clone().or(stated),
    }
}

async fn list_themes(State(m): App) -> Json<Items<ThemeDto>> {
    let items = m.themes().await;
    let items = items
        .into_iter()
        .map(|t| ThemeDto::new(t, m.clock()))
        .collect();
    Json(Items { items })
}

async fn add_theme(State(m): App, Body(src): Body<ThemeSource>) -> ApiResult<Response> {
    let id = m.add_theme(&src.0).await?;
    Ok((StatusCode::CREATED, Json(ThemeId { id })).into_response())
}

async fn set_enabled(m: &Monitor, id: String, enabled: bool) -> ApiResult<Json<ThemeEnabled>> {
    m.set_theme_enabled(&id, enabled).await?;
    Ok(Json(ThemeEnabled { id, enabled }))
}

async fn enable_theme(State(m): App, Path(id): Path<String>) -> ApiResult<Json<ThemeEnabled>> {
    set_enabled(&m, id, true).await
}

async fn disable_theme(State(m): App, Path(id): Path<String>) -> ApiResult<Json<ThemeEnabled>> {
    set_enabled(&m, id, false).await
}

async fn dry_run(m: &Monitor, id_or_source: &str) -> ApiResult<Json<DryRun>> {
    let hits = m.dry_run(id_or_source).await?;
    let hits = hits
        .into_iter()
        .map(|h| HitDto::new(h, m.clock()))
        .collect();
    Ok(Json(DryRun { hits }))
}

async fn dry_run_theme(State(m): App, Path(id): Path<String>) -> ApiResult<Json<DryRun>> {
    dry_run(&m, &id).await
}

async fn dry_run_source(State(m): App, Body(src): Body<ThemeSource>) -> ApiResult<Json<DryRun>> {
    dry_run(&m, &src.0).await
}

#[derive(Deserialize)]
struct DeadLetterQuery {
    stream: Option<String>,
    reason: Option<Reason>,
    limit: Option<usize>,
}

async fn dead_letters(
    State(m): App,
    caller: Caller,
    Query(q): Query<DeadLetterQuery>,
) -> Json<Items<DeadLetterDto>> {
    let limit = q.limit.unwrap_or(100).min(10_000);
    let found = m
        .dead_letters(q.stream.as_deref(), q.reason, limit, &caller.scope)
        .await;
    let items = found
        .into_iter()
        .map(|d| DeadLetterDto::new(d, m.clock()))
        .collect();
    Json(Items { items })
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<usize>,
}

async fn suppressed(
    State(m): App,
    caller: Caller,
    Query(q): Query<LimitQuery>,
) -> Json<Items<SuppressedDto>> {
    let found = m
        .suppressed(q.limit.unwrap_or(100).min(10_000), &caller.scope)
        .await;
    let items = found
        .into_iter()
        .map(|s| SuppressedDto::new(s, m.clock()))
        .collect();
    Json(Items { items })
}

async fn watermarks(State(m): App) -> Response {
    Json(dto::watermarks(m.watermarks().await, m.clock())).into_response()
}
