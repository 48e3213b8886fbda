//! What the HTTP sinks share: one client per sink (rustls with ring, a
//! request timeout), URL checks at start, and the line between errors
//! worth retrying and those that are not. Retry: no answer, 408, 429 and
//! 5xx (the receiver is down, slow or shedding load). Give up: any other
//! 4xx (the receiver understood and refused; the same bytes will be
//! refused again). Chat robots answer 200 with an `errcode`, classified
//! by [`robot_answer`].

use jicha_pipeline::outbox::SinkError;
use reqwest::Url;
use std::time::Duration;

/// Default request timeout of an HTTP sink.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest answer body kept in an error message.
const BODY_IN_ERROR: usize = 300;

/// An answered request.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

pub struct Http {
    sink: String,
    client: reqwest::Client,
}

impl Http {
    pub fn new(sink: &str, timeout: Duration) -> Result<Http, SinkError> {
        // reqwest is built without a default crypto provider; ring is the
        // one rustls uses everywhere else in Jicha. Installing twice is a
        // no-op that reports the first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("jicha/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                SinkError::Config(format!("sink {sink}: cannot build the HTTP client: {e}"))
            })?;
        Ok(Http {
            sink: sink.to_string(),
            client,
        })
    }

    /// POSTs `body` as JSON with extra `headers`; an answer of any status
    /// is `Ok`, no answer is a retryable error.
    pub async fn post_json(
        &self,
        url: Url,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Result<Answer, SinkError> {
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.map_err(|e| self.retry(no_answer(&e)))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        Ok(Answer { status, body })
    }

    /// `Ok` for 2xx; otherwise the error [`classify`] gives.
    pub fn expect_2xx(&self, a: &Answer) -> Result<(), SinkError> {
        classify(&self.sink, a)
    }

    fn retry(&self, message: String) -> SinkError {
        SinkError::Delivery {
            sink: self.sink.clone(),
            message,
        }
    }
}

/// Why there was no answer, without the URL (it may hold a token).
fn no_answer(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "no answer within the timeout"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {cause}")
    }
}

fn short(body: &str) -> String {
    let b = body.trim();
    match b.char_indices().nth(BODY_IN_ERROR) {
        Some((i, _)) => format!("{}…", &b[..i]),
        None => b.to_string(),
    }
}

/// 2xx: delivered. 408, 429, 5xx and anything else unexpected: retry.
/// Other 4xx: refused for good.
pub fn classify(sink: &str, a: &Answer) -> Result<(), SinkError> {
    let message = format!("HTTP {}: {}", a.status, short(&a.body));
    match a.status {
        200..=299 => Ok(()),
        408 | 429 => Err(SinkError::Delivery {
            sink: sink.into(),
            message,
        }),
        400..=499 => Err(SinkError::Rejected {
            sink: sink.into(),
            message,
        }),
        _ => Err(SinkError::Delivery {
            sink: sink.into(),
            message,
        }),
    }
}

/// A chat robot's answer (`{"errcode":0,"errmsg":"ok"}`): errcode 0 is
/// delivered, one of `retry_codes` (rate limits) is retried, any other is
/// refused for good (a bad key, a message the robot will not take). An
/// HTTP error or an answer that is not the robot's JSON (a proxy's error
/// page) goes by [`classify`] or is retried.
pub fn robot_answer(sink: &str, a: &Answer, retry_codes: &[i64]) -> Result<(), SinkError> {
    classify(sink, a)?;
    #[derive(serde::Deserialize)]
    struct RobotAnswer {
        errcode: i64,
        #[serde(default)]
        errmsg: String,
    }
    let r: RobotAnswer = serde_json::from_str(&a.body).map_err(|_| SinkError::Delivery {
        sink: sink.into(),
        message: format!("the answer is not the robot's JSON: {}", short(&a.body)),
    })?;
    let message = format!("errcode {}: {}", r.errcode, short(&r.errmsg));
    match r.errcode {
        0 => Ok(()),
        c if retry_codes.contains(&c) => Err(SinkError::Delivery {
            sink: sink.into(),
            message,
        }),
        _ => Err(SinkError::Rejected {
            sink: sink.into(),
            message,
        }),
    }
}

/// Parses a configured URL: http or https with a host, else a message
/// saying what to write.
pub fn parse_url(sink: &str, key: &str, text: &str) -> Result<Url, SinkError> {
    let bad = |why: String| {
        SinkError::Config(format!(
            "sink {sink}: `{key}` = {text:?} {why}; write a full URL such as https://host:port/path"
        ))
    };
    let url = Url::parse(text.trim()).map_err(|e| bad(format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "has scheme {:?}, not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host".into()));
    }
    Ok(url)
}

/// A required setting that must not be empty.
pub fn required(sink: &str, key: &str, value: &str, what: &str) -> Result<String, SinkError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(SinkError::Config(format!(
            "sink {sink}: `{key}` is empty; set it to {what}"
        )));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.into(),
        }
    }

    #[test]
    fn statuses_split_into_delivered_retry_and_refused() {
        let kind = |status| match classify("s", &answer(status, "x")) {
            Ok(()) => "ok",
            Err(e) if e.is_permanent() => "refused",
            Err(_) => "retry",
        };
        let got: Vec<(u16, &str)> = [
            200, 202, 204, 400, 401, 403, 404, 408, 413, 422, 429, 500, 502, 503, 302,
        ]
        .iter()
        .map(|&s| (s, kind(s)))
        .collect();
        assert_eq!(
            got,
            [
                (200, "ok"),
                (202, "ok"),
                (204, "ok"),
                (400, "refused"),
                (401, "refused"),
                (403, "refused"),
                (404, "refused"),
                (408, "retry"),
                (413, "refused"),
                (422, "refused"),
                (429, "retry"),
                (500, "retry"),
                (502, "retry"),
                (503, "retry"),
                (302, "retry"),
            ]
        );
        let long = "y".repeat(2000);
        let e = classify("s", &answer(500, &long)).unwrap_err().to_string();
        assert!(e.len() < 700, "the body is cut short in the message: {e}");
    }

    #[test]
    fn robot_errcodes_split_into_delivered_retry_and_refused() {
        let kind = |status, body: &str| match robot_answer("s", &answer(status, body), &[45009]) {
            Ok(()) => "ok",
            Err(e) if e.is_permanent() => "refused",
            Err(_) => "retry",
        };
        assert_eq!(kind(200, r#"{"errcode":0,"errmsg":"ok"}"#), "ok");
        assert_eq!(
            kind(200, r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#),
            "retry"
        );
        assert_eq!(
            kind(200, r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#),
            "refused"
        );
        assert_eq!(kind(200, "<html>bad gateway</html>"), "retry");
        assert_eq!(kind(503, ""), "retry");
        let e = robot_answer(
            "s",
            &answer(200, r#"{"errcode":93000,"errmsg":"invalid"}"#),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("errcode 93000: invalid"), "{e}");
    }

    #[test]
    fn urls_and_required_values_are_checked_with_what_to_write() {
        assert!(parse_url("s", "url", "http://127.0.0.1:9093").is_ok());
        for bad in ["", "127.0.0.1:9093", "ftp://x/y", "http://"] {
            let e = parse_url("s", "url", bad).unwrap_err().to_string();
            assert!(e.contains("`url`") && e.contains("https://"), "{bad}: {e}");
        }
        let e = required("s", "key", "  ", "the robot's key")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`key` is empty; set it to the robot's key"),
            "{e}"
        );
    }
}
