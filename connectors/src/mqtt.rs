//! MQTT source: a persistent session (clean session off, QoS 1) whose
//! messages are acknowledged only after the monitor has committed their
//! effect, so a crash before the commit means the broker delivers them again.

use anyhow::{anyhow, bail, Context, Result};
use jicha_pipeline::records::Stream;
use jicha_pipeline::Monitor;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS, Transport};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

#[derive(Debug, Clone)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl BrokerUrl {
    /// `mqtt://[user:pass@]host[:port]` or `mqtts://…` for TLS.
    pub fn parse(url: &str) -> Result<BrokerUrl> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| anyhow!("MQTT URL {url:?} must start with mqtt:// or mqtts://"))?;
        let tls = match scheme {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            _ => bail!("MQTT URL {url:?}: scheme {scheme:?} is not mqtt:// or mqtts://"),
        };
        let rest = rest.trim_end_matches('/');
        let (cred, hostport) = match rest.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| anyhow!("MQTT URL {url:?}: port {p:?} is not a number"))?,
            ),
            None => (hostport.to_string(), if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            bail!("MQTT URL {url:?} has no host");
        }
        let (username, password) = match cred.map(|c| c.split_once(':').unwrap_or((c, ""))) {
            Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
            None => (None, None),
        };
        Ok(BrokerUrl {
            host,
            port,
            tls,
            username,
            password,
        })
    }

    pub fn options(&self, client_id: &str, clean_session: bool) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, self.host.clone(), self.port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_clean_session(clean_session);
        // The limit that matters is jicha's own max_payload_bytes, which
        // rejects with a dead letter; a smaller client limit would drop the
        // connection on every redelivery of an oversized message instead.
        o.set_max_packet_size(256 * 1024 * 1024, 16 * 1024 * 1024);
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            o.set_credentials(u.clone(), p.clone());
        }
        if self.tls {
            let _ = rustls::crypto::ring::default_provider().install_default();
            o.set_transport(Transport::tls_with_default_config());
        }
        o
    }
}

#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub url: String,
    pub client_id: String,
    /// Messages per micro-batch at most.
    pub batch_messages: usize,
    /// How long a micro-batch may wait to fill.
    pub batch_wait: Duration,
}

impl Default for SourceSettings {
    fn default() -> Self {
        Self {
            url: "mqtt://127.0.0.1:1883".into(),
            client_id: "jicha".into(),
            batch_messages: 1000,
            batch_wait: Duration::from_millis(50),
        }
    }
}

/// Connects and subscribes; fails with one clear error when the broker is
/// unreachable. Returns the running source; it ends when `shutdown` flips.
pub async fn start(
    monitor: Arc<Monitor>,
    s: SourceSettings,
    shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let url = BrokerUrl::parse(&s.url)?;
    let mut opts = url.options(&s.client_id, false);
    opts.set_manual_acks(true);
    opts.set_inflight(100);
    // Acks go through the client's request channel, drained only while the
    // poller polls. The poller stops polling while the batch channel is full,
    // so the request channel must hold an ack for every message that can be
    // outstanding (batch channel + the batch in hand), or the two would wait
    // on each other.
    let channel = 4 * s.batch_messages.max(1);
    let (client, mut eventloop) =
        AsyncClient::new(opts, 2 * (channel + s.batch_messages.max(1)) + 16);
    // First contact: a refused or silent broker is a start-up error.
    let connack = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => continue,
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    match connack {
        Ok(Ok(())) => {}
        Ok(Err(e)) => bail!(
            "cannot connect to the MQTT broker at {}: {e}; check --mqtt and that the broker runs",
            s.url
        ),
        Err(_) => bail!(
            "the MQTT broker at {} did not answer within 10 s; check --mqtt",
            s.url
        ),
    }
    subscribe(&client).await?;
    // Bounded: when the monitor is slow, the event loop stops polling, the
    // broker stops sending past its in-flight window, memory stays flat.
    let (tx, rx) = mpsc::channel::<Publish>(channel);
    let poll_client = client.clone();
    let mut poll_shutdown = shutdown.clone();
    let poller = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = poll_shutdown.changed() => break,
                ev = eventloop.poll() => match ev {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send(p).await.is_err() {
                            break;
                        }
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        tracing::info!("reconnected to the MQTT broker; subscribing again");
                        if let Err(e) = subscribe(&poll_client).await {
                            tracing::error!(error = %e, "resubscribe failed");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "MQTT connection lost; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
        // Let the batcher see the end of input.
        drop(tx);
        // Drive the event loop a little longer so the final acks go out.
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                if eventloop.poll().await.is_err() {
                    break;
                }
            }
        })
        .await;
    });
    let handle = tokio::spawn(async move {
        batch_loop(monitor, client.clone(), rx, s, shutdown).await;
        let _ = client.disconnect().await;
        let _ = poller.await;
    });
    Ok(handle)
}

async fn subscribe(client: &AsyncClient) -> Result<()> {
    for s in Stream::ALL {
        client
            .subscribe(s.topic_filter(), QoS::AtLeastOnce)
            .await
            .with_context(|| format!("subscribing to {}", s.topic_filter()))?;
    }
    Ok(())
}

async fn batch_loop(
    monitor: Arc<Monitor>,
    client: AsyncClient,
    mut rx: mpsc::Receiver<Publish>,
    s: SourceSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut batch: Vec<Publish> = Vec::with_capacity(s.batch_messages);
    loop {
        let Some(first) = rx.recv().await else { break };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + s.batch_wait;
        while batch.len() < s.batch_messages {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(p)) => batch.push(p),
                _ => break,
            }
        }
        let msgs: Vec<(String, Vec<u8>)> = batch
            .iter()
            .map(|p| (p.topic.clone(), p.payload.to_vec()))
            .collect();
        let mut delay = Duration::from_millis(200);
        let mut result = monitor.ingest(&msgs).await.map(|_| ());
        // The backend is down: keep the batch unacknowledged and retry the
        // commit; input pauses meanwhile (backpressure, bounded memory).
        while let Err(e) = result {
            tracing::warn!(error = %e, "commit failed; retrying, input paused");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => {
                    // Unacknowledged, so the broker delivers the batch again
                    // to the next session: nothing is lost by stopping here.
                    tracing::warn!(messages = batch.len(), "shutting down with an uncommitted batch; the broker will redeliver it");
                    return;
                }
            }
            delay = (delay * 2).min(Duration::from_secs(5));
            result = monitor.retry_flush().await.map_err(Into::into);
        }
        for p in batch.drain(..) {
            if let Err(e) = client.ack(&p).await {
                tracing::warn!(error = %e, "ack failed; the broker will redeliver (harmless: records are keyed)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = BrokerUrl::parse("mqtt://127.0.0.1:1884").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("127.0.0.1", 1884, false));
        let u = BrokerUrl::parse("mqtts://user:pw@broker.example").unwrap();
        assert_eq!(
            (u.port, u.tls, u.username.as_deref()),
            (8883, true, Some("user"))
        );
        assert!(BrokerUrl::parse("http://x").is_err());
        assert!(BrokerUrl::parse("mqtt://x:notaport").is_err());
    }
}
