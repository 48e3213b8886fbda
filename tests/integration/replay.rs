//! `jicha replay` re-runs the shared sample stream file and raises the same
//! work orders as the live run that received the same stream over MQTT
//! (same archive, whitelist first, billing after), as the acceptance run does.

use crate::support::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A work order as compared between the two runs.
type Key = (String, String, String, String);

fn sample(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/samples/small")
        .join(name);
    assert!(
        p.exists(),
        "the shared sample {} is missing (the acceptance data set)",
        p.display()
    );
    p
}

fn json_file(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(sample(name)).unwrap()).unwrap()
}

/// Every work order, following the cursor.
fn all_workorders(port: u16) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/workorders?limit=500&cursor={}", enc(c)),
            None => "/api/v1/workorders?limit=500".to_string(),
        };
        let v = http(port, "GET", &path, None).unwrap().ok().json();
        items.extend(v["items"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return items,
        }
    }
}

fn keys(workorders: &[Value]) -> BTreeSet<Key> {
    workorders
        .iter()
        .map(|w| {
            let s = |f: &str| match &w[f] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (
                s("theme"),
                s("customer_id"),
                s("first_window_start"),
                s("hits"),
            )
        })
        .collect()
}

/// How far each theme has evaluated, and what was raised by then.
struct Outcome {
    progress: BTreeMap<String, Option<i64>>,
    workorders: BTreeSet<Key>,
}

fn outcome(port: u16) -> Outcome {
    Outcome {
        progress: evaluated_until(port),
        workorders: keys(&all_workorders(port)),
    }
}

/// The summary figure after `label` ("records accepted 12, …").
fn figure(summary: &str, label: &str) -> u64 {
    let at = summary
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in the summary {summary:?}"));
    summary[at + label.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in {summary:?}"))
}

/// The replay: returns its summary line and what it raised. The summary
/// comes once every record is committed and evaluated, and a billing
/// post answers after its themes ran, so nothing is still to come.
fn replay(dir: &Path, stream: &Path) -> (String, Outcome) {
    let port = free_port();
    let stderr = std::fs::File::create(dir.join("replay.stderr")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_jicha"))
        .arg("replay")
        .arg(stream)
        .arg("--archive")
        .arg(sample("archive.json"))
        .arg("--whitelist")
        .arg(sample("whitelist.json"))
        .arg("--http")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("cannot start the jicha binary");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let log = || std::fs::read_to_string(dir.join("replay.stderr")).unwrap_or_default();
    let summary = loop {
        match rx.recv_timeout(Duration::from_secs(300)) {
            Ok(l) if l.starts_with("replay ") => break l,
            Ok(_) => continue,
            Err(_) => {
                let _ = child.kill();
                panic!("no replay summary within 300 s; stderr:\n{}", log());
            }
        }
    };
    let billing = std::fs::read_to_string(sample("billing.json")).unwrap();
    http(port, "POST", "/api/v1/billing", Some(&billing))
        .unwrap()
        .ok();
    let replayed = outcome(port);
    signal_child(&child, "INT");
    let status = wait_exit(&mut child, Duration::from_secs(30));
    if status.is_none() {
        let _ = child.kill();
    }
    assert!(
        status.is_some_and(|s| s.success()),
        "jicha replay did not exit 0 on SIGINT ({status:?}); stderr:\n{}",
        log()
    );
    (summary, replayed)
}

#[test]
fn replaying_the_sample_stream_raises_the_work_orders_of_the_mqtt_run() {
    let archive = json_file("archive.json");
    let env = Env::start(&archive);
    let stream = env.svc.dir.join("stream.jsonl");
    let unzipped = Command::new("gzip")
        .arg("-dc")
        .arg(sample("stream.jsonl.gz"))
        .stdout(std::fs::File::create(&stream).unwrap())
        .status()
        .expect("cannot run gzip");
    assert!(unzipped.success(), "gzip -dc failed: {unzipped}");

    let (summary, replayed) = replay(&env.svc.dir, &stream);
    let accepted = figure(&summary, "records accepted");
    assert!(accepted > 0, "the replay accepted nothing: {summary}");
    assert_eq!(figure(&summary, "unreadable"), 0, "{summary}");

    // The live run, as the acceptance script drives it.
    for w in json_file("whitelist.json").as_array().unwrap() {
        env.post("/api/v1/whitelist", w).ok();
    }
    let text = std::fs::read_to_string(&stream).unwrap();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let m: Value = serde_json::from_str(line).unwrap();
        env.publisher.publish(
            m["topic"].as_str().unwrap(),
            m["payload"].as_str().unwrap().as_bytes(),
        );
    }
    wait_until(
        Duration::from_secs(120),
        &format!("the MQTT run to accept the {accepted} records the replay accepted"),
        &env,
        || (env.metric_sum("jicha_records_ingested_total", &[]) >= accepted as f64).then_some(()),
    );
    let billing = json_file("billing.json");
    let r = env.post("/api/v1/billing", &billing);
    assert!(
        (200..300).contains(&r.status),
        "billing: {} {}",
        r.status,
        r.body
    );
    // Every theme as far as in the replay: the same records are in, so
    // the same windows are closed and evaluated.
    wait_until(
        Duration::from_secs(120),
        &format!(
            "the MQTT run's themes to evaluate as far as the replay's {:?}",
            replayed.progress
        ),
        &env,
        || (evaluated_until(env.http_port) == replayed.progress).then_some(()),
    );
    let live = outcome(env.http_port).workorders;
    let replayed = replayed.workorders;

    assert!(!live.is_empty(), "the MQTT run raised no work orders");
    let only_live: Vec<_> = live.difference(&replayed).collect();
    let only_replayed: Vec<_> = replayed.difference(&live).collect();
    assert!(
        only_live.is_empty() && only_replayed.is_empty(),
        "the runs differ ({} work orders live, {} replayed; summary {summary:?})\nonly live: {only_live:?}\nonly replayed: {only_replayed:?}",
        live.len(),
        replayed.len()
    );
    assert!(
        figure(&summary, "work orders") as usize <= replayed.len(),
        "the summary counts more work orders than the API lists: {summary}"
    );
}
