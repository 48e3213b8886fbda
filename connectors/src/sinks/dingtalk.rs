//! The DingTalk (钉钉) group robot: one Markdown message per event to
//! `{url}?access_token=…` (`https://oapi.dingtalk.com/robot/send` by
//! default), `{"msgtype":"markdown","markdown":{"title":…,"text":…}}`.
//! With `secret` set (the robot's 加签 mode) each request also carries
//! `&timestamp=<ms>&sign=<urlencode(base64(HmacSHA256(secret,
//! "<ms>\n<secret>")))>`, computed at send time (DingTalk refuses a
//! timestamp more than an hour off). Errcode 130101 (sending too fast) and
//! -1 (busy) are retried, any other non-zero code is refused for good.

use super::http::{parse_url, required, robot_answer, Http};
use super::message::markdown;
use super::sign::{dingtalk_sign, url_encode};
use chrono_tz::Tz;
use futures::future::BoxFuture;
use jicha_pipeline::outbox::{OutboxEvent, Sink, SinkError};
use reqwest::Url;
use std::time::Duration;

pub const DEFAULT_URL: &str = "https://oapi.dingtalk.com/robot/send";
const RETRY_CODES: &[i64] = &[130101, -1];

pub struct DingTalk {
    name: String,
    url: Url,
    access_token: String,
    secret: Option<String>,
    tz: Tz,
    public_url: Option<String>,
    http: Http,
}

pub struct DingTalkSettings<'a> {
    pub url: Option<&'a str>,
    pub access_token: &'a str,
    pub secret: Option<&'a str>,
    pub tz: Tz,
    pub public_url: Option<String>,
    pub timeout: Duration,
}

impl DingTalk {
    pub fn new(name: String, s: DingTalkSettings<'_>) -> Result<DingTalk, SinkError> {
        let access_token = required(
            &name,
            "access_token",
            s.access_token,
            "the robot's access_token (from its webhook address)",
        )?;
        let secret = match s.secret {
            None => None,
            Some(sec) => Some(required(
                &name,
                "secret",
                sec,
                "the robot's 加签 secret (SEC…), or leave `secret` out for an unsigned robot",
            )?),
        };
        Ok(DingTalk {
            url: parse_url(&name, "url", s.url.unwrap_or(DEFAULT_URL))?,
            http: Http::new(&name, s.timeout)?,
            name,
            access_token,
            secret,
            tz: s.tz,
            public_url: s.public_url,
        })
    }

    /// The request URL at `now_ms` (signed when a secret is set).
    pub fn url_at(&self, now_ms: i64) -> Url {
        let mut q = match self.url.query() {
            Some(existing) if !existing.is_empty() => format!("{existing}&"),
            _ => String::new(),
        };
        q.push_str("access_token=");
        q.push_str(&url_encode(&self.access_token));
        if let Some(secret) = &self.secret {
            q.push_str(&format!(
                "&timestamp={now_ms}&sign={}",
                dingtalk_sign(secret, now_ms)
            ));
        }
        let mut url = self.url.clone();
        url.set_query(Some(&q));
        url
    }

    pub fn body(&self, e: &OutboxEvent) -> serde_json::Value {
        let (title, text) = markdown(self.tz, self.public_url.as_deref(), e);
        serde_json::json!({
            "msgtype": "markdown",
            "markdown": { "title": title, "text": text },
        })
    }
}

impl Sink for DingTalk {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "dingtalk"
    }

    fn deliver<'a>(&'a self, events: &'a [OutboxEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            for e in events {
                let body = serde_json::to_vec(&self.body(e)).unwrap_or_default();
                let url = self.url_at(chrono::Utc::now().timestamp_millis());
                let answer = self.http.post_json(url, body, &[]).await?;
                robot_answer(&self.name, &answer, RETRY_CODES)?;
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

    fn robot(secret: Option<&str>) -> DingTalk {
        DingTalk::new(
            "ding".into(),
            DingTalkSettings {
                url: None,
                access_token: "TOKEN",
                secret,
                tz: chrono_tz::Asia::Shanghai,
                public_url: None,
                timeout: Duration::from_secs(1),
            },
        )
        .unwrap()
    }

    #[test]
    fn signed_mode_appends_timestamp_and_sign() {
        assert_eq!(
            robot(None).url_at(1).as_str(),
            "https://oapi.dingtalk.com/robot/send?access_token=TOKEN"
        );
        // The sign of this secret and instant is checked against Python's
        // hmac/base64 in `sign.rs`.
        assert_eq!(
            robot(Some("SEC0123456789abcdef")).url_at(1_700_000_000_000).as_str(),
            "https://oapi.dingtalk.com/robot/send?access_token=TOKEN&timestamp=1700000000000&sign=TSZbRFUuvaSQaRKUpF970OPCb2%2FLcQAP3wOvwZIzBZk%3D"
        );
    }

    #[test]
    fn the_message_is_dingtalk_markdown_with_a_title() {
        let b = robot(None).body(&event(5, EventKind::WorkorderOpened));
        assert_eq!(b["msgtype"], "markdown");
        assert_eq!(b["markdown"]["title"], "稽查告警：新增稽查工单");
        assert!(b["markdown"]["text"]
            .as_str()
            .unwrap()
            .contains("> 客户：C1"));
        let e = DingTalk::new(
            "ding".into(),
            DingTalkSettings {
                url: Some("oapi.dingtalk.com/robot/send"),
                access_token: "T",
                secret: None,
                tz: chrono_tz::Asia::Shanghai,
                public_url: None,
                timeout: Duration::from_secs(1),
            },
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("`url`"), "{e}");
    }
}
