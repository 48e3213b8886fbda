//! Throughput benchmark: Mosquitto → bare rumqttc subscriber, side by side
//! with Mosquitto → `jicha run` (Redis state on, all built-in themes), on the
//! same pre-generated messages. See docs/performance.md.
//!
//! ```text
//! cargo bench --bench throughput -- [--customers N] [--days M]
//! ```
//!
//! Prints a plain table and a last line `bench: ok` or `bench: FAIL <why>`.
//! A missed target is reported, not a failure; the run fails only when it
//! cannot measure (missing programs, lost messages, a phase timing out).
//!
//! Without `--bench` (which `cargo bench` passes) it does nothing, so
//! `cargo test --all-targets` never starts the benchmark.
//!
//! Modules: `args`; the workload (`fleet`, `workload`, `generate`, `rng`);
//! `publisher` (shared by both phases); `baseline` (phase a); `poll` and
//! `jicha` (phase b); `measure` (/proc readings, the figures); `report`.
//! Services, the jicha process, HTTP, MQTT options and metric parsing come
//! from the test kit (`jicha-testkit`), as in the integration tests.

mod args;
mod baseline;
mod fleet;
mod format;
mod generate;
mod jicha;
mod measure;
mod poll;
mod publisher;
mod report;
mod rng;
mod workload;

use anyhow::Result;
use args::Args;
use clap::Parser;
use jicha_testkit::{ServiceOptions, Services};
use measure::{clock_ticks, Figures};
use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;
use workload::Workload;

/// The run's Mosquitto and Redis, and the machine's clock tick rate.
pub(crate) struct Env {
    pub(crate) svc: Services,
    pub(crate) tck: f64,
}

async fn run(a: Args, f: &mut Figures, wl_out: &mut Option<Arc<Workload>>) -> Result<()> {
    eprintln!(
        "generating {} customers × {} day(s)…",
        a.customers,
        a.days.max(1)
    );
    let t = Instant::now();
    let mut wl = generate::generate(&a)?;
    let msgs = Arc::new(std::mem::take(&mut wl.msgs));
    let wl = Arc::new(Workload {
        msgs: Vec::new(),
        ..wl
    });
    *wl_out = Some(Arc::clone(&wl));
    eprintln!(
        "  {} records in {} messages ({:.1} s)",
        wl.records(),
        msgs.len(),
        t.elapsed().as_secs_f64()
    );
    let mut svc = Services::try_start("jicha-bench", ServiceOptions::default())?;
    // Whether the scratch directory goes is decided below, from the outcome.
    svc.keep_dir(true);
    let dir = svc.dir.clone();
    let mut env = Env {
        svc,
        tck: clock_ticks(),
    };
    let result = async {
        eprintln!("phase (a): bare subscriber…");
        baseline::phase_a(&env, &msgs, &a, f).await?;
        eprintln!("phase (b): jicha run…");
        jicha::phase_b(&mut env, &wl, &msgs, &a, f).await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    drop(env);
    if a.keep {
        eprintln!("scratch directory kept: {}", dir.display());
    } else if result.is_err() {
        // Keep the logs for the post-mortem, not the (large) archive.
        let _ = std::fs::remove_file(dir.join("archive.json"));
        eprintln!("logs kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn main() {
    let a = Args::parse();
    if !a.bench {
        println!("throughput benchmark: run it with `cargo bench --bench throughput` (docs/performance.md)");
        return;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            println!("bench: FAIL cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let mut f = Figures::default();
    let mut wl = None;
    let res = rt.block_on(run(a.clone(), &mut f, &mut wl));
    if let Some(wl) = &wl {
        print!("{}", report::report(&a, wl, &f));
    }
    let _ = std::io::stdout().flush();
    match res {
        Ok(()) => println!("\nbench: ok"),
        Err(e) => {
            println!("\nbench: FAIL {}", format!("{e:#}").replace('\n', " "));
            std::process::exit(1);
        }
    }
}
