//! Replay source: a recorded JSON-lines file of MQTT traffic, one
//! `{"topic": …, "payload": "…"}` object per line (the acceptance stream
//! format), run through the same runner, routes and themes as live input,
//! e.g. to re-run a day of data.
//!
//! Lines are read in order on a blocking thread and handed on through a
//! bounded channel, so the file is never held in memory. A line that cannot
//! be read is a dead letter with its line number, never a stop. A message is
//! "acknowledged" once committed: the progress (last committed line) goes to
//! the log, and a re-run after a crash starts again from the top (records
//! are keyed, so repeating them is harmless).
//!
//! Plain files only: gzip is not among the dependencies; decompress first
//! (`gunzip -k stream.jsonl.gz`).

use jicha_pipeline::decode::{clip, Reason, Rejection};
use jicha_pipeline::records::Stream;
use jicha_pipeline::runner::{Acknowledge, Message, Source, TopicRoutes};
use serde::Deserialize;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A line's number in the file, from 1.
pub type LineNo = u64;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot open replay file {path}: {source}; check the FILE argument")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("replay file {path} is gzip-compressed; decompress it first (gunzip -k {path}): jicha replay reads plain JSON lines")]
    Compressed { path: PathBuf },
}

/// The lines of a recorded stream as a [`Source`].
pub struct ReplaySource {
    rx: mpsc::Receiver<Message<LineNo>>,
    progress: Arc<Progress>,
}

/// How far the replay has got.
#[derive(Debug, Default)]
pub struct Progress {
    /// Lines read so far (blank ones included).
    read: AtomicU64,
    /// Lines that could not be read as `{"topic","payload"}`.
    unreadable: AtomicU64,
    /// The last line whose effect has been committed.
    committed: AtomicU64,
}

impl Progress {
    pub fn lines_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
    pub fn unreadable(&self) -> u64 {
        self.unreadable.load(Ordering::Relaxed)
    }
    pub fn committed_through(&self) -> LineNo {
        self.committed.load(Ordering::Relaxed)
    }
}

/// Progress is logged each time another this many lines are committed.
const LOG_EVERY_LINES: u64 = 100_000;

/// The acknowledging half: records the last committed line.
#[derive(Clone)]
pub struct ReplayAcks {
    progress: Arc<Progress>,
}

impl Acknowledge<LineNo> for ReplayAcks {
    fn acknowledge(&self, acks: Vec<LineNo>) {
        let Some(&last) = acks.iter().max() else {
            return;
        };
        let before = self.progress.committed.fetch_max(last, Ordering::Relaxed);
        if last / LOG_EVERY_LINES > before / LOG_EVERY_LINES {
            tracing::info!(line = last, "replay: committed through line");
        }
    }
}

impl Source for ReplaySource {
    type Ack = LineNo;
    type Acknowledger = ReplayAcks;

    fn acknowledger(&self) -> ReplayAcks {
        ReplayAcks {
            progress: self.progress.clone(),
        }
    }

    /// Cancel-safe: a channel receive.
    async fn next(&mut self) -> Option<Message<LineNo>> {
        self.rx.recv().await
    }
}

impl ReplaySource {
    /// Opens `path` and starts reading it; each line's topic is routed with
    /// `routes` (the live MQTT routes, to replay recorded MQTT traffic).
    pub fn open(path: &Path, routes: TopicRoutes) -> Result<ReplaySource, ReplayError> {
        let open_err = |source| ReplayError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(open_err)?;
        let mut magic = [0u8; 2];
        let n = file.read(&mut magic).map_err(open_err)?;
        if n == 2 && magic == [0x1f, 0x8b] {
            return Err(ReplayError::Compressed {
                path: path.to_path_buf(),
            });
        }
        let file = std::fs::File::open(path).map_err(open_err)?;
        let progress = Arc::new(Progress::default());
        // Bounded: the reader waits while the runner is busy.
        let (tx, rx) = mpsc::channel(4096);
        let name = path.display().to_string();
        let reader_progress = progress.clone();
        std::thread::Builder::new()
            .name("jicha-replay".into())
            .spawn(move || read_lines(file, &name, &routes, &reader_progress, tx))
            .map_err(open_err)?;
        Ok(ReplaySource { rx, progress })
    }

    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }
}

/// Reads `file` line by line into `tx` until its end, a read error (logged:
/// the replay then ends there) or the runner no longer listening.
fn read_lines(
    file: std::fs::File,
    name: &str,
    routes: &TopicRoutes,
    progress: &Progress,
    tx: mpsc::Sender<Message<LineNo>>,
) {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    let mut line_no: LineNo = 0;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(file = name, line = line_no + 1, error = %e, "cannot read the replay file further; the replay ends here");
                return;
            }
        }
        line_no += 1;
        progress.read.store(line_no, Ordering::Relaxed);
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let message = message_of(&buf, name, line_no, routes);
        if message.payload.is_err() {
            progress.unreadable.fetch_add(1, Ordering::Relaxed);
        }
        if tx.blocking_send(message).is_err() {
            return;
        }
    }
}

/// One recorded MQTT message.
#[derive(Deserialize)]
struct Line {
    topic: String,
    payload: String,
}

/// The message of one line; an unreadable line becomes a refused message
/// whose dead letter names the file and line.
fn message_of(line: &[u8], file: &str, line_no: LineNo, routes: &TopicRoutes) -> Message<LineNo> {
    match serde_json::from_slice::<Line>(line) {
        Ok(Line { topic, payload }) => Message {
            stream: routes.stream_of(&topic),
            origin: topic,
            payload: Ok(payload.into_bytes()),
            ack: line_no,
        },
        Err(e) => {
            let text = String::from_utf8_lossy(line);
            let text = text.trim_end();
            Message {
                stream: recorded_stream(text, routes),
                origin: format!("{file}:{line_no}"),
                payload: Err(Rejection {
                    reason: Reason::MalformedJson,
                    detail: format!(
                        "line {line_no} of {file} is not a JSON object with string fields \"topic\" and \"payload\" ({e}); fix the line and replay again"
                    ),
                    raw: clip(text),
                }),
                ack: line_no,
            }
        }
    }
}

/// The stream of an unreadable line, if its topic can still be made out,
/// so its dead letter is filed under that stream; otherwise None (and the
/// line counts as an unknown topic: none could be read).
fn recorded_stream(text: &str, routes: &TopicRoutes) -> Option<Stream> {
    let after = &text[text.find("\"topic\"")? + "\"topic\"".len()..];
    let topic = after
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    routes.stream_of(topic.split('"').next()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Message<LineNo>> {
        let dir = std::env::temp_dir().join(format!("jicha-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.jsonl", text.len()));
        std::fs::write(&path, text).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut source = ReplaySource::open(&path, TopicRoutes::default()).unwrap();
        let out = rt.block_on(async {
            let mut out = Vec::new();
            while let Some(m) = source.next().await {
                out.push(m);
            }
            out
        });
        assert_eq!(source.progress().lines_read(), text.lines().count() as u64);
        out
    }

    #[test]
    fn lines_become_routed_messages_and_bad_lines_refusals_with_their_number() {
        let text = concat!(
            r#"{"topic": "meter/load/T1", "payload": "{\"meter_id\": \"M1\"}"}"#,
            "\n\n",
            r#"{"topic": "meter/freeze/T1", "payload": 5}"#,
            "\n",
            "not json at all\n",
            r#"{"topic": "elsewhere/x", "payload": "[]"}"#,
            "\r\n",
            r#"{"topic": "meter/event/T1", "payload": "{}"}"#,
        );
        let m = read(text);
        let summary: Vec<_> = m
            .iter()
            .map(|m| (m.ack, m.stream, m.origin.clone(), m.payload.is_ok()))
            .collect();
        let file = |n: u64| {
            let dir = std::env::temp_dir().join(format!("jicha-replay-{}", std::process::id()));
            format!(
                "{}:{n}",
                dir.join(format!("{}.jsonl", text.len())).display()
            )
        };
        assert_eq!(
            summary,
            [
                (1, Some(Stream::Load), "meter/load/T1".to_string(), true),
                (3, Some(Stream::Freeze), file(3), false),
                (4, None, file(4), false),
                (5, None, "elsewhere/x".to_string(), true),
                (6, Some(Stream::Event), "meter/event/T1".to_string(), true),
            ]
        );
        assert_eq!(m[0].payload.as_ref().unwrap(), br#"{"meter_id": "M1"}"#);
        let bad = m[1].payload.as_ref().unwrap_err();
        assert_eq!(bad.reason, Reason::MalformedJson);
        assert!(bad.detail.starts_with("line 3 of "), "{}", bad.detail);
        assert_eq!(bad.raw, r#"{"topic": "meter/freeze/T1", "payload": 5}"#);
    }

    #[test]
    fn a_gzip_file_is_refused_with_what_to_do() {
        let path = std::env::temp_dir().join(format!("jicha-replay-{}.gz", std::process::id()));
        std::fs::write(&path, [0x1f, 0x8b, 8, 0]).unwrap();
        let err = ReplaySource::open(&path, TopicRoutes::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("gunzip"), "{err}");
        assert!(
            ReplaySource::open(Path::new("/nonexistent/x.jsonl"), TopicRoutes::default()).is_err()
        );
    }
}
