//! `jicha`: the command line. Errors end here as one line on stderr and a
//! non-zero exit; everything below returns them.

mod api;
mod auth;
mod config;
mod demo;
mod replay;
mod themes;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use config::{RunArgs, Settings};
use jicha_connectors::{mqtt, redis_state::RedisBackend};
use jicha_pipeline::archive::Archive;
use jicha_pipeline::outbox::{Dispatcher, Fault, SinkMetrics};
use jicha_pipeline::state::StateBackend;
use jicha_pipeline::Monitor;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Parser)]
#[command(
    name = "jicha",
    version,
    about = "Real-time audit monitor for electricity marketing (营销稽查监控)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run against an external MQTT broker and Redis.
    Run(RunArgs),
    /// Everything in one process: embedded broker, in-memory state, simulator, API.
    Demo {
        #[arg(long, env = "JICHA_HTTP", default_value = "127.0.0.1:8080")]
        http: String,
        /// Simulated customers.
        #[arg(long, default_value_t = 200)]
        customers: usize,
    },
    /// Publish simulated meter data to a broker (and write its archive).
    Simulate {
        #[arg(long, env = "JICHA_MQTT")]
        mqtt: String,
        #[arg(long, default_value_t = 200)]
        customers: usize,
        /// Days of data; 0 runs until stopped.
        #[arg(long, default_value_t = 10)]
        days: u32,
        /// 15-minute points per second across the fleet.
        #[arg(long, default_value_t = 40.0)]
        points_per_second: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where to write the simulated fleet's archive (JSON).
        #[arg(long)]
        archive_out: Option<PathBuf>,
    },
    /// Re-run a recorded stream file (JSON lines of {"topic","payload"})
    /// through the same routes and themes, then print a summary.
    Replay(ReplayArgs),
}

/// No environment variables here: a replay must not pick up a live
/// deployment's Redis by accident.
#[derive(clap::Args)]
struct ReplayArgs {
    /// The recorded stream: one {"topic","payload"} JSON object per line
    /// (plain text; gunzip a .gz first).
    file: PathBuf,
    /// The archive the live run had.
    #[arg(long)]
    archive: PathBuf,
    /// State in this Redis (default: in memory, gone at exit).
    #[arg(long)]
    redis: Option<String>,
    /// Serve the API here; it then keeps serving after the replay until Ctrl-C.
    #[arg(long)]
    http: Option<String>,
    /// A JSON array of whitelist entries (as posted to /api/v1/whitelist),
    /// applied before the first line.
    #[arg(long)]
    whitelist: Option<PathBuf>,
    /// Theme directory (default: the built-in themes).
    #[arg(long)]
    themes: Option<PathBuf>,
}

// The pipeline allocates and frees many small records, Arrow builders and
// Redis commands per micro-batch; glibc malloc spent about a fifth of the
// process's CPU on them (docs/performance.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JICHA_LOG")
                .unwrap_or_else(|_| "info,rumqttd=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let result = rt.block_on(async move {
        match cli.cmd {
            Cmd::Run(a) => run(a).await,
            Cmd::Demo { http, customers } => demo::run(&http, customers).await,
            Cmd::Simulate {
                mqtt,
                customers,
                days,
                points_per_second,
                seed,
                archive_out,
            } => demo::simulate(&mqtt, customers, days, points_per_second, seed, archive_out).await,
            Cmd::Replay(a) => replay::run(a).await,
        }
    });
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

pub fn load_archive(path: &std::path::Path) -> Result<Vec<jicha_pipeline::archive::Customer>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read archive file {}; check --archive",
            path.display()
        )
    })?;
    Archive::parse_document(&text).with_context(|| format!("archive file {}", path.display()))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Serves the API until `shutdown` flips.
/// Without access control, only on a loopback address.
pub async fn serve(
    m: Arc<Monitor>,
    addr: &str,
    options: api::Options,
    mut shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    auth::check_listen(addr, options.auth.is_on())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; check --http (is the port taken?)"))?;
    let app = api::router(m, options, shutdown.clone());
    Ok(tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.changed().await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    }))
}

/// Escalates overdue work orders once a minute.
pub fn spawn_escalation(m: Arc<Monitor>, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {
                    if let Err(e) = m.escalate_overdue().await {
                        tracing::warn!(error = %e, "escalation pass failed");
                    }
                }
            }
        }
    });
}

/// The outbox dispatcher over the configured sinks, started: call before
/// input and the API start, so every event committed is kept for them.
pub async fn start_outbox(
    backend: Arc<dyn StateBackend>,
    monitor: &Monitor,
    sinks: &[jicha_connectors::sinks::SinkConfig],
    shutdown: watch::Receiver<bool>,
) -> Result<(Arc<Dispatcher>, Vec<tokio::task::JoinHandle<()>>)> {
    let ctx = jicha_connectors::sinks::BuildContext {
        tz: monitor.clock().tz(),
    };
    let sinks = jicha_connectors::sinks::build_all(sinks, ctx).context("[[sinks]]")?;
    let fault = Fault::from_env().map_err(anyhow::Error::msg)?;
    let d = Arc::new(
        Dispatcher::new(backend, sinks, fault)?.with_metrics(SinkMetrics::of(&monitor.metrics)),
    );
    let tasks = d
        .start(shutdown)
        .await
        .context("registering the outbox sinks")?;
    Ok((d, tasks))
}

async fn run(a: RunArgs) -> Result<()> {
    let settings = Settings::load(&a, config::process_env())?;
    let auth = auth::Auth::open(settings.auth.as_deref(), settings.metrics_public)?;
    auth::check_listen(&settings.http, auth.is_on())?;
    let config = settings.monitor_config()?;
    let themes = match &settings.themes {
        Some(dir) => themes::from_dir(dir)?,
        None => themes::builtin(),
    };
    let archive = settings.archive.as_deref().map(load_archive).transpose()?;
    let backend: Arc<dyn StateBackend> =
        Arc::new(RedisBackend::connect(&settings.redis, &settings.redis_prefix).await?);
    let monitor = Monitor::open(config, backend.clone(), themes, archive)
        .await
        .context("starting the monitor")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (outbox, outbox_tasks) =
        start_outbox(backend, &monitor, &settings.sinks, stop_rx.clone()).await?;
    auth.reload_on_sighup(stop_rx.clone())?;
    let options = api::Options {
        auth,
        test_clock: settings.test_clock,
    };
    let server = serve(monitor.clone(), &settings.http, options, stop_rx.clone()).await?;
    let source = mqtt::start(monitor.clone(), settings.source_settings(), stop_rx.clone()).await?;
    spawn_escalation(monitor.clone(), stop_rx.clone());
    tracing::info!(http = %settings.http, "jicha is running");
    shutdown_signal().await;
    tracing::info!("shutting down: input stops, the last batch is committed");
    let _ = stop_tx.send(true);
    let _ = source.await;
    let _ = server.await;
    monitor.retry_flush().await.context("final commit")?;
    for t in outbox_tasks {
        let _ = t.await;
    }
    // What the last commits produced goes out now rather than at the next start.
    if let Err(e) = outbox.drain().await {
        tracing::warn!(error = %e, "outbox not fully delivered at shutdown; the rest goes at the next start");
    }
    Ok(())
}
