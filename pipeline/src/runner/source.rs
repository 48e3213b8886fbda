//! The seam between a transport and the runner.

use crate::decode::Rejection;
use crate::records::Stream;
use std::future::Future;

/// One message of a source: what it carries and how to acknowledge it.
#[derive(Debug)]
pub struct Message<A> {
    /// The stream its records belong to; None when the source could not
    /// route it (e.g. an MQTT topic no route takes): the monitor then
    /// dead-letters it with reason unknown_topic.
    pub stream: Option<Stream>,
    /// Where it came from (an MQTT topic, `file:line`), kept with dead letters.
    pub origin: String,
    /// Moved into the decoded message, never copied again. Err: the source
    /// could not take the message apart (a replayed line that is not JSON);
    /// it is dead-lettered with this rejection, under `stream`.
    pub payload: Result<Vec<u8>, Rejection>,
    /// Handed back to the source's [`Acknowledge`] once a commit covering
    /// this message's effect has succeeded.
    pub ack: A,
}

/// A transport the runner drives: it yields messages one at a time and
/// acknowledges them only after the commit that covers them.
///
/// Delivery is at least once: a message taken but never acknowledged (a
/// crash, a shutdown during commit retries) must come again on the next
/// run, which records' keys make harmless.
pub trait Source: Send + 'static {
    /// Whatever identifies a message to its transport (an MQTT packet id, a
    /// line number); kept by the runner beside the batch, small and cheap.
    type Ack: Send + 'static;
    type Acknowledger: Acknowledge<Self::Ack>;

    /// The acknowledging half, used by the committer while `next` keeps
    /// receiving on another task.
    fn acknowledger(&self) -> Self::Acknowledger;

    /// The next message, waiting until one comes; None once input has
    /// ended for good (end of file, or the source shut down).
    ///
    /// Must be cancel-safe: the runner gives up waiting when a batch's time
    /// is up and calls again later; a message must not be lost in between
    /// (a channel receive is; a half-read line is not).
    fn next(&mut self) -> impl Future<Output = Option<Message<Self::Ack>>> + Send;
}

/// The acknowledging half of a [`Source`].
pub trait Acknowledge<A>: Send + Sync + 'static {
    /// Called with each batch's handles, in commit order, once its commit
    /// succeeded. Must never wait on the transport: the committer calls it
    /// between commits, and a committer blocked on acks stops the pipeline
    /// (see the MQTT source's ack queue for how that deadlocks).
    fn acknowledge(&self, acks: Vec<A>);
}
