//! Acknowledgements that never make the committer wait.
//!
//! rumqttc sends at most one queued request per turn of its event loop but
//! reads up to ten packets per turn, so while the broker streams a backlog,
//! acknowledgements fall behind deliveries. Sent through the client's bounded
//! request channel alone, they fill it; the committer then waits for room,
//! stops draining the batch channel, the poller (which stops polling while
//! that channel is full) never turns the event loop again, and ingestion
//! stops for good. Acks that do not fit in the channel wait here instead, and
//! the poller tops the channel up from here before each turn. (Not the event
//! loop's own `pending` queue: it sleeps about a millisecond per request.)

use rumqttc::{AsyncClient, Publish, QoS};

/// What acknowledging a message takes: its packet id and QoS. Kept instead
/// of the message, whose payload has moved on to the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckId {
    pub pkid: u16,
    pub qos: QoS,
}

impl AckId {
    pub fn of(p: &Publish) -> AckId {
        AckId {
            pkid: p.pkid,
            qos: p.qos,
        }
    }

    /// try_ack reads only the QoS and the packet id.
    fn stub(self) -> Publish {
        let mut stub = Publish::new("", self.qos, Vec::new());
        stub.pkid = self.pkid;
        stub
    }
}
use std::collections::VecDeque;
use std::sync::Mutex;

#[derive(Default)]
pub struct AckQueue {
    /// Acks the channel had no room for, oldest first.
    overflow: Mutex<VecDeque<AckId>>,
}

impl AckQueue {
    /// Queues the acknowledgement of a message; never waits.
    pub fn ack(&self, client: &AsyncClient, id: AckId) {
        if id.qos == QoS::AtMostOnce {
            return;
        }
        let mut overflow = self.lock();
        // Once acks overflow, later ones queue behind them.
        if overflow.is_empty() && client.try_ack(&id.stub()).is_ok() {
            return;
        }
        overflow.push_back(id);
    }

    /// Moves waiting acks into the client's request channel while it has
    /// room; the poller calls this before each turn of the event loop.
    /// Whenever acks wait here, the channel is full, so the event loop has
    /// requests to send and the next turn comes promptly.
    pub fn refill(&self, client: &AsyncClient) {
        let mut overflow = self.lock();
        while let Some(&id) = overflow.front() {
            if client.try_ack(&id.stub()).is_err() {
                return;
            }
            overflow.pop_front();
        }
    }

    /// Acks not yet handed to the client.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<AckId>> {
        // A panic elsewhere while holding the lock leaves a plain queue
        // behind, still valid: keep using it.
        self.overflow.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::MqttOptions;

    fn publish(pkid: u16, qos: QoS) -> Publish {
        let mut p = Publish::new("meter/load/x", qos, vec![1u8]);
        p.pkid = pkid;
        p
    }

    /// With a full request channel and nobody polling, acks neither block nor
    /// get lost; each time the channel empties, refill hands it as many as fit.
    #[test]
    fn overflow_waits_without_blocking_and_refills_as_room_frees() {
        let (client, mut eventloop) = AsyncClient::new(MqttOptions::new("t", "localhost", 1), 10);
        let q = AckQueue::default();
        for pkid in 1..=600u16 {
            q.ack(&client, AckId::of(&publish(pkid, QoS::AtLeastOnce)));
        }
        q.ack(&client, AckId::of(&publish(0, QoS::AtMostOnce)));
        assert_eq!(
            q.waiting(),
            590,
            "ten fit in the channel, QoS 0 needs no ack"
        );
        q.refill(&client);
        assert_eq!(q.waiting(), 590, "no room, nothing moves");
        let mut turns = 0;
        while q.waiting() > 0 && turns < 100 {
            // clean() empties the request channel, as the event loop would
            // by sending (it drops the acks; here only the room matters).
            eventloop.clean();
            q.refill(&client);
            turns += 1;
        }
        assert_eq!((q.waiting(), turns), (0, 59));
    }
}
