//! `jicha demo` as a new user runs it: no services of its own, findings of
//! every planted theme on the wallboard's live stream, and a clean stop on
//! Ctrl-C (SIGINT, exit 0) with a wallboard still connected.

use crate::support::sse::EventStream;
use crate::support::*;
use jicha_testkit::process::Proc;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The themes `jicha demo` says it planted (the lines between "Planted
/// anomalies" and "Press Ctrl-C").
fn planted_themes(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("Planted anomalies"))
        .skip(1)
        .take_while(|l| !l.starts_with("Press Ctrl-C"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn demo_shows_every_planted_theme_live_and_stops_on_ctrl_c() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("jicha-demo-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("demo.out");
    let mut demo = Proc::spawn(
        "jicha demo",
        Command::new(Path::new(env!("CARGO_BIN_EXE_jicha")))
            .args(["demo", "--http", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn"),
        &out,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let stdout = || std::fs::read_to_string(&out).unwrap_or_default();
    let themes = wait_for(
        Duration::from_secs(60),
        Duration::from_millis(200),
        "jicha demo to list its planted anomalies",
        stdout,
        || {
            let s = stdout();
            s.contains("Press Ctrl-C").then(|| planted_themes(&s))
        },
    );
    assert!(
        themes.len() >= 3,
        "too few planted themes: {themes:?}\n{}",
        stdout()
    );

    let mut live = EventStream::open(port, "/api/v1/wallboard/stream", None);
    let shown = |v: &serde_json::Value| -> BTreeSet<String> {
        v["themes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["open"].as_u64().unwrap_or(0) > 0)
            .filter_map(|t| t["id"].as_str().map(str::to_string))
            .collect()
    };
    let last = live.wait_summary(
        Duration::from_secs(240),
        &format!("a finding of every planted theme {themes:?}"),
        |v| themes.is_subset(&shown(v)),
    );
    assert!(
        last["newest"].as_array().is_some_and(|n| !n.is_empty()),
        "the newest findings table is empty: {last}"
    );

    let pid = demo.pid().expect("jicha demo runs");
    signal_pid(pid, "INT").unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let status = loop {
        if let Some(s) = demo.exit_status() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "jicha demo did not stop within 30 s of SIGINT (an open wallboard stream must not hold it):\n{}",
            stdout()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0), "exit status; output:\n{}", stdout());
    assert!(stdout().contains("stopped."), "{}", stdout());
    assert!(
        live.next_event(Instant::now() + Duration::from_secs(5))
            .is_none(),
        "the live stream ended with the server"
    );
}

#[test]
fn planted_theme_lines_are_read_between_the_headings() {
    let out = "Jicha demo is running\nPlanted anomalies (…):\n  over_capacity      C1  x\n  energy_drop        C2  y\nPress Ctrl-C to stop.\n";
    let want: BTreeSet<String> = ["energy_drop", "over_capacity"].map(String::from).into();
    assert_eq!(planted_themes(out), want);
}
