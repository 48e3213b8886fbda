use super::*;
use crate::time::HOUR_MS;
use crate::workorder::lifecycle::{apply, tests_support::order, Actor};
use crate::workorder::sampling::{self, Batch};
use crate::workorder::{Action, Feedback, HistoryEntry, Status};
use chrono::NaiveDate;

fn t(month: u32, day: u32, hour: i64) -> EpochMs {
    let clock = BusinessClock::default();
    clock.day_start(NaiveDate::from_ymd_opt(2026, month, day).unwrap()) + hour * HOUR_MS
}

fn raised(id: &str, county: &str, at: EpochMs) -> WorkOrder {
    let mut wo = order(Status::Open);
    wo.id = id.into();
    wo.org_code = format!("{county}/01");
    wo.created_at = at;
    wo.history.push(HistoryEntry {
        at,
        action: HistoryAction::Create,
        from: Status::Open,
        to: Status::Open,
        actor: None,
        role: None,
        detail: None,
    });
    wo
}

fn act(wo: &mut WorkOrder, action: Action, who: &str, at: EpochMs) {
    let actor = Actor {
        name: Some(who.into()),
        role: None,
    };
    apply(wo, action, actor, at).unwrap();
}

fn feedback(confirmed: bool, yuan: &str) -> Action {
    Action::Feedback(Feedback {
        confirmed,
        measures: "追补".into(),
        recovered_kwh: Some("12.5".parse().unwrap()),
        recovered_yuan: Some(yuan.parse().unwrap()),
        attachments: vec![],
    })
}

const A: &str = "41/4107/410727";
const B: &str = "41/4107/410728";

/// o1 (A) runs the whole loop in November, on time; o2 (A) is dispatched
/// three days late and voided; o3 (B) was raised in October, archived
/// unconfirmed in November and fails its sample; o4 (B) is December's.
fn orders() -> Vec<WorkOrder> {
    let dispatch = || Action::Dispatch { org: None };
    let mut o1 = raised("WO1", A, t(11, 2, 9));
    act(&mut o1, dispatch(), "审", t(11, 2, 10));
    act(&mut o1, Action::Accept, "办", t(11, 3, 9));
    act(&mut o1, feedback(true, "100.005"), "办", t(11, 5, 9));
    act(&mut o1, Action::Approve, "审", t(11, 6, 9));
    let mut o2 = raised("WO2", A, t(11, 2, 9));
    act(&mut o2, dispatch(), "审", t(11, 5, 9));
    let void = Action::Void {
        reason: "重复".into(),
    };
    act(&mut o2, void, "审", t(11, 6, 9));
    let mut o3 = raised("WO3", B, t(10, 30, 9));
    act(&mut o3, dispatch(), "审", t(10, 30, 10));
    act(&mut o3, Action::Accept, "办", t(11, 1, 9));
    act(&mut o3, feedback(false, "0"), "办", t(11, 2, 9));
    act(&mut o3, Action::Approve, "审", t(11, 3, 9));
    let batch = Batch {
        id: sampling::batch_id(B, "2026-11", 1),
        org: B.into(),
        month: "2026-11".into(),
        seed: 1,
        share: Decimal::ONE,
        size: 1,
        candidates: 1,
        drawn_at: t(11, 20, 9),
        drawn_by: None,
    };
    sampling::mark_drawn(&mut o3, &batch, t(11, 20, 9));
    let who = Actor {
        name: Some("抽".into()),
        role: None,
    };
    let why = Some("不属实有误".into());
    sampling::judge(&mut o3, &batch.id, false, why, who, t(11, 21, 9)).unwrap();
    let o4 = raised("WO4", B, t(12, 1, 0));
    vec![o1, o2, o3, o4]
}

fn month(text: &str, org: &str) -> Evaluation {
    let clock = BusinessClock::default();
    let period = Period::parse(text).unwrap();
    evaluate(
        orders().iter(),
        Some(org),
        period,
        &clock,
        &TimeLimits::default(),
    )
}

#[test]
fn a_month_per_unit_and_for_the_subtree() {
    let e = month("2026-11", "41/4107");
    let orgs: Vec<&str> = e.units.iter().map(|u| u.org.as_str()).collect();
    assert_eq!(orgs, ["41/4107", A, B]);
    let tot = &e.total;
    assert_eq!(
        (
            tot.findings,
            tot.dispatched,
            tot.voided,
            tot.archived,
            tot.confirmed
        ),
        (2, 2, 1, 2, 1)
    );
    assert_eq!(tot.confirmed_rate, Some(Decimal::new(5, 1)));
    assert_eq!(
        tot.recovered_yuan.to_string(),
        "100.01",
        "to the fen, per order"
    );
    assert_eq!(tot.recovered_kwh.to_string(), "12.5");
    assert_eq!((tot.sampled, tot.sample_failed), (1, 1));
    let d = tot.on_time.dispatch;
    assert_eq!((d.finished, d.on_time), (2, 1), "o2 was dispatched late");
    let a = tot.on_time.accept;
    assert_eq!(
        (a.finished, a.on_time),
        (2, 1),
        "o3 took two days to accept"
    );
    assert_eq!((tot.on_time.all.finished, tot.on_time.all.on_time), (8, 6));
    assert_eq!(e.units[0], *tot, "the city's row is its subtree");
    let b = &e.units[2];
    assert_eq!((b.findings, b.archived, b.sample_failed), (0, 1, 1));
    let ranked: Vec<(&str, Option<Decimal>)> = e
        .ranking
        .iter()
        .map(|r| (r.org.as_str(), r.on_time_rate))
        .collect();
    assert_eq!(
        ranked,
        [
            (A, Some(Decimal::new(8, 1))),
            (B, Some(Decimal::new(6667, 4)))
        ],
        "A: 4 of 5 stages on time; B: 2 of 3"
    );
    assert_eq!(e.ranking[0].rank, 1);
}

#[test]
fn periods_do_not_overlap_and_a_county_sees_only_itself() {
    assert_eq!(month("2026-12", "41/4107").total.findings, 1);
    assert_eq!(month("2026-10", "41/4107").total.findings, 1);
    assert_eq!(month("2026-11-02", "41/4107").total.findings, 2);
    assert_eq!(
        month("2026-W45", "41/4107").total.archived,
        2,
        "3 and 6 Nov"
    );
    assert_eq!(month("2026-W44", "41/4107").total.findings, 1, "30 Oct");
    let county = month("2026-11", A);
    assert_eq!(county.units.len(), 1);
    assert_eq!((county.total.findings, county.total.sampled), (2, 0));
    assert!(county.ranking.is_empty(), "no unit below a county here");
}
