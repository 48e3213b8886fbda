//! Mosquitto and Redis on free local ports, in a private scratch directory:
//! started per test (or per benchmark run), stopped on drop.

use crate::error::{KitError, KitResult};
use crate::process::Proc;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SEQ: AtomicU64 = AtomicU64::new(0);
static PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A number unique in this process (scratch directories, client ids).
pub fn next_seq() -> u64 {
    SEQ.fetch_add(1, Ordering::SeqCst)
}

/// A free local port not handed out before in this process (parallel tests
/// would otherwise race for the same one between probe and bind).
pub fn free_port() -> KitResult<u16> {
    loop {
        let p = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| KitError(format!("cannot bind a free local port: {e}")))?
            .port();
        let mut g = PORTS.lock().unwrap_or_else(|e| e.into_inner());
        if g.get_or_insert_with(HashSet::new).insert(p) {
            return Ok(p);
        }
    }
}

/// `name` on PATH or in the sbin directories (mosquitto lives in /usr/sbin).
pub fn find_program(name: &str) -> KitResult<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            KitError(format!(
                "`{name}` not found on PATH or in /usr/sbin: install mosquitto and redis-server \
                 (apt-get install mosquitto redis-server; tests/run.sh does it)"
            ))
        })
}

/// Waits until `port` accepts connections; fails early when `p` exits.
pub fn wait_tcp(p: &mut Proc, port: u16, within: Duration) -> KitResult<()> {
    let deadline = Instant::now() + within;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(why) = p.exited() {
            return Err(KitError(format!("{why}\n(before accepting connections)")));
        }
        if Instant::now() > deadline {
            return Err(KitError(format!(
                "{} did not accept connections on port {port} within {} s: {}",
                p.name(),
                within.as_secs(),
                p.log_text()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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

/// How the services are started. The default keeps nothing on disk.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceOptions {
    /// Redis with `--appendonly yes --appendfsync always` in the scratch
    /// directory, so it can be stopped and started again without losing a write.
    pub redis_aof: bool,
    /// Mosquitto with `persistence true` in the scratch directory, so sessions,
    /// subscriptions and queued messages survive a broker restart.
    pub mosquitto_persistence: bool,
}

/// Mosquitto + Redis on free ports in a private scratch directory.
pub struct Services {
    pub dir: PathBuf,
    pub mqtt_port: u16,
    pub redis_port: u16,
    pub opts: ServiceOptions,
    mosquitto: Option<Proc>,
    redis: Option<Proc>,
    keep_dir: bool,
}

const START_WITHIN: Duration = Duration::from_secs(20);

impl Services {
    /// Default services; panics with the reason (for tests).
    pub fn start() -> Services {
        Services::start_with(ServiceOptions::default())
    }

    /// Services started with `opts`; panics with the reason (for tests).
    pub fn start_with(opts: ServiceOptions) -> Services {
        Services::try_start("jicha-it", opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts both in a fresh directory `<tmp>/<prefix>-<pid>-<n>`.
    pub fn try_start(prefix: &str, opts: ServiceOptions) -> KitResult<Services> {
        let mosquitto_bin = find_program("mosquitto")?;
        let redis_bin = find_program("redis-server")?;
        let dir =
            std::env::temp_dir().join(format!("{prefix}-{}-{}", std::process::id(), next_seq()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| KitError(format!("cannot create {}: {e}", dir.display())))?;
        let mut s = Services {
            dir,
            mqtt_port: 0,
            redis_port: 0,
            opts,
            mosquitto: None,
            redis: None,
            keep_dir: false,
        };
        let (port, mut p) = start_on_free_port(|port| s.spawn_mosquitto(&mosquitto_bin, port))?;
        wait_tcp(&mut p, port, START_WITHIN)?;
        (s.mqtt_port, s.mosquitto) = (port, Some(p));
        let (port, mut p) = start_on_free_port(|port| s.spawn_redis(&redis_bin, port))?;
        await_redis(&mut p, port)?;
        (s.redis_port, s.redis) = (port, Some(p));
        Ok(s)
    }

    /// Keeps the scratch directory (configs, logs) after drop.
    pub fn keep_dir(&mut self, keep: bool) {
        self.keep_dir = keep;
    }

    pub fn mosquitto_pid(&self) -> Option<u32> {
        self.mosquitto.as_ref().and_then(Proc::pid)
    }

    pub fn redis_pid(&self) -> Option<u32> {
        self.redis.as_ref().and_then(Proc::pid)
    }

    pub fn mqtt_url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.mqtt_port)
    }

    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.redis_port)
    }

    fn spawn_mosquitto(&self, bin: &Path, port: u16) -> KitResult<Proc> {
        let conf = self.dir.join("mosquitto.conf");
        let persistence = if self.opts.mosquitto_persistence {
            let loc = self.dir.join("mosquitto-data");
            std::fs::create_dir_all(&loc)?;
            // Started as root, mosquitto drops to its own user: let it write.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&loc, std::fs::Permissions::from_mode(0o777))?;
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
                "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n\
                 max_inflight_messages 0\n{persistence}\
                 log_dest stderr\nlog_type error\nlog_type warning\n"
            ),
        )?;
        Proc::spawn(
            "mosquitto",
            Command::new(bin).arg("-c").arg(&conf),
            &self.dir.join("mosquitto.log"),
        )
    }

    fn spawn_redis(&self, bin: &Path, port: u16) -> KitResult<Proc> {
        let persistence: &[&str] = if self.opts.redis_aof {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        Proc::spawn(
            "redis-server",
            Command::new(bin)
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                ])
                .args(persistence)
                .arg("--dir")
                .arg(&self.dir),
            &self.dir.join("redis.log"),
        )
    }

    /// Stops Redis with SIGTERM and waits for it (with AOF on, every
    /// acknowledged write is on disk by then).
    pub fn stop_redis(&mut self) {
        stop(&mut self.redis);
    }

    /// Starts Redis again on the same port and directory.
    pub fn start_redis_again(&mut self) {
        assert!(self.redis.is_none(), "redis-server is still running");
        let port = self.redis_port;
        let r = find_program("redis-server")
            .and_then(|bin| respawn(port, || self.spawn_redis(&bin, port)))
            .and_then(|mut p| await_redis(&mut p, port).map(|()| p));
        self.redis = Some(r.unwrap_or_else(|e| panic!("{e}")));
    }

    /// Stops Mosquitto with SIGTERM and waits for it (with persistence on,
    /// it writes its sessions and queued messages to disk on the way out).
    pub fn stop_mosquitto(&mut self) {
        stop(&mut self.mosquitto);
    }

    /// Starts Mosquitto again on the same port and directory.
    pub fn start_mosquitto_again(&mut self) {
        assert!(self.mosquitto.is_none(), "mosquitto is still running");
        let port = self.mqtt_port;
        let r = find_program("mosquitto")
            .and_then(|bin| respawn(port, || self.spawn_mosquitto(&bin, port)))
            .and_then(|mut p| wait_tcp(&mut p, port, START_WITHIN).map(|()| p));
        self.mosquitto = Some(r.unwrap_or_else(|e| panic!("{e}")));
    }
}

/// SIGTERM and wait; panics when the service does not exit within 15 s.
fn stop(p: &mut Option<Proc>) {
    if let Some(mut p) = p.take() {
        if p.terminate(Duration::from_secs(15)).0.is_none() {
            panic!("{} did not exit within 15 s of SIGTERM", p.name());
        }
    }
}

/// Spawns on a fresh free port until the child stays up (another process
/// may take the port between our probe and its bind).
fn start_on_free_port(mut spawn: impl FnMut(u16) -> KitResult<Proc>) -> KitResult<(u16, Proc)> {
    for _ in 0..5 {
        let port = free_port()?;
        let mut p = spawn(port)?;
        std::thread::sleep(Duration::from_millis(30));
        if p.exit_status().is_none() {
            return Ok((port, p));
        }
    }
    let port = free_port()?;
    Ok((port, spawn(port)?))
}

fn await_redis(p: &mut Proc, port: u16) -> KitResult<()> {
    wait_tcp(p, port, START_WITHIN)?;
    let deadline = Instant::now() + START_WITHIN;
    while !redis_ping(port) {
        if Instant::now() > deadline {
            return Err(KitError(format!(
                "redis-server on {port} does not answer PING"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Starts a service again on the port its previous process may still hold
/// for a moment: spawns until the child stays up, for up to 20 s.
fn respawn(port: u16, mut spawn: impl FnMut() -> KitResult<Proc>) -> KitResult<Proc> {
    let deadline = Instant::now() + START_WITHIN;
    loop {
        let mut p = spawn()?;
        std::thread::sleep(Duration::from_millis(100));
        let Some(why) = p.exited() else {
            return Ok(p);
        };
        if Instant::now() > deadline {
            return Err(KitError(format!("could not start again on {port}: {why}")));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        // Processes first (their Drop kills them), then their directory.
        self.mosquitto.take();
        self.redis.take();
        if !std::thread::panicking() && !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
