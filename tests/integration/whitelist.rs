//! Whitelist: a covered hit raises no work order and is kept as a
//! suppressed alert; dates are inclusive; deleting the entry ends it.

use crate::support::*;
use serde_json::{json, Value};

fn t(h: i64, m: i64) -> Ts {
    ts(2026, 11, 3, h, m)
}

fn add(env: &Env, customer_id: &str, theme: &str, from: &str, until: &str) -> String {
    let r = env.post(
        "/api/v1/whitelist",
        &json!({"customer_id": customer_id, "theme": theme, "reason": "试验线路, 已报备", "valid_from": from, "valid_until": until}),
    );
    assert_eq!(
        r.status, 201,
        "POST /api/v1/whitelist: {} {}",
        r.status, r.body
    );
    r.json()["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {}", r.body))
        .to_string()
}

fn whitelist_ids(env: &Env) -> Vec<String> {
    let v = env.get("/api/v1/whitelist").ok().json();
    let mut ids: Vec<String> = v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn suppressed(env: &Env) -> Vec<Value> {
    let v = env.get("/api/v1/alerts/suppressed?limit=1000").ok().json();
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .clone()
}

#[test]
fn whitelisted_hit_is_a_suppressed_alert_not_a_workorder() {
    let env = Env::start(&archive(vec![
        customer("CA", 400, &[("MA", "1")]),
        customer("CB", 400, &[("MB", "1")]),
        customer("CC", 400, &[("MC", "1")]),
        customer("CD", 400, &[("MD", "1")]),
        customer("CE", 400, &[("ME", "1")]),
    ]));
    let wa = add(&env, "CA", "over_capacity", "2026-11-01", "2026-11-30");
    // Expired the day before the hit.
    let wc = add(&env, "CC", "over_capacity", "2026-10-01", "2026-11-02");
    // Another theme.
    let wd = add(&env, "CD", "register_reversal", "2026-11-01", "2026-11-30");
    // Ends on the hit's date: inclusive, still covers it.
    let we = add(&env, "CE", "over_capacity", "2026-11-03", "2026-11-03");
    let mut want = vec![wa.clone(), wc.clone(), wd.clone(), we.clone()];
    want.sort();
    assert_eq!(whitelist_ids(&env), want);

    let mut recs = Vec::new();
    for m in ["MA", "MB", "MC", "MD", "ME"] {
        recs.push(load(m, t(10, 0), 500.0));
        recs.push(load(m, t(10, 15), 500.0));
    }
    recs.push(load(FILL_METER, t(12, 0), 1.0));
    env.loads(recs);
    env.wait_wo("over_capacity", "CB", |_| true);
    env.wait_wo("over_capacity", "CC", |_| true);
    env.wait_wo("over_capacity", "CD", |_| true);
    env.wait_evaluated(&["over_capacity"], t(11, 0));
    assert_eq!(env.customers_with("over_capacity"), vec!["CB", "CC", "CD"]);

    let sup = suppressed(&env);
    let find = |c: &str| -> Vec<Value> {
        sup.iter()
            .filter(|s| s["customer_id"] == c)
            .cloned()
            .collect()
    };
    let a = find("CA");
    assert_eq!(a.len(), 1, "CA's hit is suppressed once: {sup:?}");
    assert_eq!(a[0]["theme"], "over_capacity");
    assert_eq!(a[0]["whitelist_id"], wa.as_str());
    assert_time(&a[0], "window_start", t(10, 0));
    assert_time(&a[0], "window_end", t(10, 30));
    let e = find("CE");
    assert_eq!(e.len(), 1, "valid_until is inclusive: {sup:?}");
    assert_eq!(e[0]["whitelist_id"], we.as_str());
    for c in ["CB", "CC", "CD"] {
        assert!(
            find(c).is_empty(),
            "{c} is not covered, yet suppressed: {sup:?}"
        );
    }

    // Removing the entry: the next hit raises a work order.
    let r = env.delete(&format!("/api/v1/whitelist/{}", enc(&wa)));
    assert!(
        (200..300).contains(&r.status),
        "DELETE whitelist: {} {}",
        r.status,
        r.body
    );
    assert!(!whitelist_ids(&env).contains(&wa));
    env.loads(vec![
        load("MA", t(13, 0), 500.0),
        load("MA", t(13, 15), 500.0),
        load(FILL_METER, t(15, 0), 1.0),
    ]);
    let w = env.wait_wo("over_capacity", "CA", |_| true);
    assert_time(&w, "first_window_start", t(13, 0));
    assert_eq!(w["hits"], 1);
}

/// Governance: an entry over the maximum validity is refused; `*` exempts
/// the customer from every theme; a removed entry stays in the history
/// (`?include=history`) with when it was removed.
#[test]
fn whitelist_validity_all_themes_and_history() {
    let env = Env::start(&archive(vec![customer("CA", 400, &[("MA", "1")])]));
    let r = env.post(
        "/api/v1/whitelist",
        &json!({"customer_id": "CA", "theme": "over_capacity", "valid_from": "2026-01-01", "valid_until": "2027-01-02"}),
    );
    assert_eq!(r.status, 400, "367 days: {}", r.body);
    assert!(r.body.contains("366"), "{}", r.body);
    let all = add(&env, "CA", "*", "2026-11-01", "2026-11-30");
    env.loads(vec![
        load("MA", t(10, 0), 500.0),
        load("MA", t(10, 15), 500.0),
        load(FILL_METER, t(12, 0), 1.0),
    ]);
    env.wait_evaluated(&["over_capacity"], t(11, 0));
    assert!(env.customers_with("over_capacity").is_empty());
    let sup = suppressed(&env);
    assert_eq!(sup.len(), 1, "{sup:?}");
    assert_eq!(sup[0]["whitelist_id"], all.as_str());

    let r = env.delete(&format!("/api/v1/whitelist/{}", enc(&all)));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["removed_at"].is_string(), "{}", r.body);
    assert_eq!(
        env.delete(&format!("/api/v1/whitelist/{}", enc(&all)))
            .status,
        404
    );
    assert!(whitelist_ids(&env).is_empty());
    let v = env.get("/api/v1/whitelist?include=history").ok().json();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v}");
    assert_eq!(items[0]["id"], all.as_str());
    assert_eq!(items[0]["theme"], "*");
    assert!(items[0]["removed_at"].is_string(), "{v}");
    assert_eq!(env.get("/api/v1/whitelist?include=everything").status, 400);
}
