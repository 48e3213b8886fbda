//! A blocking reader of a server-sent event stream (`text/event-stream`
//! over chunked HTTP/1.1), as a wallboard consumes it.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub struct EventStream {
    reader: BufReader<TcpStream>,
    /// De-chunked text not yet split into events.
    text: String,
    /// A chunk-size line cut by the read timeout.
    size_line: String,
}

impl EventStream {
    /// `GET path` on `127.0.0.1:port`; panics unless it answers 200 with
    /// an event stream.
    pub fn open(port: u16, path: &str, token: Option<&str>) -> EventStream {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{port}: {e}"));
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n{auth}\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(s);
        let mut head = String::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !head.ends_with("\r\n\r\n") {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) => panic!("GET {path}: connection closed in the headers: {head}"),
                Ok(_) => head.push_str(&line),
                Err(_) if Instant::now() < deadline => {}
                Err(e) => panic!("GET {path}: no headers within 30 s: {e}"),
            }
        }
        let status = head.split_whitespace().nth(1).unwrap_or("");
        assert_eq!(status, "200", "GET {path}: {head}");
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains("content-type: text/event-stream"),
            "GET {path} is not an event stream: {head}"
        );
        assert!(
            lower.contains("transfer-encoding: chunked"),
            "this reader expects a chunked stream: {head}"
        );
        EventStream {
            reader,
            text: String::new(),
            size_line: String::new(),
        }
    }

    /// Reads one chunk into `text`; false at the end of the stream.
    fn read_chunk(&mut self) -> std::io::Result<bool> {
        if self.reader.read_line(&mut self.size_line)? == 0 {
            return Ok(false);
        }
        if !self.size_line.ends_with('\n') {
            return Ok(true);
        }
        let size = std::mem::take(&mut self.size_line);
        let n = usize::from_str_radix(size.trim(), 16).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("chunk size {size:?}: {e}"),
            )
        })?;
        if n == 0 {
            return Ok(false);
        }
        let mut buf = vec![0u8; n + 2];
        let mut got = 0;
        // A chunk split by the read timeout is completed, not dropped.
        while got < buf.len() {
            match self.reader.read(&mut buf[got..]) {
                Ok(0) => return Ok(false),
                Ok(k) => got += k,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => return Err(e),
            }
        }
        self.text.push_str(&String::from_utf8_lossy(&buf[..n]));
        Ok(true)
    }

    /// The next event as (name, data), or None at the deadline or the end.
    pub fn next_event(&mut self, deadline: Instant) -> Option<(String, String)> {
        loop {
            if let Some(cut) = self.text.find("\n\n") {
                let block: String = self.text.drain(..cut + 2).collect();
                let mut event = "message".to_string();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim().to_string();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.strip_prefix(' ').unwrap_or(d));
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((event, data));
            }
            if Instant::now() > deadline {
                return None;
            }
            match self.read_chunk() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("event stream: {e}"),
            }
        }
    }

    /// The first `summary` event whose data satisfies `pred`; panics after
    /// `timeout` with the last one seen.
    pub fn wait_summary(
        &mut self,
        timeout: Duration,
        what: &str,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        let mut count = 0;
        while let Some((event, data)) = self.next_event(deadline) {
            if event != "summary" {
                continue;
            }
            count += 1;
            let v: Value = serde_json::from_str(&data)
                .unwrap_or_else(|e| panic!("summary is not JSON ({e}): {data}"));
            if pred(&v) {
                return v;
            }
            last = v;
        }
        panic!(
            "timed out after {timeout:?} waiting for {what}; {count} summaries, the last: {last}"
        )
    }
}
