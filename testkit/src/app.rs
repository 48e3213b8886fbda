//! The `jicha` binary as a child process: `jicha run` against a
//! [`Services`] pair, up once `/healthz` answers 200.

use crate::error::{KitError, KitResult};
use crate::http::http;
use crate::process::Proc;
use crate::services::Services;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

pub struct App {
    proc: Proc,
    pub http_port: u16,
}

impl App {
    /// `bin run --mqtt … --redis … --http 127.0.0.1:<http_port> [--archive FILE]`;
    /// add flags and environment before [`App::start`].
    pub fn command(bin: &Path, svc: &Services, http_port: u16, archive: Option<&Path>) -> Command {
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .args(["--mqtt", &svc.mqtt_url()])
            .args(["--redis", &svc.redis_url()])
            .args(["--http", &format!("127.0.0.1:{http_port}")]);
        if let Some(a) = archive {
            cmd.arg("--archive").arg(a);
        }
        cmd
    }

    /// Spawns `cmd` (its output appended to `log`) and waits up to `within`
    /// for `GET /healthz` on `http_port` to answer 200.
    pub fn start(
        cmd: &mut Command,
        log: &Path,
        http_port: u16,
        within: Duration,
    ) -> KitResult<App> {
        let bin = Path::new(cmd.get_program());
        if !bin.is_file() {
            return Err(KitError(format!(
                "{} is missing: build it first (cargo build --profile ci), or pass the right path",
                bin.display()
            )));
        }
        let mut app = App {
            proc: Proc::spawn("jicha", cmd, log)?,
            http_port,
        };
        let deadline = Instant::now() + within;
        loop {
            if matches!(http(http_port, "GET", "/healthz", None), Ok(r) if r.status == 200) {
                return Ok(app);
            }
            if let Some(st) = app.proc.exit_status() {
                let hint =
                    if st.to_string().contains("SIGTERM") || st.to_string().contains("SIGINT") {
                        " (signalled from outside: the kit only signals its own children, by pid)"
                    } else {
                        ""
                    };
                return Err(KitError(format!(
                    "jicha exited ({st}){hint} before /healthz answered 200; its output ({}):\n{}",
                    log.display(),
                    app.proc.log_text()
                )));
            }
            if Instant::now() > deadline {
                return Err(KitError(format!(
                    "jicha: GET /healthz did not answer 200 within {} s; its output ({}):\n{}",
                    within.as_secs(),
                    log.display(),
                    app.proc.log_text()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:<http_port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.http_port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    pub fn log(&self) -> &Path {
        self.proc.log()
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    /// `Some(why)` once jicha has exited.
    pub fn exited(&mut self) -> Option<String> {
        self.proc.exited()
    }

    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.proc.exit_status()
    }

    /// SIGTERM, up to `grace` to exit (then SIGKILL and `None`).
    pub fn terminate(&mut self, grace: Duration) -> (Option<ExitStatus>, Duration) {
        self.proc.terminate(grace)
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        self.proc.kill();
    }
}
