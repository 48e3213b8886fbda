//! The MQTT session as a [`Source`]: a poller task turns the event loop,
//! routes each publish to its stream and hands it on through a bounded
//! channel; acknowledgements go back through the [`AckQueue`].

use super::acks::{AckId, AckQueue};
use super::url::BrokerUrl;
use super::SourceSettings;
use anyhow::{bail, Result};
use jicha_pipeline::metrics::{Counter, Gauge};
use jicha_pipeline::runner::{Acknowledge, Message, Source, TopicRoutes};
use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, QoS, Request, Subscribe};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Messages of a persistent MQTT session, routed to their streams.
pub struct MqttSource {
    rx: mpsc::Receiver<Message<AckId>>,
    acks: MqttAcks,
}

/// Acknowledges through the ack queue; never waits (see [`AckQueue`]).
#[derive(Clone)]
pub struct MqttAcks {
    client: AsyncClient,
    queue: Arc<AckQueue>,
}

/// What is left to close once the runner is done: the client and the poller.
pub struct Session {
    client: AsyncClient,
    poller: JoinHandle<()>,
}

impl Session {
    /// Disconnects once the last acks are queued and waits for the poller,
    /// which sends them first.
    pub async fn close(self) {
        // Never waits: the poller may already have stopped draining requests.
        let _ = self.client.try_disconnect();
        let _ = self.poller.await;
    }
}

impl Source for MqttSource {
    type Ack = AckId;
    type Acknowledger = MqttAcks;

    fn acknowledger(&self) -> MqttAcks {
        self.acks.clone()
    }

    /// Cancel-safe: a channel receive.
    async fn next(&mut self) -> Option<Message<AckId>> {
        self.rx.recv().await
    }
}

impl Acknowledge<AckId> for MqttAcks {
    fn acknowledge(&self, acks: Vec<AckId>) {
        acks.into_iter()
            .for_each(|id| self.queue.ack(&self.client, id));
    }
}

/// What the source reports while it runs.
pub struct SourceGauges {
    /// PUBACKs written to the broker.
    pub acks_sent: Counter,
    /// 1 while connected to the broker.
    pub connected: Gauge,
}

impl MqttSource {
    /// Connects (clean session off, QoS 1, manual acks) and subscribes to
    /// the routes' filters; the session's input ends when `shutdown` flips.
    pub async fn connect(
        s: &SourceSettings,
        gauges: SourceGauges,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(MqttSource, Session)> {
        let url = BrokerUrl::parse(&s.url)?;
        let mut opts = url.options(&s.client_id, false);
        opts.set_manual_acks(true);
        opts.set_inflight(100);
        // Room for about two batches of acks; more wait in the AckQueue, so
        // this size does not decide whether the source keeps going.
        let (client, mut eventloop) = AsyncClient::new(opts, 2 * s.batch_messages.max(1) + 16);
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
            Ok(Ok(())) => gauges.connected.set(1.0),
            Ok(Err(e)) => bail!(
                "cannot connect to the MQTT broker at {}: {e}; check --mqtt and that the broker runs",
                s.url
            ),
            Err(_) => bail!(
                "the MQTT broker at {} did not answer within 10 s; check --mqtt",
                s.url
            ),
        }
        eventloop.pending.extend(subscriptions(&s.routes));
        // Bounded: when the monitor is slow, the event loop stops polling,
        // the broker stops sending past its in-flight window, memory stays flat.
        let (tx, rx) = mpsc::channel(4 * s.batch_messages.max(1));
        let acks = MqttAcks {
            client: client.clone(),
            queue: Arc::new(AckQueue::default()),
        };
        let poller = tokio::spawn(poll(
            eventloop,
            acks.clone(),
            s.routes.clone(),
            tx,
            gauges,
            shutdown,
        ));
        Ok((MqttSource { rx, acks }, Session { client, poller }))
    }
}

fn subscriptions(routes: &TopicRoutes) -> Vec<Request> {
    routes
        .filters()
        .map(|f| Request::Subscribe(Subscribe::new(f, QoS::AtLeastOnce)))
        .collect()
}

/// Turns the event loop: routes each publish into the channel, subscribes
/// again after a reconnect, tops up the client's request channel with
/// waiting acks before each turn.
async fn poll(
    mut eventloop: EventLoop,
    acks: MqttAcks,
    routes: TopicRoutes,
    tx: mpsc::Sender<Message<AckId>>,
    gauges: SourceGauges,
    mut shutdown: watch::Receiver<bool>,
) {
    let SourceGauges {
        acks_sent,
        connected,
    } = gauges;
    loop {
        acks.queue.refill(&acks.client);
        tokio::select! {
            _ = shutdown.changed() => break,
            ev = eventloop.poll() => match ev {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let message = Message {
                        stream: routes.stream_of(&p.topic),
                        ack: AckId::of(&p),
                        // No copy when the client's buffer is this
                        // payload's alone.
                        payload: Ok(Vec::from(p.payload)),
                        origin: p.topic,
                    };
                    if tx.send(message).await.is_err() {
                        break;
                    }
                }
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected.set(1.0);
                    tracing::info!("reconnected to the MQTT broker; subscribing again");
                    // Straight into the event loop: the request channel
                    // may be full of acks, and only this task drains it.
                    eventloop.pending.extend(subscriptions(&routes));
                }
                // Written to the socket: what tests wait for before a crash
                // that must not cause redelivery.
                Ok(Event::Outgoing(Outgoing::PubAck(_))) => acks_sent.inc(),
                Ok(_) => {}
                Err(e) => {
                    connected.set(0.0);
                    tracing::warn!(error = %e, "MQTT connection lost; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
    // Let the runner see the end of input.
    drop(tx);
    connected.set(0.0);
    // Drive the event loop a little longer so the final acks go out.
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            acks.queue.refill(&acks.client);
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::PubAck(_))) => acks_sent.inc(),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    })
    .await;
}
