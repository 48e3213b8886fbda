//! A small HTTP/1.1 client (`Connection: close`, one request per
//! connection): blocking for tests, async for the benchmark's pollers, one
//! response parser for both.

use crate::error::{KitError, KitResult};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: String,
}

impl Resp {
    /// The body as JSON; panics when it is not (for tests).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {} {}", self.status, self.body))
    }

    /// Panics unless the answer is 2xx (for tests).
    #[track_caller]
    pub fn ok(self) -> Resp {
        assert!(
            (200..300).contains(&self.status),
            "expected a 2xx answer, got {} {}",
            self.status,
            self.body
        );
        self
    }
}

fn request_text(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n\
         Content-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// One blocking request to `127.0.0.1:port` (30 s read timeout).
pub fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> std::io::Result<Resp> {
    http_with(port, method, path, &[], body)
}

/// [`http`] with extra request headers (e.g. `Authorization`).
pub fn http_with(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let host = format!("127.0.0.1:{port}");
    s.write_all(request_text(&host, method, path, headers, body.unwrap_or("")).as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// One async GET to `addr` (`host:port`), given up after `within`.
pub async fn get_async(addr: &str, path: &str, within: Duration) -> KitResult<Resp> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(request_text(addr, "GET", path, &[], "").as_bytes())
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        parse_response(&buf)
    };
    tokio::time::timeout(within, fut)
        .await
        .map_err(|_| {
            KitError(format!(
                "GET {path}: no answer within {} s",
                within.as_secs()
            ))
        })?
        .map_err(|e| KitError(format!("GET http://{addr}{path}: {e}")))
}

/// Status and body of a complete response (chunked or not).
pub fn parse_response(raw: &[u8]) -> std::io::Result<Resp> {
    let head_end = find(raw, b"\r\n\r\n").ok_or_else(|| {
        std::io::Error::other(format!(
            "no HTTP header in {:?}",
            String::from_utf8_lossy(raw)
        ))
    })?;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let mut chunked = false;
    let mut len: Option<usize> = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            if k == "transfer-encoding" && v.contains("chunked") {
                chunked = true;
            }
            if k == "content-length" {
                len = v.parse().ok();
            }
        }
    }
    let rest = &raw[head_end + 4..];
    let body = if chunked {
        dechunk(rest)
    } else if let Some(n) = len {
        rest[..n.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Resp {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = find(b, b"\r\n") {
        let size_txt = String::from_utf8_lossy(&b[..eol]);
        let size = size_txt
            .split(';')
            .next()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            out.extend_from_slice(&b[..size.min(b.len())]);
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[(size + 2).min(b.len())..];
    }
    out
}

/// Percent-encodes a query value.
pub fn enc(v: &str) -> String {
    let mut o = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::parse_response;

    #[test]
    fn parses_chunked_and_sized_bodies() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "abcde"));
        let r = parse_response(b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nnoXX").unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "no"));
        assert!(parse_response(b"garbage").is_err());
    }
}
