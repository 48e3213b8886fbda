//! Access control (`jicha run --auth FILE`): without a token 401, a role
//! without the right 403, an order outside the caller's unit 404 exactly as
//! a missing one; the token's name is the actor; the org filter matches
//! whole segments; SIGHUP reads the file again.

use crate::support::*;
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-0000000001";
const AUDITOR: &str = "auditor-city-4107-0001";
const OPERATOR_A: &str = "operator-county-a-0001";
const OPERATOR_B: &str = "operator-county-b-0001";
const VIEWER_A: &str = "viewer-county-a-000001";
const ENGINEER: &str = "engineer-province-0001";
const LATER: &str = "added-after-start-0001";

const COUNTY_A: &str = "41/4107/410727";
const COUNTY_B: &str = "41/4107/410728";

fn entry(token: &str, name: &str, role: &str, org: &str) -> String {
    format!("[[token]]\ntoken = {token:?}\nname = {name:?}\nrole = {role:?}\norg = {org:?}\n\n")
}

fn tokens() -> String {
    [
        entry(ADMIN, "省中心管理员", "admin", "41"),
        entry(AUDITOR, "新乡稽查员", "auditor", "41/4107"),
        entry(OPERATOR_A, "A县处理员", "operator", COUNTY_A),
        entry(OPERATOR_B, "B县处理员", "operator", COUNTY_B),
        entry(VIEWER_A, "A县查看员", "viewer", COUNTY_A),
        // The file may hold a digest instead of the token.
        entry(
            &format!("sha256:{}", sha256_hex(ENGINEER)),
            "主题工程师",
            "engineer",
            "41",
        ),
    ]
    .concat()
}

fn sha256_hex(text: &str) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(text.as_bytes())?;
            c.wait_with_output()
        })
        .expect("sha256sum (coreutils) is needed");
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// Two two-part customers billed single-rate: one `two_part_missing`
/// order in county A, one in county B.
fn start() -> (Env, String, String) {
    let a = with(
        customer("CA", 400, &[("MCA", "1")]),
        "org_code",
        json!(COUNTY_A),
    );
    let b = with(
        customer("CB", 400, &[("MCB", "1")]),
        "org_code",
        json!(COUNTY_B),
    );
    let env = Env::start_with_auth(&archive(vec![a, b]), &tokens(), ADMIN);
    let single = |id: &str| {
        bill_with(
            id,
            &[
                ("tariff_kind", json!("single")),
                ("basic_fee_yuan", json!("0")),
            ],
        )
    };
    let r = env.request_as(
        Some(OPERATOR_A),
        "POST",
        "/api/v1/billing",
        Some(&billing("2026-10", vec![single("CA"), single("CB")])),
    );
    assert_eq!(r.status, 403, "an operator posted billing: {}", r.body);
    env.post_billing("2026-10", vec![single("CA"), single("CB")]);
    let id = |c: &str| {
        env.wait_wo("two_part_missing", c, |_| true)["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (wa, wb) = (id("CA"), id("CB"));
    (env, wa, wb)
}

fn ids(env: &Env, token: &str, query: &str) -> Vec<String> {
    let r = env.request_as(
        Some(token),
        "GET",
        &format!("/api/v1/workorders?{query}"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mut v: Vec<String> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn act(env: &Env, token: &str, id: &str, body: Value) -> (u16, Value) {
    let r = env.request_as(
        Some(token),
        "POST",
        &format!("/api/v1/workorders/{id}/actions"),
        Some(&body),
    );
    let v = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

#[test]
fn tokens_decide_who_sees_and_does_what() {
    let (env, wa, wb) = start();

    // No token, a wrong one, or a wrong scheme: 401 with a JSON error.
    for token in [None, Some("not-a-token-at-all-000")] {
        for path in ["/api/v1/workorders", "/api/v1/themes", "/metrics"] {
            let r = env.request_as(token, "GET", path, None);
            assert_eq!(r.status, 401, "{path} with {token:?}: {}", r.body);
            assert!(
                r.json()["error"].as_str().unwrap().contains("Bearer"),
                "{}",
                r.body
            );
        }
    }
    assert_eq!(env.request_as(None, "GET", "/healthz", None).status, 200);
    assert_eq!(
        env.request_as(Some(VIEWER_A), "GET", "/metrics", None)
            .status,
        200
    );

    // Each unit sees its subtree only; the province and the city see both.
    let mut both = vec![wa.clone(), wb.clone()];
    both.sort();
    assert_eq!(ids(&env, OPERATOR_A, ""), vec![wa.clone()]);
    assert_eq!(ids(&env, OPERATOR_B, ""), vec![wb.clone()]);
    assert_eq!(ids(&env, AUDITOR, ""), both);
    assert_eq!(ids(&env, ADMIN, ""), both);
    // The org filter matches whole segments, inside the caller's subtree.
    assert_eq!(ids(&env, ADMIN, "org=41/410"), Vec::<String>::new());
    assert_eq!(ids(&env, ADMIN, "org=41/4107"), both);
    assert_eq!(
        ids(&env, ADMIN, &format!("org={COUNTY_B}")),
        vec![wb.clone()]
    );
    assert_eq!(
        ids(&env, OPERATOR_A, &format!("org={COUNTY_B}")),
        Vec::<String>::new()
    );

    // Another county's order is as missing as one that never was.
    let other = env.request_as(
        Some(OPERATOR_A),
        "GET",
        &format!("/api/v1/workorders/{wb}"),
        None,
    );
    let none = env.request_as(
        Some(OPERATOR_A),
        "GET",
        "/api/v1/workorders/WO9999999999",
        None,
    );
    assert_eq!((other.status, none.status), (404, 404));
    assert_eq!(
        other.json()["error"].as_str().unwrap().replace(&wb, "ID"),
        none.json()["error"]
            .as_str()
            .unwrap()
            .replace("WO9999999999", "ID")
    );
    let own = env.request_as(
        Some(VIEWER_A),
        "GET",
        &format!("/api/v1/workorders/{wa}"),
        None,
    );
    assert_eq!(own.status, 200, "{}", own.body);

    // Roles: a viewer may not act on its own orders; an operator may not
    // dispatch; an auditor dispatches; the operator accepts in its county only.
    let (s, v) = act(&env, VIEWER_A, &wa, json!({"action": "accept"}));
    assert_eq!(s, 403, "{v}");
    let (s, v) = act(
        &env,
        OPERATOR_A,
        &wa,
        json!({"action": "dispatch", "org": COUNTY_A}),
    );
    assert_eq!(s, 403, "{v}");
    let (s, v) = act(
        &env,
        AUDITOR,
        &wa,
        json!({"action": "dispatch", "org": COUNTY_A, "actor": "mallory"}),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = act(&env, OPERATOR_B, &wa, json!({"action": "accept"}));
    assert_eq!(s, 404, "{v}");
    let (s, v) = act(&env, OPERATOR_A, &wa, json!({"action": "accept"}));
    assert_eq!(s, 200, "{v}");
    let actors: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["actor"].as_str())
        .collect();
    assert!(
        actors.ends_with(&["新乡稽查员", "A县处理员"]),
        "the token's name is the actor, whatever the body says: {actors:?}"
    );

    // Reports and 抽检 are the auditors': of their own subtree only.
    let report = |token: Option<&str>, query: &str| {
        env.request_as(
            token,
            "GET",
            &format!("/api/v1/reports/evaluation?period=2026-11{query}"),
            None,
        )
    };
    assert_eq!(report(None, "").status, 401);
    assert_eq!(report(Some(VIEWER_A), "").status, 403);
    assert_eq!(report(Some(OPERATOR_A), "").status, 403);
    let r = report(Some(AUDITOR), "");
    assert_eq!(
        (r.status, r.json()["org"].as_str()),
        (200, Some("41/4107")),
        "{}",
        r.body
    );
    let r = report(Some(AUDITOR), "&org=41/4108");
    assert_eq!(r.status, 404, "another city's report: {}", r.body);
    let draw = json!({"org": COUNTY_A, "month": "2026-11", "seed": 1});
    let r = env.request_as(Some(OPERATOR_A), "POST", "/api/v1/sampling", Some(&draw));
    assert_eq!(r.status, 403, "{}", r.body);
    let r = env.request_as(Some(AUDITOR), "POST", "/api/v1/sampling", Some(&draw));
    assert_eq!(
        (r.status, r.json()["size"].as_u64()),
        (200, Some(0)),
        "nothing archived: {}",
        r.body
    );

    // Themes need an engineer (here through a digest entry); uploads an admin.
    let dry = json!({"sql": "-- theme: t\nSELECT customer_id, window_start, window_end FROM customers WHERE false"});
    let r = env.request_as(
        Some(OPERATOR_A),
        "POST",
        "/api/v1/themes/dry-run",
        Some(&dry),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = env.request_as(Some(ENGINEER), "POST", "/api/v1/themes/dry-run", Some(&dry));
    assert_ne!(
        r.status, 401,
        "the sha256: entry was not accepted: {}",
        r.body
    );
    assert_ne!(r.status, 403, "{}", r.body);
    let entry = json!({"customer_id": "CA", "theme": "two_part_missing", "valid_from": "2026-10-01", "valid_until": "2026-10-31"});
    let r = env.request_as(Some(ENGINEER), "POST", "/api/v1/whitelist", Some(&entry));
    assert_eq!(r.status, 403, "{}", r.body);
    // The posting admin approves; the entry names someone else as requester.
    let r = env.request_as(Some(ADMIN), "POST", "/api/v1/whitelist", Some(&entry));
    assert_eq!(r.status, 400, "no requester: {}", r.body);
    let mut own = entry.clone();
    own["requester"] = json!("省中心管理员");
    let r = env.request_as(Some(ADMIN), "POST", "/api/v1/whitelist", Some(&own));
    assert_eq!(r.status, 409, "requester approving: {}", r.body);
    let mut asked = entry.clone();
    asked["requester"] = json!("A县处理员");
    let r = env.request_as(Some(ADMIN), "POST", "/api/v1/whitelist", Some(&asked));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["approver"], "省中心管理员");
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = env.request_as(
        Some(ADMIN),
        "DELETE",
        &format!("/api/v1/whitelist/{id}"),
        None,
    );
    assert_eq!(r.json()["removed_by"], "省中心管理员", "{}", r.body);

    // Dead letters belong to no unit: the province sees them, a county not.
    let bad = env.request_as(Some(OPERATOR_A), "GET", "/api/v1/deadletters", None);
    assert_eq!(bad.status, 200);
    assert_eq!(bad.json()["items"], json!([]));
    assert_eq!(
        env.request_as(Some(ADMIN), "GET", "/api/v1/deadletters", None)
            .status,
        200
    );
}

#[test]
fn sighup_reads_the_token_file_again() {
    let (env, _, _) = start();
    let r = env.request_as(Some(LATER), "GET", "/api/v1/workorders", None);
    assert_eq!(r.status, 401);
    let file = env.svc.dir.join("auth.toml");
    // A broken file keeps the tokens in force.
    std::fs::write(&file, "[[token]]\ntoken = 5\n").unwrap();
    env.signal_app("HUP");
    let file_text = tokens() + &entry(LATER, "后加的", "viewer", COUNTY_B);
    wait_until(
        std::time::Duration::from_secs(10),
        "the broken file to be reported",
        &env,
        || {
            env.app_stderr()
                .contains("token file not reloaded")
                .then_some(())
        },
    );
    assert_eq!(
        env.request_as(Some(OPERATOR_A), "GET", "/api/v1/workorders", None)
            .status,
        200
    );
    std::fs::write(&file, file_text).unwrap();
    env.signal_app("HUP");
    wait_until(
        std::time::Duration::from_secs(10),
        "the new token to be accepted after SIGHUP",
        &env,
        || {
            (env.request_as(Some(LATER), "GET", "/api/v1/workorders", None)
                .status
                == 200)
                .then_some(())
        },
    );
    assert_eq!(
        ids(&env, LATER, "").len(),
        1,
        "the new token sees county B only"
    );
}

#[test]
fn without_auth_only_loopback_is_served() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jicha"))
        .args([
            "run",
            "--http",
            "0.0.0.0:0",
            "--mqtt",
            "mqtt://127.0.0.1:1",
            "--redis",
            "redis://127.0.0.1:1",
        ])
        .env_remove("JICHA_AUTH")
        .env_remove("JICHA_CONFIG")
        .output()
        .expect("cannot run jicha");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("without access control") && stderr.contains("--auth"),
        "{stderr}"
    );
}
