//! Work orders: one open per (theme, customer), their life cycle, filters,
//! pagination.

use crate::support::*;
use jicha_connectors::sinks::event_log::read_deduplicated;
use jicha_pipeline::outbox::EventKind;
use jicha_pipeline::workorder::Escalation;
use serde_json::{json, Value};
use std::time::Duration;

fn commerce(id: &str, org: &str) -> Value {
    let c = with(
        customer(id, 200, &[(&format!("M{id}"), "1")]),
        "usage_category",
        json!("general_industry_commerce"),
    );
    with(c, "org_code", json!(org))
}

fn pf_missing(id: &str) -> Value {
    bill_with(id, &[("pf_adjust_applied", json!(false))])
}

fn act(env: &Env, id: &str, body: Value) -> Resp {
    env.post(&format!("/api/v1/workorders/{}/actions", enc(id)), &body)
}

fn status_of(env: &Env, id: &str) -> String {
    let w = env
        .get(&format!("/api/v1/workorders/{}", enc(id)))
        .ok()
        .json();
    w["status"]
        .as_str()
        .unwrap_or_else(|| panic!("no status in {w}"))
        .to_string()
}

#[track_caller]
fn assert_2xx(r: Resp, what: &str) -> Resp {
    assert!(
        (200..300).contains(&r.status),
        "{what}: expected 2xx, got {} {}",
        r.status,
        r.body
    );
    r
}

#[track_caller]
fn assert_409(r: Resp, what: &str) {
    assert_eq!(
        r.status, 409,
        "{what}: expected 409, got {} {}",
        r.status, r.body
    );
    assert!(!r.body.trim().is_empty(), "{what}: a 409 names its reason");
}

fn ids(v: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = v
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn workorder_lifecycle_dispatch_accept_feedback_review_archive() {
    let env = Env::start(&archive(vec![
        commerce("P1", "41/4107/410727"),
        commerce("P2", "41/4107/410727"),
    ]));
    env.post_billing("2026-10", vec![pf_missing("P1"), pf_missing("P2")]);
    let w1 = env.wait_wo("pf_adjust_missing", "P1", |_| true);
    let w2 = env.wait_wo("pf_adjust_missing", "P2", |_| true);
    let id = w1["id"].as_str().unwrap().to_string();
    assert_eq!(w1["status"], "open");

    let r = act(&env, &id, json!({"action": "accept"}));
    assert!(
        r.body.contains("open") && r.body.contains("allowed now: dispatch, void"),
        "a 409 names the state and what is allowed: {}",
        r.body
    );
    assert_409(r, "accept before dispatch");
    assert_2xx(
        act(&env, &id, json!({"action": "dispatch", "org": "41/4107"})),
        "dispatch",
    );
    assert_409(
        act(&env, &id, json!({"action": "review", "approve": true})),
        "review before feedback",
    );
    assert_2xx(act(&env, &id, json!({"action": "accept"})), "accept");
    assert_eq!(status_of(&env, &id), "accepted");
    assert_2xx(
        act(
            &env,
            &id,
            json!({"action": "feedback", "confirmed": true, "measures": "更正力率调整", "recovered_kwh": "1", "recovered_yuan": "2"}),
        ),
        "feedback",
    );
    assert_2xx(
        act(&env, &id, json!({"action": "review", "approve": true})),
        "review approve",
    );
    assert_eq!(status_of(&env, &id), "archived");
    assert_409(
        act(&env, &id, json!({"action": "dispatch", "org": "41/4107"})),
        "dispatch an archived order",
    );
    // 整改成效补录 after archiving, without reopening.
    let r = act(
        &env,
        &id,
        json!({"action": "rectify", "result": "已追补电费", "recovered_yuan": "1200.5"}),
    );
    let v = assert_2xx(r, "rectify").json();
    assert_eq!(v["status"], "archived", "{v}");
    assert_eq!(v["rectification"]["recovered_yuan"], "1200.50", "{v}");

    let one = env
        .get(&format!("/api/v1/workorders/{}", enc(&id)))
        .ok()
        .json();
    assert_eq!(one["id"], id.as_str());
    let hist = one["history"]
        .as_array()
        .unwrap_or_else(|| panic!("no history: {one}"));
    assert!(
        hist.len() >= 4,
        "dispatch, accept, feedback and review are in the history: {one}"
    );
    let hits = one["hit_history"]
        .as_array()
        .unwrap_or_else(|| panic!("no hit_history: {one}"));
    assert_eq!(hits.len(), 1, "{one}");

    let archived = ids(&env.workorders("status=archived"));
    assert_eq!(archived, vec![id.clone()]);
    let open = ids(&env.workorders("status=open"));
    assert_eq!(open, vec![w2["id"].as_str().unwrap().to_string()]);
    assert_eq!(env.get("/api/v1/workorders/NO-SUCH-ORDER").status, 404);
    assert_eq!(
        env.post("/api/v1/admin/clock", &json!({"offset": "1h"}))
            .status,
        404,
        "the test clock is off unless configured"
    );
    // 作废 needs a reason and closes the order.
    let w2id = w2["id"].as_str().unwrap().to_string();
    let r = act(&env, &w2id, json!({"action": "void"}));
    assert_eq!(r.status, 400, "void without a reason: {}", r.body);
    assert_2xx(
        act(&env, &w2id, json!({"action": "void", "reason": "重复"})),
        "void",
    );
    assert_eq!(status_of(&env, &w2id), "voided");
    let r = act(&env, &w2id, json!({"action": "accept"}));
    assert_eq!(r.status, 409);
    assert!(
        r.body.contains("voided") && r.body.contains("closed"),
        "{}",
        r.body
    );

    // The archived order is closed: the next period's hit opens a new one.
    env.post_billing("2026-11", vec![pf_missing("P1")]);
    let fresh = env.wait_wo("pf_adjust_missing", "P1", |_| true);
    let all = env.wos("pf_adjust_missing", "P1");
    assert_eq!(all.len(), 2, "{all:?}");
    let new: Vec<&Value> = all.iter().filter(|w| w["id"] != id.as_str()).collect();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["status"], "open");
    assert_eq!(new[0]["hits"], 1);
    assert_time(new[0], "first_window_start", day(2026, 11, 1).start());
    let _ = fresh;
    assert_eq!(status_of(&env, &id), "archived");
}

#[test]
fn workorder_review_rejected_goes_back_to_the_handler() {
    let env = Env::start(&archive(vec![commerce("P2", "41/4107/410727")]));
    env.post_billing("2026-10", vec![pf_missing("P2")]);
    let w = env.wait_wo("pf_adjust_missing", "P2", |_| true);
    let id = w["id"].as_str().unwrap().to_string();
    assert_409(
        act(
            &env,
            &id,
            json!({"action": "feedback", "confirmed": false, "measures": "x", "recovered_kwh": "0", "recovered_yuan": "0"}),
        ),
        "feedback on an open order",
    );
    assert_2xx(
        act(
            &env,
            &id,
            json!({"action": "dispatch", "org": "41/4107/410727"}),
        ),
        "dispatch",
    );
    assert_2xx(act(&env, &id, json!({"action": "accept"})), "accept");
    assert_409(act(&env, &id, json!({"action": "accept"})), "accept twice");
    assert_2xx(
        act(
            &env,
            &id,
            json!({"action": "feedback", "confirmed": false, "measures": "现场未见异常", "recovered_kwh": "0", "recovered_yuan": "0"}),
        ),
        "feedback",
    );
    assert_2xx(
        act(&env, &id, json!({"action": "review", "approve": false})),
        "review reject",
    );
    assert_eq!(
        status_of(&env, &id),
        "in_progress",
        "a rejected review returns the order to its handler"
    );
    assert_409(
        act(&env, &id, json!({"action": "review", "approve": true})),
        "review without new feedback",
    );
    assert_2xx(
        act(
            &env,
            &id,
            json!({"action": "feedback", "confirmed": true, "measures": "补收", "recovered_kwh": "10", "recovered_yuan": "20.50"}),
        ),
        "second feedback",
    );
    assert_2xx(
        act(&env, &id, json!({"action": "review", "approve": true})),
        "review approve",
    );
    assert_eq!(status_of(&env, &id), "archived");
}

#[test]
fn workorder_filters_and_pagination() {
    let single = |c: Value| {
        with(
            with(c, "tariff_kind", json!("single")),
            "basic_fee_mode",
            json!("none"),
        )
    };
    let env = Env::start(&archive(vec![
        single(commerce("F1", "41/4107/410727")),
        single(commerce("F2", "41/4107/410728")),
        single(commerce("F3", "41/4108/410801")),
        single(commerce("F4", "42/4201/420101")),
    ]));
    let b = |id: &str, basic: &str| {
        bill_with(
            id,
            &[
                ("tariff_kind", json!("single")),
                ("tariff_category", json!("general_industry_commerce")),
                ("basic_fee_kva", json!("0")),
                ("basic_fee_yuan", json!(basic)),
                ("pf_adjust_applied", json!(false)),
            ],
        )
    };
    // pf_adjust_missing for all four; F1 is also charged a basic fee on a
    // single-part tariff (basic_fee_undue).
    env.post_billing(
        "2026-10",
        vec![b("F1", "10.00"), b("F2", "0"), b("F3", "0"), b("F4", "0")],
    );
    env.wait_wo("basic_fee_undue", "F1", |_| true);
    for c in ["F1", "F2", "F3", "F4"] {
        env.wait_wo("pf_adjust_missing", c, |_| true);
    }
    // Billing themes are evaluated by the POST itself: its answer means
    // every order it raises is in place.
    let all = env.workorders("");
    let custs = |v: &[Value]| {
        let mut c: Vec<String> = v
            .iter()
            .map(|w| {
                format!(
                    "{}:{}",
                    w["theme"].as_str().unwrap(),
                    w["customer_id"].as_str().unwrap()
                )
            })
            .collect();
        c.sort();
        c
    };
    assert_eq!(
        custs(&all),
        vec![
            "basic_fee_undue:F1",
            "pf_adjust_missing:F1",
            "pf_adjust_missing:F2",
            "pf_adjust_missing:F3",
            "pf_adjust_missing:F4"
        ]
    );
    assert_eq!(
        custs(&env.workorders("theme=basic_fee_undue")),
        vec!["basic_fee_undue:F1"]
    );
    assert_eq!(env.workorders("theme=pf_adjust_missing").len(), 4);
    assert_eq!(
        custs(&env.workorders(&format!("org={}", enc("41/4107")))),
        vec![
            "basic_fee_undue:F1",
            "pf_adjust_missing:F1",
            "pf_adjust_missing:F2"
        ]
    );
    assert_eq!(env.workorders(&format!("org={}", enc("41"))).len(), 4);
    assert_eq!(
        custs(&env.workorders(&format!("org={}", enc("41/4108/410801")))),
        vec!["pf_adjust_missing:F3"]
    );
    assert_eq!(
        custs(&env.workorders("customer_id=F3")),
        vec!["pf_adjust_missing:F3"]
    );
    assert_eq!(
        custs(&env.workorders(&format!("theme=pf_adjust_missing&org={}", enc("41/4107")))),
        vec!["pf_adjust_missing:F1", "pf_adjust_missing:F2"]
    );
    assert_eq!(env.workorders("status=open").len(), 5);
    assert!(env.workorders("status=archived").is_empty());

    // Pages of 2: 2 + 2 + 1, each id once, the last page's cursor null.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/workorders?limit=2&cursor={}", enc(c)),
            None => "/api/v1/workorders?limit=2".to_string(),
        };
        let page = env.get(&q).ok().json();
        let items = page["items"].as_array().unwrap().clone();
        pages += 1;
        assert!(items.len() <= 2, "limit=2 answered {} items", items.len());
        seen.extend(ids(&items));
        match &page["next_cursor"] {
            Value::Null => break,
            Value::String(s) => {
                assert!(!items.is_empty());
                cursor = Some(s.clone());
            }
            other => panic!("next_cursor must be a string or null: {other}"),
        }
        assert!(pages < 10, "pagination does not end");
    }
    seen.sort();
    let mut dedup = seen.clone();
    dedup.dedup();
    assert_eq!(seen, dedup, "an order appeared on two pages");
    assert_eq!(seen, ids(&all), "the pages together hold every order");
    assert_eq!(pages, 3, "5 orders in pages of 2");
}

#[test]
fn further_hits_add_to_the_open_workorder() {
    let env = Env::start(&archive(vec![customer("CA", 400, &[("MA", "1")])]));
    let t = |h, m| ts(2026, 11, 3, h, m);
    env.loads(vec![
        load("MA", t(10, 0), 500.0),
        load("MA", t(10, 15), 500.0),
        load("MA", t(10, 30), 100.0),
        load(FILL_METER, t(12, 0), 1.0),
    ]);
    let first = env.wait_wo("over_capacity", "CA", |_| true);
    env.loads(vec![
        load("MA", t(12, 45), 100.0),
        load("MA", t(13, 0), 600.0),
        load("MA", t(13, 15), 600.0),
        load("MA", t(13, 30), 100.0),
        load(FILL_METER, t(15, 0), 1.0),
    ]);
    let w = env.wait_wo("over_capacity", "CA", |w| w["hits"] == 2);
    assert_eq!(
        env.wos("over_capacity", "CA").len(),
        1,
        "one open order per (theme, customer)"
    );
    assert_eq!(w["id"], first["id"]);
    assert_time(&w, "first_window_start", t(10, 0));
    assert_time(&w, "first_window_end", t(10, 30));
    assert_time(&w, "last_window_end", t(13, 30));
    let one = env
        .get(&format!(
            "/api/v1/workorders/{}",
            enc(w["id"].as_str().unwrap())
        ))
        .ok()
        .json();
    assert_eq!(
        one["hit_history"].as_array().map(Vec::len),
        Some(2),
        "{one}"
    );
    assert_eq!(
        env.metric_sum(
            "jicha_workorders",
            &[("status", "open"), ("theme", "over_capacity")]
        ),
        1.0,
        "jicha_workorders gauge"
    );
}

/// 时限 and 督办 with the test clock: a dispatched order is warned at 80 %
/// of its accept limit (1 day), escalated to the parent unit past it, found
/// by `?overdue=true` and the overdue gauge, and sent as an `escalated`
/// outbox event; accepting starts the next stage with a clean slate.
#[test]
fn stage_time_limits_warn_then_escalate_to_the_parent_unit() {
    let env = Env::start_with_config(
        &archive(vec![commerce("P1", "41/4107/410727")]),
        "test_clock = true\n[[sinks]]\nkind = \"event_log\"\npath = \"{dir}/events.jsonl\"\n",
    );
    env.post_billing("2026-10", vec![pf_missing("P1")]);
    let w = env.wait_wo("pf_adjust_missing", "P1", |_| true);
    let id = w["id"].as_str().unwrap().to_string();
    assert_2xx(act(&env, &id, json!({"action": "dispatch"})), "dispatch");
    let clock = |offset: &str| {
        let r = env.post("/api/v1/admin/clock", &json!({"offset": offset}));
        assert_2xx(r, "clock").json()
    };
    let order = || {
        env.get(&format!("/api/v1/workorders/{}", enc(&id)))
            .ok()
            .json()
    };
    let overdue = |env: &Env| ids(&env.workorders("overdue=true"));
    let gauge = |env: &Env| {
        env.metric_sum(
            "jicha_workorders_overdue",
            &[("org", "41/4107/410727"), ("theme", "pf_adjust_missing")],
        )
    };

    clock("1h");
    assert_eq!(order()["escalation_level"], 0);
    assert_eq!(
        order()["assigned_org"],
        "41/4107/410727",
        "default: the county"
    );
    let v = clock("20h");
    assert_eq!(v["escalated"], 1, "{v}");
    assert_eq!(order()["escalation_level"], 1, "warned past 80 % of a day");
    assert!(overdue(&env).is_empty());
    let v = clock("25h");
    assert_eq!(v["escalated"], 1, "{v}");
    let o = order();
    assert_eq!(o["escalation_level"], 2, "{o}");
    assert_eq!(
        o["assigned_org"], "41/4107",
        "督办 goes to the parent unit: {o}"
    );
    let last = o["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "escalate", "{o}");
    assert_eq!(last["detail"]["org"], "41/4107", "{o}");
    assert_eq!(overdue(&env), vec![id.clone()]);
    assert_eq!(gauge(&env), 1.0);
    assert_eq!(clock("25h")["escalated"], 0, "once per level");
    let log = env.svc.dir.join("events.jsonl");
    let escalations = wait_until(
        Duration::from_secs(20),
        "escalated events in the log",
        &env,
        || {
            let events = read_deduplicated(&log).ok()?.events;
            let got: Vec<(Escalation, Option<String>)> = events
                .iter()
                .filter(|e| e.kind == EventKind::Escalated && e.workorder_id == id)
                .map(|e| (e.escalation, e.assigned_org.clone()))
                .collect();
            (got.len() == 2).then_some(got)
        },
    );
    assert_eq!(
        escalations,
        [
            (Escalation::Warned, Some("41/4107/410727".into())),
            (Escalation::Escalated, Some("41/4107".into()))
        ],
        "warned, then 督办 to the parent unit, each once"
    );

    assert_2xx(act(&env, &id, json!({"action": "accept"})), "accept");
    assert_eq!(
        order()["escalation_level"],
        0,
        "the feedback stage starts clean"
    );
    assert!(overdue(&env).is_empty());
    assert_eq!(gauge(&env), 0.0);
    assert_eq!(ids(&env.workorders("overdue=false")), vec![id.clone()]);
}
