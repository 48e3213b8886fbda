//! The measuring publisher both phases share.

use crate::measure::thread_cpu;
use crate::workload::Msg;
use anyhow::{anyhow, bail, Result};
use jicha_testkit::mqtt_options;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) struct PubResult {
    pub(crate) first: Instant,
    /// When each message was handed to the client (same index as the messages).
    pub(crate) sent_at: Vec<Instant>,
    pub(crate) last_sent: Instant,
    pub(crate) last_ack: Option<Instant>,
    pub(crate) acks: u64,
    pub(crate) cpu_ticks: Option<u64>,
}

/// Publishes every message with QoS 1 from its own thread and runtime, as
/// fast as the broker takes them (or paced at `rate` records/s), then waits
/// for the PUBACKs. The client's request queue is short (100), so the
/// instant a message is handed over is within a few ms of it hitting the wire.
pub(crate) fn publisher(
    port: u16,
    msgs: Arc<Vec<Msg>>,
    rate: f64,
    id: &'static str,
    timeout: Duration,
) -> std::thread::JoinHandle<Result<PubResult>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let cpu0 = thread_cpu();
            let mut o = mqtt_options(id, port);
            o.set_inflight(10_000);
            let (client, mut el) = AsyncClient::new(o, 100);
            let total = msgs.len() as u64;
            let acks = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let last_ack: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
            let (up_tx, up_rx) = tokio::sync::oneshot::channel::<()>();
            let (a2, l2) = (Arc::clone(&acks), Arc::clone(&last_ack));
            let driver = tokio::spawn(async move {
                let mut up = Some(up_tx);
                loop {
                    match el.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            if let Some(t) = up.take() {
                                let _ = t.send(());
                            }
                        }
                        Ok(Event::Incoming(Packet::PubAck(_))) => {
                            if a2.fetch_add(1, Ordering::Relaxed) + 1 == total {
                                if let Ok(mut l) = l2.lock() {
                                    *l = Some(Instant::now());
                                }
                            }
                        }
                        Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return Ok(()),
                        Ok(_) => {}
                        Err(e) => return Err(anyhow!("publisher connection: {e}")),
                    }
                }
            });
            tokio::time::timeout(Duration::from_secs(10), up_rx)
                .await
                .map_err(|_| anyhow!("publisher: no CONNACK from Mosquitto within 10 s"))?
                .map_err(|_| anyhow!("publisher: connection failed"))?;
            let mut sent_at = Vec::with_capacity(msgs.len());
            let first = Instant::now();
            let mut cum = 0u64;
            for m in msgs.iter() {
                if rate > 0.0 {
                    let due = first + Duration::from_secs_f64(cum as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                cum += m.records;
                client
                    .publish_bytes(
                        m.publish.topic.clone(),
                        QoS::AtLeastOnce,
                        false,
                        m.publish.payload.clone(),
                    )
                    .await
                    .map_err(|e| anyhow!("publish: {e}"))?;
                sent_at.push(Instant::now());
            }
            let last_sent = Instant::now();
            let deadline = Instant::now() + timeout;
            while acks.load(Ordering::Relaxed) < total
                && Instant::now() < deadline
                && !driver.is_finished()
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let _ = client.disconnect().await;
            let driven = tokio::time::timeout(Duration::from_secs(5), driver).await;
            let got = acks.load(Ordering::Relaxed);
            if got < total {
                let why = match driven {
                    Ok(Ok(Err(e))) => e.to_string(),
                    _ => "timed out".into(),
                };
                bail!("publisher: only {got} of {total} PUBACKs ({why})");
            }
            let last_ack = last_ack.lock().ok().and_then(|l| *l);
            Ok(PubResult {
                first,
                sent_at,
                last_sent,
                last_ack,
                acks: got,
                cpu_ticks: cpu0.zip(thread_cpu()).map(|(a, b)| b - a),
            })
        })
    })
}

pub(crate) async fn join<T: Send + 'static>(h: std::thread::JoinHandle<Result<T>>) -> Result<T> {
    tokio::task::spawn_blocking(move || h.join())
        .await
        .map_err(|e| anyhow!("join: {e}"))?
        .map_err(|_| anyhow!("a benchmark thread panicked"))?
}
