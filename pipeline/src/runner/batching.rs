//! Gathering micro-batches from a source and decoding them over the cores.

use super::source::{Message, Source};
use crate::archive::MeterIndex;
use crate::decode::{DecodedMessage, Rejection};
use crate::records::Stream;
use std::time::Duration;

/// A message taken apart for decoding: its stream, origin and payload.
type Pending = (Option<Stream>, String, Result<Vec<u8>, Rejection>);

/// How micro-batches are cut.
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// Messages per micro-batch at most.
    pub max_messages: usize,
    /// How long a micro-batch may wait to fill.
    pub max_wait: Duration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            max_messages: 1000,
            max_wait: Duration::from_millis(50),
        }
    }
}

/// The first message and whatever follows within `max_wait`, up to
/// `max_messages`. The second value is false once the source has ended.
pub async fn fill<S: Source>(
    first: Message<S::Ack>,
    source: &mut S,
    s: BatchSettings,
) -> (Vec<Message<S::Ack>>, bool) {
    let mut batch = Vec::with_capacity(s.max_messages.max(1));
    batch.push(first);
    let deadline = tokio::time::Instant::now() + s.max_wait;
    while batch.len() < s.max_messages {
        match tokio::time::timeout_at(deadline, source.next()).await {
            Ok(Some(m)) => batch.push(m),
            Ok(None) => return (batch, false),
            Err(_) => break,
        }
    }
    (batch, true)
}

/// A micro-batch decoded: the acknowledgement handles and the messages, in order.
pub struct DecodedBatch<A> {
    pub acks: Vec<A>,
    pub messages: Vec<DecodedMessage>,
}

/// Decodes `batch` in up to `parts` pieces at once, in order, off the
/// async workers. Payloads move into the decoded messages, never copied.
pub async fn decode<A>(
    batch: Vec<Message<A>>,
    parts: usize,
    max_payload_bytes: usize,
    meters: &MeterIndex,
) -> Result<DecodedBatch<A>, tokio::task::JoinError> {
    let n = batch.len();
    let size = n.div_ceil(parts.max(1)).max(1);
    let mut acks = Vec::with_capacity(n);
    let mut pending: Vec<Pending> = Vec::with_capacity(n);
    for m in batch {
        acks.push(m.ack);
        pending.push((m.stream, m.origin, m.payload));
    }
    let mut tasks = Vec::with_capacity(parts.max(1));
    let mut rest = pending.into_iter();
    loop {
        let chunk: Vec<_> = rest.by_ref().take(size).collect();
        if chunk.is_empty() {
            break;
        }
        let meters = meters.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            chunk
                .into_iter()
                .map(|(stream, origin, payload)| match payload {
                    Ok(payload) => DecodedMessage::decode(
                        stream,
                        origin,
                        payload,
                        max_payload_bytes,
                        Some(&meters),
                    ),
                    Err(rejection) => DecodedMessage::refused(stream, origin, rejection),
                })
                .collect::<Vec<_>>()
        }));
    }
    let mut messages = Vec::with_capacity(n);
    for t in tasks {
        messages.extend(t.await?);
    }
    Ok(DecodedBatch { acks, messages })
}
