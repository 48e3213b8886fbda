use super::*;
use crate::workorder::Status;

fn hit(cust: &str, start: i64) -> Hit {
    Hit {
        theme: "over_capacity".into(),
        customer_id: CustomerId::new(cust),
        window_start: start,
        window_end: start + 10,
        severity: None,
        estimated_loss_yuan: None,
        evidence: serde_json::Map::new(),
    }
}

#[test]
fn one_open_order_per_theme_and_customer() {
    let mut b = WorkOrderBook::default();
    let HitOutcome::Created(id) =
        b.apply_hit(&hit("C1", 100), "41/1/2", Severity::High, Triage::Auto, 0)
    else {
        panic!()
    };
    assert_eq!(
        b.apply_hit(&hit("C1", 200), "41/1/2", Severity::High, Triage::Auto, 0),
        HitOutcome::Added(id.clone())
    );
    assert_eq!(
        b.apply_hit(&hit("C1", 200), "41/1/2", Severity::High, Triage::Auto, 0),
        HitOutcome::AlreadyCounted(id.clone())
    );
    assert_eq!(
        b.apply_hit(&hit("C1", 50), "41/1/2", Severity::High, Triage::Auto, 0),
        HitOutcome::Added(id.clone())
    );
    let wo = b.get(&id).unwrap();
    assert_eq!(
        (wo.hits, wo.first_window_start, wo.last_window_end),
        (3, 50, 210)
    );
    assert!(matches!(
        b.apply_hit(&hit("C2", 100), "41/1/2", Severity::High, Triage::Auto, 0),
        HitOutcome::Created(_)
    ));
    b.update(&id, |w| w.status = Status::Archived);
    assert!(matches!(
        b.apply_hit(&hit("C1", 300), "41/1/2", Severity::High, Triage::Auto, 0),
        HitOutcome::Created(_)
    ));
    assert_eq!(b.len(), 3);
}

#[test]
fn manual_triage_holds_hits_as_pending() {
    let mut b = WorkOrderBook::default();
    let manual = |b: &mut WorkOrderBook, start| {
        b.apply_hit(
            &hit("C1", start),
            "41/1/2",
            Severity::High,
            Triage::Manual,
            0,
        )
    };
    let HitOutcome::Created(id) = manual(&mut b, 100) else {
        panic!()
    };
    assert_eq!(b.get(&id).unwrap().status, Status::Pending);
    assert_eq!(manual(&mut b, 200), HitOutcome::Added(id.clone()));
    let dismiss = crate::workorder::Action::Dismiss {
        reason: "正常".into(),
    };
    b.update(&id, |w| {
        crate::workorder::lifecycle::apply(w, dismiss, Default::default(), 1)
    })
    .unwrap()
    .unwrap();
    let HitOutcome::Created(again) = manual(&mut b, 300) else {
        panic!("a dismissed order takes no more hits")
    };
    assert_ne!(again, id);
    assert_eq!(b.get(&id).unwrap().hits, 2);
    let h = &b.get(&again).unwrap().history[0];
    assert_eq!((h.from, h.to), (Status::Pending, Status::Pending));
}

#[test]
fn changes_are_recorded_as_events_in_order() {
    let mut b = WorkOrderBook::default();
    b.restore_event_seq(EventId(41));
    let HitOutcome::Created(id) =
        b.apply_hit(&hit("C1", 100), "41/1/2", Severity::High, Triage::Auto, 5)
    else {
        panic!()
    };
    b.apply_hit(&hit("C1", 200), "41/1/2", Severity::High, Triage::Auto, 6);
    // A re-evaluation of a counted window is no event.
    b.apply_hit(&hit("C1", 200), "41/1/2", Severity::High, Triage::Auto, 7);
    let dispatch = crate::workorder::Action::Dispatch {
        org: Some("41/1".into()),
    };
    let ops = crate::workorder::Actor {
        name: Some("ops".into()),
        role: None,
    };
    b.update(&id, |w| {
        crate::workorder::lifecycle::apply(w, dispatch, ops, 8)
    })
    .unwrap()
    .unwrap();
    // A refused action changes nothing and says nothing.
    let refused = b.update(&id, |w| {
        crate::workorder::lifecycle::apply(
            w,
            crate::workorder::Action::Approve,
            Default::default(),
            9,
        )
    });
    assert!(matches!(refused, Some(Err(_))));
    let d = crate::workorder::deadline::Deadline {
        stage: crate::workorder::deadline::Stage::Accept,
        since: 0,
        limit_ms: 0,
    };
    b.update(&id, |w| {
        crate::workorder::lifecycle::escalate(w, Escalation::Escalated, &d, 10)
    });
    let events = b.take_events();
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.id.0, e.kind, e.from, e.to, e.hits, e.at, e.window_start))
        .collect();
    use EventKind::*;
    use Status::*;
    assert_eq!(
        got,
        [
            (42, WorkorderOpened, Open, Open, 1, 5, Some(100)),
            (43, HitAdded, Open, Open, 2, 6, Some(200)),
            (44, StateChanged, Open, Dispatched, 2, 8, None),
            (45, Escalated, Dispatched, Dispatched, 2, 10, None),
        ]
    );
    assert!(events.iter().all(|e| e.workorder_id == id
        && e.theme == "over_capacity"
        && e.customer_id.as_str() == "C1"
        && e.org_code == "41/1/2"
        && e.severity == Severity::High));
    assert_eq!(events[2].actor.as_deref(), Some("ops"));
    assert_eq!(events[2].assigned_org.as_deref(), Some("41/1"));
    assert_eq!(events[3].escalation, Escalation::Escalated);
    assert!(b.take_events().is_empty(), "taken once");
}
