//! The Grafana dashboards (dashboards/grafana/) against a live system: a
//! `jicha` fed the shared sample stream, with a rejected, a late and a
//! duplicate record, an overdue and a confirmed work order and an event-log
//! sink, scraped by a real Prometheus with the repository's rules. Every
//! panel query of every dashboard must parse and return at least one
//! series. Plus the static checks of the provisioning and compose files.

use crate::support::prometheus::{
    dashboards, panels, repo, result_len, substitute, underlying, Prometheus,
};
use crate::support::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The test clock, to make an order overdue; an event-log sink that
/// delivers, and a webhook sink whose target is not listening, so that the
/// outbox and every sink series exist (failures and dead letters included).
fn config() -> String {
    format!(
        "test_clock = true\n\
         [[sinks]]\nkind = \"event_log\"\npath = \"{{dir}}/events.jsonl\"\n\
         [[sinks]]\nkind = \"webhook\"\nname = \"unreachable\"\n\
         url = \"http://127.0.0.1:{}/hook\"\nmax_attempts = 2\n\
         initial_backoff = \"100ms\"\nmax_backoff = \"200ms\"\ntimeout = \"1s\"\n",
        free_port()
    )
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn sample(name: &str) -> PathBuf {
    let p = repo().join("../shared/samples/small").join(name);
    assert!(p.exists(), "the shared sample {} is missing", p.display());
    p
}

fn json_file(name: &str) -> Value {
    serde_json::from_str(&read(&sample(name))).unwrap()
}

/// The sample stream as (topic, payload), unzipped into `dir`.
fn stream(dir: &Path) -> Vec<(String, String)> {
    let file = dir.join("stream.jsonl");
    let st = Command::new("gzip")
        .arg("-dc")
        .arg(sample("stream.jsonl.gz"))
        .stdout(std::fs::File::create(&file).unwrap())
        .status()
        .expect("cannot run gzip");
    assert!(st.success(), "gzip -dc failed: {st}");
    read(&file)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let m: Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| m[k].as_str().unwrap().to_string();
            (s("topic"), s("payload"))
        })
        .collect()
}

/// The uid of the datasource provisioned for the dashboards.
fn provisioned_uid() -> String {
    let f = repo().join("dashboards/grafana/provisioning/datasources/jicha.yml");
    read(&f)
        .lines()
        .find_map(|l| l.trim().strip_prefix("uid:").map(|u| u.trim().to_string()))
        .unwrap_or_else(|| panic!("{} provisions no datasource uid", f.display()))
}

#[test]
fn dashboards_are_bilingual_and_use_the_provisioned_datasource() {
    let uid = provisioned_uid();
    let bilingual = |t: &str| {
        t.split_once(" · ")
            .is_some_and(|(zh, en)| zh.chars().any(|c| c as u32 >= 0x4e00) && en.is_ascii())
    };
    let mut bad = Vec::new();
    for (file, d) in dashboards() {
        let title = d["title"].as_str().unwrap_or_default();
        if !bilingual(title) || d["uid"].as_str().is_none() {
            bad.push(format!(
                "{file}: title {title:?} (中文 · English) or uid missing"
            ));
        }
        let mut ids = std::collections::BTreeSet::new();
        for p in panels(&d) {
            let t = p["title"].as_str().unwrap_or_default();
            let at = format!("{file} panel {t:?}");
            if !bilingual(t) {
                bad.push(format!("{at}: title is not `中文 · English`"));
            }
            if !ids.insert(p["id"].to_string()) {
                bad.push(format!("{at}: duplicate panel id {}", p["id"]));
            }
            let targets = p["targets"].as_array().cloned().unwrap_or_default();
            if targets.is_empty() {
                bad.push(format!("{at}: no query"));
            }
            for ds in targets
                .iter()
                .map(|t| &t["datasource"])
                .chain([&p["datasource"]])
            {
                if ds["uid"] != uid.as_str() {
                    bad.push(format!("{at}: datasource {ds}, provisioned uid is {uid}"));
                }
            }
        }
    }
    let provider = read(&repo().join("dashboards/grafana/provisioning/dashboards/jicha.yml"));
    let compose = read(&repo().join("deploy/compose.yml"));
    let path = provider
        .lines()
        .find_map(|l| l.trim().strip_prefix("path:").map(str::trim))
        .expect("the dashboard provider has no path");
    if !compose.contains(&format!("../dashboards/grafana:{path}")) {
        bad.push(format!(
            "deploy/compose.yml does not mount dashboards/grafana at {path}"
        ));
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn compose_mounts_existing_files_and_runs_the_whole_stack() {
    let deploy = repo().join("deploy");
    let compose = read(&deploy.join("compose.yml"));
    let mut bad = Vec::new();
    // Host paths of bind mounts and the build context are relative to
    // deploy/, the Dockerfile to the build context.
    let mut context = deploy.clone();
    for l in compose.lines().map(str::trim) {
        let value = |key: &str| l.strip_prefix(key).map(|v| v.trim().trim_matches('"'));
        let path = if let Some(c) = value("context:") {
            context = deploy.join(c);
            context.clone()
        } else if let Some(f) = value("dockerfile:") {
            context.join(f)
        } else {
            match l.strip_prefix("- ") {
                Some(m) if m.starts_with("./") || m.starts_with("../") => {
                    deploy.join(m.split(':').next().unwrap())
                }
                _ => continue,
            }
        };
        if !path.exists() {
            bad.push(format!(
                "deploy/compose.yml: {} does not exist ({l})",
                path.display()
            ));
        }
    }
    for svc in [
        "mosquitto",
        "redis",
        "prometheus",
        "grafana",
        "alertmanager",
        "jicha",
    ] {
        if !compose.lines().any(|l| l == format!("  {svc}:")) {
            bad.push(format!("deploy/compose.yml has no service {svc}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

fn act(env: &Env, id: &str, body: Value) {
    let r = env.post(&format!("/api/v1/workorders/{}/actions", enc(id)), &body);
    assert!(
        (200..300).contains(&r.status),
        "{body}: {} {}",
        r.status,
        r.body
    );
}

/// One order confirmed with recovered yuan (dispatch → accept → feedback →
/// review), another dispatched and left past its time limit.
fn confirmed_and_overdue_orders(env: &Env) {
    let open = env.workorders("status=open");
    assert!(
        open.len() >= 2,
        "the sample raised fewer than two open orders: {open:?}"
    );
    let id = |w: &Value| w["id"].as_str().unwrap().to_string();
    let (done, late) = (id(&open[0]), id(&open[1]));
    act(env, &done, json!({"action": "dispatch"}));
    act(env, &done, json!({"action": "accept"}));
    act(
        env,
        &done,
        json!({"action": "feedback", "confirmed": true, "measures": "追补电费",
               "recovered_kwh": "100", "recovered_yuan": "1234.50"}),
    );
    act(env, &done, json!({"action": "review", "approve": true}));
    act(env, &late, json!({"action": "dispatch"}));
    // Past the one-day limit of 签收 (accept).
    let r = env.post("/api/v1/admin/clock", &json!({"offset": "25h"}));
    assert!(
        (200..300).contains(&r.status),
        "clock: {} {}",
        r.status,
        r.body
    );
    wait_until(
        Duration::from_secs(30),
        "overdue and recovered gauges, a dead-lettered webhook event",
        env,
        || {
            let dead = [("sink", "unreachable")];
            (env.metric_sum("jicha_workorders_overdue", &[]) >= 1.0
                && env.metric_sum("jicha_recovered_yuan", &[]) >= 1234.5
                && env.metric_sum("jicha_sink_dead_letters_total", &dead) >= 1.0)
                .then_some(())
        },
    );
}

/// A rejected, a late and a duplicate load record.
fn bad_records(env: &Env, lines: &[(String, String)]) {
    let load = |(t, _): &&(String, String)| t.starts_with("meter/load/");
    let (topic, first) = lines.iter().find(load).unwrap();
    env.publish_raw(topic, "not json");
    // The stream's first load record, changed: far behind the watermark.
    let mut rec = serde_json::from_str::<Value>(first).unwrap()[0].clone();
    rec["p_kw"] = json!(rec["p_kw"].as_f64().unwrap() + 1.0);
    env.publish(topic, &json!([rec]));
    let (topic, last) = lines.iter().rev().find(load).unwrap();
    env.publish_raw(topic, last);
    wait_until(
        Duration::from_secs(30),
        "a rejected, a late and a duplicate load record",
        env,
        || {
            let m = |name: &str| env.metric_sum(name, &[("stream", "load")]);
            (m("jicha_records_rejected_total") >= 1.0
                && m("jicha_records_late_total") >= 1.0
                && m("jicha_records_duplicate_total") >= 1.0)
                .then_some(())
        },
    );
}

#[test]
fn every_dashboard_query_returns_series_from_a_live_jicha() {
    let env = Env::start_with_config(&json_file("archive.json"), &config());
    for w in json_file("whitelist.json").as_array().unwrap() {
        env.post("/api/v1/whitelist", w).ok();
    }
    let lines = stream(&env.svc.dir);
    for (topic, payload) in &lines {
        env.publisher.publish(topic, payload.as_bytes());
    }
    // Everything published is in once the counters stop moving.
    let (mut last, mut since) = (-1.0, Instant::now());
    wait_until(
        Duration::from_secs(180),
        "the sample stream to be ingested",
        &env,
        || {
            let n = env.metric_sum("jicha_records_ingested_total", &[]);
            if n != last {
                (last, since) = (n, Instant::now());
            }
            (n > 0.0 && since.elapsed() > Duration::from_secs(3)).then_some(())
        },
    );
    env.post("/api/v1/billing", &json_file("billing.json")).ok();
    bad_records(&env, &lines);
    confirmed_and_overdue_orders(&env);

    let dir = env.svc.dir.join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let prom = Prometheus::start(&dir, env.http_port);
    prom.wait_scraped();

    // Every rule evaluates without error on live data.
    prom.wait(
        "every rule evaluated without error",
        Duration::from_secs(60),
        |p| {
            let v = p.get("/api/v1/rules");
            let rules: Vec<&Value> = v["data"]["groups"]
                .as_array()?
                .iter()
                .flat_map(|g| g["rules"].as_array().into_iter().flatten())
                .collect();
            let bad: Vec<String> = rules
                .iter()
                .filter(|r| r["health"] == "err")
                .map(|r| format!("{}: {}", r["name"], r["lastError"]))
                .collect();
            assert!(
                bad.is_empty(),
                "rules failing on live data:\n{}",
                bad.join("\n")
            );
            (!rules.is_empty() && rules.iter().all(|r| r["health"] == "ok")).then_some(())
        },
    );

    // Rates and increases need two samples, recording rules a few
    // evaluations: each query gets until a shared deadline to show a series.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut failures = Vec::new();
    let mut checked = 0;
    for (file, d) in dashboards() {
        let dash = d["title"].as_str().unwrap_or(&file).to_string();
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            let Some(def) = v["definition"].as_str() else {
                continue;
            };
            let metric = def
                .strip_prefix("label_values(")
                .and_then(|r| r.split(',').next())
                .unwrap_or_else(|| {
                    panic!("{dash}: variable query {def:?} is not label_values(metric, label)")
                });
            let n = result_len(&prom.series(metric.trim())).unwrap_or(0);
            if n == 0 {
                failures.push(format!(
                    "{dash}: variable {} ({def}) has no values",
                    v["name"]
                ));
            }
        }
        for p in panels(&d) {
            let panel = p["title"].as_str().unwrap_or_default();
            for t in p["targets"].as_array().into_iter().flatten() {
                let Some(expr) = t["expr"].as_str() else {
                    continue;
                };
                let q = substitute(&d, underlying(expr));
                checked += 1;
                let answer = loop {
                    let a = prom.query(&q);
                    if result_len(&a).is_some_and(|n| n > 0)
                        || a["status"] != "success"
                        || Instant::now() > deadline
                    {
                        break a;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                };
                if result_len(&answer).unwrap_or(0) == 0 {
                    failures.push(format!(
                        "{dash} / {panel} / {}: {q}\n  answer: {answer}",
                        t["refId"]
                    ));
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} panel queries found");
    assert!(
        failures.is_empty(),
        "{} of {checked} dashboard queries returned no series:\n{}\nprometheus log:\n{}",
        failures.len(),
        failures.join("\n"),
        jicha_testkit::process::tail(&prom.log(), 20)
    );
}
