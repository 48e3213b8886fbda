//! MQTT source: a persistent session (clean session off, QoS 1) whose
//! messages are acknowledged only after the monitor has committed their
//! effect, so a crash before the commit means the broker delivers them again.
//!
//! This module is the transport only (connection, subscriptions, the poller,
//! the ack queue) and the topic → stream routes; the micro-batch loop is
//! the transport-independent [`jicha_pipeline::runner`].

mod acks;
mod source;
mod url;

pub use source::{MqttAcks, MqttSource, Session, SourceGauges};
pub use url::BrokerUrl;

use anyhow::Result;
use jicha_pipeline::runner::{self, BatchSettings, TopicRoutes};
use jicha_pipeline::Monitor;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub url: String,
    pub client_id: String,
    /// Messages per micro-batch at most.
    pub batch_messages: usize,
    /// How long a micro-batch may wait to fill.
    pub batch_wait: Duration,
    /// Topic filters subscribed to, and the stream each feeds.
    pub routes: TopicRoutes,
}

impl Default for SourceSettings {
    fn default() -> Self {
        Self {
            url: "mqtt://127.0.0.1:1883".into(),
            client_id: "jicha".into(),
            batch_messages: 1000,
            batch_wait: Duration::from_millis(50),
            routes: TopicRoutes::default(),
        }
    }
}

impl SourceSettings {
    fn batches(&self) -> BatchSettings {
        BatchSettings {
            max_messages: self.batch_messages.max(1),
            max_wait: self.batch_wait,
        }
    }
}

/// Connects and subscribes; fails with one clear error when the broker is
/// unreachable. Returns the running source; it ends when `shutdown` flips.
pub async fn start(
    monitor: Arc<Monitor>,
    s: SourceSettings,
    shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>> {
    let gauges = SourceGauges {
        acks_sent: monitor.metrics.acks_sent.with_label_values(&["mqtt"]),
        connected: monitor
            .metrics
            .source_connected
            .with_label_values(&["mqtt"]),
    };
    let (source, session) = MqttSource::connect(&s, gauges, shutdown.clone()).await?;
    let batches = s.batches();
    Ok(tokio::spawn(async move {
        let report = runner::run(monitor, source, batches, shutdown).await;
        tracing::info!(
            messages = report.messages,
            all_committed = report.all_committed,
            "MQTT input stopped"
        );
        session.close().await;
    }))
}
