//! Phase (a): Mosquitto → a bare rumqttc subscriber, the broker's own
//! ceiling on this machine.

use crate::args::Args;
use crate::measure::*;
use crate::publisher::{join, publisher};
use crate::workload::Msg;
use crate::Env;
use anyhow::{anyhow, bail, Result};
use jicha_testkit::mqtt_options;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) struct SubResult {
    pub(crate) received: u64,
    pub(crate) last: Option<Instant>,
    pub(crate) cpu_ticks: Option<u64>,
}

/// The bare subscriber of phase (a): QoS 1, clean session, automatic acks,
/// `meter/#`; counts messages until it has `expected` of them.
pub(crate) fn subscriber(
    port: u16,
    expected: u64,
    ready: std::sync::mpsc::Sender<()>,
    timeout: Duration,
) -> std::thread::JoinHandle<Result<SubResult>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let (client, mut el) =
                AsyncClient::new(mqtt_options("bench-bare-subscriber", port), 100);
            client
                .subscribe("meter/#", QoS::AtLeastOnce)
                .await
                .map_err(|e| anyhow!("subscribe: {e}"))?;
            let mut deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            let mut received = 0u64;
            let mut last = None;
            let mut cpu0 = None;
            let mut subscribed = false;
            while received < expected {
                let ev = tokio::time::timeout_at(deadline, el.poll())
                    .await
                    .map_err(|_| {
                        anyhow!(
                            "bare subscriber: {} ({received} of {expected} messages received)",
                            if subscribed {
                                "timed out"
                            } else {
                                "no SUBACK within 10 s"
                            }
                        )
                    })?
                    .map_err(|e| anyhow!("bare subscriber connection: {e}"))?;
                match ev {
                    Event::Incoming(Packet::SubAck(_)) if !subscribed => {
                        subscribed = true;
                        deadline = tokio::time::Instant::now() + timeout;
                        cpu0 = thread_cpu();
                        let _ = ready.send(());
                    }
                    Event::Incoming(Packet::Publish(_)) => {
                        received += 1;
                        if received == expected {
                            last = Some(Instant::now());
                        }
                    }
                    _ => {}
                }
            }
            let cpu_ticks = cpu0.zip(thread_cpu()).map(|(a, b)| b - a);
            // Drive the loop a moment so the last PUBACKs go out, then leave.
            let _ = client.disconnect().await;
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while el.poll().await.is_ok() {}
            })
            .await;
            Ok(SubResult {
                received,
                last,
                cpu_ticks,
            })
        })
    })
}

pub(crate) async fn phase_a(
    env: &Env,
    msgs: &Arc<Vec<Msg>>,
    a: &Args,
    f: &mut Figures,
) -> Result<()> {
    let timeout = Duration::from_secs(a.timeout);
    let (tx, rx) = std::sync::mpsc::channel();
    let sub = subscriber(env.svc.mqtt_port, msgs.len() as u64, tx, timeout);
    let ready =
        tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(15))).await?;
    if ready.is_err() {
        join(sub).await?;
        bail!("bare subscriber did not get its SUBACK");
    }
    let (m0, c0, s0) = (
        env.svc.mosquitto_pid().and_then(proc_cpu),
        machine_cpu(),
        cpu_ticks("/proc/self/stat"),
    );
    let p = join(publisher(
        env.svc.mqtt_port,
        Arc::clone(msgs),
        a.rate,
        "bench-publisher-a",
        timeout,
    ))
    .await?;
    let s = join(sub).await?;
    let (m1, c1, s1) = (
        env.svc.mosquitto_pid().and_then(proc_cpu),
        machine_cpu(),
        cpu_ticks("/proc/self/stat"),
    );
    if s.received < msgs.len() as u64 {
        bail!(
            "bare subscriber received {} of {} messages",
            s.received,
            msgs.len()
        );
    }
    let last = s
        .last
        .ok_or_else(|| anyhow!("bare subscriber: no last message"))?;
    f.a_elapsed = Some(last.duration_since(p.first).as_secs_f64());
    f.a_publish = p.last_ack.map(|t| t.duration_since(p.first).as_secs_f64());
    f.a_sub_cpu = s.cpu_ticks.map(|t| t as f64 / env.tck);
    f.a_pub_cpu = p.cpu_ticks.map(|t| t as f64 / env.tck);
    f.a_mosq_cpu = m0.zip(m1).map(|(x, y)| (y - x) as f64 / env.tck);
    f.a_busy = busy_pct(c0, c1);
    f.a_bench_cpu = s0.zip(s1).map(|(x, y)| (y - x) as f64 / env.tck);
    f.a_others_cpu = others(c0, c1, &[m0.zip(m1), s0.zip(s1)], env.tck);
    let _ = (p.acks, p.last_sent);
    Ok(())
}
