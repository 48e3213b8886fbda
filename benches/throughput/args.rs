//! Command-line arguments of the benchmark.

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "throughput",
    about = "Mosquitto → bare subscriber vs Mosquitto → jicha run (docs/performance.md)"
)]
pub(crate) struct Args {
    /// Customers in the archive (about 1.3 meters each).
    #[arg(long, default_value_t = 20_000)]
    pub(crate) customers: usize,
    /// Days of 96-point load curves (plus daily freezes and events).
    #[arg(long, default_value_t = 1)]
    pub(crate) days: u32,
    /// Records per MQTT message.
    #[arg(long, default_value_t = 100)]
    pub(crate) batch: usize,
    /// Feed rate in records/s for both phases; 0 = as fast as the broker takes them.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rate: f64,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub(crate) timeout: u64,
    /// How often phase (b) polls /metrics and the work orders, in ms.
    #[arg(long, default_value_t = 10)]
    pub(crate) poll_ms: u64,
    /// Fail when jicha's ingested counter stands still this many seconds
    /// before everything is in (a stalled MQTT source; docs/performance.md).
    #[arg(long, default_value_t = 30)]
    pub(crate) stall: u64,
    /// Seed of the generated fleet and data.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Keep the scratch directory (configs, archive, logs) after the run.
    #[arg(long)]
    pub(crate) keep: bool,
    /// The jicha binary phase (b) runs (default: the one cargo built for
    /// this bench, target/release/jicha); e.g. an earlier commit's build,
    /// to compare.
    #[arg(long)]
    pub(crate) bin: Option<PathBuf>,
    /// Passed by `cargo bench`; without it the benchmark does not run.
    #[arg(long, hide = true)]
    pub(crate) bench: bool,
    /// Bench-name filters passed by `cargo bench NAME` (ignored).
    #[arg(hide = true)]
    pub(crate) filter: Vec<String>,
}
