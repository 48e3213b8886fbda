use super::*;
use crate::workorder::lifecycle::tests_support::order;
use crate::workorder::Feedback;
use std::str::FromStr;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn wo(id: &str, org: &str, theme: &str, status: Status, created_at: EpochMs) -> WorkOrder {
    let mut w = order(status);
    w.id = id.into();
    w.org_code = org.into();
    w.theme = theme.into();
    w.created_at = created_at;
    w
}

#[test]
fn one_pass_groups_by_county_and_theme() {
    let mut overdue = wo(
        "WO3",
        "41/4107/410727/02",
        "over_capacity",
        Status::Dispatched,
        30,
    );
    overdue.escalation = Escalation::Escalated;
    let mut confirmed = wo(
        "WO4",
        "41/4107/410727",
        "over_capacity",
        Status::Archived,
        5,
    );
    confirmed.feedback = Some(Feedback {
        confirmed: true,
        measures: "补收".into(),
        recovered_kwh: None,
        recovered_yuan: Some(dec("10.005")),
        attachments: Vec::new(),
    });
    let orders = [
        wo(
            "WO1",
            "41/4107/410727/01",
            "over_capacity",
            Status::Open,
            20,
        ),
        wo("WO2", "41/4101/410102", "energy_drop", Status::Open, 100),
        overdue,
        confirmed,
    ];
    let a = Aggregate::of(orders.iter(), 25, 2);
    let c = &a.cells[&("41/4107/410727".to_string(), "over_capacity".to_string())];
    assert_eq!(c.open_total(), 2, "WO1 and WO3; the archived WO4 is closed");
    assert_eq!(c.open[&Severity::Critical], 2);
    assert_eq!(c.overdue, 1);
    assert_eq!(c.new_since, 1, "only WO3 is created at or after 25");
    assert_eq!(c.oldest_open, Some(20), "WO4 is older but closed");
    assert_eq!(c.by_status[&Status::Archived], 1);
    // Rounded to the fen, as the evaluation report sums it.
    assert_eq!(c.recovered_yuan, dec("10.01"));
    assert_eq!(
        a.newest["41/4107/410727"],
        ["WO3", "WO1"],
        "newest first, two kept"
    );
    assert_eq!(a.newest["41/4101/410102"], ["WO2"]);
    assert_eq!(a.cells.len(), 2);
}

#[test]
fn unconfirmed_orders_recover_nothing() {
    let mut w = wo("WO1", "41/4107/410727", "t", Status::Archived, 0);
    w.feedback = Some(Feedback {
        confirmed: false,
        measures: String::new(),
        recovered_kwh: None,
        recovered_yuan: Some(dec("99")),
        attachments: Vec::new(),
    });
    let a = Aggregate::of(std::iter::once(&w), 0, 0);
    assert!(a.cells.values().all(|c| c.recovered_yuan.is_zero()));
    assert!(a.newest.is_empty());
}
