//! The memory backend's outbox: progress, trimming, sink status and dead letters.
use super::*;
use crate::outbox::EventKind;
use crate::workorder::Status;

fn event(id: u64) -> OutboxEvent {
    OutboxEvent {
        id: EventId(id),
        kind: EventKind::HitAdded,
        at: 1_000 + id as i64,
        workorder_id: "WO0000000001".into(),
        theme: "over_capacity".into(),
        customer_id: crate::ids::CustomerId::new("C1"),
        org_code: "41/1".into(),
        severity: crate::theme::Severity::High,
        from: Status::Open,
        to: Status::Open,
        action: crate::workorder::HistoryAction::Hit,
        actor: None,
        hits: id,
        escalation: crate::workorder::Escalation::None,
        window_start: Some(0),
        window_end: Some(10),
        assigned_org: None,
        estimated_loss_yuan: None,
    }
}

fn commit_of(ids: std::ops::RangeInclusive<u64>) -> Commit {
    Commit {
        outbox: ids.map(event).collect(),
        ..Default::default()
    }
}

fn ids(p: &PendingEvents) -> Vec<u64> {
    p.events.iter().map(|e| e.id.0).collect()
}

#[test]
fn memory_outbox_delivers_after_progress_and_trims_what_all_sinks_passed() {
    futures::executor::block_on(async {
        let b = MemoryBackend::default();
        // No sink yet: the sequence is kept, the events are not.
        b.commit(&commit_of(1..=2)).await.unwrap();
        assert_eq!(b.load().await.unwrap().outbox_seq, EventId(2));
        let sinks = vec!["a".to_string(), "b".to_string()];
        b.register_sinks(&sinks).await.unwrap();
        assert_eq!(b.outbox_pending("a", 10).await.unwrap().upto, None);

        b.commit(&commit_of(3..=5)).await.unwrap();
        let a = b.outbox_pending("a", 2).await.unwrap();
        assert_eq!((ids(&a), a.upto), (vec![3, 4], Some(EventId(4))));
        assert_eq!(a.events[0], event(3), "stored as committed");
        b.mark_delivered("a", EventId(4)).await.unwrap();
        assert_eq!(ids(&b.outbox_pending("a", 10).await.unwrap()), vec![5]);
        // b has passed nothing: all three are still there for it.
        assert_eq!(
            ids(&b.outbox_pending("b", 10).await.unwrap()),
            vec![3, 4, 5]
        );
        b.mark_delivered("b", EventId(5)).await.unwrap();
        // Progress never goes back.
        b.mark_delivered("b", EventId(3)).await.unwrap();
        assert!(b.outbox_pending("b", 10).await.unwrap().events.is_empty());
        {
            let st = b.state().unwrap();
            assert_eq!(st.outbox.keys().map(|k| k.0).collect::<Vec<_>>(), vec![5]);
        }
        // A sink added later starts at the head; a dropped one no longer holds events back.
        b.register_sinks(&["a".to_string(), "c".to_string()])
            .await
            .unwrap();
        assert!(b.outbox_pending("c", 10).await.unwrap().events.is_empty());
        assert_eq!(ids(&b.outbox_pending("a", 10).await.unwrap()), vec![5]);
        assert!(b.outbox_pending("b", 10).await.is_err());
        assert_eq!(b.load().await.unwrap().outbox_seq, EventId(5));
    });
}
