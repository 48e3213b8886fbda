//! MQTT source: a persistent session (clean session off, QoS 1) whose
//! messages are acknowledged only after the monitor has committed their
//! effect, so a crash before the commit means the broker delivers them again.

mod acks;

use acks::AckQueue;
use anyhow::{anyhow, bail, Result};
use jicha_pipeline::decode::DecodedMessage;
use jicha_pipeline::records::Stream;
use jicha_pipeline::state::StateError;
use jicha_pipeline::{Monitor, StagedCommit};
use rumqttc::{
    AsyncClient, Event, MqttOptions, Packet, Publish, QoS, Request, Subscribe, Transport,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

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
) -> Result<JoinHandle<()>> {
    let url = BrokerUrl::parse(&s.url)?;
    let mut opts = url.options(&s.client_id, false);
    opts.set_manual_acks(true);
    opts.set_inflight(100);
    // Room for about two batches of acks; more wait in the AckQueue, so this
    // size does not decide whether the source keeps going.
    let (client, mut eventloop) = AsyncClient::new(opts, 2 * s.batch_messages.max(1) + 16);
    let acks = Arc::new(AckQueue::default());
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
    eventloop.pending.extend(subscriptions());
    // Bounded: when the monitor is slow, the event loop stops polling, the
    // broker stops sending past its in-flight window, memory stays flat.
    let (tx, rx) = mpsc::channel::<Publish>(4 * s.batch_messages.max(1));
    let mut poll_shutdown = shutdown.clone();
    let poll_acks = acks.clone();
    let poll_client = client.clone();
    let poller = tokio::spawn(async move {
        loop {
            poll_acks.refill(&poll_client);
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
                        // Straight into the event loop: the request channel
                        // may be full of acks, and only this task drains it.
                        eventloop.pending.extend(subscriptions());
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
                poll_acks.refill(&poll_client);
                if eventloop.poll().await.is_err() {
                    break;
                }
            }
        })
        .await;
    });
    // Decoding runs beside evaluation: one decoded batch waits at most.
    let (decoded_tx, decoded_rx) = mpsc::channel::<DecodedBatch>(1);
    tokio::spawn(decode_loop(rx, decoded_tx, s.clone(), monitor.clone()));
    let handle = tokio::spawn(async move {
        batch_loop(monitor, &client, &acks, decoded_rx, shutdown).await;
        // Never waits: the poller may already have stopped draining requests.
        let _ = client.try_disconnect();
        let _ = poller.await;
    });
    Ok(handle)
}

fn subscriptions() -> impl Iterator<Item = Request> {
    Stream::ALL
        .into_iter()
        .map(|s| Request::Subscribe(Subscribe::new(s.topic_filter(), QoS::AtLeastOnce)))
}

/// The messages of one micro-batch (kept for their acknowledgements) and
/// the same messages decoded.
type DecodedBatch = (Vec<Publish>, Vec<DecodedMessage>);

/// Gathers micro-batches and decodes them, off the async workers, while the
/// batch loop evaluates the batch before.
async fn decode_loop(
    mut rx: mpsc::Receiver<Publish>,
    tx: mpsc::Sender<DecodedBatch>,
    s: SourceSettings,
    monitor: Arc<Monitor>,
) {
    // Decoding is the heaviest stage per record: a batch is split over the
    // cores, so it is decoded in a fraction of the time the loop takes.
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get());
    while let Some(first) = rx.recv().await {
        let batch = fill_batch(first, &mut rx, &s).await;
        match decode_batch(&batch, parts, &monitor).await {
            Ok(decoded) => {
                if tx.send((batch, decoded)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // A decoder bug: stop taking input rather than skip the
                // batch. Nothing is lost: it is unacknowledged.
                tracing::error!(error = %e, "decoding a batch failed; input stopped, restart jicha (the broker redelivers the batch)");
                return;
            }
        }
    }
}

/// Decodes `batch` in up to `parts` pieces at once, in order.
async fn decode_batch(
    batch: &[Publish],
    parts: usize,
    monitor: &Monitor,
) -> Result<Vec<DecodedMessage>, tokio::task::JoinError> {
    let max_payload_bytes = monitor.config.max_payload_bytes;
    let meters = monitor.meter_index();
    let size = batch.len().div_ceil(parts.max(1)).max(1);
    let tasks: Vec<_> = batch
        .chunks(size)
        .map(|chunk| {
            // Cheap: a topic string and a reference to the payload each.
            let chunk = chunk.to_vec();
            let meters = meters.clone();
            tokio::task::spawn_blocking(move || {
                chunk
                    .into_iter()
                    .map(|p| {
                        DecodedMessage::decode(
                            p.topic,
                            p.payload.to_vec(),
                            max_payload_bytes,
                            Some(&meters),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut decoded = Vec::with_capacity(batch.len());
    for t in tasks {
        decoded.extend(t.await?);
    }
    Ok(decoded)
}

/// A batch's evaluation running, or its commit, with the messages it covers.
type Running<T> = Option<(JoinHandle<T>, Vec<Publish>)>;

/// Hands decoded micro-batches to the monitor as a pipeline: while batch
/// N+1 is accepted, batch N's themes are evaluated and batch N-1 is
/// committed. A message is acknowledged once a commit that includes its
/// changes has succeeded.
async fn batch_loop(
    monitor: Arc<Monitor>,
    client: &AsyncClient,
    acks: &AckQueue,
    mut rx: mpsc::Receiver<DecodedBatch>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut evaluating: Running<StagedCommit> = None;
    let mut committing: Running<Result<(), StateError>> = None;
    loop {
        // Wait for input; hand on whatever ends first meanwhile, so the
        // last batch before a pause is committed and acknowledged at once.
        let next = tokio::select! {
            staged = finished(&mut evaluating) => {
                let batch = evaluating.take().map(|(_, b)| b).unwrap_or_default();
                if !hand_over(&monitor, client, acks, staged, batch, &mut committing, &mut shutdown).await {
                    return;
                }
                continue;
            }
            ended = finished(&mut committing) => {
                let covered = committing.take().map(|(_, c)| c).unwrap_or_default();
                if !settle(&monitor, client, acks, failure(ended), &covered, &mut shutdown).await {
                    return;
                }
                continue;
            }
            m = rx.recv() => m,
        };
        // The next batch is accepted while the one before is evaluated.
        let next = match next {
            Some((batch, decoded)) => Some((monitor.ingest(decoded).await.1, batch)),
            None => None,
        };
        // Evaluations finish in order: the one before goes first.
        if !finish_evaluation(
            &monitor,
            client,
            acks,
            &mut evaluating,
            &mut committing,
            &mut shutdown,
        )
        .await
        {
            return;
        }
        let Some((evaluation, batch)) = next else {
            break;
        };
        evaluating = Some((tokio::spawn(evaluation.finish()), batch));
    }
    if let Some((commit, covered)) = committing {
        if failure(commit.await).is_none() {
            covered.iter().for_each(|p| acks.ack(client, p));
        }
    }
}

/// Waits for the running evaluation, if any, and hands it over to commit.
async fn finish_evaluation(
    monitor: &Monitor,
    client: &AsyncClient,
    acks: &AckQueue,
    evaluating: &mut Running<StagedCommit>,
    committing: &mut Running<Result<(), StateError>>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let Some((running, batch)) = evaluating.take() else {
        return true;
    };
    let staged = running.await;
    hand_over(monitor, client, acks, staged, batch, committing, shutdown).await
}

/// Ends when the running task does; never, if there is none.
async fn finished<T>(running: &mut Running<T>) -> Result<T, tokio::task::JoinError> {
    match running.as_mut() {
        Some((task, _)) => task.await,
        None => std::future::pending().await,
    }
}

/// Starts committing a finished evaluation's changes, once the commit
/// before (which its staging waited for) is settled. False when input must
/// stop: shutdown came first, or the evaluation task failed.
async fn hand_over(
    monitor: &Monitor,
    client: &AsyncClient,
    acks: &AckQueue,
    staged: Result<StagedCommit, tokio::task::JoinError>,
    batch: Vec<Publish>,
    committing: &mut Running<Result<(), StateError>>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let staged = match staged {
        Ok(s) => s,
        Err(e) => {
            // Nothing is lost: the batch is unacknowledged.
            tracing::error!(error = %e, "evaluating a batch failed; input stopped, restart jicha (the broker redelivers the batch)");
            return false;
        }
    };
    if let Some((commit, mut earlier)) = committing.take() {
        if let Some(error) = failure(commit.await) {
            // The earlier changes are still in the slot, ahead of this
            // batch's: retry both, input paused meanwhile.
            drop(staged);
            earlier.extend(batch);
            return settle(monitor, client, acks, Some(error), &earlier, shutdown).await;
        }
        earlier.iter().for_each(|p| acks.ack(client, p));
    }
    *committing = Some((tokio::spawn(staged.commit()), batch));
    true
}

/// The first message and whatever follows within `batch_wait`, up to
/// `batch_messages`.
async fn fill_batch(
    first: Publish,
    rx: &mut mpsc::Receiver<Publish>,
    s: &SourceSettings,
) -> Vec<Publish> {
    let mut batch = Vec::with_capacity(s.batch_messages);
    batch.push(first);
    let deadline = tokio::time::Instant::now() + s.batch_wait;
    while batch.len() < s.batch_messages {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(p)) => batch.push(p),
            _ => break,
        }
    }
    batch
}

fn failure(ended: Result<Result<(), StateError>, tokio::task::JoinError>) -> Option<String> {
    match ended {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(format!("commit task ended abnormally: {e}")),
    }
}

/// Acknowledges `covered` once committed: at once when the commit
/// succeeded, else after retrying (input paused: backpressure, bounded
/// memory). False when shutdown came first.
async fn settle(
    monitor: &Monitor,
    client: &AsyncClient,
    acks: &AckQueue,
    failure: Option<String>,
    covered: &[Publish],
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    if let Some(error) = failure {
        if !retry_until_committed(monitor, error, covered.len(), shutdown).await {
            return false;
        }
    }
    covered.iter().for_each(|p| acks.ack(client, p));
    true
}

/// Retries the monitor's commit with backoff while the backend is down.
/// False when shutdown came first: the messages stay unacknowledged, so the
/// broker delivers them again to the next session and nothing is lost.
async fn retry_until_committed(
    monitor: &Monitor,
    mut error: String,
    messages: usize,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let mut delay = Duration::from_millis(200);
    loop {
        tracing::warn!(%error, "commit failed; retrying, input paused");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => {
                tracing::warn!(messages, "shutting down with uncommitted messages; the broker will redeliver them");
                return false;
            }
        }
        delay = (delay * 2).min(Duration::from_secs(5));
        match monitor.retry_flush().await {
            Ok(()) => return true,
            Err(e) => error = e.to_string(),
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
