//! The Prometheus rules of deploy/prometheus/: promtool accepts the rule
//! files and the config, the promtool unit tests pass, and every alert has
//! a test that sees it fire and one that sees it stay quiet (so adding an
//! untested alert fails here), every recording rule is queried by a test,
//! and every alert carries its severity and a runbook anchor that exists
//! in docs/operations.md.

use crate::support::prometheus::{promtool, repo, rule_files};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn read(p: &PathBuf) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The promtool unit-test files.
fn test_files() -> Vec<PathBuf> {
    let dir = repo().join("deploy/prometheus/tests");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no promtool tests in {}", dir.display());
    v
}

#[track_caller]
fn assert_success(out: std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value after `key:` on a YAML line such as `- alert: JichaDown`.
fn value_of<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let t = line.trim().trim_start_matches("- ").trim();
    t.strip_prefix(key)
        .and_then(|r| r.strip_prefix(':'))
        .map(|v| v.trim().trim_matches('"'))
}

/// Each alert of the rule files with the text of its block (up to the next
/// rule), in file order.
fn alerts() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for f in rule_files() {
        let mut current: Option<(String, String)> = None;
        for line in read(&f).lines() {
            let starts_rule =
                value_of(line, "alert").is_some() || value_of(line, "record").is_some();
            if starts_rule {
                out.extend(current.take());
            }
            if let Some(name) = value_of(line, "alert") {
                current = Some((name.to_string(), String::new()));
            }
            if let Some((_, block)) = current.as_mut() {
                block.push_str(line);
                block.push('\n');
            }
        }
        out.extend(current);
    }
    out
}

fn records() -> Vec<String> {
    rule_files()
        .iter()
        .flat_map(|f| {
            read(f)
                .lines()
                .filter_map(|l| value_of(l, "record").map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn promtool_accepts_the_rules_and_the_prometheus_config() {
    let dir = repo().join("deploy/prometheus");
    let files: Vec<String> = rule_files()
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let mut args = vec!["check", "rules"];
    args.extend(files.iter().map(String::as_str));
    assert_success(promtool(&dir, &args), "promtool check rules");
    // The shipped config loads the same rule files (paths relative to it).
    assert_success(
        promtool(&dir, &["check", "config", "prometheus.yml"]),
        "promtool check config deploy/prometheus/prometheus.yml",
    );
}

#[test]
fn promtool_unit_tests_of_every_rule_pass() {
    let dir = repo().join("deploy/prometheus");
    let files: Vec<String> = test_files()
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    assert_success(promtool(&dir, &args), "promtool test rules");
}

#[test]
fn every_alert_is_tested_firing_and_quiet_and_every_recording_rule_is_queried() {
    // alertname → (cases where it fires, cases where it stays quiet).
    let mut cases: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut exprs = String::new();
    for f in test_files() {
        let text = read(&f);
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if let Some(name) = value_of(l, "alertname") {
                let next = lines.get(i + 1).map(|n| n.trim()).unwrap_or("");
                let e = cases.entry(name.to_string()).or_default();
                if next.starts_with("exp_alerts: []") {
                    e.1 += 1;
                } else if next.starts_with("exp_alerts:") {
                    e.0 += 1;
                } else {
                    panic!(
                        "{}:{}: `alertname: {name}` is not followed by exp_alerts",
                        f.display(),
                        i + 1
                    );
                }
            }
            if let Some(e) = value_of(l, "expr") {
                exprs.push_str(e);
                exprs.push('\n');
            }
        }
    }
    let alerts = alerts();
    assert!(!alerts.is_empty(), "no alerts found in the rule files");
    let mut missing = Vec::new();
    for (name, _) in &alerts {
        match cases.get(name) {
            Some((fire, quiet)) if *fire > 0 && *quiet > 0 => {}
            Some((fire, quiet)) => missing.push(format!(
                "{name}: {fire} firing and {quiet} quiet test cases (needs at least one of each)"
            )),
            None => missing.push(format!("{name}: no test case in deploy/prometheus/tests")),
        }
    }
    for name in cases.keys() {
        if !alerts.iter().any(|(a, _)| a == name) {
            missing.push(format!(
                "a test names {name}, which is no alert of the rule files"
            ));
        }
    }
    for r in records() {
        if !exprs.contains(&r) {
            missing.push(format!(
                "recording rule {r}: no promql_expr_test queries it"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "untested rules:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_alert_has_a_severity_and_a_runbook_section() {
    let ops = read(&repo().join("docs/operations.md"));
    let mut bad = Vec::new();
    for (name, block) in alerts() {
        let has = |k: &str| block.lines().any(|l| value_of(l, k).is_some());
        let severity = block.lines().find_map(|l| value_of(l, "severity"));
        if !matches!(severity, Some("critical") | Some("warning")) {
            bad.push(format!(
                "{name}: severity {severity:?}, not critical or warning"
            ));
        }
        for k in ["summary", "description"] {
            if !has(k) {
                bad.push(format!("{name}: no {k} annotation"));
            }
        }
        // GitHub's anchor of the heading `### JichaDown` is `#jichadown`.
        let anchor = format!("docs/operations.md#{}", name.to_lowercase());
        let runbook = block.lines().find_map(|l| value_of(l, "runbook"));
        if runbook != Some(anchor.as_str()) {
            bad.push(format!("{name}: runbook {runbook:?}, expected {anchor:?}"));
        }
        if !ops.lines().any(|l| l.trim() == format!("### {name}")) {
            bad.push(format!(
                "{name}: docs/operations.md has no heading `### {name}`"
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// `amtool` of the Debian package `prometheus-alertmanager`, or a panic
/// saying so.
fn amtool(args: &[&str]) -> std::process::Output {
    let bin = jicha_testkit::find_program("amtool").unwrap_or_else(|_| {
        panic!(
            "`amtool` not found: install the Debian package `prometheus-alertmanager` \
             (apt-get install prometheus-alertmanager; tests/run.sh does it)"
        )
    });
    std::process::Command::new(bin)
        .args(args)
        .current_dir(repo().join("deploy"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run amtool {args:?}: {e}"))
}

#[test]
fn alertmanager_config_is_valid_and_pages_only_for_critical_alerts() {
    let config = "--config.file=alertmanager/alertmanager.yml";
    assert_success(
        amtool(&["check-config", "alertmanager/alertmanager.yml"]),
        "amtool check-config deploy/alertmanager/alertmanager.yml",
    );
    for (name, block) in alerts() {
        let severity = block
            .lines()
            .find_map(|l| value_of(l, "severity"))
            .unwrap_or_default()
            .to_string();
        let out = amtool(&[
            "config",
            "routes",
            "test",
            config,
            &format!("alertname={name}"),
            &format!("severity={severity}"),
        ]);
        let receiver = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let want = if severity == "critical" {
            "oncall"
        } else {
            "team"
        };
        assert_eq!(
            receiver, want,
            "{name} ({severity}) is routed to {receiver:?}"
        );
    }
}
