//! What the dispatcher remembers about each sink beyond its progress: how
//! often it failed, why last, and the events it gave up on (its dead
//! letters). Kept by the state backend, so the API shows them after a
//! restart too (`docs/push.md`, `docs/state.md`).

use super::{EventId, OutboxEvent};
use crate::time::EpochMs;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Dead letters kept per sink; older ones drop.
pub const KEEP_SINK_DEAD_LETTERS: usize = 10_000;

/// A sink's counters and last error, written by its dispatcher task only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SinkStatus {
    /// The sink's kind (`webhook`, `alertmanager`, …), for the API.
    #[serde(default)]
    pub kind: String,
    /// Failed delivery attempts, each retry counted.
    #[serde(default)]
    pub failures: u64,
    /// Events put into the dead-letter list, ever (the list keeps the last
    /// [`KEEP_SINK_DEAD_LETTERS`]).
    #[serde(default)]
    pub dead_letters: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<EpochMs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivered_at: Option<EpochMs>,
}

/// An event a sink gave up on: after its retries, or refused for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinkDeadLetter {
    pub event: OutboxEvent,
    /// The last error, as the sink reported it.
    pub error: String,
    /// Delivery attempts made that included this event.
    pub attempts: u32,
    /// When it was given up on.
    pub at: EpochMs,
}

/// One sink as the backend knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkReport {
    pub name: String,
    /// The last event the sink has passed (delivered, filtered out or
    /// dead-lettered).
    pub delivered: EventId,
    /// The last event committed.
    pub head: EventId,
    pub status: SinkStatus,
}

impl SinkReport {
    /// Committed events the sink has not passed yet.
    pub fn backlog(&self) -> u64 {
        self.head.0.saturating_sub(self.delivered.0)
    }
}

/// How a sink retries a batch before it isolates the failing events and
/// dead-letters them: exponential backoff from `initial` doubling to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per batch; 0 retries for ever (the event log: a file that
    /// cannot be written is an outage to fix, not a message to drop).
    pub max_attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts, 0.5 s doubling to 60 s: about a minute of outage rides
    /// through (0.5 + 1 + 2 + 4 + 8 + 16 + 32 s of waits) before events go
    /// to the dead-letter list.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Retries for ever, with the default backoff.
    pub fn forever() -> Self {
        RetryPolicy {
            max_attempts: 0,
            ..Self::default()
        }
    }

    /// The wait after the `failed`-th failed attempt (1 = the first).
    pub fn backoff(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(30);
        self.initial
            .saturating_mul(1u32 << doublings)
            .min(self.max)
            .max(Duration::from_millis(1))
    }

    /// Whether `failed` attempts use up the policy.
    pub fn exhausted(&self, failed: u32) -> bool {
        self.max_attempts != 0 && failed >= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_attempts_run_out() {
        let p = RetryPolicy::default();
        let waits: Vec<u128> = (1..=9).map(|n| p.backoff(n).as_millis()).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]
        );
        assert!(!p.exhausted(7));
        assert!(p.exhausted(8));
        assert!(!RetryPolicy::forever().exhausted(u32::MAX));
        // A huge count neither overflows nor passes the cap.
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn backlog_is_what_was_committed_after_the_progress() {
        let r = SinkReport {
            name: "s".into(),
            delivered: EventId(7),
            head: EventId(12),
            status: SinkStatus::default(),
        };
        assert_eq!(r.backlog(), 5);
    }
}
