//! A real Prometheus (Debian package `prometheus`) on a free port, scraping
//! one `jicha` every second with the repository's rule files loaded, and
//! `promtool` from the same package, and the Grafana dashboards whose panel
//! queries are run against it. A missing program fails the test with
//! the package to install: these tests never skip.

use super::free_port;
use jicha_testkit::services::wait_tcp;
use jicha_testkit::{enc, find_program, http, Proc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The repository root (rule files, dashboards, deploy/).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `name` from the Debian package `prometheus`, or a panic saying so.
pub fn prometheus_program(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|_| {
        panic!(
            "`{name}` not found on PATH or in /usr/sbin: install the Debian package `prometheus` \
             (apt-get install prometheus; tests/run.sh does it)"
        )
    })
}

/// Runs `promtool` with `args` in `dir`.
pub fn promtool(dir: &Path, args: &[&str]) -> Output {
    Command::new(prometheus_program("promtool"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool {args:?}: {e}"))
}

/// The rule files Prometheus loads in production (deploy/prometheus/rules).
pub fn rule_files() -> Vec<PathBuf> {
    let dir = repo().join("deploy/prometheus/rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no rule files in {}", dir.display());
    files
}

pub struct Prometheus {
    pub port: u16,
    proc: Proc,
}

impl Prometheus {
    /// Starts Prometheus in `dir` scraping `127.0.0.1:{target}` as job
    /// `jicha` (the job the rules and dashboards name) every second, rules
    /// evaluated every second, and waits until it is ready.
    pub fn start(dir: &Path, target: u16) -> Prometheus {
        let port = free_port();
        let rules: String = rule_files()
            .iter()
            .map(|f| format!("  - {}\n", f.display()))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n{rules}\
             scrape_configs:\n  - job_name: jicha\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
        );
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let mut cmd = Command::new(prometheus_program("prometheus"));
        cmd.arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(dir);
        let mut proc = Proc::spawn("prometheus", &mut cmd, &dir.join("prometheus.log"))
            .unwrap_or_else(|e| panic!("{e}"));
        wait_tcp(&mut proc, port, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
        let p = Prometheus { port, proc };
        p.wait("Prometheus ready", Duration::from_secs(30), |p| {
            http(p.port, "GET", "/-/ready", None)
                .ok()
                .filter(|r| r.status == 200)
                .map(|_| ())
        });
        p
    }

    pub fn log(&self) -> String {
        self.proc.log_text()
    }

    /// `GET path` as JSON.
    pub fn get(&self, path: &str) -> Value {
        let r = http(self.port, "GET", path, None)
            .unwrap_or_else(|e| panic!("GET {path} from Prometheus: {e}"));
        serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {} {}", r.status, r.body))
    }

    /// An instant query at the current time: the whole answer.
    pub fn query(&self, expr: &str) -> Value {
        self.get(&format!("/api/v1/query?query={}", enc(expr)))
    }

    /// The series matching `selector`.
    pub fn series(&self, selector: &str) -> Value {
        self.get(&format!("/api/v1/series?match[]={}", enc(selector)))
    }

    /// Polls `f` every 250 ms until it yields; panics after `within` with
    /// Prometheus's log.
    #[track_caller]
    pub fn wait<T>(
        &self,
        what: &str,
        within: Duration,
        mut f: impl FnMut(&Self) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {within:?} waiting for {what}; prometheus log:\n{}",
                jicha_testkit::process::tail(&self.log(), 30)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until the jicha target has been scraped successfully.
    pub fn wait_scraped(&self) {
        self.wait(
            "a successful scrape of jicha",
            Duration::from_secs(30),
            |p| {
                let v = p.query("up{job=\"jicha\"} == 1");
                result_len(&v).filter(|n| *n > 0).map(|_| ())
            },
        );
    }
}

/// The number of series (or 1 for a scalar) in a successful answer of
/// `/api/v1/query` or `/api/v1/series`; None when it is not a success.
pub fn result_len(answer: &Value) -> Option<usize> {
    if answer["status"] != "success" {
        return None;
    }
    let data = &answer["data"];
    match data["resultType"].as_str() {
        Some("scalar") | Some("string") => Some(1),
        Some(_) => data["result"].as_array().map(Vec::len),
        None => data.as_array().map(Vec::len),
    }
}

// ── the Grafana dashboards whose queries the tests run ──

/// (file name, dashboard JSON) of every dashboard.
pub fn dashboards() -> Vec<(String, Value)> {
    let dir = repo().join("dashboards/grafana");
    let mut v: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let d = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), d)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        v.len() >= 2,
        "expected the wallboard and pipeline dashboards in {}",
        dir.display()
    );
    v
}

/// Every panel, rows' nested panels included (rows themselves excluded).
pub fn panels(d: &Value) -> Vec<&Value> {
    fn walk<'a>(ps: &'a Value, out: &mut Vec<&'a Value>) {
        for p in ps.as_array().into_iter().flatten() {
            if p["type"] == "row" {
                walk(&p["panels"], out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&d["panels"], &mut out);
    out
}

/// `expr` with Grafana's variables replaced as Grafana would at query time:
/// the built-in intervals, and each template variable by its "All" value
/// (query variables) or its default (text boxes).
pub fn substitute(d: &Value, expr: &str) -> String {
    let mut e = expr
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "1h");
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap();
        let value = v["allValue"]
            .as_str()
            .or(v["query"].as_str())
            .unwrap_or_else(|| panic!("variable {name} has neither allValue nor a default"));
        for form in [
            format!("${{{name}:regex}}"),
            format!("${{{name}}}"),
            format!("${name}"),
        ] {
            e = e.replace(&form, value);
        }
    }
    assert!(
        !e.contains('$'),
        "an unknown Grafana variable is left in {e:?}"
    );
    e
}

/// The part of `expr` that must return series: a stat's `or vector(0)`
/// fallback is cut off, so the metric itself has to exist.
pub fn underlying(expr: &str) -> &str {
    expr.trim()
        .strip_suffix("or vector(0)")
        .map(str::trim)
        .unwrap_or(expr)
}
