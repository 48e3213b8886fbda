//! Test harness: a private Mosquitto and Redis per test, the `jicha` binary
//! against them, a tiny HTTP/1.1 client, an MQTT publisher, record builders
//! and time helpers (business time zone +08:00).
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const LOAD_TOPIC: &str = "meter/load/T1";
pub const FREEZE_TOPIC: &str = "meter/freeze/T1";
pub const EVENT_TOPIC: &str = "meter/event/T1";

/// The filler customer every archive carries: its meter pushes watermarks
/// forward without ever hitting a theme of interest.
pub const FILL_CUSTOMER: &str = "CFILL";
pub const FILL_METER: &str = "MFILL";

// ───────────────────────────── time helpers ─────────────────────────────

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A business day (+08:00), as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

pub fn day(y: i64, m: i64, d: i64) -> Day {
    Day(days_from_civil(y, m, d))
}

impl Day {
    pub fn iso(self) -> String {
        let (y, m, d) = civil_from_days(self.0);
        format!("{y:04}-{m:02}-{d:02}")
    }
    pub fn plus(self, n: i64) -> Day {
        Day(self.0 + n)
    }
    /// Local midnight starting this day.
    pub fn start(self) -> Ts {
        Ts(self.0 * 1440)
    }
    pub fn at(self, h: i64, mi: i64) -> Ts {
        Ts(self.0 * 1440 + h * 60 + mi)
    }
}

/// A local (+08:00) instant in whole minutes since 1970-01-01T00:00 local.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub i64);

pub fn ts(y: i64, mo: i64, d: i64, h: i64, mi: i64) -> Ts {
    day(y, mo, d).at(h, mi)
}

impl Ts {
    pub fn rfc(self) -> String {
        let d = self.0.div_euclid(1440);
        let m = self.0.rem_euclid(1440);
        format!("{}T{:02}:{:02}:00+08:00", Day(d).iso(), m / 60, m % 60)
    }
    pub fn plus_min(self, n: i64) -> Ts {
        Ts(self.0 + n)
    }
    /// Unix seconds.
    pub fn unix(self) -> i64 {
        self.0 * 60 - 8 * 3600
    }
}

/// RFC 3339 → Unix seconds (fractions dropped). Panics on anything else.
pub fn parse_rfc3339(s: &str) -> i64 {
    let bad = || panic!("not an RFC 3339 timestamp: {s:?}");
    let b = s.as_bytes();
    if b.len() < 20 {
        bad();
    }
    let n = |r: std::ops::Range<usize>| -> i64 {
        s.get(r)
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| bad())
    };
    let (y, mo, d, h, mi, se) = (n(0..4), n(5..7), n(8..10), n(11..13), n(14..16), n(17..19));
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    let off = match b.get(i) {
        Some(b'Z') | Some(b'z') => 0,
        Some(b'+') | Some(b'-') => {
            let sign = if b[i] == b'+' { 1 } else { -1 };
            sign * (n(i + 1..i + 3) * 3600 + n(i + 4..i + 6) * 60)
        }
        _ => bad(),
    };
    days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off
}

/// Asserts that a work-order time field is RFC 3339 with +08:00 and is `want`.
#[track_caller]
pub fn assert_time(wo: &Value, field: &str, want: Ts) {
    let s = wo[field]
        .as_str()
        .unwrap_or_else(|| panic!("work order has no string {field}: {wo}"));
    assert!(
        s.ends_with("+08:00"),
        "{field} {s:?} is not written with +08:00 (work order {wo})"
    );
    assert_eq!(
        parse_rfc3339(s),
        want.unix(),
        "{field} is {s}, expected {} (work order {wo})",
        want.rfc()
    );
}

// ───────────────────────────── JSON helpers ─────────────────────────────

/// A number that may be written as a JSON number or a decimal string.
#[track_caller]
pub fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {v}")),
        _ => panic!("not a number: {v}"),
    }
}

#[track_caller]
pub fn assert_num(v: &Value, want: f64, what: &str) {
    let got = num(v);
    assert!(
        (got - want).abs() < 1e-6 * want.abs().max(1.0),
        "{what}: got {v}, expected {want}"
    );
}

// ───────────────────────────── archive builders ─────────────────────────────

/// An archive customer with sensible defaults; tweak the returned JSON.
pub fn customer(id: &str, contract_kva: u32, meters: &[(&str, &str)]) -> Value {
    json!({
        "customer_id": id,
        "name": format!("客户 {id}"),
        "org_code": "41/4107/410727",
        "usage_category": "large_industry",
        "tariff_kind": "two_part",
        "tariff_category": "large_industry",
        "contract_kva": contract_kva,
        "running_kva": contract_kva,
        "voltage_kv": 10,
        "pf_standard": 0.9,
        "basic_fee_mode": "capacity",
        "status": "normal",
        "meters": meters.iter().map(|(m, mult)| json!({"meter_id": m, "multiplier": serde_json::from_str::<Value>(mult).unwrap()})).collect::<Vec<_>>(),
        "capacity_changes": []
    })
}

/// Same with one field changed.
pub fn with(mut c: Value, field: &str, v: Value) -> Value {
    c[field] = v;
    c
}

/// An archive document of `customers` plus the filler customer.
pub fn archive(mut customers: Vec<Value>) -> Value {
    let mut fill = customer(FILL_CUSTOMER, 100_000, &[(FILL_METER, "1")]);
    fill["org_code"] = json!("99/9999/999999");
    customers.push(fill);
    json!({ "customers": customers })
}

// ───────────────────────────── record builders ─────────────────────────────

/// A register reading given in ten-thousandths (exact decimal text, e.g.
/// 10_000_500 → 1000.05): sums of floats would write 196.10000000000002.
pub fn r4(units: i64) -> f64 {
    units as f64 / 10_000.0
}

pub fn load(meter: &str, t: Ts, p_kw: f64) -> Value {
    json!({"meter_id": meter, "ts": t.rfc(), "p_kw": p_kw})
}

/// A daily freeze of `date` (event time: the next midnight).
pub fn freeze(meter: &str, date: Day, reg_total: f64) -> Value {
    json!({"meter_id": meter, "date": date.iso(), "ts": date.plus(1).start().rfc(), "reg_total": reg_total})
}

pub fn freeze_valley(meter: &str, date: Day, reg_total: f64, reg_valley: f64) -> Value {
    let mut f = freeze(meter, date, reg_total);
    f["reg_valley"] = json!(reg_valley);
    f
}

pub fn event(meter: &str, t: Ts, code: &str, state: Option<&str>) -> Value {
    let mut e = json!({"meter_id": meter, "ts": t.rfc(), "code": code});
    if let Some(s) = state {
        e["state"] = json!(s);
    }
    e
}

// ───────────────────────────── processes ─────────────────────────────

static SEQ: AtomicU64 = AtomicU64::new(0);
static PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A free local port not handed out before in this process.
pub fn free_port() -> u16 {
    loop {
        let p = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut g = PORTS.lock().unwrap();
        if g.get_or_insert_with(HashSet::new).insert(p) {
            return p;
        }
    }
}

fn find_program(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(
        ["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/sbin"]
            .iter()
            .map(PathBuf::from),
    );
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` not found on PATH or in /usr/sbin: install mosquitto/redis-server (tests/run.sh does it)");
}

fn wait_tcp(port: u16, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "{what} exited ({st}) before accepting connections: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not accept connections on port {port} within 20 s: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn redis_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// How the per-test services are started. The default is what every test
/// used before: no persistence anywhere (the services outlive the app).
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceOptions {
    /// Redis with `--appendonly yes --appendfsync always` in the temp dir,
    /// so it can be stopped and started again without losing a write.
    pub redis_aof: bool,
    /// Mosquitto with `persistence true` in the temp dir, so sessions,
    /// subscriptions and queued messages survive a broker restart.
    pub mosquitto_persistence: bool,
}

/// Sends `sig` (e.g. "TERM") to one of our own children, by its pid.
pub fn signal_child(child: &Child, sig: &str) {
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{sig} {}", child.id()))
        .stdin(Stdio::null())
        .status()
        .expect("cannot run sh to send a signal");
    assert!(st.success(), "kill -{sig} {} failed: {st}", child.id());
}

/// Waits up to `timeout` for `child` to exit.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM, wait (SIGKILL after 15 s).
fn terminate(child: &mut Option<Child>, what: &str) {
    if let Some(mut c) = child.take() {
        signal_child(&c, "TERM");
        if wait_exit(&mut c, Duration::from_secs(15)).is_none() {
            let _ = c.kill();
            let _ = c.wait();
            panic!("{what} did not exit within 15 s of SIGTERM");
        }
    }
}

fn append_file(p: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap()
}

/// Mosquitto + Redis on free ports in a private temp dir.
pub struct Services {
    pub dir: PathBuf,
    pub mqtt_port: u16,
    pub redis_port: u16,
    pub opts: ServiceOptions,
    mosquitto: Option<Child>,
    redis: Option<Child>,
}

impl Services {
    pub fn start() -> Services {
        Services::start_with(ServiceOptions::default())
    }

    pub fn start_with(opts: ServiceOptions) -> Services {
        let dir = std::env::temp_dir().join(format!(
            "jicha-it-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = Services {
            dir,
            mqtt_port: 0,
            redis_port: 0,
            opts,
            mosquitto: None,
            redis: None,
        };

        // Mosquitto (retry on a port race with a parallel test).
        for attempt in 0.. {
            let port = free_port();
            let mut child = s.spawn_mosquitto(port);
            std::thread::sleep(Duration::from_millis(30));
            if let Ok(Some(_)) = child.try_wait() {
                if attempt < 5 {
                    continue;
                }
            }
            wait_tcp(port, "mosquitto", &mut child, &s.dir.join("mosquitto.err"));
            s.mqtt_port = port;
            s.mosquitto = Some(child);
            break;
        }

        for attempt in 0.. {
            let port = free_port();
            let mut child = s.spawn_redis(port);
            std::thread::sleep(Duration::from_millis(30));
            if let Ok(Some(_)) = child.try_wait() {
                if attempt < 5 {
                    continue;
                }
            }
            s.await_redis(port, &mut child);
            s.redis_port = port;
            s.redis = Some(child);
            break;
        }
        s
    }

    fn spawn_mosquitto(&self, port: u16) -> Child {
        let mosquitto_bin = find_program("mosquitto");
        let conf = self.dir.join("mosquitto.conf");
        let persistence = if self.opts.mosquitto_persistence {
            let loc = self.dir.join("mosquitto-data");
            std::fs::create_dir_all(&loc).unwrap();
            // Started as root, mosquitto drops to its own user: let it write.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&loc, std::fs::Permissions::from_mode(0o777)).unwrap();
            format!(
                "persistence true\npersistence_location {}/\npersistence_file mosquitto.db\n",
                loc.display()
            )
        } else {
            "persistence false\n".to_string()
        };
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\n{persistence}"
            ),
        )
        .unwrap();
        Command::new(&mosquitto_bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(append_file(&self.dir.join("mosquitto.log")))
            .stderr(append_file(&self.dir.join("mosquitto.err")))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start mosquitto: {e}; install mosquitto/redis-server (tests/run.sh does it)"))
    }

    fn spawn_redis(&self, port: u16) -> Child {
        let redis_bin = find_program("redis-server");
        let log = self.dir.join("redis.log");
        let persistence: &[&str] = if self.opts.redis_aof {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        Command::new(&redis_bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(persistence)
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(append_file(&log))
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}; install mosquitto/redis-server (tests/run.sh does it)"))
    }

    fn await_redis(&self, port: u16, child: &mut Child) {
        let log = self.dir.join("redis.log");
        wait_tcp(port, "redis-server", child, &log);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !redis_ping(port) {
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} does not answer PING"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops Redis with SIGTERM and waits for it (with AOF on, every
    /// acknowledged write is on disk by then).
    pub fn stop_redis(&mut self) {
        terminate(&mut self.redis, "redis-server");
    }

    /// Starts Redis again on the same port and directory.
    pub fn start_redis_again(&mut self) {
        assert!(self.redis.is_none(), "redis-server is still running");
        let port = self.redis_port;
        let log = self.dir.join("redis.log");
        let mut child = respawn("redis-server", port, &log, || self.spawn_redis(port));
        self.await_redis(port, &mut child);
        self.redis = Some(child);
    }

    /// Stops Mosquitto with SIGTERM and waits for it (with persistence on,
    /// it writes its sessions and queued messages to disk on the way out).
    pub fn stop_mosquitto(&mut self) {
        terminate(&mut self.mosquitto, "mosquitto");
    }

    /// Starts Mosquitto again on the same port and directory.
    pub fn start_mosquitto_again(&mut self) {
        assert!(self.mosquitto.is_none(), "mosquitto is still running");
        let port = self.mqtt_port;
        let log = self.dir.join("mosquitto.err");
        let mut child = respawn("mosquitto", port, &log, || self.spawn_mosquitto(port));
        wait_tcp(port, "mosquitto", &mut child, &log);
        self.mosquitto = Some(child);
    }
}

/// Starts a service again on the port its previous process may still hold
/// for a moment: spawns until the child stays up, for up to 20 s.
fn respawn(name: &str, port: u16, log: &Path, mut spawn: impl FnMut() -> Child) -> Child {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut child = spawn();
        std::thread::sleep(Duration::from_millis(100));
        let Ok(Some(st)) = child.try_wait() else {
            return child;
        };
        assert!(
            Instant::now() < deadline,
            "{name} could not start again on {port} ({st}): {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        kill(&mut self.mosquitto);
        kill(&mut self.redis);
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ───────────────────────────── HTTP client ─────────────────────────────

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: String,
}

impl Resp {
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {} {}", self.status, self.body))
    }
    #[track_caller]
    pub fn ok(self) -> Resp {
        assert!(
            (200..300).contains(&self.status),
            "expected a 2xx answer, got {} {}",
            self.status,
            self.body
        );
        self
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = find(b, b"\r\n") else { break };
        let size_txt = String::from_utf8_lossy(&b[..eol]);
        let size =
            usize::from_str_radix(size_txt.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            out.extend_from_slice(&b[..size.min(b.len())]);
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[(size + 2).min(b.len())..];
    }
    out
}

/// One HTTP/1.1 request with `Connection: close`.
pub fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let head_end = find(&raw, b"\r\n\r\n").ok_or_else(|| {
        std::io::Error::other(format!(
            "no HTTP header in {:?}",
            String::from_utf8_lossy(&raw)
        ))
    })?;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let mut chunked = false;
    let mut len: Option<usize> = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            if k == "transfer-encoding" && v.contains("chunked") {
                chunked = true;
            }
            if k == "content-length" {
                len = v.parse().ok();
            }
        }
    }
    let rest = &raw[head_end + 4..];
    let body = if chunked {
        dechunk(rest)
    } else if let Some(n) = len {
        rest[..n.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Resp {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Percent-encodes a query value.
pub fn enc(v: &str) -> String {
    let mut o = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

// ───────────────────────────── MQTT publisher ─────────────────────────────

pub struct Publisher {
    client: rumqttc::Client,
    acks: mpsc::Receiver<u16>,
}

impl Publisher {
    pub fn connect(port: u16) -> Publisher {
        let id = format!(
            "it-pub-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_clean_session(true);
        o.set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
        let (client, mut conn) = rumqttc::Client::new(o, 100);
        let (tx, rx) = mpsc::channel();
        let (ctx, crx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut connected = false;
            for ev in conn.iter() {
                match ev {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        if !connected {
                            connected = true;
                            let _ = ctx.send(());
                        }
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(a))) => {
                        if tx.send(a.pkid).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        if tx.send(0).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        });
        crx.recv_timeout(Duration::from_secs(20))
            .expect("test publisher could not connect to mosquitto");
        Publisher { client, acks: rx }
    }

    /// Publishes with QoS 1 and waits for the broker's PUBACK.
    pub fn publish(&self, topic: &str, payload: &[u8]) {
        for _ in 0..3 {
            self.client
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.to_vec())
                .expect("publish");
            match self.acks.recv_timeout(Duration::from_secs(20)) {
                Ok(pkid) if pkid != 0 => return,
                Ok(_) => continue, // connection error: publish again (records are keyed)
                Err(_) => panic!("no PUBACK from mosquitto within 20 s for {topic}"),
            }
        }
        panic!("could not publish to {topic}");
    }
}

// ───────────────────────────── the application ─────────────────────────────

pub struct Env {
    pub svc: Services,
    pub http_port: u16,
    pub archive_file: PathBuf,
    app: Option<Child>,
    starts: u32,
    pub publisher: Publisher,
}

impl Env {
    /// Services, the archive file, the binary (waits for /healthz and for
    /// its MQTT subscription) and a publisher.
    pub fn start(archive: &Value) -> Env {
        Env::start_with(archive, ServiceOptions::default())
    }

    /// Same on services started with `opts`.
    pub fn start_with(archive: &Value, opts: ServiceOptions) -> Env {
        let svc = Services::start_with(opts);
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
        let err = std::fs::File::create(self.stderr_path()).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jicha"));
        cmd.arg("run")
            .arg("--mqtt")
            .arg(format!("mqtt://127.0.0.1:{}", self.svc.mqtt_port))
            .arg("--redis")
            .arg(format!("redis://127.0.0.1:{}/0", self.svc.redis_port))
            .arg("--http")
            .arg(format!("127.0.0.1:{}", self.http_port))
            .arg("--archive")
            .arg(&self.archive_file)
            .env_remove("JICHA_CONFIG")
            .env_remove("JICHA_THEMES");
        // Mutation checks only: run the suite against altered theme SQL to
        // see the near-miss assertions fail (unset in normal runs).
        if let Some(dir) = std::env::var_os("JICHA_IT_THEMES") {
            cmd.arg("--themes").arg(dir);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("cannot start the jicha binary");
        self.app = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http(self.http_port, "GET", "/healthz", None) {
                if r.status == 200 {
                    return;
                }
            }
            if let Some(Ok(Some(st))) = self.app.as_mut().map(|c| c.try_wait()) {
                let hint = if st.to_string().contains("SIGTERM")
                    || st.to_string().contains("SIGINT")
                {
                    " (signalled from outside the test: this harness only SIGKILLs its own children)"
                } else {
                    ""
                };
                panic!(
                    "jicha exited ({st}){hint} before /healthz answered 200; its stderr:\n{}",
                    self.app_stderr()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "jicha: GET /healthz did not answer 200 within 60 s; its stderr:\n{}",
                    self.app_stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// /healthz can answer before the MQTT subscriptions are in place; a
    /// probe event (an old, harmless code on the filler meter) is sent until
    /// it shows up in the event counters.
    fn await_subscription(&self) {
        let base = Day(days_from_civil(2026, 1, 1)).start();
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

    /// SIGKILL, no goodbye.
    pub fn kill_app(&mut self) {
        kill(&mut self.app);
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
        let mut c = self.app.take().expect("jicha is not running");
        let t0 = Instant::now();
        signal_child(&c, "TERM");
        let st = wait_exit(&mut c, timeout);
        let took = t0.elapsed();
        if st.is_none() {
            let _ = c.kill();
            let _ = c.wait();
        }
        (st, took)
    }

    /// Whether the app process is still running (None: not started).
    pub fn app_exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.app.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// A fresh test publisher (after a broker restart).
    pub fn reconnect_publisher(&mut self) {
        self.publisher = Publisher::connect(self.svc.mqtt_port);
    }

    // ── HTTP ──

    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let body = body.map(|b| b.to_string());
        let mut last = None;
        for _ in 0..3 {
            match http(self.http_port, method, path, body.as_deref()) {
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
        kill(&mut self.app);
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Parses Prometheus text; sums samples of `name` whose labels include `want`.
pub fn metric_sum(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    let mut total = 0.0;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let (n, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if n.trim() != name {
            continue;
        }
        let mut map = BTreeMap::new();
        for kv in labels.split(',').filter(|s| !s.is_empty()) {
            if let Some((k, v)) = kv.split_once('=') {
                map.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
            }
        }
        if want
            .iter()
            .all(|(k, v)| map.get(*k).map(String::as_str) == Some(*v))
        {
            total += value.trim().parse::<f64>().unwrap_or(0.0);
        }
    }
    total
}

/// Polls `f` every 200 ms until it yields, or panics after `timeout`.
#[track_caller]
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    env: &Env,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            let wos = env.get("/api/v1/workorders?limit=500").body;
            let dl = env.get("/api/v1/deadletters?limit=20").body;
            panic!("timed out after {timeout:?} waiting for {what}\nwork orders: {wos}\ndead letters: {dl}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Lets an evaluation that produced a positive control settle before a
/// negative is asserted.
pub fn settle() {
    std::thread::sleep(Duration::from_millis(500));
}

// ───────────────────────────── billing builders ─────────────────────────────

/// A bill with defaults that raise nothing for a normal two-part large
/// industry customer of 400 kVA.
pub fn bill(customer_id: &str) -> Value {
    json!({
        "customer_id": customer_id,
        "tariff_kind": "two_part",
        "tariff_category": "large_industry",
        "energy_kwh": "69822.00",
        "basic_fee_kva": "400",
        "basic_fee_yuan": "10000.00",
        "energy_fee_yuan": "43289.64",
        "pf_adjust_applied": true
    })
}

/// Same with fields changed.
pub fn bill_with(customer_id: &str, fields: &[(&str, Value)]) -> Value {
    let mut b = bill(customer_id);
    for (k, v) in fields {
        b[*k] = v.clone();
    }
    b
}

pub fn billing(period: &str, bills: Vec<Value>) -> Value {
    json!({"period": period, "bills": bills})
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
