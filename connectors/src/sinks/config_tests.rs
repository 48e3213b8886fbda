use super::*;
use crate::sinks::testing::event;
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    sinks: Vec<SinkConfig>,
}

fn parse(text: &str) -> Result<Vec<SinkConfig>, String> {
    serde_json::from_str::<File>(text)
        .map(|f| f.sinks)
        .map_err(|e| e.to_string())
}

fn build(text: &str) -> Result<Arc<dyn Sink>, String> {
    let mut s = parse(&format!(r#"{{"sinks":[{text}]}}"#))?;
    s.remove(0)
        .build(BuildContext::default())
        .map_err(|e| e.to_string())
}

#[test]
fn sinks_are_chosen_by_kind_and_unknown_fields_refused() {
    assert_eq!(
        parse(r#"{"sinks":[{"kind":"event_log","path":"events.jsonl"}]}"#).unwrap(),
        vec![SinkConfig {
            common: Common::default(),
            kind: SinkKind::EventLog {
                path: "events.jsonl".into()
            }
        }]
    );
    let typo = parse(r#"{"sinks":[{"kind":"event_log","path":"e","pth":"x"}]}"#);
    assert!(typo.unwrap_err().contains("pth"));
    let kind = parse(r#"{"sinks":[{"kind":"webhok","url":"http://x"}]}"#);
    assert!(kind.unwrap_err().contains("webhok"));
    let sev = parse(r#"{"sinks":[{"kind":"webhook","url":"http://x","min_severity":"hgh"}]}"#);
    assert!(sev.unwrap_err().contains("hgh"));
    let sink = build(r#"{"kind":"event_log","path":"/tmp/e.jsonl"}"#).unwrap();
    assert_eq!(
        (sink.name(), sink.kind()),
        ("event_log:/tmp/e.jsonl", "event_log")
    );
    assert_eq!(sink.retry(), RetryPolicy::forever());
}

#[test]
fn common_keys_work_on_every_kind_and_round_trip() {
    let text = r#"{"sinks":[{"kind":"webhook","url":"http://127.0.0.1:1/h?token=x","secret":"s",
        "min_severity":"high","themes":["over_capacity"],"orgs":["41/4107"],
        "max_attempts":3,"initial_backoff":"100ms","max_backoff":"2s","timeout":"3s"}]}"#;
    let cfg = parse(text).unwrap().remove(0);
    let back: SinkConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    let sink = cfg.build(BuildContext::default()).unwrap();
    assert_eq!(
        sink.name(),
        "webhook:http://127.0.0.1:1/h",
        "no query (tokens) in the name"
    );
    assert_eq!(
        sink.retry(),
        RetryPolicy {
            max_attempts: 3,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2)
        }
    );
    let e = event(1, EventKind::StateChanged);
    assert!(sink.accepts(&e), "webhooks take every kind by default");
    let mut low = e.clone();
    low.severity = jicha_pipeline::theme::Severity::Medium;
    assert!(!sink.accepts(&low));
}

#[test]
fn robots_default_to_findings_and_escalations() {
    let w = build(r#"{"kind":"wecom","key":"K","url":"http://127.0.0.1:1/send"}"#).unwrap();
    assert!(w.accepts(&event(1, EventKind::WorkorderOpened)));
    assert!(w.accepts(&event(1, EventKind::Escalated)));
    assert!(!w.accepts(&event(1, EventKind::HitAdded)));
    assert!(!w.accepts(&event(1, EventKind::StateChanged)));
    let d = build(r#"{"kind":"dingtalk","access_token":"T","events":["state_changed"]}"#).unwrap();
    assert!(d.accepts(&event(1, EventKind::StateChanged)));
    assert!(!d.accepts(&event(1, EventKind::WorkorderOpened)));
    assert_eq!(
        (w.kind(), d.kind(), d.name()),
        ("wecom", "dingtalk", "dingtalk")
    );
    assert_eq!(w.retry(), RetryPolicy::default());
}

#[test]
fn config_errors_say_what_to_fix() {
    for (entry, want) in [
        (r#"{"kind":"alertmanager","url":"localhost:9093"}"#, "`url`"),
        (
            r#"{"kind":"alertmanager","url":"http://h:9093","alert_ttl":"10s"}"#,
            "alert_ttl",
        ),
        (
            r#"{"kind":"webhook","url":"http://h","timeout":"soon"}"#,
            "`timeout`",
        ),
        (
            r#"{"kind":"webhook","url":"http://h","initial_backoff":"5s","max_backoff":"1s"}"#,
            "max_backoff",
        ),
        (
            r#"{"kind":"webhook","url":"http://h","initial_backoff":"0s"}"#,
            "above zero",
        ),
        (
            r#"{"kind":"webhook","url":"http://h","orgs":[""]}"#,
            "`orgs`",
        ),
        (
            r#"{"kind":"webhook","url":"http://h","public_url":"jicha"}"#,
            "`public_url`",
        ),
        (r#"{"kind":"wecom","key":""}"#, "`key` is empty"),
        (
            r#"{"kind":"dingtalk","access_token":"T","secret":""}"#,
            "`secret` is empty",
        ),
    ] {
        let e = build(entry)
            .err()
            .unwrap_or_else(|| panic!("{entry} was accepted"));
        assert!(e.contains(want), "{entry}: {e}");
    }
}
