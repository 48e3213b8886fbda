//! `jicha demo` and `jicha simulate`.

use anyhow::{Context, Result};
use jicha_connectors::{broker, mqtt, simulator};
use jicha_pipeline::archive::Archive;
use jicha_pipeline::state::MemoryBackend;
use jicha_pipeline::{Monitor, MonitorConfig};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .context("finding a free port for the embedded broker")?;
    Ok(l.local_addr()?.port())
}

pub async fn run(http: &str, customers: usize) -> Result<()> {
    let port = free_port()?;
    broker::start(([127, 0, 0, 1], port).into())?;
    let mqtt_url = format!("mqtt://127.0.0.1:{port}");
    let opts = simulator::SimOptions {
        customers,
        client_id: "jicha-demo-sim".into(),
        days: 0,
        ..Default::default()
    };
    let archive_doc = simulator::archive(&opts).to_string();
    let archive = Archive::parse_document(&archive_doc).context("the simulator's archive")?;
    let monitor = Monitor::open(
        MonitorConfig::default(),
        Arc::new(MemoryBackend::default()),
        crate::themes::builtin(),
        Some(archive),
    )
    .await
    .context("starting the monitor")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = crate::serve(
        monitor.clone(),
        http,
        crate::api::Options::open(),
        stop_rx.clone(),
    )
    .await?;
    // The broker thread needs a moment to listen.
    let mut source = None;
    for _ in 0..50 {
        let s = mqtt::SourceSettings {
            url: mqtt_url.clone(),
            client_id: "jicha-demo".into(),
            ..Default::default()
        };
        match mqtt::start(monitor.clone(), s, stop_rx.clone()).await {
            Ok(h) => {
                source = Some(h);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let source = source.context("the embedded broker did not come up")?;
    crate::spawn_escalation(monitor.clone(), stop_rx.clone());
    println!("Jicha demo is running (embedded MQTT broker on {mqtt_url}, in-memory state).");
    println!("  wallboard:    http://{http}/");
    println!("  work orders:  http://{http}/api/v1/workorders");
    println!("  themes:       http://{http}/api/v1/themes");
    println!("  dead letters: http://{http}/api/v1/deadletters");
    println!("  metrics:      http://{http}/metrics");
    println!("Planted anomalies (they become work orders within a minute):");
    for p in simulator::planted(&opts) {
        println!("  {:<18} {}  {}", p.theme, p.customer_id, p.note);
    }
    println!("Press Ctrl-C to stop.");
    let mut sim_stop = stop_rx.clone();
    let sim = tokio::spawn(async move {
        let stop = async move {
            let _ = sim_stop.changed().await;
        };
        if let Err(e) = simulator::publish(&opts, &mqtt_url, stop).await {
            tracing::error!(error = %e, "simulator stopped");
        }
    });
    crate::shutdown_signal().await;
    let _ = stop_tx.send(true);
    let _ = sim.await;
    let _ = source.await;
    let _ = server.await;
    println!("stopped.");
    Ok(())
}

pub async fn simulate(
    mqtt_url: &str,
    customers: usize,
    days: u32,
    points_per_second: f64,
    seed: u64,
    archive_out: Option<PathBuf>,
) -> Result<()> {
    let opts = simulator::SimOptions {
        customers,
        days,
        points_per_second,
        seed,
        client_id: format!("jicha-sim-{seed}"),
        ..Default::default()
    };
    if let Some(p) = archive_out {
        std::fs::write(&p, serde_json::to_vec_pretty(&simulator::archive(&opts))?)
            .with_context(|| format!("cannot write {}", p.display()))?;
        println!("archive written to {}", p.display());
    }
    let report = simulator::publish(&opts, mqtt_url, crate::shutdown_signal()).await?;
    println!(
        "published {} messages, {} readings",
        report.messages, report.readings
    );
    Ok(())
}
