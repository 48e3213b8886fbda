use super::*;
use crate::sinks::testing::{event, T0};
use jicha_pipeline::workorder::Status;

fn am(labels: &[(&str, &str)]) -> Result<Alertmanager, SinkError> {
    Alertmanager::new(
        "am".into(),
        AlertmanagerSettings {
            url: "http://127.0.0.1:9093/".into(),
            tz: chrono_tz::Asia::Shanghai,
            public_url: Some("https://jicha.example".into()),
            ttl: Duration::from_secs(3600),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            timeout: Duration::from_secs(1),
        },
    )
}

#[test]
fn a_finding_fires_with_its_labels_and_an_end_refreshed_by_each_event() {
    let am = am(&[("team", "稽查")]).unwrap();
    assert_eq!(am.url.as_str(), "http://127.0.0.1:9093/api/v2/alerts");
    let mut e = event(1, EventKind::WorkorderOpened);
    e.org_code = "41/4107/410727/01".into();
    let now = T0 + 2 * 3_600_000;
    let a = am.alert(&e, now);
    let labels: Vec<(&str, &str)> = a
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("alertname", "JichaFinding"),
            ("customer", "C1"),
            ("org", "41/4107/410727"),
            ("severity", "high"),
            ("team", "稽查"),
            ("theme", "over_capacity"),
            ("workorder", "WO0000000001"),
        ]
    );
    // Starts at the window's end; ends an alert_ttl after now.
    assert_eq!(a.starts_at, "2026-11-03T03:00:00.000Z");
    assert_eq!(a.ends_at, "2026-11-03T05:00:00.000Z");
    assert_eq!(
        a.annotations["summary"],
        "【高】over_capacity 新增稽查工单：客户 C1（41/4107/410727/01）"
    );
    assert_eq!(
        a.annotations["window"],
        "2026-11-03 10:00 至 2026-11-03 11:00"
    );
    assert_eq!(
        a.generator_url,
        "https://jicha.example/api/v1/workorders/WO0000000001"
    );
    let json = serde_json::to_value(&a).unwrap();
    assert!(
        json.get("startsAt").is_some() && json.get("generatorURL").is_some(),
        "{json}"
    );
}

#[test]
fn archiving_voiding_or_dismissing_resolves_with_the_same_labels() {
    let am = am(&[]).unwrap();
    let open = am.alert(&event(1, EventKind::WorkorderOpened), T0 + 7_200_000);
    for to in [Status::Archived, Status::Voided, Status::Dismissed] {
        let mut e = event(2, EventKind::StateChanged);
        e.workorder_id = "WO0000000001".into();
        e.from = Status::UnderReview;
        e.to = to;
        e.at = T0 + 9_000_000;
        assert!(resolves(&e));
        let r = am.alert(&e, T0 + 10_000_000);
        assert_eq!(r.labels, open.labels, "same identity");
        assert_eq!(r.ends_at, "2026-11-03T04:30:00.000Z", "ends at the event");
        assert_eq!(r.starts_at, r.ends_at);
        // An event stamped ahead of the wall clock (test clock) still resolves now.
        let r = am.alert(&e, T0 + 8_000_000);
        assert_eq!(r.ends_at, rfc3339(T0 + 8_000_000));
    }
    let mut dispatched = event(3, EventKind::StateChanged);
    dispatched.to = Status::Dispatched;
    assert!(!resolves(&dispatched));
}

#[test]
fn a_batch_posts_the_last_state_of_each_order() {
    let am = am(&[]).unwrap();
    let opened = event(1, EventKind::WorkorderOpened);
    let mut voided = event(2, EventKind::StateChanged);
    voided.workorder_id = opened.workorder_id.clone();
    voided.to = Status::Voided;
    let other = event(3, EventKind::WorkorderOpened);
    let alerts = am.alerts(&[opened, voided, other], T0 + 7_200_000);
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].starts_at, alerts[0].ends_at, "WO…1 resolved");
    assert_ne!(alerts[1].starts_at, alerts[1].ends_at, "WO…3 firing");
}

#[test]
fn bad_settings_say_what_to_fix() {
    let e = am(&[("severity", "x")]).err().unwrap().to_string();
    assert!(e.contains("\"severity\""), "{e}");
    let e = am(&[("bad-name", "x")]).err().unwrap().to_string();
    assert!(e.contains("[a-zA-Z_]"), "{e}");
}
