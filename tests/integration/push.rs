//! On-call push through sinks, against real receivers: Alertmanager
//! (Debian `prometheus-alertmanager`) gets each finding as an alert with
//! its labels and sees it resolved when the order is voided; a local HTTP
//! receiver gets the signed webhook, the WeCom and DingTalk robot formats
//! (DingTalk signed), every event despite failures (duplicates only with
//! the same id), and a receiver that refuses for good leaves the events in
//! the sink's dead letters while ingest goes on.

use crate::support::receiver::{tempdir, Alertmanager, Receiver, Script};
use crate::support::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const A: &str = "41/4107/410727";
const ROBOT_OK: &str = r#"{"errcode":0,"errmsg":"ok"}"#;
const WAIT: Duration = Duration::from_secs(90);

fn commerce(id: &str) -> Value {
    let c = with(
        customer(id, 200, &[(&format!("M{id}"), "1")]),
        "usage_category",
        json!("general_industry_commerce"),
    );
    with(c, "org_code", json!(format!("{A}/01")))
}

/// A `pf_adjust_missing` finding (medium) for each customer, by billing.
fn findings(env: &Env, period: &str, customers: &[&str]) -> Vec<String> {
    let bills = customers
        .iter()
        .map(|c| bill_with(c, &[("pf_adjust_applied", json!(false))]))
        .collect();
    env.post_billing(period, bills);
    customers
        .iter()
        .map(|c| {
            env.wait_wo("pf_adjust_missing", c, |_| true)["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn sink(env: &Env, name: &str) -> Value {
    let all = env.get("/api/v1/sinks").ok().json();
    all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no sink {name} in {all}"))
}

/// Successful requests of a receiver.
fn delivered(r: &Receiver) -> Vec<crate::support::receiver::Received> {
    r.requests()
        .into_iter()
        .filter(|q| q.status == 200)
        .collect()
}

// ── Alertmanager ────────────────────────────────────────────────────────

fn alert_of<'a>(alerts: &'a [Value], workorder: &str) -> Option<&'a Value> {
    alerts
        .iter()
        .find(|a| a["labels"]["workorder"] == workorder)
}

#[test]
fn alertmanager_gets_each_finding_with_its_labels_and_sees_it_resolved() {
    let scratch = tempdir();
    let am = Alertmanager::start(&scratch);
    let env = Env::start_with_config(
        &archive(vec![commerce("P1"), commerce("P2")]),
        &format!(
            "[[sinks]]\nkind = \"alertmanager\"\nname = \"am\"\nurl = \"http://127.0.0.1:{}\"\n\
             public_url = \"https://jicha.example\"\nlabels = {{ team = \"audit\" }}\n",
            am.port
        ),
    );
    let ids = findings(&env, "2026-10", &["P1", "P2"]);
    let alerts = wait_until(WAIT, "both findings as alerts", &env, || {
        let a = am.active();
        (alert_of(&a, &ids[0]).is_some() && alert_of(&a, &ids[1]).is_some()).then_some(a)
    });
    let a = alert_of(&alerts, &ids[0]).unwrap();
    let labels = &a["labels"];
    assert_eq!(labels["alertname"], "JichaFinding");
    assert_eq!(labels["theme"], "pf_adjust_missing");
    assert_eq!(labels["severity"], "medium");
    assert_eq!(labels["org"], A, "the county of {A}/01");
    assert_eq!(labels["customer"], "P1");
    assert_eq!(labels["team"], "audit");
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("客户 P1"),
        "{a}"
    );
    assert_eq!(
        a["generatorURL"],
        format!("https://jicha.example/api/v1/workorders/{}", ids[0])
    );

    // Voiding the first resolves it; the second keeps firing.
    env.post(
        &format!("/api/v1/workorders/{}/actions", enc(&ids[0])),
        &json!({"action": "void", "reason": "重复"}),
    )
    .ok();
    wait_until(WAIT, "the voided order's alert resolved", &env, || {
        let a = am.active();
        alert_of(&a, &ids[0]).is_none().then_some(())
    });
    assert!(
        alert_of(&am.active(), &ids[1]).is_some(),
        "the other alert still fires"
    );
    let s = sink(&env, "am");
    assert_eq!(
        (s["kind"].as_str(), s["dead_letters"].as_u64()),
        (Some("alertmanager"), Some(0))
    );
}

// ── Webhook ─────────────────────────────────────────────────────────────

fn verify_signature(secret: &str, body: &[u8], header: &str) {
    let hex = header
        .strip_prefix("sha256=")
        .unwrap_or_else(|| panic!("signature {header:?} lacks sha256="));
    let mac: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, body, &mac).expect("X-Jicha-Signature verifies with the secret");
}

#[test]
fn the_webhook_posts_each_event_signed_with_its_id() {
    let rx = Receiver::start(Script::ok("{}"));
    let env = Env::start_with_config(
        &archive(vec![commerce("W1")]),
        &format!(
            "[[sinks]]\nkind = \"webhook\"\nname = \"hook\"\nurl = \"{}\"\nsecret = \"s3cret\"\n",
            rx.url("/hook")
        ),
    );
    let ids = findings(&env, "2026-10", &["W1"]);
    let got = wait_until(WAIT, "the webhook request", &env, || {
        let d = delivered(&rx);
        (!d.is_empty()).then_some(d)
    });
    let q = &got[0];
    assert_eq!(q.uri, "/hook");
    verify_signature(
        "s3cret",
        &q.body,
        q.header("x-jicha-signature").expect("signature header"),
    );
    let e = q.json();
    assert_eq!(
        q.header("x-jicha-event-id"),
        Some(e["id"].to_string().as_str())
    );
    assert_eq!(e["kind"], "workorder_opened");
    assert_eq!(e["workorder_id"], ids[0].as_str());
    assert_eq!(
        (e["theme"].as_str(), e["customer_id"].as_str()),
        (Some("pf_adjust_missing"), Some("W1"))
    );
    // A tampered body does not verify.
    let mut bad = q.body.clone();
    bad.push(b' ');
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"s3cret");
    let hex = q
        .header("x-jicha-signature")
        .unwrap()
        .trim_start_matches("sha256=");
    let mac: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert!(ring::hmac::verify(&key, &bad, &mac).is_err());
}

// ── WeCom and DingTalk ──────────────────────────────────────────────────

#[test]
fn wecom_and_dingtalk_robots_get_their_markdown_dingtalk_signed() {
    let wecom = Receiver::start(Script::ok(ROBOT_OK));
    let ding = Receiver::start(Script::ok(ROBOT_OK));
    let env = Env::start_with_config(
        &archive(vec![commerce("R1")]),
        &format!(
            "[[sinks]]\nkind = \"wecom\"\nurl = \"{}\"\nkey = \"KEY-1\"\n\n\
             [[sinks]]\nkind = \"dingtalk\"\nurl = \"{}\"\naccess_token = \"TOKEN-1\"\nsecret = \"SECabc\"\n",
            wecom.url("/cgi-bin/webhook/send"),
            ding.url("/robot/send")
        ),
    );
    let ids = findings(&env, "2026-10", &["R1"]);
    let w = wait_until(WAIT, "the WeCom message", &env, || {
        delivered(&wecom).into_iter().next()
    });
    assert_eq!(w.uri, "/cgi-bin/webhook/send?key=KEY-1");
    let b = w.json();
    assert_eq!(b["msgtype"], "markdown");
    let content = b["markdown"]["content"].as_str().unwrap();
    for want in [
        "新增稽查工单",
        "pf_adjust_missing",
        "> 客户：R1",
        &format!("> 单位：{A}/01"),
        ids[0].as_str(),
    ] {
        assert!(content.contains(want), "{want:?} not in {content}");
    }

    let d = wait_until(WAIT, "the DingTalk message", &env, || {
        delivered(&ding).into_iter().next()
    });
    assert!(
        d.uri
            .starts_with("/robot/send?access_token=TOKEN-1&timestamp="),
        "{}",
        d.uri
    );
    let ts = d.query_raw("timestamp").expect("timestamp");
    let sign = d.query_raw("sign").expect("sign");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ts_ms: i64 = ts.parse().unwrap();
    assert!(
        (now - ts_ms).abs() < 600_000,
        "timestamp {ts} is the send time"
    );
    // Recomputed here: HMAC-SHA256 by ring, base64 and URL encoding by the
    // helpers the unit tests check against Python's hmac/base64.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"SECabc");
    let mac = ring::hmac::sign(&key, format!("{ts}\nSECabc").as_bytes());
    let want = jicha_connectors::sinks::sign::url_encode(&jicha_connectors::sinks::sign::base64(
        mac.as_ref(),
    ));
    assert_eq!(sign, want);
    let b = d.json();
    assert_eq!(b["msgtype"], "markdown");
    assert_eq!(b["markdown"]["title"], "稽查告警：新增稽查工单");
    assert!(b["markdown"]["text"].as_str().unwrap().contains(&ids[0]));
    // Robots default to findings and 督办: a life-cycle step is not sent.
    env.post(
        &format!("/api/v1/workorders/{}/actions", enc(&ids[0])),
        &json!({"action": "dispatch"}),
    )
    .ok();
    wait_until(
        WAIT,
        "the dispatch event passed by both robots",
        &env,
        || {
            let (a, b) = (sink(&env, "wecom"), sink(&env, "dingtalk"));
            (a["backlog"] == 0 && b["backlog"] == 0 && a["delivered_upto"].as_u64() >= Some(2))
                .then_some(())
        },
    );
    assert_eq!((delivered(&wecom).len(), delivered(&ding).len()), (1, 1));
}

// ── Failures ────────────────────────────────────────────────────────────

#[test]
fn a_receiver_that_fails_then_recovers_gets_every_event_duplicates_only_by_id() {
    let rx = Receiver::start(Script {
        fail_first: 3,
        status: 200,
        body: "{}".into(),
    });
    let env = Env::start_with_config(
        &archive(vec![commerce("F1"), commerce("F2"), commerce("F3")]),
        &format!(
            "[[sinks]]\nkind = \"webhook\"\nname = \"hook\"\nurl = \"{}\"\n\
             initial_backoff = \"100ms\"\nmax_backoff = \"400ms\"\nmax_attempts = 20\n",
            rx.url("/hook")
        ),
    );
    let ids = findings(&env, "2026-10", &["F1", "F2", "F3"]);
    let got = wait_until(WAIT, "every order's event delivered", &env, || {
        let d = delivered(&rx);
        let orders: BTreeSet<String> = d
            .iter()
            .map(|q| q.json()["workorder_id"].as_str().unwrap().to_string())
            .collect();
        (orders.len() == ids.len() && sink(&env, "hook")["backlog"] == 0).then_some(d)
    });
    assert_eq!(rx.requests().iter().filter(|q| q.status == 500).count(), 3);
    // Every copy of an id is the same bytes; distinct ids are distinct events.
    let mut by_id: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for q in &rx.requests() {
        let id = q.header("x-jicha-event-id").unwrap().to_string();
        let first = by_id.entry(id.clone()).or_insert_with(|| q.body.clone());
        assert_eq!(first, &q.body, "event {id} sent with different bodies");
    }
    let delivered_ids: BTreeSet<&str> = got
        .iter()
        .map(|q| q.header("x-jicha-event-id").unwrap())
        .collect();
    assert_eq!(
        delivered_ids.len(),
        ids.len(),
        "one event per finding, each delivered"
    );
    let s = sink(&env, "hook");
    assert!(s["failures"].as_u64().unwrap() >= 3, "{s}");
    assert_eq!(s["dead_letters"], 0, "{s}");
    assert!(
        s["last_error"].as_str().unwrap().contains("HTTP 500"),
        "{s}"
    );
}

#[test]
fn a_receiver_that_refuses_leaves_dead_letters_and_ingest_goes_on() {
    let rx = Receiver::start(Script {
        fail_first: 0,
        status: 400,
        body: "{\"error\":\"bad payload\"}".into(),
    });
    let env = Env::start_with_config(
        &archive(vec![commerce("D1"), commerce("D2")]),
        &format!(
            "[[sinks]]\nkind = \"webhook\"\nname = \"hook\"\nurl = \"{}\"\n",
            rx.url("/hook")
        ),
    );
    let first = findings(&env, "2026-10", &["D1"]);
    let dead = wait_until(WAIT, "the refused event dead-lettered", &env, || {
        let d = env.get("/api/v1/sinks/hook/deadletters").ok().json();
        let items = d["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    });
    assert_eq!(dead[0]["event"]["workorder_id"], first[0].as_str());
    assert!(
        dead[0]["error"].as_str().unwrap().contains("HTTP 400"),
        "{}",
        dead[0]
    );
    assert_eq!(dead[0]["attempts"], 1, "refused for good: not retried");
    // Ingest and evaluation went on: a later finding is a work order too,
    // and its event ends in the dead letters as well.
    let second = findings(&env, "2026-11", &["D2"]);
    wait_until(WAIT, "the second event dead-lettered", &env, || {
        let d = env.get("/api/v1/sinks/hook/deadletters").ok().json();
        d["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["event"]["workorder_id"] == second[0].as_str())
            .then_some(())
    });
    let s = sink(&env, "hook");
    assert_eq!(
        (s["dead_letters"].as_u64(), s["backlog"].as_u64()),
        (Some(2), Some(0)),
        "{s}"
    );
    assert!(env.metric_sum("jicha_sink_dead_letters_total", &[("sink", "hook")]) >= 2.0);
    let r = env.get("/api/v1/sinks/nosuch/deadletters");
    assert_eq!(r.status, 404, "{}", r.body);
}
