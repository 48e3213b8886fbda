//! `jicha replay FILE`: a recorded stream through the same runner, routes
//! and themes as a live run, then a one-line summary.

use crate::ReplayArgs;
use anyhow::{bail, Context, Result};
use jicha_connectors::redis_state::RedisBackend;
use jicha_connectors::replay::ReplaySource;
use jicha_pipeline::runner::{self, BatchSettings, TopicRoutes};
use jicha_pipeline::runtime::WorkOrderQuery;
use jicha_pipeline::state::{MemoryBackend, StateBackend};
use jicha_pipeline::whitelist::WhitelistEntry;
use jicha_pipeline::{Monitor, MonitorConfig};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

pub async fn run(a: ReplayArgs) -> Result<()> {
    let themes = match &a.themes {
        Some(dir) => crate::themes::from_dir(dir)?,
        None => crate::themes::builtin(),
    };
    let archive = crate::load_archive(&a.archive)?;
    let backend: Arc<dyn StateBackend> = match &a.redis {
        Some(url) => Arc::new(RedisBackend::connect(url, "jicha:").await?),
        None => Arc::new(MemoryBackend::default()),
    };
    let monitor = Monitor::open(MonitorConfig::default(), backend, themes, Some(archive))
        .await
        .context("starting the monitor")?;
    if let Some(path) = &a.whitelist {
        apply_whitelist(&monitor, path).await?;
    }
    let source = ReplaySource::open(&a.file, TopicRoutes::default())?;
    let progress = source.progress();
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = match &a.http {
        Some(addr) => Some(
            crate::serve(
                monitor.clone(),
                addr,
                crate::api::Options::open(),
                stop_rx.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let run = tokio::spawn(runner::run(
        monitor.clone(),
        source,
        BatchSettings::default(),
        stop_rx.clone(),
    ));
    tokio::pin!(run);
    let (report, interrupted) = tokio::select! {
        r = &mut run => (r.context("the replay runner failed")?, false),
        _ = crate::shutdown_signal() => {
            tracing::info!("interrupted: input stops, the last batch is committed");
            let _ = stop_tx.send(true);
            (run.await.context("the replay runner failed")?, true)
        }
    };
    monitor
        .retry_flush()
        .await
        .context("final commit of the replay")?;
    let workorders = count_workorders(&monitor).await;
    println!(
        "replay {}: lines {}, unreadable {}, committed through line {}; records accepted {}, rejected {}, late {}, duplicates {}; work orders {}",
        a.file.display(),
        progress.lines_read(),
        progress.unreadable(),
        progress.committed_through(),
        report.accepted,
        report.rejected,
        report.late,
        report.duplicates,
        workorders,
    );
    if interrupted {
        if let Some(server) = server {
            let _ = server.await;
        }
        bail!(
            "replay interrupted after line {}; run it again to finish (records are keyed, repeats are harmless)",
            progress.committed_through()
        );
    }
    if !report.input_ended || !report.all_committed {
        bail!("the replay stopped before the end of the file (see the log above); run it again");
    }
    if let Some(server) = server {
        tracing::info!("replay done; serving the API until Ctrl-C");
        crate::shutdown_signal().await;
        let _ = stop_tx.send(true);
        let _ = server.await;
    }
    Ok(())
}

/// Posts each entry of a JSON array of whitelist entries, as
/// `POST /api/v1/whitelist` would.
async fn apply_whitelist(monitor: &Monitor, path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read whitelist file {}; check --whitelist",
            path.display()
        )
    })?;
    let entries: Vec<Box<serde_json::value::RawValue>> =
        serde_json::from_str(&text).with_context(|| {
            format!(
                "whitelist file {} must be a JSON array of whitelist entries",
                path.display()
            )
        })?;
    for (i, e) in entries.iter().enumerate() {
        let at = || format!("whitelist file {}, entry {}", path.display(), i + 1);
        let entry = WhitelistEntry::parse(e.get()).with_context(at)?;
        monitor.add_whitelist(entry, None).await.with_context(at)?;
    }
    tracing::info!(entries = entries.len(), "whitelist applied");
    Ok(())
}

async fn count_workorders(monitor: &Monitor) -> usize {
    let mut n = 0;
    let mut cursor = None;
    loop {
        let q = WorkOrderQuery {
            limit: Some(1000),
            cursor,
            ..Default::default()
        };
        let (page, next) = monitor.list_workorders(&q).await;
        n += page.len();
        match next {
            Some(c) => cursor = Some(c),
            None => return n,
        }
    }
}
