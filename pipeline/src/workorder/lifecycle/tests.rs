use super::*;
use crate::ids::CustomerId;
use crate::theme::Severity;
use crate::workorder::{Feedback, Rectification};
use rust_decimal::Decimal;
use support::order;

fn feedback() -> Feedback {
    Feedback {
        confirmed: true,
        measures: "换表, 追补电费".into(),
        recovered_kwh: Some(Decimal::new(12_345, 1)),
        recovered_yuan: Some(Decimal::new(98_765, 2)),
        attachments: vec!["photo/0001.jpg".into()],
    }
}

/// Every action once, by name.
fn actions() -> Vec<(&'static str, Action)> {
    vec![
        ("dispatch", Action::Dispatch { org: None }),
        (
            "dismiss",
            Action::Dismiss {
                reason: "季节性用电, 不处理".into(),
            },
        ),
        ("accept", Action::Accept),
        (
            "start",
            Action::Start {
                findings: "表计接线异常".into(),
            },
        ),
        ("feedback", Action::Feedback(feedback())),
        ("approve", Action::Approve),
        (
            "reject",
            Action::Reject {
                reason: "证据不足".into(),
            },
        ),
        (
            "void",
            Action::Void {
                reason: "重复工单".into(),
            },
        ),
        (
            "rectify",
            Action::Rectify(Rectification {
                result: "已追补".into(),
                recovered_kwh: None,
                recovered_yuan: Some(Decimal::new(100, 0)),
            }),
        ),
    ]
}

/// The legal moves, written out on their own (not derived from `allowed`).
fn legal(from: Status, action: &str) -> Option<Status> {
    use Status::*;
    let active = !matches!(from, Archived | Voided | Dismissed | Pending);
    match (from, action) {
        (Pending | Open | Dispatched | Accepted | InProgress, "dispatch") => Some(Dispatched),
        (Pending, "dismiss") => Some(Dismissed),
        (Dispatched, "accept") => Some(Accepted),
        (Accepted, "start") => Some(InProgress),
        (Accepted | InProgress, "feedback") => Some(UnderReview),
        (UnderReview, "approve") => Some(Archived),
        (UnderReview, "reject") => Some(InProgress),
        (_, "void") if active => Some(Voided),
        (Archived, "rectify") => Some(Archived),
        _ => None,
    }
}

#[test]
fn every_move_from_every_state() {
    for from in Status::ALL {
        for (name, action) in actions() {
            let mut wo = order(from);
            let actor = Actor {
                name: Some("张三".into()),
                role: Some("auditor".into()),
            };
            let res = apply(&mut wo, action, actor, 7);
            match (legal(from, name), res) {
                (Some(to), Ok(())) => {
                    assert_eq!(wo.status, to, "{from:?} {name}");
                    let h = wo.history.last().unwrap();
                    assert_eq!((h.from, h.to, h.at), (from, to, 7), "{from:?} {name}");
                    assert_eq!(
                        (h.actor.as_deref(), h.role.as_deref()),
                        (Some("张三"), Some("auditor"))
                    );
                }
                (None, Err(LifecycleError::Illegal { status, .. })) => {
                    assert_eq!(status, from.name());
                    assert_eq!(wo, order(from), "a refused move changes nothing");
                }
                (want, got) => panic!("{from:?} {name}: expected {want:?}, got {got:?}"),
            }
        }
    }
}

#[test]
fn refusals_name_the_state_and_what_is_allowed() {
    let mut wo = order(Status::Open);
    let e = apply(&mut wo, Action::Accept, Actor::default(), 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot accept a work order that is open; allowed now: dispatch, void"
    );
    let mut wo = order(Status::Voided);
    let e = apply(&mut wo, Action::Accept, Actor::default(), 1).unwrap_err();
    assert!(e.to_string().contains("it is closed"), "{e}");
}

#[test]
fn dispatch_goes_to_the_county_by_default_and_stays_on_the_path() {
    let mut wo = order(Status::Open);
    apply(&mut wo, Action::Dispatch { org: None }, Actor::default(), 1).unwrap();
    assert_eq!(wo.assigned_org.as_deref(), Some("41/4107/410727"));
    let off = Action::Dispatch {
        org: Some("41/4107/410728".into()),
    };
    assert!(matches!(
        apply(&mut wo, off, Actor::default(), 2),
        Err(LifecycleError::BadRequest(_))
    ));
    let up = Action::Dispatch {
        org: Some("41/4107".into()),
    };
    apply(&mut wo, up, Actor::default(), 3).unwrap();
    assert_eq!(wo.assigned_org.as_deref(), Some("41/4107"));
}

#[test]
fn the_handler_may_not_review_their_own_feedback() {
    let who = |n: &str| Actor {
        name: Some(n.into()),
        role: None,
    };
    let mut wo = order(Status::InProgress);
    apply(&mut wo, Action::Feedback(feedback()), who("李四"), 1).unwrap();
    let e = apply(&mut wo, Action::Approve, who("李四"), 2).unwrap_err();
    assert!(matches!(e, LifecycleError::Conflict(_)), "{e}");
    assert_eq!(wo.status, Status::UnderReview);
    apply(
        &mut wo,
        Action::Reject {
            reason: "缺照片".into(),
        },
        who("王五"),
        3,
    )
    .unwrap();
    assert_eq!((wo.status, wo.returns), (Status::InProgress, 1));
    apply(&mut wo, Action::Feedback(feedback()), who("李四"), 4).unwrap();
    apply(&mut wo, Action::Approve, who("王五"), 5).unwrap();
    assert_eq!(wo.status, Status::Archived);
    let r = Rectification {
        result: "整改完成".into(),
        recovered_kwh: None,
        recovered_yuan: Some(Decimal::new(5000, 2)),
    };
    apply(&mut wo, Action::Rectify(r.clone()), who("李四"), 6).unwrap();
    assert_eq!((wo.status, wo.rectification), (Status::Archived, Some(r)));
    assert_eq!(wo.feedback, Some(feedback()), "the feedback is kept");
}

#[test]
fn a_dismissed_hit_keeps_its_evidence_and_closes() {
    let mut wo = order(Status::Pending);
    wo.evidence
        .insert("max_kw".into(), serde_json::json!(1180.5));
    let before = wo.clone();
    let e = apply(
        &mut wo,
        Action::Dismiss {
            reason: "临时用电, 已报备".into(),
        },
        Actor::default(),
        9,
    );
    assert_eq!(e, Ok(()));
    assert_eq!(wo.status, Status::Dismissed);
    assert!(!wo.status.is_active(), "a later hit raises a new one");
    assert_eq!(
        (&wo.evidence, &wo.recent_hits),
        (&before.evidence, &before.recent_hits)
    );
    let h = wo.history.last().unwrap();
    assert_eq!(
        h.detail.as_ref().and_then(|d| d.reason.as_deref()),
        Some("临时用电, 已报备")
    );
}

pub(crate) mod support {
    use super::*;

    /// A critical order of a customer in 41/4107/410727/01, in `status`.
    pub(crate) fn order(status: Status) -> WorkOrder {
        WorkOrder {
            id: "WO0000000001".into(),
            theme: "over_capacity".into(),
            customer_id: CustomerId::new("C1"),
            org_code: "41/4107/410727/01".into(),
            status,
            severity: Severity::Critical,
            first_window_start: 0,
            first_window_end: 1,
            last_window_end: 1,
            hits: 1,
            created_at: 0,
            updated_at: 0,
            evidence: Default::default(),
            estimated_loss_yuan: None,
            assigned_org: None,
            feedback: None,
            rectification: None,
            sampling: None,
            returns: 0,
            escalation: Escalation::None,
            recent_hits: Vec::new(),
            history: Vec::new(),
        }
    }
}
