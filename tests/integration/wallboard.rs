//! The built-in wallboard at `/`, as a person sees it: headless Chromium
//! on a running `jicha`, a finding published over MQTT appears without a
//! reload, archive text is shown as text; and the live stream behind it,
//! scoped to the caller's unit under access control.

use crate::support::chrome::{artifact, Browser};
use crate::support::sse::EventStream;
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const THEME: &str = "meter_cover_open";
const WAIT: Duration = Duration::from_secs(60);

fn t(h: i64, m: i64) -> Ts {
    ts(2026, 11, 3, h, m)
}

/// Cover-open events of `meters` at 10:00 and the filler event that
/// closes their windows.
fn plant_cover_open(env: &Env, meters: &[&str]) {
    let events = meters
        .iter()
        .map(|m| event(m, t(10, 0), "cover_open", Some("start")))
        .collect();
    env.events(events);
    env.events(vec![event(FILL_METER, t(12, 0), "clock_error", None)]);
}

fn open_wallboard(env: &Env) -> Browser {
    let browser = Browser::start(&env.svc.dir);
    browser.goto(&format!("http://127.0.0.1:{}/", env.http_port));
    browser.wait(
        WAIT,
        "the wallboard to connect to its live stream",
        "return document.body.dataset.live === '1' && window.jichaUpdates > 0",
    );
    // Survives only while the page is not reloaded.
    browser.eval("window.jichaMarker = 'same page'; return true");
    browser
}

fn row_text(browser: &Browser, workorder: &Value) -> String {
    let id = workorder["id"].as_str().unwrap();
    let v = browser.wait(
        WAIT,
        "the finding's row on the wallboard",
        &format!(
            "const r = document.querySelector('#newest tbody tr[data-id=\"{id}\"]'); return r ? r.innerText : null"
        ),
    );
    v.as_str().unwrap().to_string()
}

#[test]
fn a_finding_appears_on_the_wallboard_without_reload() {
    let env = Env::start(&archive(vec![with(
        customer("CW1", 400, &[("MW1", "1")]),
        "name",
        json!("王五 · 新村供电所"),
    )]));
    let browser = open_wallboard(&env);
    let before = browser.eval("return document.getElementById('t-open').textContent");
    assert_eq!(before, "0", "no order yet");
    let updates = browser.eval("return window.jichaUpdates");

    plant_cover_open(&env, &["MW1"]);
    let wo = env.wait_wo(THEME, "CW1", |_| true);
    let row = row_text(&browser, &wo);
    assert!(row.contains("王五 · 新村供电所"), "customer name: {row}");
    assert!(
        row.contains("电能表开盖"),
        "the theme's title from its header: {row}"
    );
    assert!(row.contains("待派发"), "the state in Chinese: {row}");
    assert!(row.contains("严重"), "the severity in Chinese: {row}");
    assert_eq!(
        browser.eval("return window.jichaMarker"),
        "same page",
        "the page was reloaded"
    );
    assert!(
        browser.eval("return window.jichaUpdates").as_u64() > updates.as_u64(),
        "the row came with a pushed summary"
    );
    browser.wait(
        WAIT,
        "the totals and the theme's tile to count the order",
        &format!(
            "return document.getElementById('t-open').textContent === '1' \
             && document.querySelector('[data-theme=\"{THEME}\"] .value').textContent === '1'"
        ),
    );
    let unit = browser.eval("return document.getElementById('units').innerText");
    assert!(
        unit.as_str().unwrap().contains("41/4107"),
        "the city's tile: {unit}"
    );
    let shot = artifact("wallboard.png");
    browser.screenshot(&shot);
    eprintln!("wallboard screenshot: {}", shot.display());
}

#[test]
fn markup_in_a_customer_name_is_shown_as_text() {
    let name = r#"<script>window.jichaXss=1</script><img src=x onerror="window.jichaXss=2">"#;
    let env = Env::start(&archive(vec![with(
        customer("CX1", 400, &[("MX1", "1")]),
        "name",
        json!(name),
    )]));
    let browser = open_wallboard(&env);
    plant_cover_open(&env, &["MX1"]);
    let wo = env.wait_wo(THEME, "CX1", |_| true);
    let row = row_text(&browser, &wo);
    assert!(row.contains(name), "the name, tags and all, as text: {row}");
    assert_eq!(
        browser.eval("return typeof window.jichaXss"),
        "undefined",
        "a script from the archive ran"
    );
    assert_eq!(
        browser.eval("return document.querySelectorAll('#newest img, #newest script').length"),
        0,
        "archive text became elements"
    );
    browser.screenshot(&artifact("wallboard-escaped.png"));
}

const VIEWER_A: &str = "viewer-county-a-000001";
const VIEWER_B: &str = "viewer-county-b-000001";

#[test]
fn the_live_stream_needs_a_token_and_shows_only_the_callers_unit() {
    let tokens = format!(
        "[[token]]\ntoken = {VIEWER_A:?}\nname = \"A\"\nrole = \"viewer\"\norg = \"41/4107/410727\"\n\n\
         [[token]]\ntoken = {VIEWER_B:?}\nname = \"B\"\nrole = \"viewer\"\norg = \"41/4107/410728\"\n"
    );
    let env = Env::start_with_auth(
        &archive(vec![
            customer("CA", 400, &[("MA", "1")]),
            with(
                customer("CB", 400, &[("MB", "1")]),
                "org_code",
                json!("41/4107/410728"),
            ),
        ]),
        &tokens,
        VIEWER_A,
    );
    let refused = http(env.http_port, "GET", "/api/v1/wallboard/stream", None).unwrap();
    assert_eq!(refused.status, 401, "{}", refused.body);
    let mut a = EventStream::open(env.http_port, "/api/v1/wallboard/stream", Some(VIEWER_A));
    let first = a.wait_summary(WAIT, "the first summary", |_| true);
    assert_eq!(first["scope"], "41/4107/410727");
    assert_eq!(first["totals"]["open"], 0);

    plant_cover_open(&env, &["MA", "MB"]);
    let seen = a.wait_summary(WAIT, "county A's order in its stream", |v| {
        v["totals"]["open"] == 1 && v["newest"].as_array().is_some_and(|n| !n.is_empty())
    });
    let newest = seen["newest"].as_array().unwrap();
    assert!(
        newest.iter().all(|f| f["customer_id"] == "CA"),
        "county B's order leaked into county A's wallboard: {newest:?}"
    );
    assert_eq!(newest[0]["status_label"], "待派发");
    assert_eq!(seen["units"][0]["org"], "41/4107/410727", "{seen}");
    let b = wait_until(WAIT, "county B's order on its wallboard", &env, || {
        let v = env
            .request_as(Some(VIEWER_B), "GET", "/api/v1/wallboard", None)
            .json();
        (v["totals"]["open"] == 1).then_some(v)
    });
    assert_eq!(b["newest"][0]["customer_id"], "CB", "{b}");
    assert_eq!(b["newest"].as_array().map(Vec::len), Some(1), "{b}");
    assert_eq!(
        a.wait_summary(WAIT, "county A's stream again", |_| true)["totals"]["open"],
        1,
        "county B's order counted on county A's wallboard"
    );
}
