//! CPU and memory readings from /proc, and the figures a run collects.

use std::collections::BTreeMap;
use std::process::Command;

pub(crate) fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime in clock ticks from a /proc/…/stat file.
pub(crate) fn cpu_ticks(stat_path: &str) -> Option<u64> {
    let s = std::fs::read_to_string(stat_path).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // fields after the comm: [0] state (field 3) … utime is field 14, stime 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

pub(crate) fn proc_cpu(pid: u32) -> Option<u64> {
    cpu_ticks(&format!("/proc/{pid}/stat"))
}

pub(crate) fn thread_cpu() -> Option<u64> {
    cpu_ticks("/proc/thread-self/stat")
}

/// A field of /proc/<pid>/status in kB (VmHWM, VmRSS).
pub(crate) fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Jiffies of the whole machine from /proc/stat: (busy, steal, total).
/// Busy is user + nice + system + irq + softirq; steal is time the
/// hypervisor gave to other guests.
pub(crate) fn machine_cpu() -> Option<(u64, u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = s
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    let steal = v.get(7).copied().unwrap_or(0);
    Some((total - idle - steal, steal, total))
}

pub(crate) fn busy_pct(
    a: Option<(u64, u64, u64)>,
    b: Option<(u64, u64, u64)>,
) -> Option<(f64, f64)> {
    let ((b0, s0, t0), (b1, s1, t1)) = (a?, b?);
    let dt = t1.checked_sub(t0).filter(|d| *d > 0)? as f64;
    Some((100.0 * (b1 - b0) as f64 / dt, 100.0 * (s1 - s0) as f64 / dt))
}

/// CPU seconds the machine spent outside the listed processes (other
/// people's work on a shared machine, the kernel's own threads).
pub(crate) fn others(
    a: Option<(u64, u64, u64)>,
    b: Option<(u64, u64, u64)>,
    ours: &[Option<(u64, u64)>],
    tck: f64,
) -> Option<f64> {
    let ((b0, _, _), (b1, _, _)) = (a?, b?);
    let mine: u64 = ours
        .iter()
        .map(|x| x.map(|(p, q)| q - p).unwrap_or(0))
        .sum();
    Some((b1 - b0).saturating_sub(mine) as f64 / tck)
}

#[derive(Default)]
pub(crate) struct Figures {
    // phase (a)
    pub(crate) a_elapsed: Option<f64>,
    pub(crate) a_publish: Option<f64>,
    pub(crate) a_sub_cpu: Option<f64>,
    pub(crate) a_pub_cpu: Option<f64>,
    pub(crate) a_mosq_cpu: Option<f64>,
    pub(crate) a_busy: Option<(f64, f64)>,
    pub(crate) a_bench_cpu: Option<f64>,
    pub(crate) a_others_cpu: Option<f64>,
    // phase (b)
    pub(crate) b_elapsed: Option<f64>,
    pub(crate) b_ingested_at: Option<f64>,
    pub(crate) b_publish: Option<f64>,
    pub(crate) b_pub_cpu: Option<f64>,
    pub(crate) b_mosq_cpu: Option<f64>,
    pub(crate) b_jicha_cpu: Option<f64>,
    pub(crate) b_redis_cpu: Option<f64>,
    pub(crate) b_busy: Option<(f64, f64)>,
    pub(crate) b_bench_cpu: Option<f64>,
    pub(crate) b_others_cpu: Option<f64>,
    pub(crate) lat_e2e: Vec<f64>,
    pub(crate) lat_internal: Vec<f64>,
    pub(crate) jicha_rss_idle_kb: Option<u64>,
    pub(crate) jicha_rss_end_kb: Option<u64>,
    pub(crate) jicha_hwm_kb: Option<u64>,
    pub(crate) redis_delta: Option<f64>,
    pub(crate) redis_archive: Option<f64>,
    pub(crate) redis_rec: BTreeMap<String, (f64, f64, f64)>, // stream → (bytes, records, segments)
    pub(crate) state: BTreeMap<String, (f64, f64)>, // stream → (bytes, records), jicha's own accounting
    pub(crate) eval: Vec<(String, f64, f64)>,       // theme → (seconds, evaluations)
    pub(crate) ingested: Option<f64>,
    pub(crate) rejected: Option<f64>,
    pub(crate) late: Option<f64>,
    pub(crate) wo_total: Option<usize>,
    pub(crate) wo_unexpected: Vec<(String, String)>,
    pub(crate) startup_s: Option<f64>,
}
