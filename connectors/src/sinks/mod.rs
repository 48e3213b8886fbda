//! Outbox sinks (`jicha_pipeline::outbox::Sink`) and their configuration:
//! `[[sinks]]` tables in `jicha.toml`, each chosen by `kind`, like Vector's
//! sinks. Only the JSON-lines event log exists so far; webhooks and
//! Alertmanager are to follow.

pub mod event_log;

use jicha_pipeline::outbox::{Sink, SinkError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// One `[[sinks]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// Appends one JSON object per event and line to `path`.
    EventLog {
        path: PathBuf,
        /// Delivery progress is kept under this name (default
        /// `event_log:{path}`); renaming a sink starts it afresh.
        #[serde(default)]
        name: Option<String>,
    },
}

impl SinkConfig {
    pub fn build(&self) -> Result<Arc<dyn Sink>, SinkError> {
        match self {
            SinkConfig::EventLog { path, name } => {
                let name = name
                    .clone()
                    .unwrap_or_else(|| format!("event_log:{}", path.display()));
                Ok(Arc::new(event_log::EventLog::new(name, path.clone())?))
            }
        }
    }
}

/// The configured sinks, built.
pub fn build_all(configs: &[SinkConfig]) -> Result<Vec<Arc<dyn Sink>>, SinkError> {
    configs.iter().map(SinkConfig::build).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        sinks: Vec<SinkConfig>,
    }

    fn parse(text: &str) -> Result<Vec<SinkConfig>, String> {
        serde_json::from_str::<File>(text)
            .map(|f| f.sinks)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn sinks_are_chosen_by_kind_and_unknown_fields_refused() {
        assert_eq!(
            parse(r#"{"sinks":[{"kind":"event_log","path":"events.jsonl"}]}"#).unwrap(),
            vec![SinkConfig::EventLog {
                path: "events.jsonl".into(),
                name: None
            }]
        );
        let typo = parse(r#"{"sinks":[{"kind":"event_log","path":"e","pth":"x"}]}"#);
        assert!(typo.unwrap_err().contains("pth"));
        let kind = parse(r#"{"sinks":[{"kind":"webhook","url":"http://x"}]}"#);
        assert!(kind.unwrap_err().contains("webhook"));
        let sink = SinkConfig::EventLog {
            path: "/tmp/e.jsonl".into(),
            name: None,
        }
        .build()
        .unwrap();
        assert_eq!(sink.name(), "event_log:/tmp/e.jsonl");
    }
}
