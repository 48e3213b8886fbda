//! The closed loop around the life cycle: manual triage (待研判 → 需处理 /
//! 不处理), 抽检 reproducible from its seed, and the evaluation report
//! reconciling with the orders to the fen, in JSON, CSV and HTML.

use crate::support::*;
use jicha_pipeline::workorder::sampling;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::time::Duration;

const A: &str = "41/4107/410727";
const B: &str = "41/4107/410728";

fn commerce(id: &str, org: &str) -> Value {
    let c = with(
        customer(id, 200, &[(&format!("M{id}"), "1")]),
        "usage_category",
        json!("general_industry_commerce"),
    );
    with(c, "org_code", json!(format!("{org}/01")))
}

fn pf_missing(id: &str) -> Value {
    bill_with(id, &[("pf_adjust_applied", json!(false))])
}

#[track_caller]
fn act(env: &Env, id: &str, body: Value) -> Value {
    env.post(&format!("/api/v1/workorders/{}/actions", enc(id)), &body)
        .ok()
        .json()
}

fn act_status(env: &Env, id: &str, body: Value) -> Resp {
    env.post(&format!("/api/v1/workorders/{}/actions", enc(id)), &body)
}

fn id_of(w: &Value) -> String {
    w["id"].as_str().unwrap().to_string()
}

#[test]
fn manual_triage_holds_hits_until_dispatched_or_dismissed() {
    let env = Env::start_with_config(
        &archive(vec![commerce("T1", A), commerce("T2", A)]),
        "[triage]\nmanual = [\"pf_adjust_missing\"]\n",
    );
    env.post_billing("2026-10", vec![pf_missing("T1"), pf_missing("T2")]);
    let t1 = env.wait_wo("pf_adjust_missing", "T1", |_| true);
    let t2 = env.wait_wo("pf_adjust_missing", "T2", |_| true);
    assert_eq!(
        (t1["status"].as_str(), t2["status"].as_str()),
        (Some("pending"), Some("pending"))
    );
    let (t1, t2) = (id_of(&t1), id_of(&t2));
    assert_eq!(env.workorders("status=pending").len(), 2);

    let r = act_status(&env, &t1, json!({"action": "accept"}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body.contains("pending") && r.body.contains("dispatch, dismiss"),
        "{}",
        r.body
    );
    let r = act_status(&env, &t1, json!({"action": "dismiss"}));
    assert_eq!(r.status, 400, "不处理 needs its reason: {}", r.body);

    let before = env
        .get(&format!("/api/v1/workorders/{}", enc(&t1)))
        .ok()
        .json();
    let w = act(
        &env,
        &t1,
        json!({"action": "dismiss", "reason": "已办理力调, 系统未同步", "actor": "研判员"}),
    );
    assert_eq!(w["status"], "dismissed");
    assert_eq!(
        w["evidence"], before["evidence"],
        "a dismissed hit keeps its evidence"
    );
    assert!(!w["evidence"].as_object().unwrap().is_empty());
    let last = w["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["action"].as_str(), last["detail"]["reason"].as_str()),
        (Some("dismiss"), Some("已办理力调, 系统未同步"))
    );
    let w = act(&env, &t2, json!({"action": "dispatch"}));
    assert_eq!(
        (w["status"].as_str(), w["assigned_org"].as_str()),
        (Some("dispatched"), Some(A))
    );

    // The next period's hit is a new finding: a new pending order for T1,
    // added to T2's active one.
    env.post_billing("2026-11", vec![pf_missing("T1"), pf_missing("T2")]);
    let again = wait_until(
        Duration::from_secs(30),
        "a new pending order for T1",
        &env,
        || {
            let v = env.wos("pf_adjust_missing", "T1");
            (v.len() == 2).then(|| v[1].clone())
        },
    );
    assert_eq!(again["status"], "pending");
    assert_ne!(id_of(&again), t1);
    let t2_now = env.wait_wo("pf_adjust_missing", "T2", |w| w["hits"] == 2);
    assert_eq!(id_of(&t2_now), t2);
    assert_eq!(
        env.metric_sum("jicha_workorders", &[("status", "dismissed")]),
        1.0
    );
}

/// Runs an order to archived: dispatched, accepted and fed back by the
/// county's handler, approved by the city's auditor.
fn archive_order(env: &Env, id: &str, confirmed: bool, yuan: &str) {
    act(env, id, json!({"action": "dispatch", "actor": "市稽查员"}));
    act(env, id, json!({"action": "accept", "actor": "县处理员"}));
    act(
        env,
        id,
        json!({"action": "feedback", "actor": "县处理员", "confirmed": confirmed,
               "measures": "追补电费", "recovered_kwh": "10.5", "recovered_yuan": yuan}),
    );
    let w = act(
        env,
        id,
        json!({"action": "review", "approve": true, "actor": "市审核员"}),
    );
    assert_eq!(w["status"], "archived", "{w}");
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("{v} is not a decimal string"))
        .parse()
        .unwrap()
}

#[test]
fn sampling_is_reproducible_and_the_report_reconciles_to_the_fen() {
    let a: Vec<String> = (1..=6).map(|i| format!("SA{i}")).collect();
    let b: Vec<String> = (1..=2).map(|i| format!("SB{i}")).collect();
    let customers = a
        .iter()
        .map(|c| commerce(c, A))
        .chain(b.iter().map(|c| commerce(c, B)));
    let env = Env::start_with_config(&archive(customers.collect()), "[sampling]\nmin = 1\n");
    let all: Vec<&String> = a.iter().chain(&b).collect();
    env.post_billing("2026-10", all.iter().map(|c| pf_missing(c)).collect());
    // Amounts that round half away from zero at the fen, per order.
    let yuan = [
        "100.005", "0.004", "33.335", "12", "7.125", "0.015", "250.50", "1.999",
    ];
    for (i, c) in all.iter().enumerate() {
        let id = id_of(&env.wait_wo("pf_adjust_missing", c, |_| true));
        archive_order(&env, &id, i != 1, yuan[i]);
    }
    let archived = env.workorders("status=archived");
    assert_eq!(archived.len(), 8);
    let archived_at = |w: &Value| -> String {
        let h = w["history"].as_array().unwrap();
        let e = h.iter().rev().find(|e| e["to"] == "archived").unwrap();
        e["at"].as_str().unwrap().to_string()
    };
    let full: Vec<Value> = archived
        .iter()
        .map(|w| {
            env.get(&format!("/api/v1/workorders/{}", enc(&id_of(w))))
                .ok()
                .json()
        })
        .collect();
    // The business month of the archive (all eight, unless the test ran across midnight of a month's end).
    let month = archived_at(&full[0])[..7].to_string();
    let in_month: Vec<&Value> = full
        .iter()
        .filter(|w| archived_at(w).starts_with(&month))
        .collect();

    // 抽检: half of county A's orders archived this month, from seed 42.
    let draw = json!({"org": A, "month": month, "seed": 42, "share": "0.5"});
    let batch = env.post("/api/v1/sampling", &draw).ok().json();
    let mut candidates: Vec<String> = in_month
        .iter()
        .filter(|w| w["assigned_org"] == A)
        .map(|w| id_of(w))
        .collect();
    candidates.sort();
    let want = sampling::draw(&candidates, candidates.len().div_ceil(2), 42);
    let drawn: Vec<String> = batch["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["workorder_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(drawn, want, "the documented draw from seed 42: {batch}");
    assert_eq!(
        (batch["size"].as_u64(), batch["candidates"].as_u64()),
        (Some(want.len() as u64), Some(candidates.len() as u64))
    );
    let again = env.post("/api/v1/sampling", &draw).ok().json();
    assert_eq!(
        (&again["id"], &again["orders"]),
        (&batch["id"], &batch["orders"]),
        "the same request draws nothing new"
    );
    let other_share = json!({"org": A, "month": month, "seed": 42, "share": "0.8"});
    assert_eq!(env.post("/api/v1/sampling", &other_share).status, 409);

    let sid = batch["id"].as_str().unwrap().to_string();
    let verdict = |w: &str, body: Value| {
        let mut body = body;
        body["workorder_id"] = json!(w);
        env.post(&format!("/api/v1/sampling/{}/verdicts", enc(&sid)), &body)
    };
    let r = verdict(&drawn[0], json!({"result": "fail"}));
    assert_eq!(r.status, 400, "a failure needs its reason: {}", r.body);
    let r = verdict(&drawn[0], json!({"result": "pass", "actor": "县处理员"}));
    assert_eq!(r.status, 409, "the handler does not judge: {}", r.body);
    let w = verdict(
        &drawn[0],
        json!({"result": "fail", "reason": "追补金额未到账", "actor": "省抽检员"}),
    )
    .ok()
    .json();
    assert_eq!(
        (w["sample"]["result"].as_str(), w["status"].as_str()),
        (Some("fail"), Some("archived"))
    );
    verdict(&drawn[1], json!({"result": "pass", "actor": "省抽检员"})).ok();
    assert_eq!(
        verdict(&drawn[1], json!({"result": "pass", "actor": "省抽检员"})).status,
        409,
        "once"
    );
    let not_drawn = candidates.iter().find(|c| !drawn.contains(c)).unwrap();
    assert_eq!(verdict(not_drawn, json!({"result": "pass"})).status, 409);
    let b = env
        .get(&format!("/api/v1/sampling/{}", enc(&sid)))
        .ok()
        .json();
    assert_eq!(
        (b["judged"].as_u64(), b["failed"].as_u64()),
        (Some(2), Some(1)),
        "{b}"
    );
    assert_eq!(
        env.get("/api/v1/sampling").ok().json()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The month's report: per county and for the city, reconciled with the
    // orders as the API shows them.
    let q = format!("/api/v1/reports/evaluation?org=41/4107&period={month}");
    let report = env.get(&q).ok().json();
    let recovered: Decimal = in_month
        .iter()
        .filter(|w| w["feedback"]["confirmed"] == true)
        .map(|w| dec(&w["feedback"]["recovered_yuan"]))
        .sum();
    let total = &report["total"];
    assert_eq!(dec(&total["recovered_yuan"]), recovered, "{report}");
    assert_eq!(total["archived"].as_u64(), Some(in_month.len() as u64));
    let confirmed = in_month
        .iter()
        .filter(|w| w["feedback"]["confirmed"] == true)
        .count();
    assert_eq!(total["confirmed"].as_u64(), Some(confirmed as u64));
    assert_eq!(
        (total["sampled"].as_u64(), total["sample_failed"].as_u64()),
        (Some(drawn.len() as u64), Some(1))
    );
    let units: Vec<&str> = report["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["org"].as_str().unwrap())
        .collect();
    assert_eq!(units, ["41/4107", A, B]);
    let unit_sum: Decimal = report["units"].as_array().unwrap()[1..]
        .iter()
        .map(|u| dec(&u["recovered_yuan"]))
        .sum();
    assert_eq!(unit_sum, recovered, "the counties add up to the city");
    let ranked: Vec<&str> = report["ranking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["org"].as_str().unwrap())
        .collect();
    assert_eq!(ranked.len(), 2);

    let csv = env.get(&format!("{q}&format=csv")).ok().body;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} in {header:?}"))
    };
    let total_row: Vec<&str> = lines
        .find(|l| l.starts_with("total,"))
        .expect("a total row")
        .split(',')
        .collect();
    assert_eq!(
        total_row[col("recovered_yuan")].parse::<Decimal>().unwrap(),
        recovered
    );
    assert_eq!(total_row[col("sample_failed")], "1");

    let html = env.get(&format!("{q}&format=html")).ok().body;
    assert!(
        html.starts_with("<!doctype html>") && html.contains("月度稽查评价报告"),
        "{html}"
    );
    assert!(html.contains(A) && html.contains(B) && html.contains(&recovered.to_string()));

    let bad = env.get("/api/v1/reports/evaluation?period=2026-13");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(
        env.get("/api/v1/reports/evaluation").status,
        400,
        "the period is required"
    );
}
