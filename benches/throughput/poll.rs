//! Phase (b)'s pollers: the ingested counter and the work orders, read
//! over HTTP while jicha runs.

use anyhow::{bail, Context, Result};
use jicha_testkit::{http::get_async, metric_sum};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `GET http://{addr}{path}`: status and body (120 s at most).
pub(crate) async fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    let r = get_async(addr, path, Duration::from_secs(120)).await?;
    Ok((r.status, r.body))
}

/// Every work order: (theme, customer_id) pairs, following cursors.
pub(crate) async fn all_workorders(addr: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/workorders?limit=1000&cursor={c}"),
            None => "/api/v1/workorders?limit=1000".to_string(),
        };
        let (st, body) = http_get(addr, &path).await?;
        if st != 200 {
            bail!("GET {path} answered {st}: {body}");
        }
        let v: Value = serde_json::from_str(&body).context("work order list is not JSON")?;
        for w in v["items"].as_array().into_iter().flatten() {
            out.push((
                w["theme"].as_str().unwrap_or_default().to_string(),
                w["customer_id"].as_str().unwrap_or_default().to_string(),
            ));
        }
        match v["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
            _ => return Ok(out),
        }
    }
}

#[derive(Default)]
pub(crate) struct PollState {
    /// (when, jicha_records_ingested_total summed over streams)
    pub(crate) ingested: Vec<(Instant, f64)>,
    /// (theme, customer_id) → first time the work order was visible
    pub(crate) seen: HashMap<(String, String), Instant>,
    pub(crate) error: Option<String>,
}

pub(crate) fn spawn_pollers(
    poll: Duration,
    addr: String,
    st: Arc<Mutex<PollState>>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let (a1, s1, x1) = (addr.clone(), Arc::clone(&st), Arc::clone(&stop));
    let metrics = tokio::spawn(async move {
        while !x1.load(Ordering::Relaxed) {
            match http_get(&a1, "/metrics").await {
                Ok((200, body)) => {
                    let v = metric_sum(&body, "jicha_records_ingested_total", &[]);
                    if let Ok(mut s) = s1.lock() {
                        s.ingested.push((Instant::now(), v));
                    }
                }
                Ok((code, _)) => {
                    if let Ok(mut s) = s1.lock() {
                        s.error = Some(format!("GET /metrics answered {code}"));
                    }
                }
                Err(e) => {
                    if let Ok(mut s) = s1.lock() {
                        s.error = Some(format!("{e:#}"));
                    }
                }
            }
            tokio::time::sleep(poll).await;
        }
    });
    let wos = tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            match all_workorders(&addr).await {
                Ok(items) => {
                    let now = Instant::now();
                    if let Ok(mut s) = st.lock() {
                        for k in items {
                            s.seen.entry(k).or_insert(now);
                        }
                    }
                }
                Err(e) => {
                    if let Ok(mut s) = st.lock() {
                        s.error = Some(format!("{e:#}"));
                    }
                }
            }
            tokio::time::sleep(poll).await;
        }
    });
    vec![metrics, wos]
}

/// First poll instant at which the ingested counter had reached `n`.
pub(crate) fn reached(series: &[(Instant, f64)], n: f64) -> Option<Instant> {
    series.iter().find(|(_, v)| *v >= n).map(|(t, _)| *t)
}
