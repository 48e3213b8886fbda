//! `GET /api/v1/reports/evaluation`: the evaluation of units (三报一评) as
//! JSON, CSV (one row per unit, then the total) or the printable monthly
//! report in HTML ([`super::report_html`]).

use super::dto::at;
use super::report_html;
use super::{ApiError, ApiResult, App};
use crate::auth::Caller;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use jicha_pipeline::report::{Evaluation, Period, UnitFigures};
use jicha_pipeline::time::BusinessClock;
use jicha_pipeline::MonitorError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub(super) struct EvaluationQuery {
    org: Option<String>,
    period: Option<String>,
    /// `json` (the default), `csv` or `html`.
    format: Option<String>,
}

fn bad(m: String) -> ApiError {
    ApiError(MonitorError::BadRequest(m))
}

pub(super) async fn evaluation(
    State(m): App,
    caller: Caller,
    Query(q): Query<EvaluationQuery>,
) -> ApiResult<Response> {
    let text = q.period.as_deref().filter(|p| !p.is_empty()).ok_or_else(|| {
        bad("`period` is required: a month (2026-11), an ISO week (2026-W45) or a day (2026-11-03)".into())
    })?;
    let period = Period::parse(text).map_err(bad)?;
    let e = m
        .evaluation(q.org.as_deref(), period, &caller.scope)
        .await?;
    let clock = m.clock();
    Ok(match q.format.as_deref().unwrap_or("json") {
        "json" => Json(EvaluationDto::new(e, clock)).into_response(),
        "csv" => {
            let name = format!("attachment; filename=\"evaluation-{}.csv\"", e.period);
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, name),
                ],
                to_csv(&e).map_err(|err| bad(format!("the CSV could not be written: {err}")))?,
            )
                .into_response()
        }
        "html" => Html(report_html::render(&e, clock, m.now())).into_response(),
        other => return Err(bad(format!("format={other}: use json, csv or html"))),
    })
}

/// The evaluation with its period's bounds as instants of the business day.
#[derive(Serialize)]
struct EvaluationDto {
    org: Option<String>,
    period: String,
    from: String,
    until: String,
    units: Vec<UnitFigures>,
    total: UnitFigures,
    ranking: Vec<jicha_pipeline::report::evaluation::Rank>,
}

impl EvaluationDto {
    fn new(e: Evaluation, clock: &BusinessClock) -> Self {
        EvaluationDto {
            from: at(clock, e.from),
            until: at(clock, e.until),
            org: e.org,
            period: e.period,
            units: e.units,
            total: e.total,
            ranking: e.ranking,
        }
    }
}

/// One CSV row; rates and amounts as decimal text, an empty cell where a
/// rate has nothing to divide by.
#[derive(Serialize)]
struct CsvRow<'a> {
    row: &'static str,
    org: &'a str,
    period: &'a str,
    findings: u64,
    dispatched: u64,
    dismissed: u64,
    voided: u64,
    archived: u64,
    confirmed: u64,
    confirmed_rate: Option<Decimal>,
    dispatch_on_time_rate: Option<Decimal>,
    accept_on_time_rate: Option<Decimal>,
    feedback_on_time_rate: Option<Decimal>,
    review_on_time_rate: Option<Decimal>,
    on_time_rate: Option<Decimal>,
    overdue: u64,
    sampled: u64,
    sample_failed: u64,
    recovered_kwh: Decimal,
    recovered_yuan: Decimal,
}

impl<'a> CsvRow<'a> {
    fn new(row: &'static str, u: &'a UnitFigures, period: &'a str) -> Self {
        let o = &u.on_time;
        CsvRow {
            row,
            org: &u.org,
            period,
            findings: u.findings,
            dispatched: u.dispatched,
            dismissed: u.dismissed,
            voided: u.voided,
            archived: u.archived,
            confirmed: u.confirmed,
            confirmed_rate: u.confirmed_rate,
            dispatch_on_time_rate: o.dispatch.rate,
            accept_on_time_rate: o.accept.rate,
            feedback_on_time_rate: o.feedback.rate,
            review_on_time_rate: o.review.rate,
            on_time_rate: o.all.rate,
            overdue: u.overdue,
            sampled: u.sampled,
            sample_failed: u.sample_failed,
            recovered_kwh: u.recovered_kwh,
            recovered_yuan: u.recovered_yuan,
        }
    }
}

fn to_csv(e: &Evaluation) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for u in &e.units {
        w.serialize(CsvRow::new("unit", u, &e.period))?;
    }
    w.serialize(CsvRow::new("total", &e.total, &e.period))?;
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
