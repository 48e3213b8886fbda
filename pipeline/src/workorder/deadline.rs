//! 时限 and 督办: each stage of a work order has a time limit, by severity.
//! Past `warn_percent` of it the order is warned; past the limit it is
//! overdue and escalated to the parent of the unit handling it. Moving to
//! the next stage (or a re-dispatch) starts the next stage's clock.

use super::{Escalation, HistoryAction, Status, WorkOrder};
use crate::theme::Severity;
use crate::time::{EpochMs, DAY_MS};
use std::collections::BTreeMap;

/// What the current state waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Open or pending: waiting to be dispatched (or, pending, dismissed).
    Dispatch,
    /// Dispatched: waiting to be accepted (签收).
    Accept,
    /// Accepted or in progress: waiting for feedback (反馈).
    Feedback,
    /// Under review: waiting for the review (审核).
    Review,
}

impl Stage {
    pub fn of(status: Status) -> Option<Stage> {
        match status {
            Status::Open | Status::Pending => Some(Stage::Dispatch),
            Status::Dispatched => Some(Stage::Accept),
            Status::Accepted | Status::InProgress => Some(Stage::Feedback),
            Status::UnderReview => Some(Stage::Review),
            Status::Archived | Status::Voided | Status::Dismissed => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Dispatch => "dispatch",
            Stage::Accept => "accept",
            Stage::Feedback => "feedback",
            Stage::Review => "review",
        }
    }
}

/// One severity's limit per stage, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageLimits {
    pub dispatch: i64,
    pub accept: i64,
    pub feedback: i64,
    pub review: i64,
}

impl StageLimits {
    pub fn of(&self, stage: Stage) -> i64 {
        match stage {
            Stage::Dispatch => self.dispatch,
            Stage::Accept => self.accept,
            Stage::Feedback => self.feedback,
            Stage::Review => self.review,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeLimits {
    pub default: StageLimits,
    pub by_severity: BTreeMap<Severity, StageLimits>,
    /// Warned once this share (in percent) of a stage's limit has passed.
    pub warn_percent: i64,
}

impl Default for TimeLimits {
    fn default() -> Self {
        TimeLimits {
            default: StageLimits {
                dispatch: DAY_MS,
                accept: DAY_MS,
                feedback: 10 * DAY_MS,
                review: 3 * DAY_MS,
            },
            by_severity: BTreeMap::new(),
            warn_percent: 80,
        }
    }
}

impl TimeLimits {
    /// The stage limits of one severity.
    pub fn of(&self, severity: Severity) -> &StageLimits {
        self.by_severity.get(&severity).unwrap_or(&self.default)
    }
}

/// The current stage of an order, when its clock started and its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub stage: Stage,
    pub since: EpochMs,
    pub limit_ms: i64,
}

impl Deadline {
    pub fn due(&self) -> EpochMs {
        self.since.saturating_add(self.limit_ms)
    }
}

/// The deadline of an active order; none for a closed one.
pub fn deadline(wo: &WorkOrder, limits: &TimeLimits) -> Option<Deadline> {
    let stage = Stage::of(wo.status)?;
    // The stage began with the last move into it (a re-dispatch restarts
    // the accept clock; 督办 entries are not moves).
    let since = wo
        .history
        .iter()
        .rev()
        .find(|h| {
            h.action != HistoryAction::Escalate
                && Stage::of(h.to) == Some(stage)
                && (Stage::of(h.from) != Some(stage) || h.action == HistoryAction::Dispatch)
        })
        .map_or(wo.created_at, |h| h.at);
    let per = limits.of(wo.severity);
    Some(Deadline {
        stage,
        since,
        limit_ms: per.of(stage),
    })
}

/// A stage an order finished: which, when, and whether within its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    pub stage: Stage,
    pub at: EpochMs,
    pub on_time: bool,
}

/// Every stage `wo` finished, from its history. A stage is finished by the
/// move it waits for (dispatch or dismiss, accept, feedback, review); a
/// void or a re-dispatch ends or restarts it without finishing it. Each
/// stage is timed from the move into it, as [`deadline`] times it.
pub fn completions(wo: &WorkOrder, limits: &TimeLimits) -> Vec<Completion> {
    let per = limits.of(wo.severity);
    let mut out = Vec::new();
    let mut stage = wo.history.first().and_then(|h| Stage::of(h.from));
    let mut since = wo.created_at;
    for h in &wo.history {
        if matches!(
            h.action,
            HistoryAction::Create | HistoryAction::Escalate | HistoryAction::Sample
        ) {
            continue;
        }
        let next = Stage::of(h.to);
        if next == stage && h.action != HistoryAction::Dispatch {
            continue;
        }
        if let Some(s) = stage {
            let finishes = match s {
                Stage::Dispatch => {
                    matches!(h.action, HistoryAction::Dispatch | HistoryAction::Dismiss)
                }
                Stage::Accept => h.action == HistoryAction::Accept,
                Stage::Feedback => h.action == HistoryAction::Feedback,
                Stage::Review => h.action == HistoryAction::Review,
            };
            if finishes {
                out.push(Completion {
                    stage: s,
                    at: h.at,
                    on_time: h.at - since <= per.of(s),
                });
            }
        }
        stage = next;
        since = h.at;
    }
    out
}

/// The level an order should be at `now`.
pub fn level(d: &Deadline, warn_percent: i64, now: EpochMs) -> Escalation {
    let elapsed = now - d.since;
    if elapsed > d.limit_ms {
        Escalation::Escalated
    } else if elapsed.saturating_mul(100) >= d.limit_ms.saturating_mul(warn_percent) {
        Escalation::Warned
    } else {
        Escalation::None
    }
}

/// The unit above `org` (itself at the top).
pub fn parent(org: &str) -> String {
    match org.rsplit_once('/') {
        Some((up, _)) => up.to_string(),
        None => org.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::HOUR_MS;
    use crate::workorder::{lifecycle, Action, Actor};

    #[test]
    fn each_stage_has_its_clock_and_limit_by_severity() {
        let mut limits = TimeLimits::default();
        let mut critical = limits.default;
        critical.accept = 2 * HOUR_MS;
        limits.by_severity.insert(Severity::Critical, critical);
        let mut wo = lifecycle::tests_support::order(Status::Open);
        wo.created_at = 100;
        let d = deadline(&wo, &limits).unwrap();
        assert_eq!(
            (d.stage, d.since, d.limit_ms),
            (Stage::Dispatch, 100, DAY_MS)
        );
        let dispatch = |org: &str| Action::Dispatch {
            org: Some(org.into()),
        };
        lifecycle::apply(&mut wo, dispatch("41/4107/410727"), Actor::default(), 1000).unwrap();
        lifecycle::apply(&mut wo, dispatch("41/4107"), Actor::default(), 5000).unwrap();
        let d = deadline(&wo, &limits).unwrap();
        assert_eq!(
            (d.stage, d.since),
            (Stage::Accept, 5000),
            "a re-dispatch restarts the clock"
        );
        assert_eq!(d.limit_ms, critical.accept, "the order is critical");
        assert_eq!(level(&d, 80, 5000 + 95 * HOUR_MS / 100), Escalation::None);
        assert_eq!(
            level(&d, 80, 5000 + 160 * HOUR_MS / 100),
            Escalation::Warned
        );
        assert_eq!(level(&d, 80, 5000 + 2 * HOUR_MS), Escalation::Warned);
        assert_eq!(level(&d, 80, 5001 + 2 * HOUR_MS), Escalation::Escalated);
        lifecycle::apply(
            &mut wo,
            Action::Accept,
            Actor::default(),
            5000 + 3 * HOUR_MS,
        )
        .unwrap();
        let done: Vec<_> = completions(&wo, &limits)
            .iter()
            .map(|c| (c.stage, c.at, c.on_time))
            .collect();
        assert_eq!(
            done,
            [
                (Stage::Dispatch, 1000, true),
                (Stage::Accept, 5000 + 3 * HOUR_MS, false),
            ],
            "the re-dispatch finished nothing; accepting took 3 h of 2"
        );
        wo.status = Status::Archived;
        assert!(deadline(&wo, &limits).is_none());
        assert_eq!(parent("41/4107/410727"), "41/4107");
        assert_eq!(parent("41"), "41");
    }
}
