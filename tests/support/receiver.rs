//! A real HTTP receiver for the push tests: an axum server on a free port,
//! in a thread of its own, that records every request (path and query,
//! headers, exact body) and answers as scripted: fail the first N requests
//! with 500 and then recover, or refuse every one with a fixed status. And
//! a real Alertmanager process for the Alertmanager sink.

use crate::support::{free_port, http};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Received {
    /// Path and query, as sent.
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What the receiver answered.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "request body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A query parameter, still URL-encoded as sent.
    pub fn query_raw(&self, key: &str) -> Option<String> {
        let q = self.uri.split_once('?')?.1;
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    }
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub struct Script {
    /// The first this many requests get 500.
    pub fail_first: usize,
    /// Then every request gets this status and body.
    pub status: u16,
    pub body: String,
}

impl Script {
    pub fn ok(body: &str) -> Script {
        Script {
            fail_first: 0,
            status: 200,
            body: body.into(),
        }
    }
}

struct Shared {
    script: Script,
    log: Mutex<Vec<Received>>,
}

pub struct Receiver {
    pub port: u16,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

async fn record(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let mut log = s.log.lock().unwrap();
    let (status, answer) = if log.len() < s.script.fail_first {
        (500, "{\"error\":\"scripted failure\"}".to_string())
    } else {
        (s.script.status, s.script.body.clone())
    };
    log.push(Received {
        uri: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.to_vec(),
        status,
    });
    (StatusCode::from_u16(status).unwrap(), answer)
}

impl Receiver {
    pub fn start(script: Script) -> Receiver {
        let shared = Arc::new(Shared {
            script,
            log: Mutex::new(Vec::new()),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let s = shared.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let port = listener.local_addr().unwrap().port();
                ready_tx.send(port).unwrap();
                let app = Router::new().fallback(record).with_state(s);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        let port = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the test receiver did not start");
        Receiver {
            port,
            shared,
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.shared.log.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A real Alertmanager (Debian `prometheus-alertmanager`) on a free port,
/// with clustering off and its own storage directory.
pub struct Alertmanager {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Alertmanager {
    pub fn start(dir: &std::path::Path) -> Alertmanager {
        let bin = ["/usr/bin/prometheus-alertmanager", "/usr/sbin/prometheus-alertmanager"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| {
                panic!(
                    "prometheus-alertmanager is not installed: install the Debian package \
                     `prometheus-alertmanager` (apt-get install prometheus-alertmanager; tests/run.sh does)"
                )
            });
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: nobody\n  group_wait: 1s\nreceivers:\n  - name: nobody\n",
        )
        .unwrap();
        let storage = dir.join("alertmanager-data");
        std::fs::create_dir_all(&storage).unwrap();
        let port = free_port();
        let log = dir.join("alertmanager.log");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cannot start prometheus-alertmanager");
        let mut am = Alertmanager { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(http(port, "GET", "/-/ready", None), Ok(r) if r.status == 200) {
                return am;
            }
            if let Ok(Some(st)) = am.child.try_wait() {
                panic!(
                    "alertmanager exited ({st}): {}",
                    std::fs::read_to_string(&am.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = am.child.kill();
        panic!(
            "alertmanager not ready within 30 s: {}",
            std::fs::read_to_string(&am.log).unwrap_or_default()
        );
    }

    /// Active (firing, not silenced) alerts.
    pub fn active(&self) -> Vec<Value> {
        let r = http(
            self.port,
            "GET",
            "/api/v2/alerts?active=true&silenced=false&inhibited=false",
            None,
        )
        .expect("alertmanager answers");
        assert_eq!(r.status, 200, "{}", r.body);
        r.json().as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "──── alertmanager log ────\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory of this test's own (Alertmanager starts before the
/// `Env` whose config needs its port).
pub fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("jicha-push-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
