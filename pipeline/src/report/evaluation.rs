//! The evaluation of units over a period. Each order counts for the unit
//! answerable for it ([`WorkOrder::handling_unit`]) and for every unit
//! above that one within the report's org; each figure counts what
//! happened within the period (the order raised, dispatched, archived …),
//! so consecutive periods add up. Money is summed per order as the order
//! shows it (yuan to the fen), so a report reconciles with its orders to
//! the fen.

use super::Period;
use crate::org::covers;
use crate::time::{BusinessClock, EpochMs};
use crate::workorder::deadline::{completions, Stage, TimeLimits};
use crate::workorder::{Escalation, HistoryAction, WorkOrder};
use jicha_domain::money::round_yuan;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// Finished stages and how many within their limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StageFigures {
    pub finished: u64,
    pub on_time: u64,
    /// `on_time / finished`, to four places; none when nothing finished.
    pub rate: Option<Decimal>,
}

/// The on-time figures of each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OnTime {
    pub dispatch: StageFigures,
    pub accept: StageFigures,
    pub feedback: StageFigures,
    pub review: StageFigures,
    /// All stages together: what the ranking sorts by first.
    pub all: StageFigures,
}

impl OnTime {
    fn add(&mut self, stage: Stage, on_time: bool) {
        let s = match stage {
            Stage::Dispatch => &mut self.dispatch,
            Stage::Accept => &mut self.accept,
            Stage::Feedback => &mut self.feedback,
            Stage::Review => &mut self.review,
        };
        for f in [s, &mut self.all] {
            f.finished += 1;
            f.on_time += u64::from(on_time);
        }
    }
}

/// One unit's figures (its whole subtree), or the report's total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnitFigures {
    pub org: String,
    /// Orders raised (pending included).
    pub findings: u64,
    /// Orders dispatched for the first time.
    pub dispatched: u64,
    /// Pending hits dismissed (不处理).
    pub dismissed: u64,
    pub voided: u64,
    pub archived: u64,
    /// Archived orders whose feedback confirmed the finding (属实).
    pub confirmed: u64,
    /// 查实率: `confirmed / archived`, to four places.
    pub confirmed_rate: Option<Decimal>,
    pub on_time: OnTime,
    /// Orders that went past a stage's limit (督办).
    pub overdue: u64,
    /// Orders drawn for 抽检, and samples judged 不合格.
    pub sampled: u64,
    pub sample_failed: u64,
    /// Recovered by confirmed orders: the feedback's amounts when archived,
    /// a rectification's when recorded.
    pub recovered_kwh: Decimal,
    pub recovered_yuan: Decimal,
}

fn rate(part: u64, whole: u64) -> Option<Decimal> {
    (whole > 0).then(|| (Decimal::from(part) / Decimal::from(whole)).round_dp(4))
}

impl UnitFigures {
    fn finish(&mut self) {
        // Already whole fen; shown with both places.
        self.recovered_yuan = round_yuan(self.recovered_yuan);
        self.confirmed_rate = rate(self.confirmed, self.archived);
        let o = &mut self.on_time;
        for s in [
            &mut o.dispatch,
            &mut o.accept,
            &mut o.feedback,
            &mut o.review,
            &mut o.all,
        ] {
            s.rate = rate(s.on_time, s.finished);
        }
    }
}

/// A unit's place among its peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rank {
    pub rank: usize,
    pub org: String,
    pub on_time_rate: Option<Decimal>,
    pub confirmed_rate: Option<Decimal>,
    pub recovered_yuan: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// The unit reported on; none: every unit.
    pub org: Option<String>,
    pub period: String,
    pub from: EpochMs,
    pub until: EpochMs,
    /// Every unit at or below `org` with anything in the period, by org code.
    pub units: Vec<UnitFigures>,
    pub total: UnitFigures,
    /// The units one level below `org`, best first: by the on-time rate of
    /// all stages, then 查实率, then recovered yuan.
    pub ranking: Vec<Rank>,
}

/// What one order contributes to the period.
fn figures(wo: &WorkOrder, inside: &dyn Fn(EpochMs) -> bool, limits: &TimeLimits) -> UnitFigures {
    let mut f = UnitFigures {
        findings: u64::from(inside(wo.created_at)),
        ..Default::default()
    };
    let first_dispatch = wo
        .history
        .iter()
        .find(|h| h.action == HistoryAction::Dispatch);
    f.dispatched = u64::from(first_dispatch.is_some_and(|h| inside(h.at)));
    for h in &wo.history {
        if !inside(h.at) {
            continue;
        }
        match h.action {
            HistoryAction::Dismiss => f.dismissed += 1,
            HistoryAction::Void => f.voided += 1,
            HistoryAction::Escalate
                if h.detail.as_ref().and_then(|d| d.level) == Some(Escalation::Escalated) =>
            {
                f.overdue += 1
            }
            _ => {}
        }
    }
    let confirmed = wo.feedback.as_ref().is_some_and(|fb| fb.confirmed);
    if wo.archived_at().is_some_and(inside) {
        f.archived = 1;
        if let (true, Some(fb)) = (confirmed, &wo.feedback) {
            f.confirmed = 1;
            f.recovered_kwh += fb.recovered_kwh.unwrap_or_default();
            f.recovered_yuan += round_yuan(fb.recovered_yuan.unwrap_or_default());
        }
    }
    let rectified_at = wo
        .history
        .iter()
        .rev()
        .find(|h| h.action == HistoryAction::Rectify)
        .map(|h| h.at);
    if let (true, Some(r), Some(at)) = (confirmed, &wo.rectification, rectified_at) {
        if inside(at) {
            f.recovered_kwh += r.recovered_kwh.unwrap_or_default();
            f.recovered_yuan += round_yuan(r.recovered_yuan.unwrap_or_default());
        }
    }
    if let Some(s) = &wo.sampling {
        f.sampled = u64::from(inside(s.batch.drawn_at));
        f.sample_failed = u64::from(
            s.verdict
                .as_ref()
                .is_some_and(|v| !v.passed && inside(v.at)),
        );
    }
    for c in completions(wo, limits) {
        if inside(c.at) {
            f.on_time.add(c.stage, c.on_time);
        }
    }
    f
}

impl UnitFigures {
    fn add(&mut self, o: &UnitFigures) {
        self.findings += o.findings;
        self.dispatched += o.dispatched;
        self.dismissed += o.dismissed;
        self.voided += o.voided;
        self.archived += o.archived;
        self.confirmed += o.confirmed;
        self.overdue += o.overdue;
        self.sampled += o.sampled;
        self.sample_failed += o.sample_failed;
        self.recovered_kwh += o.recovered_kwh;
        self.recovered_yuan += o.recovered_yuan;
        let (a, b) = (&mut self.on_time, &o.on_time);
        for (x, y) in [
            (&mut a.dispatch, &b.dispatch),
            (&mut a.accept, &b.accept),
            (&mut a.feedback, &b.feedback),
            (&mut a.review, &b.review),
            (&mut a.all, &b.all),
        ] {
            x.finished += y.finished;
            x.on_time += y.on_time;
        }
    }

    fn is_empty(&self) -> bool {
        *self == UnitFigures::default()
    }
}

/// The units from the top of `unit`'s path down to `unit`.
fn path(unit: &str) -> impl Iterator<Item = String> + '_ {
    unit.match_indices('/')
        .map(|(i, _)| unit[..i].to_string())
        .chain(std::iter::once(unit.to_string()))
}

fn depth(org: &str) -> usize {
    org.split('/').count()
}

/// Evaluates `orders` (already limited to what the caller may see) for the
/// units at or below `org` over `period`.
pub fn evaluate<'a>(
    orders: impl Iterator<Item = &'a WorkOrder>,
    org: Option<&str>,
    period: Period,
    clock: &BusinessClock,
    limits: &TimeLimits,
) -> Evaluation {
    let (from, until) = period.bounds(clock);
    let inside = move |t: EpochMs| (from..until).contains(&t);
    let mut units: BTreeMap<String, UnitFigures> = BTreeMap::new();
    let mut total = UnitFigures::default();
    for wo in orders {
        let unit = wo.handling_unit();
        if org.is_some_and(|o| !covers(o, &unit)) {
            continue;
        }
        let f = figures(wo, &inside, limits);
        if f.is_empty() {
            continue;
        }
        total.add(&f);
        for u in path(&unit).filter(|u| org.is_none_or(|o| covers(o, u))) {
            units.entry(u).or_default().add(&f);
        }
    }
    let units: Vec<UnitFigures> = units
        .into_iter()
        .map(|(org, mut f)| {
            f.org = org;
            f.finish();
            f
        })
        .collect();
    total.org = org.unwrap_or("").to_string();
    total.finish();
    let peers = org.map_or(1, |o| depth(o) + 1);
    let mut ranking: Vec<&UnitFigures> = units.iter().filter(|u| depth(&u.org) == peers).collect();
    // Best first; a unit with nothing finished ranks below every rate.
    ranking.sort_by(|a, b| {
        (b.on_time.all.rate, b.confirmed_rate, b.recovered_yuan)
            .cmp(&(a.on_time.all.rate, a.confirmed_rate, a.recovered_yuan))
            .then_with(|| a.org.cmp(&b.org))
    });
    let ranking = ranking
        .into_iter()
        .enumerate()
        .map(|(i, u)| Rank {
            rank: i + 1,
            org: u.org.clone(),
            on_time_rate: u.on_time.all.rate,
            confirmed_rate: u.confirmed_rate,
            recovered_yuan: u.recovered_yuan,
        })
        .collect();
    Evaluation {
        org: org.map(str::to_string),
        period: period.to_string(),
        from,
        until,
        units,
        total,
        ranking,
    }
}

#[cfg(test)]
mod tests;
