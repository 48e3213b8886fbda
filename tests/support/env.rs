//! `Env`: one test's Mosquitto, Redis and `jicha` binary (from the test kit),
//! driven over MQTT and HTTP, with waits on the app's own progress.

use super::builders::*;
use super::free_port;
use super::time::{day, parse_rfc3339, Ts};
use jicha_testkit::process::tail;
use jicha_testkit::{
    http, http_with, metric_sum, signal_pid, wait_for, App, Publisher, Resp, ServiceOptions,
    Services,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Env {
    pub svc: Services,
    pub http_port: u16,
    pub archive_file: PathBuf,
    app: Option<App>,
    starts: u32,
    pub publisher: Publisher,
    /// Sent as `Authorization: Bearer` with every request, when set.
    pub token: Option<String>,
    /// Extra flags of `jicha run`.
    args: Vec<std::ffi::OsString>,
}

impl Env {
    /// Services, the archive file, the binary (waits for /healthz and for
    /// its MQTT subscription) and a publisher.
    pub fn start(archive: &Value) -> Env {
        Env::start_with(archive, ServiceOptions::default())
    }

    /// Same on services started with `opts`.
    pub fn start_with(archive: &Value, opts: ServiceOptions) -> Env {
        Env::start_configured(archive, opts, |_| (Vec::new(), None))
    }

    /// Started with access control: `tokens` (a `--auth` file's text) is
    /// written to the scratch directory, and `token` is sent with every
    /// request of the helpers.
    pub fn start_with_auth(archive: &Value, tokens: &str, token: &str) -> Env {
        let tokens = tokens.to_string();
        let token = token.to_string();
        Env::start_configured(archive, ServiceOptions::default(), move |dir| {
            let file = dir.join("auth.toml");
            std::fs::write(&file, &tokens).unwrap();
            (vec!["--auth".into(), file.into_os_string()], Some(token))
        })
    }

    /// Started with `config` as its `--config` file; `{dir}` in it stands
    /// for the scratch directory (`env.svc.dir`).
    pub fn start_with_config(archive: &Value, config: &str) -> Env {
        let config = config.to_string();
        Env::start_configured(archive, ServiceOptions::default(), move |dir| {
            let file = dir.join("jicha.toml");
            let config = config.replace("{dir}", &dir.display().to_string());
            std::fs::write(&file, &config).unwrap();
            (vec!["--config".into(), file.into_os_string()], None)
        })
    }

    /// `configure` gets the scratch directory and returns extra flags and
    /// the token to send.
    fn start_configured(
        archive: &Value,
        opts: ServiceOptions,
        configure: impl FnOnce(&Path) -> (Vec<std::ffi::OsString>, Option<String>),
    ) -> Env {
        let svc = Services::start_with(opts);
        let (args, token) = configure(&svc.dir);
        let archive_file = svc.dir.join("archive.json");
        std::fs::write(
            &archive_file,
            serde_json::to_string_pretty(archive).unwrap(),
        )
        .unwrap();
        let publisher = Publisher::connect(svc.mqtt_port);
        let mut env = Env {
            svc,
            http_port: free_port(),
            archive_file,
            app: None,
            starts: 0,
            publisher,
            token,
            args,
        };
        env.launch();
        env.await_subscription();
        env
    }

    fn stderr_path(&self) -> PathBuf {
        self.svc.dir.join(format!("jicha.{}.stderr", self.starts))
    }

    pub fn app_stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    fn launch(&mut self) {
        self.starts += 1;
        let mut cmd = App::command(
            Path::new(env!("CARGO_BIN_EXE_jicha")),
            &self.svc,
            self.http_port,
            Some(self.archive_file.as_path()),
        );
        cmd.env_remove("JICHA_CONFIG")
            .env_remove("JICHA_THEMES")
            .env_remove("JICHA_AUTH")
            .args(&self.args);
        // Mutation checks only: run the suite against altered theme SQL to
        // see the near-miss assertions fail (unset in normal runs).
        if let Some(dir) = std::env::var_os("JICHA_IT_THEMES") {
            cmd.arg("--themes").arg(dir);
        }
        let app = App::start(
            &mut cmd,
            &self.stderr_path(),
            self.http_port,
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        self.app = Some(app);
    }

    /// /healthz can answer before the MQTT subscriptions are in place; a
    /// probe event (an old, harmless code on the filler meter) is sent until
    /// it shows up in the event counters.
    fn await_subscription(&self) {
        let base = day(2026, 1, 1).start();
        let counted = |e: &Env| {
            e.metric_sum("jicha_records_ingested_total", &[("stream", "event")])
                + e.metric_sum("jicha_records_rejected_total", &[("stream", "event")])
        };
        let before = counted(self);
        for i in 0..60 {
            let probe = event(FILL_METER, base.plus_min(i), "clock_error", Some("probe"));
            self.publisher
                .publish(EVENT_TOPIC, probe.to_string().as_bytes());
            let deadline = Instant::now() + Duration::from_millis(1000);
            while Instant::now() < deadline {
                if counted(self) > before {
                    std::thread::sleep(Duration::from_millis(150));
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!(
            "jicha never received a probe event over MQTT; its stderr:\n{}",
            self.app_stderr()
        );
    }

    /// Sends `sig` (e.g. "HUP") to the running app.
    pub fn signal_app(&self, sig: &str) {
        let pid = self
            .app
            .as_ref()
            .and_then(App::pid)
            .expect("jicha is not running");
        signal_pid(pid, sig).unwrap_or_else(|e| panic!("{e}"));
    }

    /// SIGKILL, no goodbye.
    pub fn kill_app(&mut self) {
        if let Some(mut a) = self.app.take() {
            a.kill();
        }
    }

    /// Starts the binary again on the same services (no probe: the MQTT
    /// session is persistent, messages published meanwhile are queued).
    pub fn restart_app(&mut self) {
        self.kill_app();
        self.launch();
    }

    /// SIGTERM to the app; waits up to `timeout` for it to exit and returns
    /// its exit status and how long it took (None: still running, then it
    /// is SIGKILLed). Start it again with `restart_app`.
    pub fn terminate_app(
        &mut self,
        timeout: Duration,
    ) -> (Option<std::process::ExitStatus>, Duration) {
        let mut a = self.app.take().expect("jicha is not running");
        a.terminate(timeout)
    }

    /// Whether the app process is still running (None: not started).
    pub fn app_exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.app.as_mut().and_then(App::exit_status)
    }

    /// A fresh test publisher (after a broker restart).
    pub fn reconnect_publisher(&mut self) {
        self.publisher = Publisher::connect(self.svc.mqtt_port);
    }

    // ── HTTP ──

    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        self.request_as(self.token.as_deref(), method, path, body)
    }

    /// A request with `token` (none: without `Authorization`).
    pub fn request_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Resp {
        let body = body.map(|b| b.to_string());
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("Authorization", b.as_str()))
            .collect();
        let mut last = None;
        for _ in 0..3 {
            match http_with(self.http_port, method, path, &headers, body.as_deref()) {
                Ok(r) => return r,
                Err(e) => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        panic!(
            "{method} {path} failed: {:?}\njicha stderr:\n{}",
            last,
            self.app_stderr()
        );
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, None)
    }
    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.request("POST", path, Some(body))
    }
    pub fn delete(&self, path: &str) -> Resp {
        self.request("DELETE", path, None)
    }

    /// All work orders matching `query` (e.g. "theme=over_capacity"), one page of up to 500.
    pub fn workorders(&self, query: &str) -> Vec<Value> {
        let path = if query.is_empty() {
            "/api/v1/workorders?limit=500".to_string()
        } else {
            format!("/api/v1/workorders?limit=500&{query}")
        };
        let v = self.get(&path).ok().json();
        v["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no items in {v}"))
            .clone()
    }

    /// Work orders of `theme` for `customer` (taken from the unfiltered list
    /// so that a broken filter cannot hide one).
    pub fn wos(&self, theme: &str, customer: &str) -> Vec<Value> {
        self.workorders("")
            .into_iter()
            .filter(|w| w["theme"] == theme && w["customer_id"] == customer)
            .collect()
    }

    /// Waits until exactly-one-or-more work orders exist for (theme, customer)
    /// and `pred` holds for the first; returns it.
    #[track_caller]
    pub fn wait_wo(&self, theme: &str, customer: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let caller = std::panic::Location::caller();
        wait_until(
            Duration::from_secs(30),
            &format!("{theme} work order for {customer} (waited at {caller})"),
            self,
            || {
                let v = self.wos(theme, customer);
                v.first().filter(|w| pred(w)).cloned()
            },
        )
    }

    /// The theme's customers with work orders, sorted.
    pub fn customers_with(&self, theme: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .workorders("")
            .into_iter()
            .filter(|w| w["theme"] == theme)
            .map(|w| w["customer_id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    // ── evaluation progress ──

    /// Per theme, the instant up to which its windows are evaluated
    /// (`evaluated_until` of `GET /api/v1/themes`, Unix seconds); None
    /// before its first evaluation.
    pub fn evaluated_until(&self) -> std::collections::BTreeMap<String, Option<i64>> {
        progress_of(&self.get("/api/v1/themes").ok().json())
    }

    /// Waits until every theme of `themes` has evaluated its windows up to
    /// `until` (a window ending there included): what it raises for them is
    /// in the work orders by then, so a negative assertion after this
    /// proves something. Panics on an unknown theme id.
    #[track_caller]
    pub fn wait_evaluated(&self, themes: &[&str], until: Ts) {
        let caller = std::panic::Location::caller();
        wait_until(
            Duration::from_secs(30),
            &format!(
                "themes {themes:?} evaluated until {} (waited at {caller}; now {:?})",
                until.rfc(),
                self.evaluated_until()
            ),
            self,
            || {
                let progress = self.evaluated_until();
                themes
                    .iter()
                    .all(|t| match progress.get(*t) {
                        Some(p) => p.is_some_and(|p| p >= until.unix()),
                        None => panic!("no theme {t} in GET /api/v1/themes: {progress:?}"),
                    })
                    .then_some(())
            },
        )
    }

    // ── metrics ──

    pub fn metrics_text(&self) -> String {
        self.get("/metrics").ok().body
    }

    /// Sum of the samples of `name` whose labels include `labels`.
    pub fn metric_sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_sum(&self.metrics_text(), name, labels)
    }

    // ── MQTT ──

    pub fn publish(&self, topic: &str, payload: &Value) {
        self.publisher
            .publish(topic, payload.to_string().as_bytes());
    }
    pub fn publish_raw(&self, topic: &str, payload: &str) {
        self.publisher.publish(topic, payload.as_bytes());
    }
    pub fn loads(&self, recs: Vec<Value>) {
        self.publish(LOAD_TOPIC, &Value::Array(recs));
    }
    pub fn freezes(&self, recs: Vec<Value>) {
        self.publish(FREEZE_TOPIC, &Value::Array(recs));
    }
    pub fn events(&self, recs: Vec<Value>) {
        self.publish(EVENT_TOPIC, &Value::Array(recs));
    }

    /// Waits until `jicha_records_ingested_total{stream}` reaches `n`.
    #[track_caller]
    pub fn wait_ingested(&self, stream: &str, n: f64) {
        wait_until(
            Duration::from_secs(30),
            &format!("ingested_total{{stream={stream}}} ≥ {n}"),
            self,
            || {
                (self.metric_sum("jicha_records_ingested_total", &[("stream", stream)]) >= n)
                    .then_some(())
            },
        )
    }

    pub fn ingested(&self, stream: &str) -> f64 {
        self.metric_sum("jicha_records_ingested_total", &[("stream", stream)])
    }

    /// Publishes freezes for consecutive days, one batch per day (all meters
    /// of a day together: a later day first would make an earlier one late).
    pub fn freeze_days(&self, days: Vec<Vec<Value>>) {
        for d in days {
            self.freezes(d);
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "──── jicha stderr (start #{}) ────\n{}",
                self.starts,
                tail(&self.app_stderr(), 60)
            );
        }
        self.kill_app();
    }
}

/// Polls `f` every 200 ms until it yields, or panics after `timeout`
/// showing the work orders and dead letters.
#[track_caller]
pub fn wait_until<T>(timeout: Duration, what: &str, env: &Env, f: impl FnMut() -> Option<T>) -> T {
    let context = || {
        let wos = env.get("/api/v1/workorders?limit=500").body;
        let dl = env.get("/api/v1/deadletters?limit=20").body;
        format!("work orders: {wos}\ndead letters: {dl}")
    };
    wait_for(timeout, Duration::from_millis(200), what, context, f)
}

impl Env {
    /// POST /api/v1/billing, expecting 2xx.
    #[track_caller]
    pub fn post_billing(&self, period: &str, bills: Vec<Value>) -> Value {
        let r = self.post("/api/v1/billing", &billing(period, bills));
        assert!(
            (200..300).contains(&r.status),
            "POST /api/v1/billing answered {} {}",
            r.status,
            r.body
        );
        serde_json::from_str(&r.body).unwrap_or(Value::Null)
    }
}

/// Per theme, `evaluated_until` of `GET /api/v1/themes` of the jicha on
/// `port`, in Unix seconds.
pub fn evaluated_until(port: u16) -> std::collections::BTreeMap<String, Option<i64>> {
    let v = http(port, "GET", "/api/v1/themes", None)
        .unwrap_or_else(|e| panic!("GET /api/v1/themes: {e}"))
        .ok()
        .json();
    progress_of(&v)
}

/// `evaluated_until` per theme of a `GET /api/v1/themes` answer.
fn progress_of(v: &Value) -> std::collections::BTreeMap<String, Option<i64>> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("GET /api/v1/themes has no items: {v}"))
        .iter()
        .map(|t| {
            let id = t["id"]
                .as_str()
                .unwrap_or_else(|| panic!("theme without id: {t}"));
            (
                id.to_string(),
                t["evaluated_until"].as_str().map(parse_rfc3339),
            )
        })
        .collect()
}
