//! A real headless Chromium (Debian `chromium`), driven over the W3C
//! WebDriver protocol by Debian's `chromedriver` on a free port: the
//! wallboard is tested as a person sees it, scripts and all.

use super::free_port;
use base64::Engine as _;
use jicha_testkit::process::Proc;
use jicha_testkit::wait_for;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Browser {
    port: u16,
    session: String,
    /// chromedriver keeps connections open whatever `Connection: close`
    /// says, so the test kit's read-to-end client would wait for ever.
    client: Client,
    _driver: Proc,
}

struct Client;

impl Client {
    fn new() -> Client {
        Client
    }

    /// One request on a fresh connection; the body is read by its
    /// `Content-Length`, since the connection stays open after it.
    fn send(&self, method: &str, url: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
        let rest = url.strip_prefix("http://").ok_or("not an http URL")?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut s = TcpStream::connect(host).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let body = body.map(Value::to_string).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .map_err(|e| e.to_string())?;
        let mut r = BufReader::new(s);
        let mut status = 0;
        let mut len = 0;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).map_err(|e| e.to_string())?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(code) = line.strip_prefix("HTTP/1.1 ") {
                status = code.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            } else if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().map_err(|_| format!("bad length {v}"))?;
                }
            }
        }
        let mut buf = vec![0u8; len];
        r.read_exact(&mut buf).map_err(|e| e.to_string())?;
        let v = serde_json::from_slice(&buf).map_err(|e| format!("not JSON ({e})"))?;
        Ok((status, v))
    }
}

/// `name` on the PATH or in /usr/bin, else a failure naming the package.
fn program(name: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "{name} is not installed: this test drives a real browser; install the Debian package \
             {package} (tests/run.sh does) and run again"
        )
    })
}

impl Browser {
    /// Starts chromedriver and one headless Chromium session at 1920×1080.
    pub fn start(dir: &Path) -> Browser {
        let chromium = program("chromium", "chromium");
        let driver = program("chromedriver", "chromium-driver");
        let port = free_port();
        let log = dir.join("chromedriver.log");
        let proc = Proc::spawn(
            "chromedriver",
            Command::new(driver).arg(format!("--port={port}")),
            &log,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let client = Client::new();
        let base = format!("http://127.0.0.1:{port}");
        wait_for(
            Duration::from_secs(20),
            Duration::from_millis(100),
            "chromedriver to listen",
            || jicha_testkit::process::tail(&std::fs::read_to_string(&log).unwrap_or_default(), 20),
            || {
                client
                    .send("GET", &format!("{base}/status"), None)
                    .ok()
                    .filter(|(status, _)| *status == 200)
            },
        );
        let profile = dir.join("chromium-profile");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1920,1080",
                         "--hide-scrollbars", "--lang=zh-CN",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let (status, v) = client
            .send("POST", &format!("{base}/session"), Some(&caps))
            .unwrap_or_else(|e| panic!("chromedriver: {e}"));
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromium did not start: {status} {v}"))
            .to_string();
        Browser {
            port,
            session,
            client,
            _driver: proc,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!(
            "http://127.0.0.1:{}/session/{}{path}",
            self.port, self.session
        );
        let (status, v) = self
            .client
            .send(method, &url, body.as_ref())
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        assert_eq!(status, 200, "webdriver {method} {path}: {v}");
        v["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Polls `script` until it returns something other than null or false.
    pub fn wait(&self, timeout: Duration, what: &str, script: &str) -> Value {
        wait_for(
            timeout,
            Duration::from_millis(200),
            what,
            || {
                format!(
                    "the page shows: {}",
                    self.eval("return document.body.innerText")
                )
            },
            || {
                let v = self.eval(script);
                (!v.is_null() && v != Value::Bool(false)).then_some(v)
            },
        )
    }

    /// Saves what the browser shows as a PNG.
    pub fn screenshot(&self, path: &Path) {
        let b64 = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("screenshot is not base64: {e}"));
        assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let url = format!("http://127.0.0.1:{}/session/{}", self.port, self.session);
        let _ = self.client.send("DELETE", &url, None);
    }
}

/// Where tests leave what a person should look at (`target/artifacts`).
pub fn artifact(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/artifacts")
        .join(name)
}
