//! The event log sink: one JSON object per event and line, appended to a
//! file and synced before the delivery counts. A crash can leave a batch
//! in the file whose delivery was not yet recorded; it is appended again
//! after the restart with the same ids, so [`read_deduplicated`] keeps the
//! first copy of each id. A line torn by a crash mid-write is closed before
//! the next append and skipped by the reader.

use futures::future::BoxFuture;
use jicha_pipeline::outbox::{EventId, OutboxEvent, Sink, SinkError};
use std::collections::BTreeMap;
use std::io::{BufRead, SeekFrom};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

pub struct EventLog {
    name: String,
    path: PathBuf,
}

impl EventLog {
    pub fn new(name: String, path: PathBuf) -> Result<EventLog, SinkError> {
        if path.as_os_str().is_empty() {
            return Err(SinkError::Config(format!(
                "sink {name}: `path` is empty; give the event log file's path"
            )));
        }
        Ok(EventLog { name, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn append(&self, events: &[OutboxEvent]) -> Result<(), String> {
        let mut lines = Vec::with_capacity(events.len() * 320);
        for e in events {
            serde_json::to_writer(&mut lines, e).map_err(|e| format!("serialise event: {e}"))?;
            lines.push(b'\n');
        }
        let io = |what: &str, e: std::io::Error| {
            format!(
                "{what} {}: {e}; check the directory exists and is writable",
                self.path.display()
            )
        };
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)
            .await
            .map_err(|e| io("cannot open", e))?;
        let len = f.metadata().await.map_err(|e| io("cannot stat", e))?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            f.seek(SeekFrom::End(-1))
                .await
                .map_err(|e| io("cannot seek in", e))?;
            f.read_exact(&mut last)
                .await
                .map_err(|e| io("cannot read", e))?;
            if last[0] != b'\n' {
                lines.insert(0, b'\n');
            }
        }
        f.write_all(&lines)
            .await
            .map_err(|e| io("cannot append to", e))?;
        f.flush().await.map_err(|e| io("cannot flush", e))?;
        f.sync_data().await.map_err(|e| io("cannot sync", e))?;
        Ok(())
    }
}

impl Sink for EventLog {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "event_log"
    }

    fn deliver<'a>(&'a self, events: &'a [OutboxEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            self.append(events)
                .await
                .map_err(|message| SinkError::Delivery {
                    sink: self.name.clone(),
                    message,
                })
        })
    }
}

/// An event log as read back, one entry per event id.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EventLogContents {
    /// In id order; the first copy of each id.
    pub events: Vec<OutboxEvent>,
    /// Copies dropped because their id came before (repeated deliveries).
    pub duplicates: usize,
    /// Ids whose copies differ: never expected, a copy is the same event.
    pub conflicts: Vec<EventId>,
    /// Lines that are not an event (a line torn by a crash mid-write).
    pub unreadable: usize,
}

/// Reads an event log, keeping each event id once.
pub fn read_deduplicated(path: &Path) -> std::io::Result<EventLogContents> {
    let file = std::fs::File::open(path)?;
    let mut by_id: BTreeMap<EventId, OutboxEvent> = BTreeMap::new();
    let mut out = EventLogContents::default();
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(e) = serde_json::from_str::<OutboxEvent>(&line) else {
            out.unreadable += 1;
            continue;
        };
        match by_id.get(&e.id) {
            Some(first) => {
                out.duplicates += 1;
                if *first != e && !out.conflicts.contains(&e.id) {
                    out.conflicts.push(e.id);
                }
            }
            None => {
                by_id.insert(e.id, e);
            }
        }
    }
    out.events = by_id.into_values().collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jicha_pipeline::ids::CustomerId;
    use jicha_pipeline::outbox::EventKind;
    use jicha_pipeline::theme::Severity;
    use jicha_pipeline::workorder::{HistoryAction, Status};

    fn event(id: u64) -> OutboxEvent {
        OutboxEvent {
            id: EventId(id),
            kind: EventKind::StateChanged,
            at: 1_793_000_000_000 + id as i64,
            workorder_id: format!("WO{id:010}"),
            theme: "over_capacity".into(),
            customer_id: CustomerId::new("C1"),
            org_code: "41/4107".into(),
            severity: Severity::High,
            from: Status::Open,
            to: Status::Dispatched,
            action: HistoryAction::Dispatch,
            actor: Some("ops".into()),
            hits: 1,
            escalation: Default::default(),
            window_start: None,
            window_end: None,
            assigned_org: Some("41".into()),
            estimated_loss_yuan: Some("12.50".parse().unwrap()),
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("jicha-event-log-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("events.jsonl");
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn repeated_deliveries_and_torn_lines_read_back_once_each() {
        let path = temp_path("dedup");
        let log = EventLog::new("log".into(), path.clone()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            log.deliver(&[event(1), event(2)]).await.unwrap();
            // A crash before progress was recorded: the batch comes again.
            log.deliver(&[event(1), event(2)]).await.unwrap();
        });
        // A crash mid-write leaves half a line.
        let mut torn = serde_json::to_string(&event(3)).unwrap();
        torn.truncate(40);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, torn.as_bytes()))
            .unwrap();
        rt.block_on(async { log.deliver(&[event(3)]).await.unwrap() });

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 6, "{text}");
        let got = read_deduplicated(&path).unwrap();
        assert_eq!(got.events, vec![event(1), event(2), event(3)]);
        assert_eq!(
            (got.duplicates, got.unreadable, got.conflicts.len()),
            (2, 1, 0)
        );
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["kind"], "state_changed");
        assert_eq!(line["id"], 1);
        assert_eq!(line["estimated_loss_yuan"], "12.50");
    }

    #[test]
    fn a_copy_that_differs_is_reported() {
        let path = temp_path("conflict");
        let mut other = event(1);
        other.hits = 9;
        let text = format!(
            "{}\n{}\n",
            serde_json::to_string(&event(1)).unwrap(),
            serde_json::to_string(&other).unwrap()
        );
        std::fs::write(&path, text).unwrap();
        let got = read_deduplicated(&path).unwrap();
        assert_eq!(got.events, vec![event(1)]);
        assert_eq!(got.conflicts, vec![EventId(1)]);
    }
}
