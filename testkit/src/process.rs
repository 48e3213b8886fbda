//! A child process the kit started, with its log file. Signals go to that
//! child only, by its pid (never by name: other sessions share the machine).

use crate::error::{KitError, KitResult};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running child; SIGKILLed on drop (also while a panic unwinds), so a
/// failing test never leaves a broker or the app behind.
pub struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdin closed and stdout and stderr appended to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> KitResult<Proc> {
        let out = append_file(log)?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| KitError(format!("cannot start {name}: {e}")))?;
        Ok(Proc {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The log file's content (empty when unreadable).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The pid while running (for /proc measurements).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status once the process has ended.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// `Some(why)` once the process has exited: its status and log tail.
    pub fn exited(&mut self) -> Option<String> {
        let st = self.exit_status()?;
        Some(format!(
            "{} exited ({st}); its log {}:\n{}",
            self.name,
            self.log.display(),
            tail(&self.log_text(), 15)
        ))
    }

    /// SIGTERM, then up to `grace` for the process to exit; returns its
    /// status and how long it took. Still running after `grace`: SIGKILL
    /// and `None`.
    pub fn terminate(&mut self, grace: Duration) -> (Option<ExitStatus>, Duration) {
        let t0 = Instant::now();
        let Some(mut c) = self.child.take() else {
            return (None, Duration::ZERO);
        };
        if let Ok(Some(st)) = c.try_wait() {
            return (Some(st), Duration::ZERO);
        }
        let _ = signal_child(&c, "TERM");
        let st = wait_exit(&mut c, grace);
        let took = t0.elapsed();
        if st.is_none() {
            let _ = c.kill();
            let _ = c.wait();
        }
        (st, took)
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `sig` (e.g. "TERM") to one of our own children, by its pid.
pub fn signal_child(child: &Child, sig: &str) -> KitResult<()> {
    signal_pid(child.id(), sig)
}

/// Sends `sig` to the process `pid` (one of our own children).
pub fn signal_pid(pid: u32, sig: &str) -> KitResult<()> {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| KitError(format!("cannot run `kill` to send SIG{sig}: {e}")))?;
    if st.success() {
        Ok(())
    } else {
        Err(KitError(format!("kill -{sig} {pid} failed: {st}")))
    }
}

/// Waits up to `timeout` for `child` to exit.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
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

pub(crate) fn append_file(p: &Path) -> KitResult<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|e| KitError(format!("cannot open log file {}: {e}", p.display())))
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
