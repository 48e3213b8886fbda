//! The outbox: every work-order event committed reaches the event log sink
//! once, read back de-duplicated by id, although jicha is killed between a
//! commit and its delivery, and between a delivery and its recorded
//! progress (test-only crash points, `JICHA_FAULT`), and by SIGKILL while
//! events flow. Nothing reaches the log that was not committed: the events
//! match the work orders, their hits and history as the API shows them.

use crate::support::*;
use jicha_connectors::sinks::event_log::{read_deduplicated, EventLogContents};
use jicha_pipeline::outbox::{EventKind, OutboxEvent};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `jicha run` with a config file (the harness's own launch takes none).
struct App {
    child: Option<Child>,
    stderr: PathBuf,
}

impl App {
    fn launch(env: &Env, config: &Path, fault: Option<&str>, n: u32) -> App {
        let stderr = env.svc.dir.join(format!("jicha.outbox.{n}.stderr"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jicha"));
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .arg("--mqtt")
            .arg(format!("mqtt://127.0.0.1:{}", env.svc.mqtt_port))
            .arg("--redis")
            .arg(format!("redis://127.0.0.1:{}/0", env.svc.redis_port))
            .arg("--http")
            .arg(format!("127.0.0.1:{}", env.http_port))
            .arg("--archive")
            .arg(&env.archive_file)
            .env_remove("JICHA_CONFIG")
            .env_remove("JICHA_THEMES")
            .env_remove("JICHA_FAULT");
        if let Some(f) = fault {
            cmd.env("JICHA_FAULT", f);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("cannot start the jicha binary");
        App {
            child: Some(child),
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn wait_healthy(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if matches!(http(port, "GET", "/healthz", None), Ok(r) if r.status == 200) {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "jicha exited ({st}) before /healthz answered: {}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "jicha: /healthz did not answer within 60 s: {}",
            self.stderr()
        );
    }

    /// Waits for the process to end by itself (a crash point) and checks it
    /// died of a signal, not by exiting.
    fn wait_crash(&mut self, what: &str) {
        let c = self.child.as_mut().unwrap();
        let st = wait_exit(c, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("jicha did not crash {what} within 60 s: {}", self.stderr()));
        assert!(
            st.code().is_none(),
            "jicha should have aborted {what}, but exited with {st}: {}",
            self.stderr()
        );
        self.child = None;
    }

    /// SIGKILL, no goodbye.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "──── jicha stderr ({}) ────\n{}",
                self.stderr.display(),
                self.stderr()
            );
        }
        self.kill9();
    }
}

fn read_log(path: &Path) -> EventLogContents {
    if !path.exists() {
        return EventLogContents::default();
    }
    read_deduplicated(path).unwrap()
}

/// What the log must hold for one work order as the API shows it: one
/// event per counted window, then one per history entry after the create.
fn expected_events(wo: &Value) -> Vec<(String, String, String, Option<i64>)> {
    let id = wo["id"].as_str().unwrap().to_string();
    let mut out = Vec::new();
    let mut windows: Vec<i64> = wo["hit_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| parse_rfc3339(h["window_start"].as_str().unwrap()))
        .collect();
    windows.sort();
    for (i, w) in windows.iter().enumerate() {
        let kind = if i == 0 {
            "workorder_opened"
        } else {
            "hit_added"
        };
        out.push((id.clone(), kind.into(), "open".into(), Some(*w)));
    }
    for h in wo["history"].as_array().unwrap().iter().skip(1) {
        let kind = if h["action"] == "escalate" {
            "escalated"
        } else {
            "state_changed"
        };
        let to = h["to"].as_str().unwrap().to_string();
        out.push((id.clone(), kind.into(), to, None));
    }
    out
}

fn as_expected(e: &OutboxEvent) -> (String, String, String, Option<i64>) {
    let kind = serde_json::to_value(e.kind).unwrap();
    let to = serde_json::to_value(e.to).unwrap();
    let window = match e.kind {
        EventKind::WorkorderOpened | EventKind::HitAdded => e.window_start.map(|ms| ms / 1000),
        _ => None,
    };
    (
        e.workorder_id.clone(),
        kind.as_str().unwrap().into(),
        to.as_str().unwrap().into(),
        window,
    )
}

fn act(env: &Env, id: &str, body: Value) {
    env.post(&format!("/api/v1/workorders/{id}/actions"), &body)
        .ok();
}

#[test]
fn each_committed_event_reaches_the_event_log_once_despite_kill_9() {
    let t = |h, m| ts(2026, 11, 3, h, m);
    let mut env = Env::start(&archive(vec![
        customer("CA", 400, &[("MA", "1")]),
        customer("CB", 400, &[("MB", "1")]),
    ]));
    // The harness's own jicha (no sinks) set up the MQTT session; ours take over.
    env.kill_app();
    let log = env.svc.dir.join("events.jsonl");
    let config = env.svc.dir.join("jicha.toml");
    std::fs::write(
        &config,
        format!(
            "[[sinks]]\nkind = \"event_log\"\npath = {:?}\n",
            log.display().to_string()
        ),
    )
    .unwrap();

    // 1. Killed right after the commit that opened CA's order, before delivery.
    let mut app = App::launch(&env, &config, Some("abort_before_delivery"), 1);
    env.loads(vec![
        load("MA", t(10, 0), 500.0),
        load("MA", t(10, 15), 510.0),
        load("MA", t(10, 30), 100.0),
        load(FILL_METER, t(12, 0), 1.0),
    ]);
    app.wait_crash("between the commit and its delivery");
    assert!(
        read_log(&log).events.is_empty(),
        "nothing delivered before the crash"
    );

    // 2. The committed event is delivered after the restart; killed before
    //    the delivery is recorded.
    let mut app = App::launch(&env, &config, Some("abort_before_mark"), 2);
    app.wait_crash("between the delivery and its recorded progress");
    let delivered = read_log(&log);
    assert_eq!(delivered.events.len(), 1, "{delivered:?}");
    assert_eq!(delivered.events[0].kind, EventKind::WorkorderOpened);
    assert_eq!(delivered.events[0].customer_id.as_str(), "CA");

    // 3. Normal runs, killed while events flow: a second hit for CA, a first
    //    for CB, actions on both.
    let mut app = App::launch(&env, &config, None, 3);
    app.wait_healthy(env.http_port);
    env.loads(vec![
        load("MA", t(13, 0), 600.0),
        load("MB", t(13, 0), 600.0),
        load("MA", t(13, 15), 600.0),
        load("MB", t(13, 15), 600.0),
        load(FILL_METER, t(15, 0), 1.0),
    ]);
    let wa = env.wait_wo("over_capacity", "CA", |w| w["hits"] == 2);
    let wb = env.wait_wo("over_capacity", "CB", |_| true);
    let (a, b) = (wa["id"].as_str().unwrap(), wb["id"].as_str().unwrap());
    act(
        &env,
        a,
        json!({"action": "dispatch", "org": "41/4107", "actor": "ops"}),
    );
    // Committed when the API answers; the dispatcher polls, so this kill
    // lands between that commit and its delivery.
    app.kill9();
    let mut app = App::launch(&env, &config, None, 4);
    app.wait_healthy(env.http_port);
    act(&env, a, json!({"action": "accept"}));
    act(&env, b, json!({"action": "dispatch", "org": "41/4107"}));
    app.kill9();
    let mut app = App::launch(&env, &config, None, 5);
    app.wait_healthy(env.http_port);

    // 4. The log, de-duplicated, is exactly the committed events.
    let mut want: Vec<_> = env
        .workorders("")
        .iter()
        .flat_map(|w| {
            let id = w["id"].as_str().unwrap();
            expected_events(&env.get(&format!("/api/v1/workorders/{id}")).ok().json())
        })
        .collect();
    want.sort();
    // CA: opened, hit added, dispatched, accepted; CB: opened, dispatched.
    assert_eq!(want.len(), 6, "{want:?}");
    let got = wait_until(
        Duration::from_secs(30),
        "the event log to catch up with the work orders",
        &env,
        || {
            let c = read_log(&log);
            (c.events.len() >= want.len()).then_some(c)
        },
    );
    let mut seen: Vec<_> = got.events.iter().map(as_expected).collect();
    seen.sort();
    assert_eq!(
        seen, want,
        "the log holds each committed event once, nothing else"
    );
    let ids: Vec<u64> = got.events.iter().map(|e| e.id.0).collect();
    assert_eq!(
        ids,
        (1..=want.len() as u64).collect::<Vec<_>>(),
        "one gapless sequence"
    );
    assert!(
        got.duplicates >= 1,
        "the batch delivered before crash 2 was delivered again"
    );
    assert!(
        got.conflicts.is_empty(),
        "a repeated id is the same event: {:?}",
        got.conflicts
    );
    assert_eq!(got.unreadable, 0);
    drop(app);
}
