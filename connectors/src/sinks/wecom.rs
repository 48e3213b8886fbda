//! The WeCom (企业微信) group robot: one Markdown message per event to
//! `{url}?key={key}` (`https://qyapi.weixin.qq.com/cgi-bin/webhook/send` by
//! default), `{"msgtype":"markdown","markdown":{"content":…}}`. The robot
//! answers `{"errcode":0,…}`; 45009 (over its limit of 20 messages a
//! minute) and -1 (busy) are retried, any other code is refused for good.

use super::http::{parse_url, required, robot_answer, Http};
use super::message::markdown;
use chrono_tz::Tz;
use futures::future::BoxFuture;
use jicha_pipeline::outbox::{OutboxEvent, Sink, SinkError};
use reqwest::Url;
use std::time::Duration;

pub const DEFAULT_URL: &str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send";
const RETRY_CODES: &[i64] = &[45009, -1];
/// WeCom refuses Markdown content over 4096 bytes.
const MAX_CONTENT: usize = 4000;

pub struct WeCom {
    name: String,
    url: Url,
    tz: Tz,
    public_url: Option<String>,
    http: Http,
}

impl WeCom {
    pub fn new(
        name: String,
        url: Option<&str>,
        key: &str,
        tz: Tz,
        public_url: Option<String>,
        timeout: Duration,
    ) -> Result<WeCom, SinkError> {
        let key = required(
            &name,
            "key",
            key,
            "the robot's key (the `key=` of its webhook address)",
        )?;
        let mut url = parse_url(&name, "url", url.unwrap_or(DEFAULT_URL))?;
        url.query_pairs_mut().append_pair("key", &key);
        Ok(WeCom {
            http: Http::new(&name, timeout)?,
            name,
            url,
            tz,
            public_url,
        })
    }

    pub fn body(&self, e: &OutboxEvent) -> serde_json::Value {
        let (_, text) = markdown(self.tz, self.public_url.as_deref(), e);
        serde_json::json!({
            "msgtype": "markdown",
            "markdown": { "content": cut(text, MAX_CONTENT) },
        })
    }
}

/// At most `max` bytes, on a character boundary.
pub fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

impl Sink for WeCom {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "wecom"
    }

    fn deliver<'a>(&'a self, events: &'a [OutboxEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            for e in events {
                let body = serde_json::to_vec(&self.body(e)).unwrap_or_default();
                let answer = self.http.post_json(self.url.clone(), body, &[]).await?;
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

    #[test]
    fn the_message_is_wecom_markdown_and_the_key_goes_in_the_query() {
        let w = WeCom::new(
            "wecom".into(),
            None,
            "KEY-1",
            chrono_tz::Asia::Shanghai,
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            w.url.as_str(),
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY-1"
        );
        let b = w.body(&event(3, EventKind::Escalated));
        assert_eq!(b["msgtype"], "markdown");
        let content = b["markdown"]["content"].as_str().unwrap();
        assert!(content.starts_with("### 稽查告警：工单督办"), "{content}");
        assert!(content.contains("WO0000000003"));
        let e = WeCom::new(
            "wecom".into(),
            None,
            " ",
            chrono_tz::Asia::Shanghai,
            None,
            Duration::from_secs(1),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("`key` is empty"), "{e}");
        assert_eq!(cut("稽查".into(), 4), "稽");
    }
}
