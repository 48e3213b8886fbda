//! Start-up: what the backend holds, then the archive and theme files given.

use super::{Core, Monitor, MonitorConfig, MonitorError, ThemeSlot, COMMITTED_BACKLOG};
use crate::archive::{Archive, Customer};
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::state::{Commit, StateBackend};
use crate::store::RecordStore;
use crate::theme::ThemeDef;
use crate::watermark::Watermarks;
use crate::whitelist::Whitelist;
use crate::workorder::WorkOrderBook;
use std::collections::BTreeMap;
use std::sync::Arc;

impl Monitor {
    /// Opens the monitor over a backend, restoring what it holds, then
    /// loading `archive` (if given) and the theme files (built-ins).
    pub async fn open(
        config: MonitorConfig,
        backend: Arc<dyn StateBackend>,
        theme_files: Vec<(String, String)>,
        archive: Option<Vec<Customer>>,
    ) -> Result<Arc<Monitor>, MonitorError> {
        let snap = backend.load().await?;
        let mut core = Core {
            archive: Archive::default(),
            store: RecordStore::default(),
            wm: Watermarks::default(),
            themes: BTreeMap::new(),
            progress: snap.progress.clone(),
            planned: snap.progress.clone(),
            book: WorkOrderBook::default(),
            whitelist: Whitelist::default(),
            suppressed: snap.suppressed.iter().cloned().collect(),
            dead_letters: snap.dead_letters.iter().cloned().collect(),
            fresh_events: Vec::new(),
            billing: snap
                .billing
                .iter()
                .map(|b| (b.period.clone(), b.clone()))
                .collect(),
            pending: Commit::default(),
        };
        for (s, ms) in &config.out_of_orderness {
            core.wm.set_out_of_orderness(*s, *ms);
        }
        for (s, leader) in &config.follows {
            core.wm.set_follows(*s, *leader);
        }
        for c in snap.customers {
            core.archive.upsert(c);
        }
        for c in archive.into_iter().flatten() {
            core.pending
                .customers
                .insert(c.customer_id.to_string(), c.clone());
            core.archive.upsert(c);
        }
        for mut r in snap.records {
            // Restored ids are copies; the archive's own are shared by every
            // record of the meter, as ingested records' are.
            core.archive.meter_index().adopt_id(&mut r);
            core.store.insert_quiet(r);
        }
        for (s, t) in snap.watermarks {
            core.wm.restore(s, t);
        }
        for w in snap.workorders {
            core.book.restore(w);
        }
        core.book.restore_event_seq(snap.outbox_seq);
        for e in snap.whitelist {
            core.whitelist.restore(e);
        }
        let engine = Engine::new(config.clock, config.engine.clone(), &core.archive)?;
        for (name, text) in theme_files {
            let def = ThemeDef::parse(&text, &config.params)
                .map_err(|e| MonitorError::BadRequest(format!("{name}: {e}")))?;
            let theme = engine.check(def).await?;
            core.themes
                .insert(theme.def.id.clone(), ThemeSlot::new(theme, true, true));
        }
        for t in snap.themes {
            let checked = match ThemeDef::parse(&t.source, &config.params) {
                Ok(def) => engine.check(def).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match checked {
                Ok(theme) => {
                    let id = theme.def.id.clone();
                    core.themes
                        .insert(id, ThemeSlot::new(theme, t.enabled, false));
                }
                Err(error) => {
                    tracing::warn!(theme = %t.id, %error, "stored runtime theme no longer plans; skipped (fix it and re-add it with POST /api/v1/themes)")
                }
            }
        }
        for id in config.manual_triage.iter() {
            if !core.themes.contains_key(id) {
                tracing::warn!(theme = %id, "[triage] manual names no theme loaded now; its hits will wait for triage once a theme of that id is added (check the spelling)");
            }
        }
        let meter_index = core.archive.meter_index().clone();
        let m = Arc::new(Monitor {
            clock_offset_ms: Default::default(),
            committed: tokio::sync::broadcast::channel(COMMITTED_BACKLOG).0,
            core: tokio::sync::Mutex::new(core),
            slot: Arc::default(),
            engine,
            backend,
            metrics: Metrics::new(),
            config,
            degraded: std::sync::Mutex::new(None),
            meter_index: std::sync::RwLock::new(meter_index),
        });
        {
            let mut core = m.core.lock().await;
            // The snapshot loaded: the backend answers.
            m.metrics
                .backend_up
                .with_label_values(&[m.backend.name()])
                .set(1.0);
            m.refresh_watermark_gauges(&core);
            m.refresh_state_gauges(&core);
            m.flush(&mut core).await?;
        }
        Ok(m)
    }
}
