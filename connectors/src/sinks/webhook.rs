//! The generic JSON webhook: one POST per event, its body the event as
//! JSON (the event log's line format), with `X-Jicha-Event-Id` and, when a
//! `secret` is set, `X-Jicha-Signature: sha256=<hex HMAC-SHA256 of the
//! exact body>`. One request per event keeps the id header meaningful and
//! lets a receiver drop a repeated id (a retry, or a redelivery after a
//! crash) before it does anything else: delivery is at least once, each
//! copy byte-identical. Events of a batch go in id order; the first that
//! fails fails the batch, whose delivered events come again on the retry.

use super::http::{parse_url, Http};
use super::sign::webhook_signature;
use futures::future::BoxFuture;
use jicha_pipeline::outbox::{OutboxEvent, Sink, SinkError};
use reqwest::Url;
use std::time::Duration;

pub const EVENT_ID_HEADER: &str = "X-Jicha-Event-Id";
pub const EVENT_KIND_HEADER: &str = "X-Jicha-Event-Kind";
pub const SIGNATURE_HEADER: &str = "X-Jicha-Signature";

/// One request's exact body and headers.
pub type Request = (Vec<u8>, Vec<(&'static str, String)>);

pub struct Webhook {
    name: String,
    url: Url,
    secret: Option<String>,
    http: Http,
}

impl Webhook {
    pub fn new(
        name: String,
        url: &str,
        secret: Option<&str>,
        timeout: Duration,
    ) -> Result<Webhook, SinkError> {
        let url = parse_url(&name, "url", url)?;
        let secret = match secret {
            Some(s) if s.trim().is_empty() => {
                return Err(SinkError::Config(format!(
                    "sink {name}: `secret` is empty; set the shared secret the receiver verifies X-Jicha-Signature with, or leave `secret` out"
                )))
            }
            s => s.map(str::to_string),
        };
        Ok(Webhook {
            http: Http::new(&name, timeout)?,
            name,
            url,
            secret,
        })
    }

    /// The exact body and headers of one event's request.
    pub fn request(&self, e: &OutboxEvent) -> Result<Request, SinkError> {
        let body = serde_json::to_vec(e).map_err(|err| SinkError::Rejected {
            sink: self.name.clone(),
            message: format!("cannot serialise event {}: {err}", e.id.0),
        })?;
        let kind = serde_json::to_value(e.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let mut headers = vec![
            (EVENT_ID_HEADER, e.id.0.to_string()),
            (EVENT_KIND_HEADER, kind),
        ];
        if let Some(s) = &self.secret {
            headers.push((SIGNATURE_HEADER, webhook_signature(s, &body)));
        }
        Ok((body, headers))
    }
}

impl Sink for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "webhook"
    }

    fn deliver<'a>(&'a self, events: &'a [OutboxEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            for e in events {
                let (body, headers) = self.request(e)?;
                let answer = self
                    .http
                    .post_json(self.url.clone(), body, &headers)
                    .await?;
                self.http.expect_2xx(&answer)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::testing::event;
    use jicha_pipeline::outbox::EventKind;

    #[test]
    fn the_request_carries_the_id_and_a_signature_of_the_exact_body() {
        let w = Webhook::new(
            "w".into(),
            "http://127.0.0.1:1/hook",
            Some("s3cret"),
            Duration::from_secs(1),
        )
        .unwrap();
        let e = event(42, EventKind::WorkorderOpened);
        let (body, headers) = w.request(&e).unwrap();
        let back: OutboxEvent = serde_json::from_slice(&body).unwrap();
        assert_eq!(back, e);
        let h = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(h(EVENT_ID_HEADER).as_deref(), Some("42"));
        assert_eq!(h(EVENT_KIND_HEADER).as_deref(), Some("workorder_opened"));
        assert_eq!(
            h(SIGNATURE_HEADER),
            Some(webhook_signature("s3cret", &body))
        );
        let unsigned = Webhook::new(
            "w".into(),
            "http://127.0.0.1:1/hook",
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(unsigned
            .request(&e)
            .unwrap()
            .1
            .iter()
            .all(|(k, _)| *k != SIGNATURE_HEADER));
        let err = Webhook::new("w".into(), "http://x/", Some(" "), Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(err.to_string().contains("`secret` is empty"), "{err}");
    }
}
