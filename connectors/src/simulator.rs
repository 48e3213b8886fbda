//! The data simulator of `jicha demo`: a fleet of customers and meters
//! (the archive, interfaces.md §3) publishing 15-minute load points, daily
//! freezes and meter events over MQTT (§2), with every streaming audit theme
//! (themes.md) planted on its own customer, near misses that must stay
//! silent, and a few malformed records that must be rejected.
//!
//! Everything is a pure function of [`SimOptions`]: the same seed gives the
//! same archive and the same bytes on the wire. Powers and registers are
//! integer hundredths, so a freeze's register delta × multiplier is exactly
//! Σ p_kw × 0.25 h of the day's points.

mod curves;
mod days;
mod fleet;
mod plan;
mod rng;
mod wire;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use anyhow::{anyhow, bail, Context};
use chrono::NaiveDate;
use rumqttc::{AsyncClient, Event as MqttEvent, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::watch;
use tokio::time::Instant;

use curves::SLOTS;
use wire::Message;

/// How the simulated fleet looks and how fast it publishes.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Customers in the archive (default 200); the planted scenarios need 13.
    pub customers: usize,
    /// Seed of everything random: same seed, same data.
    pub seed: u64,
    /// First business day of the run (+08:00). The default, 2026-06-01, is
    /// the first of a month (month-to-date themes start clean) and a Monday.
    pub start_date: NaiveDate,
    /// Business days to publish; 0 = run until stopped.
    pub days: u32,
    /// Event-time 15-minute points (time steps of the whole fleet) per
    /// wall-clock second: 40 publishes a day in 2.4 s. 0 or infinity = as fast
    /// as the broker accepts.
    pub points_per_second: f64,
    /// Readings per MQTT message (default 100).
    pub batch_size: usize,
    /// MQTT client id.
    pub client_id: String,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            customers: 200,
            seed: 20_260_601,
            start_date: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap_or_default(),
            days: 0,
            points_per_second: 40.0,
            batch_size: 100,
            client_id: "jicha-simulator".to_owned(),
        }
    }
}

/// An anomaly the simulator planted (or, from [`near_misses`], a near miss
/// that must not raise `theme`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planted {
    pub theme: &'static str,
    pub customer_id: String,
    pub note: String,
}

/// What [`publish`] sent.
#[derive(Clone, Debug, Default)]
pub struct SimReport {
    /// MQTT messages published (QoS 1).
    pub messages: u64,
    /// Well-formed records published (load points, freezes, events): what
    /// the pipeline should ingest.
    pub readings: u64,
    /// Anomalies whose data was completely published before the run ended.
    pub planted: Vec<Planted>,
    /// Deliberately malformed records published (the pipeline must reject them).
    pub malformed: u64,
    /// Business days published completely (points and freezes).
    pub days: u32,
}

/// The customer archive of the simulated fleet, `{"customers": [...]}` as in
/// interfaces.md §3. Deterministic for a seed.
pub fn archive(opts: &SimOptions) -> serde_json::Value {
    fleet::archive_json(&fleet::build(opts))
}

/// The anomalies this run plants (those that fit in `opts.days` and in
/// `opts.customers`): each must become a work order of its theme.
///
/// Event-time note: a daily theme's window `[D, D+1)` closes only when later
/// data moves the freeze watermark past D+1 (the next day's freezes), so a
/// finite run meant to show every planted work order should publish a day
/// beyond the last planted day: `days >= 9` shows all seven.
pub fn planted(opts: &SimOptions) -> Vec<Planted> {
    within(plan::anomalies(&fleet::build(opts)), opts.days)
}

/// The near misses this run plants: each must NOT raise its theme for its
/// customer (exactly 1.2 × C, a single spike, a drop to exactly 0.3 × the
/// mean, a suspended zero customer, a cover_open without a start…).
pub fn near_misses(opts: &SimOptions) -> Vec<Planted> {
    within(plan::near_misses(&fleet::build(opts)), opts.days)
}

fn within(plants: Vec<plan::Plant>, days: u32) -> Vec<Planted> {
    plants
        .into_iter()
        .filter(|p| days == 0 || p.day < days)
        .map(|p| p.planted)
        .collect()
}

/// Publish the stream to the MQTT broker at `mqtt_url` (`mqtt://host:port`)
/// with QoS 1, paced by `points_per_second`, until `opts.days` are done or
/// `stop` resolves. Waits for the broker's acknowledgements before returning.
pub async fn publish(
    opts: &SimOptions,
    mqtt_url: &str,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<SimReport> {
    let (host, port) = parse_mqtt_url(mqtt_url)?;
    let fleet = fleet::build(opts);
    let mut link = Link::connect(&opts.client_id, &host, port, mqtt_url).await?;
    tokio::pin!(stop);
    let mut stop = Stop {
        fut: stop.as_mut(),
        fired: false,
    };
    let mut report = SimReport::default();
    let streamed = stream(&fleet, opts, &mut link, &mut stop, &mut report).await;
    let closed = link.close().await;
    streamed?;
    closed?;
    let done = report.days;
    report.planted = plan::anomalies(&fleet)
        .into_iter()
        .filter(|p| p.day < done)
        .map(|p| p.planted)
        .collect();
    Ok(report)
}

/// The run: opening freezes, then per day its slots (load points, events),
/// then its freezes. Returns early (Ok) when stopped.
async fn stream<F: Future<Output = ()>>(
    fleet: &fleet::Fleet,
    opts: &SimOptions,
    link: &mut Link,
    stop: &mut Stop<'_, F>,
    report: &mut SimReport,
) -> anyhow::Result<()> {
    let mut gen = days::Generator::new(fleet);
    let pacer = Pacer::new(opts.points_per_second);
    let opening = wire::freeze_messages(fleet, &gen.opening(), opts.batch_size);
    if !send_all(link, stop, opening, report).await? {
        return Ok(());
    }
    let mut day: u32 = 0;
    while opts.days == 0 || day < opts.days {
        if opts
            .start_date
            .checked_add_days(chrono::Days::new(u64::from(day) + 1))
            .is_none()
        {
            break; // past the end of the calendar chrono can represent
        }
        let data = gen.next_day();
        for slot in 0..SLOTS {
            let step = u64::from(day) * SLOTS as u64 + slot as u64;
            if stop.race(pacer.wait(step)).await.is_none() {
                return Ok(());
            }
            let msgs = wire::slot_messages(fleet, &data, slot, opts.batch_size);
            if !send_all(link, stop, msgs, report).await? {
                return Ok(());
            }
        }
        let freezes = wire::freeze_messages(fleet, &data.freezes, opts.batch_size);
        if !send_all(link, stop, freezes, report).await? {
            return Ok(());
        }
        day += 1;
        report.days = day;
    }
    Ok(())
}

/// Publish `msgs` in order; false when stopped.
async fn send_all<F: Future<Output = ()>>(
    link: &mut Link,
    stop: &mut Stop<'_, F>,
    msgs: Vec<Message>,
    report: &mut SimReport,
) -> anyhow::Result<bool> {
    for msg in msgs {
        let (readings, malformed) = (msg.readings, msg.malformed);
        match stop.race(link.send(msg)).await {
            None => return Ok(false),
            Some(sent) => sent?,
        }
        report.messages += 1;
        report.readings += readings;
        report.malformed += malformed;
    }
    Ok(true)
}

/// The caller's stop signal, polled alongside every wait. Once it has fired
/// it is never polled again (a finished future may panic if polled).
struct Stop<'a, F> {
    fut: Pin<&'a mut F>,
    fired: bool,
}

impl<F: Future<Output = ()>> Stop<'_, F> {
    /// `Some(result)` of `work`, or `None` if stop fired first.
    async fn race<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        if self.fired {
            return None;
        }
        tokio::select! {
            biased;
            _ = self.fut.as_mut() => {
                self.fired = true;
                None
            }
            v = work => Some(v),
        }
    }
}

/// Wall-clock pacing: event-time step `k` is due `k / points_per_second`
/// seconds after the start. A late publisher catches up without sleeping.
struct Pacer {
    start: Instant,
    seconds_per_step: Option<f64>,
}

impl Pacer {
    fn new(points_per_second: f64) -> Self {
        let paced = points_per_second.is_finite() && points_per_second > 0.0;
        // Slower than one step per 1000 s is not a demo; clamping keeps the
        // deadline arithmetic far from overflow.
        let seconds_per_step = paced.then(|| 1.0 / points_per_second.max(1e-3));
        Pacer {
            start: Instant::now(),
            seconds_per_step,
        }
    }

    async fn wait(&self, step: u64) {
        let Some(s) = self.seconds_per_step else {
            return;
        };
        let due = StdDuration::try_from_secs_f64(s * step as f64)
            .ok()
            .and_then(|d| self.start.checked_add(d));
        match due {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending::<()>().await,
        }
    }
}

/// `mqtt://host:port` (or `tcp://`) → (host, port); port 1883 by default.
fn parse_mqtt_url(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = match url.split_once("://") {
        Some(("mqtt" | "tcp", rest)) => rest.trim_end_matches('/'),
        Some(("mqtts" | "ssl", _)) => {
            bail!("the simulator publishes over plain MQTT only: use mqtt://host:port instead of {url}")
        }
        _ => bail!("MQTT URL must look like mqtt://host:port, got {url:?}"),
    };
    if rest.contains(['@', '/', '?']) {
        bail!("MQTT URL must be just mqtt://host:port (no credentials or path), got {url:?}");
    }
    let (host, port) = match rest.strip_prefix('[') {
        // IPv6 literal: [::1]:1883
        Some(v6) => {
            let (h, after) = v6
                .split_once(']')
                .with_context(|| format!("unclosed '[' in MQTT URL {url:?}"))?;
            (h, after.strip_prefix(':'))
        }
        None => match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        },
    };
    if host.is_empty() {
        bail!("MQTT URL has no host: {url:?}");
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .with_context(|| format!("bad port {p:?} in MQTT URL {url:?}"))?,
        None => 1883,
    };
    Ok((host.to_owned(), port))
}

/// A 100-freeze batch is ~20 kB; rumqttc's default limit is 10 kB.
const MAX_PACKET_BYTES: usize = 4 * 1024 * 1024;
const CONNECT_TIMEOUT: StdDuration = StdDuration::from_secs(10);
const ACK_TIMEOUT: StdDuration = StdDuration::from_secs(30);
/// Consecutive connection errors tolerated after a first successful connect.
const MAX_RECONNECTS: u32 = 10;

#[derive(Clone, Debug)]
enum LinkState {
    Connecting,
    Up,
    Failed(String),
    Closed,
}

/// The MQTT connection: a client, and a task driving its event loop that
/// counts PUBACKs and reports fatal errors.
struct Link {
    client: AsyncClient,
    acks: Arc<AtomicU64>,
    sent: u64,
    state: watch::Receiver<LinkState>,
    task: tokio::task::JoinHandle<()>,
    url: String,
}

impl Link {
    async fn connect(client_id: &str, host: &str, port: u16, url: &str) -> anyhow::Result<Link> {
        let mut mo = MqttOptions::new(client_id, host, port);
        mo.set_keep_alive(StdDuration::from_secs(30));
        mo.set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
        mo.set_clean_session(true);
        let (client, eventloop) = AsyncClient::new(mo, 256);
        let acks = Arc::new(AtomicU64::new(0));
        let (tx, mut rx) = watch::channel(LinkState::Connecting);
        let task = tokio::spawn(drive(eventloop, Arc::clone(&acks), tx));
        let outcome = tokio::time::timeout(
            CONNECT_TIMEOUT,
            rx.wait_for(|s| !matches!(s, LinkState::Connecting)),
        )
        .await
        .map(|r| r.map(|state| state.clone()));
        let failure = match outcome {
            Ok(Ok(LinkState::Up)) => None,
            Ok(Ok(LinkState::Failed(e))) => Some(e),
            Ok(Ok(_)) | Ok(Err(_)) => Some("the connection closed".to_owned()),
            Err(_) => Some(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
        };
        if let Some(why) = failure {
            task.abort();
            bail!("cannot connect to the MQTT broker at {url}: {why}; start the broker or fix the URL");
        }
        Ok(Link {
            client,
            acks,
            sent: 0,
            state: rx,
            task,
            url: url.to_owned(),
        })
    }

    async fn send(&mut self, msg: Message) -> anyhow::Result<()> {
        let sent = self
            .client
            .publish(msg.topic, QoS::AtLeastOnce, false, msg.payload.into_bytes())
            .await;
        match sent {
            Ok(()) => {
                self.sent += 1;
                Ok(())
            }
            Err(e) => Err(self.lost(&e.to_string())),
        }
    }

    fn lost(&self, fallback: &str) -> anyhow::Error {
        let why = match &*self.state.borrow() {
            LinkState::Failed(e) => e.clone(),
            _ => fallback.to_owned(),
        };
        anyhow!(
            "lost the MQTT connection to {}: {why}; check the broker and run the simulator again",
            self.url
        )
    }

    /// Wait (bounded) until the broker acknowledged every message, then
    /// disconnect. An error only if the connection failed.
    async fn close(mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + ACK_TIMEOUT;
        while self.acks.load(Ordering::Relaxed) < self.sent && Instant::now() < deadline {
            if matches!(
                *self.state.borrow(),
                LinkState::Failed(_) | LinkState::Closed
            ) {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
        let failed = matches!(*self.state.borrow(), LinkState::Failed(_));
        let unacked = self.sent.saturating_sub(self.acks.load(Ordering::Relaxed));
        if unacked > 0 && !failed {
            tracing::warn!(unacked, url = %self.url, "MQTT broker did not acknowledge every message in time");
        }
        let _ = self.client.disconnect().await;
        if tokio::time::timeout(StdDuration::from_secs(2), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
        if failed {
            return Err(self.lost("connection failed"));
        }
        Ok(())
    }
}

/// Drive rumqttc's event loop: count PUBACKs, publish the link state, retry
/// a dropped connection a few times (rumqttc reconnects on the next poll and
/// re-sends unacknowledged messages), give up on a broker never reached.
async fn drive(mut eventloop: EventLoop, acks: Arc<AtomicU64>, state: watch::Sender<LinkState>) {
    let mut ever_up = false;
    let mut errors: u32 = 0;
    loop {
        match eventloop.poll().await {
            Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                ever_up = true;
                errors = 0;
                state.send_replace(LinkState::Up);
            }
            Ok(MqttEvent::Incoming(Packet::PubAck(_))) => {
                acks.fetch_add(1, Ordering::Relaxed);
            }
            Ok(MqttEvent::Outgoing(Outgoing::Disconnect)) => {
                state.send_replace(LinkState::Closed);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                errors += 1;
                if !ever_up || errors > MAX_RECONNECTS {
                    state.send_replace(LinkState::Failed(e.to_string()));
                    return;
                }
                tracing::warn!(error = %e, attempt = errors, "MQTT connection lost; reconnecting");
                tokio::time::sleep(StdDuration::from_millis(200 * u64::from(errors))).await;
            }
        }
    }
}
