//! 工单抽检: a reproducible draw of a unit's archived orders of one month,
//! and each drawn order's verdict (合格 / 不合格). The draw is a partial
//! Fisher–Yates shuffle of the candidates in id order, driven by ChaCha8
//! seeded from the request: the same archive, unit, month, share and seed
//! always draw the same orders. The draw and the verdict are kept on the
//! order itself (and in its history), so the evaluation reads them from the
//! orders like everything else.

use super::lifecycle::{Actor, LifecycleError};
use super::{HistoryAction, HistoryDetail, HistoryEntry, WorkOrder};
use crate::time::EpochMs;
use rand::{Rng, SeedableRng};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// How many orders a draw takes: `share` of the candidates, rounded up,
/// at least `min` and at most `max` (never more than there are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplingRules {
    pub share: Decimal,
    pub min: usize,
    pub max: usize,
}

impl Default for SamplingRules {
    /// 5 %, at least 3 and at most 50 per unit and month (domain.md §8.6).
    fn default() -> Self {
        SamplingRules {
            share: Decimal::new(5, 2),
            min: 3,
            max: 50,
        }
    }
}

impl SamplingRules {
    pub fn size(&self, candidates: usize) -> usize {
        let wanted = (self.share * Decimal::from(candidates))
            .ceil()
            .to_usize()
            .unwrap_or(usize::MAX);
        wanted
            .clamp(self.min, self.max.max(self.min))
            .min(candidates)
    }
}

/// One draw, as each of its orders records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub id: String,
    /// The unit sampled and the month its orders were archived in.
    pub org: String,
    pub month: String,
    pub seed: u64,
    pub share: Decimal,
    /// Orders drawn, and how many there were to draw from.
    pub size: usize,
    pub candidates: usize,
    pub drawn_at: EpochMs,
    pub drawn_by: Option<String>,
}

/// The reviewer's verdict on one sampled order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub passed: bool,
    pub reason: Option<String>,
    pub by: Option<String>,
    pub at: EpochMs,
}

/// An order's place in a draw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub batch: Batch,
    pub verdict: Option<Verdict>,
}

/// The batch id: one per unit, month and seed (`S2026-11-42-41.4107`).
pub fn batch_id(org: &str, month: &str, seed: u64) -> String {
    format!("S{month}-{seed}-{}", org.replace('/', "."))
}

/// `size` of `candidates` (sorted by id), in id order.
pub fn draw(candidates: &[String], size: usize, seed: u64) -> Vec<String> {
    let mut pool: Vec<&String> = candidates.iter().collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let size = size.min(pool.len());
    for i in 0..size {
        let j = rng.random_range(i..pool.len());
        pool.swap(i, j);
    }
    let mut out: Vec<String> = pool.into_iter().take(size).cloned().collect();
    out.sort();
    out
}

/// Marks `wo` as drawn into `batch`.
pub fn mark_drawn(wo: &mut WorkOrder, batch: &Batch, now: EpochMs) {
    wo.sampling = Some(Sample {
        batch: batch.clone(),
        verdict: None,
    });
    let actor = Actor {
        name: batch.drawn_by.clone(),
        role: None,
    };
    let detail = HistoryDetail {
        sample: Some(batch.id.clone()),
        ..Default::default()
    };
    record(wo, actor, detail, now);
}

/// A `sample` entry in the history: the order's state does not change.
fn record(wo: &mut WorkOrder, actor: Actor, detail: HistoryDetail, now: EpochMs) {
    wo.updated_at = now;
    wo.history.push(HistoryEntry {
        at: now,
        action: HistoryAction::Sample,
        from: wo.status,
        to: wo.status,
        actor: actor.name,
        role: actor.role,
        detail: Some(detail),
    });
}

/// Records the verdict on a drawn order of `batch`: once, by someone other
/// than the handler, a failure with its reason.
pub fn judge(
    wo: &mut WorkOrder,
    batch: &str,
    passed: bool,
    reason: Option<String>,
    actor: Actor,
    now: EpochMs,
) -> Result<(), LifecycleError> {
    let conflict = |m: String| Err(LifecycleError::Conflict(m));
    let Some(sample) = wo.sampling.as_mut().filter(|s| s.batch.id == batch) else {
        return conflict(format!(
            "work order {} was not drawn in sample {batch}",
            wo.id
        ));
    };
    if let Some(v) = &sample.verdict {
        return conflict(format!(
            "work order {} was already judged ({}) in sample {batch}",
            wo.id,
            if v.passed { "pass" } else { "fail" }
        ));
    }
    let reason = reason.filter(|r| !r.trim().is_empty());
    if !passed && reason.is_none() {
        return Err(LifecycleError::BadRequest(
            "a failed sample needs a `reason` (不合格原因)".into(),
        ));
    }
    let handlers: Vec<&str> = wo
        .history
        .iter()
        .filter(|h| h.action == HistoryAction::Feedback)
        .filter_map(|h| h.actor.as_deref())
        .collect();
    if let Some(name) = actor.name.as_deref().filter(|n| handlers.contains(n)) {
        return conflict(format!(
            "{name} handled work order {} and may not judge its sample; another auditor does",
            wo.id
        ));
    }
    sample.verdict = Some(Verdict {
        passed,
        reason: reason.clone(),
        by: actor.name.clone(),
        at: now,
    });
    let detail = HistoryDetail {
        sample: Some(batch.to_string()),
        passed: Some(passed),
        reason,
        ..Default::default()
    };
    record(wo, actor, detail, now);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workorder::lifecycle::tests_support::order;
    use crate::workorder::Status;

    fn ids(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("WO{i:010}")).collect()
    }

    #[test]
    fn the_size_is_a_share_within_bounds() {
        let r = SamplingRules::default();
        assert_eq!(
            [0, 2, 10, 60, 61, 1000, 5000].map(|n| r.size(n)),
            [0, 2, 3, 3, 4, 50, 50]
        );
        let all = SamplingRules {
            share: Decimal::ONE,
            min: 0,
            max: usize::MAX,
        };
        assert_eq!(all.size(7), 7);
    }

    #[test]
    fn a_seed_draws_the_same_orders_every_time() {
        let c = ids(200);
        let a = draw(&c, 10, 42);
        assert_eq!(a, draw(&c, 10, 42));
        assert_eq!(a.len(), 10);
        assert!(a.windows(2).all(|w| w[0] < w[1]), "in id order, no repeats");
        assert!(a.iter().all(|id| c.contains(id)));
        assert_ne!(a, draw(&c, 10, 43), "another seed, another draw");
        assert_eq!(
            draw(&c[..3], 10, 42),
            c[..3].to_vec(),
            "never more than there are"
        );
        // Pinned: a change of generator or algorithm would silently change
        // which orders past draws name.
        assert_eq!(
            draw(&ids(10), 3, 7),
            ["WO0000000002", "WO0000000003", "WO0000000004"]
        );
    }

    #[test]
    fn a_verdict_once_not_by_the_handler_a_failure_with_its_reason() {
        let mut wo = order(Status::Archived);
        let by = |n: &str| Actor {
            name: Some(n.into()),
            role: Some("auditor".into()),
        };
        wo.history.push(HistoryEntry {
            at: 1,
            action: HistoryAction::Feedback,
            from: Status::InProgress,
            to: Status::UnderReview,
            actor: Some("李四".into()),
            role: None,
            detail: None,
        });
        let batch = Batch {
            id: batch_id("41/4107", "2026-11", 42),
            org: "41/4107".into(),
            month: "2026-11".into(),
            seed: 42,
            share: Decimal::new(5, 2),
            size: 1,
            candidates: 1,
            drawn_at: 2,
            drawn_by: Some("王五".into()),
        };
        assert_eq!(batch.id, "S2026-11-42-41.4107");
        let e = judge(&mut wo, &batch.id, true, None, by("王五"), 3);
        assert!(matches!(e, Err(LifecycleError::Conflict(_))), "not drawn");
        mark_drawn(&mut wo, &batch, 2);
        let e = judge(&mut wo, &batch.id, false, None, by("王五"), 3);
        assert!(matches!(e, Err(LifecycleError::BadRequest(_))), "{e:?}");
        let e = judge(&mut wo, &batch.id, false, Some("x".into()), by("李四"), 3);
        assert!(matches!(e, Err(LifecycleError::Conflict(_))), "the handler");
        judge(
            &mut wo,
            &batch.id,
            false,
            Some("未整改".into()),
            by("王五"),
            4,
        )
        .unwrap();
        let v = wo.sampling.as_ref().unwrap().verdict.clone().unwrap();
        assert_eq!(
            (v.passed, v.reason.as_deref(), v.at),
            (false, Some("未整改"), 4)
        );
        let e = judge(&mut wo, &batch.id, true, None, by("赵六"), 5);
        assert!(matches!(e, Err(LifecycleError::Conflict(_))), "once");
        let last = wo.history.last().unwrap();
        assert_eq!(last.action, HistoryAction::Sample);
        assert_eq!(last.detail.as_ref().unwrap().passed, Some(false));
        assert_eq!(wo.status, Status::Archived);
    }
}
