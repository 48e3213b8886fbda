//! Response bodies of the HTTP API (interfaces.md §4–§6): instants as
//! RFC 3339 in the business time zone, money as decimal strings. The
//! pipeline hands out typed values; only this layer decides their shape.

use jicha_domain::money::round_yuan;
use jicha_pipeline::decode::Reason;
use jicha_pipeline::engine::Hit;
use jicha_pipeline::ids::CustomerId;
use jicha_pipeline::runtime::{BillingSummary, StreamProgress, ThemeInfo, ThemeKind};
use jicha_pipeline::state::DeadLetter;
use jicha_pipeline::theme::Severity;
use jicha_pipeline::time::{BusinessClock, EpochMs};
use jicha_pipeline::whitelist::WhitelistEntry;
use jicha_pipeline::workorder::{
    Feedback, HistoryAction, HistoryDetail, HitRecord, Rectification, Status, SuppressedAlert,
    WorkOrder,
};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

type Evidence = serde_json::Map<String, serde_json::Value>;

/// An instant as the API shows it.
pub fn at(clock: &BusinessClock, t: EpochMs) -> String {
    clock.format(t)
}

#[derive(Serialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}

#[derive(Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Serialize)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Serialize)]
pub struct Health {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize)]
pub struct Upserted {
    pub upserted: usize,
}

#[derive(Serialize)]
pub struct ThemeId {
    pub id: String,
}

#[derive(Serialize)]
pub struct ThemeEnabled {
    pub id: String,
    pub enabled: bool,
}

#[derive(Serialize)]
pub struct FeedbackDto {
    confirmed: bool,
    measures: String,
    recovered_kwh: Option<String>,
    recovered_yuan: Option<String>,
    attachments: Vec<String>,
}

/// Recovered amounts as decimal strings, yuan to the fen.
fn recovered(kwh: Option<Decimal>, yuan: Option<Decimal>) -> (Option<String>, Option<String>) {
    (
        kwh.map(|d| d.to_string()),
        yuan.map(|d| round_yuan(d).to_string()),
    )
}

impl From<&Feedback> for FeedbackDto {
    fn from(f: &Feedback) -> Self {
        let (recovered_kwh, recovered_yuan) = recovered(f.recovered_kwh, f.recovered_yuan);
        FeedbackDto {
            confirmed: f.confirmed,
            measures: f.measures.clone(),
            recovered_kwh,
            recovered_yuan,
            attachments: f.attachments.clone(),
        }
    }
}

/// 整改成效补录.
#[derive(Serialize)]
pub struct RectificationDto {
    result: String,
    recovered_kwh: Option<String>,
    recovered_yuan: Option<String>,
}

impl From<&Rectification> for RectificationDto {
    fn from(r: &Rectification) -> Self {
        let (recovered_kwh, recovered_yuan) = recovered(r.recovered_kwh, r.recovered_yuan);
        RectificationDto {
            result: r.result.clone(),
            recovered_kwh,
            recovered_yuan,
        }
    }
}

#[derive(Serialize)]
pub struct HistoryDto {
    at: String,
    action: HistoryAction,
    from: Status,
    to: Status,
    actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    detail: Option<HistoryDetail>,
}

#[derive(Serialize)]
pub struct HitRecordDto {
    window_start: String,
    window_end: String,
    detected_at: String,
    evidence: Evidence,
}

impl HitRecordDto {
    fn new(h: &HitRecord, clock: &BusinessClock) -> Self {
        HitRecordDto {
            window_start: at(clock, h.window_start),
            window_end: at(clock, h.window_end),
            detected_at: at(clock, h.detected_at),
            evidence: h.evidence.clone(),
        }
    }
}

/// A work order (interfaces.md §4); the history only for a single order.
#[derive(Serialize)]
pub struct WorkOrderDto {
    id: String,
    theme: String,
    customer_id: CustomerId,
    org_code: String,
    status: Status,
    severity: Severity,
    first_window_start: String,
    first_window_end: String,
    last_window_end: String,
    hits: u64,
    created_at: String,
    updated_at: String,
    evidence: Evidence,
    estimated_loss_yuan: Option<String>,
    assigned_org: Option<String>,
    escalation_level: u8,
    feedback: Option<FeedbackDto>,
    rectification: Option<RectificationDto>,
    /// 抽检, once drawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    sample: Option<super::sampling::SampleDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<HistoryDto>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hit_history: Option<Vec<HitRecordDto>>,
}

impl WorkOrderDto {
    pub fn new(w: WorkOrder, clock: &BusinessClock, with_history: bool) -> Self {
        let history = with_history.then(|| {
            w.history
                .iter()
                .map(|h| HistoryDto {
                    at: at(clock, h.at),
                    action: h.action,
                    from: h.from,
                    to: h.to,
                    actor: h.actor.clone(),
                    role: h.role.clone(),
                    detail: h.detail.clone(),
                })
                .collect()
        });
        let hit_history = with_history.then(|| {
            w.recent_hits
                .iter()
                .map(|h| HitRecordDto::new(h, clock))
                .collect()
        });
        WorkOrderDto {
            first_window_start: at(clock, w.first_window_start),
            first_window_end: at(clock, w.first_window_end),
            last_window_end: at(clock, w.last_window_end),
            created_at: at(clock, w.created_at),
            updated_at: at(clock, w.updated_at),
            estimated_loss_yuan: w.estimated_loss_yuan.map(|d| round_yuan(d).to_string()),
            escalation_level: w.escalation.into(),
            feedback: w.feedback.as_ref().map(FeedbackDto::from),
            rectification: w.rectification.as_ref().map(RectificationDto::from),
            sample: w
                .sampling
                .as_ref()
                .map(|s| super::sampling::SampleDto::new(s, clock)),
            history,
            hit_history,
            id: w.id,
            theme: w.theme,
            customer_id: w.customer_id,
            org_code: w.org_code,
            status: w.status,
            severity: w.severity,
            hits: w.hits,
            evidence: w.evidence,
            assigned_org: w.assigned_org,
        }
    }
}

#[derive(Serialize)]
pub struct SuppressedDto {
    theme: String,
    customer_id: CustomerId,
    window_start: String,
    window_end: String,
    whitelist_id: String,
    detected_at: String,
    evidence: Evidence,
}

impl SuppressedDto {
    pub fn new(s: SuppressedAlert, clock: &BusinessClock) -> Self {
        SuppressedDto {
            window_start: at(clock, s.window_start),
            window_end: at(clock, s.window_end),
            detected_at: at(clock, s.detected_at),
            theme: s.theme,
            customer_id: s.customer_id,
            whitelist_id: s.whitelist_id,
            evidence: s.evidence,
        }
    }
}

#[derive(Serialize)]
pub struct DeadLetterDto {
    stream: String,
    topic: String,
    reason: Reason,
    detail: String,
    record: String,
    received_at: String,
}

impl DeadLetterDto {
    pub fn new(d: DeadLetter, clock: &BusinessClock) -> Self {
        DeadLetterDto {
            received_at: at(clock, d.received_at),
            stream: d.stream,
            topic: d.topic,
            reason: d.reason,
            detail: d.detail,
            record: d.record,
        }
    }
}

#[derive(Serialize)]
pub struct ProgressDto {
    max_event_time: Option<String>,
    watermark: Option<String>,
}

/// `GET /api/v1/watermarks`: by stream name.
pub fn watermarks(
    progress: Vec<StreamProgress>,
    clock: &BusinessClock,
) -> BTreeMap<&'static str, ProgressDto> {
    progress
        .into_iter()
        .map(|p| {
            let dto = ProgressDto {
                max_event_time: p.max_event_time.map(|t| at(clock, t)),
                watermark: p.watermark.map(|t| at(clock, t)),
            };
            (p.stream.name(), dto)
        })
        .collect()
}

#[derive(Serialize)]
pub struct ParamDto {
    name: String,
    default: String,
    doc: String,
    value: String,
}

#[derive(Serialize)]
pub struct ThemeDto {
    id: String,
    title: String,
    severity: Severity,
    kind: &'static str,
    table: &'static str,
    enabled: bool,
    builtin: bool,
    params: Vec<ParamDto>,
    hits: u64,
    evaluations: u64,
    last_error: Option<String>,
    evaluated_until: Option<String>,
    sql: String,
}

impl ThemeDto {
    pub fn new(t: ThemeInfo, clock: &BusinessClock) -> Self {
        ThemeDto {
            kind: match t.kind {
                ThemeKind::Billing => "billing",
                ThemeKind::Streaming => "streaming",
            },
            params: t
                .params
                .into_iter()
                .map(|p| ParamDto {
                    name: p.name,
                    default: p.default,
                    doc: p.doc,
                    value: p.value,
                })
                .collect(),
            evaluated_until: t.evaluated_until.map(|e| at(clock, e)),
            id: t.id,
            title: t.title,
            severity: t.severity,
            table: t.table,
            enabled: t.enabled,
            builtin: t.builtin,
            hits: t.hits,
            evaluations: t.evaluations,
            last_error: t.last_error,
            sql: t.sql,
        }
    }
}

/// A would-be finding of a dry run.
#[derive(Serialize)]
pub struct HitDto {
    theme: String,
    customer_id: CustomerId,
    window_start: String,
    window_end: String,
    evidence: Evidence,
    estimated_loss_yuan: Option<String>,
}

impl HitDto {
    pub fn new(h: Hit, clock: &BusinessClock) -> Self {
        HitDto {
            window_start: at(clock, h.window_start),
            window_end: at(clock, h.window_end),
            estimated_loss_yuan: h.estimated_loss_yuan.map(|d| d.to_string()),
            theme: h.theme,
            customer_id: h.customer_id,
            evidence: h.evidence,
        }
    }
}

#[derive(Serialize)]
pub struct DryRun {
    pub hits: Vec<HitDto>,
}

#[derive(Serialize)]
pub struct BillingDto {
    period: String,
    bills: usize,
    unknown_customers: Vec<CustomerId>,
    hits: usize,
    workorders_created: usize,
}

impl From<BillingSummary> for BillingDto {
    fn from(b: BillingSummary) -> Self {
        BillingDto {
            period: b.period,
            bills: b.bills,
            unknown_customers: b.unknown_customers,
            hits: b.hits,
            workorders_created: b.workorders_created,
        }
    }
}

/// A whitelist entry; `removed_at` and `removed_by` once it is removed.
#[derive(Serialize)]
pub struct WhitelistDto {
    #[serde(flatten)]
    entry: WhitelistEntry,
    #[serde(skip_serializing_if = "Option::is_none")]
    removed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    removed_by: Option<String>,
}

impl WhitelistDto {
    pub fn new(mut entry: WhitelistEntry, clock: &BusinessClock) -> Self {
        let removed = entry.removed.take();
        WhitelistDto {
            removed_at: removed.as_ref().map(|r| at(clock, r.at)),
            removed_by: removed.and_then(|r| r.by),
            entry,
        }
    }
}

/// The answer of `POST /api/v1/admin/clock`.
#[derive(Serialize)]
pub struct ClockSet {
    pub offset_ms: i64,
    pub now: String,
    /// Orders whose 督办 level changed.
    pub escalated: usize,
}
