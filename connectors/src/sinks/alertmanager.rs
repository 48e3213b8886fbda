//! Alertmanager (API v2): each work order is one alert, so grouping,
//! silencing, inhibition and routing are Alertmanager's. Labels:
//! `alertname="JichaFinding"`, `theme`, `severity`, `org` (the county, so
//! routes can pick a county without a label per village unit), `customer`,
//! `workorder`, plus the sink's static `labels`. The label set is the
//! alert's identity; every event of the order posts the same set.
//!
//! Firing and resolving: an event that leaves the order active posts the
//! alert with `endsAt` = now + `alert_ttl` (7 days by default), so the
//! alert stays firing between events without Jicha re-sending it (an alert
//! without `endsAt` would resolve itself after Alertmanager's
//! `resolve_timeout`, 5 minutes). Every later event of the order (a hit, a
//! 督办, a life-cycle step) pushes `endsAt` out again. The state change to
//! archived, voided or dismissed posts it with `endsAt` = the event time
//! (not after now): resolved. An order with no event for `alert_ttl`
//! drops out of Alertmanager by itself while it stays open in Jicha.

use super::http::{parse_url, Http};
use super::message::{local_time, summary, window_zh, workorder_link};
use chrono::{SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use futures::future::BoxFuture;
use jicha_pipeline::org::county;
use jicha_pipeline::outbox::{EventKind, OutboxEvent, Sink, SinkError};
use reqwest::Url;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub const ALERTNAME: &str = "JichaFinding";
pub const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct Alertmanager {
    name: String,
    url: Url,
    tz: Tz,
    public_url: Option<String>,
    ttl_ms: i64,
    labels: BTreeMap<String, String>,
    http: Http,
}

/// One alert as `POST /api/v2/alerts` takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(skip_serializing_if = "String::is_empty", rename = "generatorURL")]
    pub generator_url: String,
}

pub struct AlertmanagerSettings {
    pub url: String,
    pub tz: Tz,
    pub public_url: Option<String>,
    pub ttl: Duration,
    pub labels: BTreeMap<String, String>,
    pub timeout: Duration,
}

fn rfc3339(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
    }
}

impl Alertmanager {
    pub fn new(name: String, s: AlertmanagerSettings) -> Result<Alertmanager, SinkError> {
        let base = parse_url(&name, "url", &s.url)?;
        let url = parse_url(
            &name,
            "url",
            &format!("{}/api/v2/alerts", base.as_str().trim_end_matches('/')),
        )?;
        if s.ttl < Duration::from_secs(60) {
            return Err(SinkError::Config(format!(
                "sink {name}: `alert_ttl` is under a minute; firing alerts would resolve between events: use hours or days, e.g. \"7d\""
            )));
        }
        for k in s.labels.keys() {
            let ok = k
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok || RESERVED.contains(&k.as_str()) {
                return Err(SinkError::Config(format!(
                    "sink {name}: label {k:?} in `labels` is not a Prometheus label name or is one Jicha sets ({}); use [a-zA-Z_][a-zA-Z0-9_]*",
                    RESERVED.join(", ")
                )));
            }
        }
        Ok(Alertmanager {
            http: Http::new(&name, s.timeout)?,
            name,
            url,
            tz: s.tz,
            public_url: s.public_url,
            ttl_ms: i64::try_from(s.ttl.as_millis()).unwrap_or(i64::MAX / 2),
            labels: s.labels,
        })
    }

    /// The alert for `e` as posted at `now_ms`.
    pub fn alert(&self, e: &OutboxEvent, now_ms: i64) -> PostableAlert {
        let mut labels = self.labels.clone();
        for (k, v) in [
            ("alertname", ALERTNAME.to_string()),
            ("theme", e.theme.clone()),
            ("severity", e.severity.as_str().to_string()),
            ("org", county(&e.org_code)),
            ("customer", e.customer_id.as_str().to_string()),
            ("workorder", e.workorder_id.clone()),
        ] {
            labels.insert(k.to_string(), v);
        }
        let mut annotations = BTreeMap::from([
            ("summary".to_string(), summary(e)),
            ("unit".to_string(), e.org_code.clone()),
            ("status".to_string(), e.to.label_zh().to_string()),
            ("hits".to_string(), e.hits.to_string()),
            ("updated".to_string(), local_time(self.tz, e.at)),
        ]);
        if let Some(w) = window_zh(self.tz, e) {
            annotations.insert("window".into(), w);
        }
        if let Some(loss) = e.estimated_loss_yuan {
            annotations.insert("estimated_loss_yuan".into(), loss.to_string());
        }
        let link = workorder_link(self.public_url.as_deref(), e).unwrap_or_default();
        if !link.is_empty() {
            annotations.insert("workorder_url".into(), link.clone());
        }
        let (starts, ends) = if resolves(e) {
            let t = e.at.min(now_ms);
            (t, t)
        } else {
            let start = e.window_end.unwrap_or(e.at).min(now_ms);
            (start, e.at.max(now_ms).saturating_add(self.ttl_ms))
        };
        PostableAlert {
            labels,
            annotations,
            starts_at: rfc3339(starts),
            ends_at: rfc3339(ends),
            generator_url: link,
        }
    }

    /// The alerts of a batch: the last event of each order decides its
    /// alert (an order opened and voided in one batch posts only resolved).
    pub fn alerts(&self, events: &[OutboxEvent], now_ms: i64) -> Vec<PostableAlert> {
        let mut last: BTreeMap<&str, &OutboxEvent> = BTreeMap::new();
        for e in events {
            last.insert(&e.workorder_id, e);
        }
        last.values().map(|e| self.alert(e, now_ms)).collect()
    }
}

/// Label names Jicha sets itself.
const RESERVED: &[&str] = &[
    "alertname",
    "theme",
    "severity",
    "org",
    "customer",
    "workorder",
];

/// Whether `e` ends its order's alert.
pub fn resolves(e: &OutboxEvent) -> bool {
    e.kind == EventKind::StateChanged && !e.to.is_active()
}

impl Sink for Alertmanager {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "alertmanager"
    }

    fn deliver<'a>(&'a self, events: &'a [OutboxEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let alerts = self.alerts(events, Utc::now().timestamp_millis());
            let body = serde_json::to_vec(&alerts).map_err(|e| SinkError::Rejected {
                sink: self.name.clone(),
                message: format!("cannot serialise the alerts: {e}"),
            })?;
            let answer = self.http.post_json(self.url.clone(), body, &[]).await?;
            self.http.expect_2xx(&answer)
        })
    }
}

#[cfg(test)]
#[path = "alertmanager_tests.rs"]
mod tests;
