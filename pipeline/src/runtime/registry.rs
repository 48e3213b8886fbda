//! The theme registry at run time: built-ins from the theme files, themes
//! added through the API (persisted), enabling and disabling, dry runs.

use super::{Monitor, MonitorError};
use crate::engine::{EngineError, Hit, Theme};
use crate::evaluate::{self, Sources};
use crate::state::StoredTheme;
use crate::theme::{Severity, ThemeDef};
use crate::time::EpochMs;

/// A theme as loaded, with its counters.
pub struct ThemeSlot {
    pub theme: Theme,
    pub enabled: bool,
    pub builtin: bool,
    pub hits: u64,
    pub evaluations: u64,
    pub last_error: Option<String>,
}

impl ThemeSlot {
    pub(super) fn new(theme: Theme, enabled: bool, builtin: bool) -> Self {
        ThemeSlot {
            theme,
            enabled,
            builtin,
            hits: 0,
            evaluations: 0,
            last_error: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThemeKind {
    /// Runs on windows of a meter stream as watermarks pass.
    Streaming,
    /// Runs when a billing period is posted.
    Billing,
}

/// A parameter with the value in force.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    pub name: String,
    pub default: String,
    pub doc: String,
    pub value: String,
}

/// What `GET /api/v1/themes` shows of a theme.
#[derive(Debug, Clone, PartialEq)]
pub struct ThemeInfo {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub kind: ThemeKind,
    pub table: &'static str,
    pub enabled: bool,
    pub builtin: bool,
    pub params: Vec<ParamInfo>,
    pub hits: u64,
    pub evaluations: u64,
    pub last_error: Option<String>,
    /// Windows ending before this are evaluated, their hits committed.
    pub evaluated_until: Option<EpochMs>,
    pub sql: String,
}

impl Monitor {
    pub async fn themes(&self) -> Vec<ThemeInfo> {
        let core = self.core.lock().await;
        core.themes
            .values()
            .map(|s| ThemeInfo {
                id: s.theme.def.id.clone(),
                title: s.theme.def.title.clone(),
                severity: s.theme.def.severity,
                kind: if s.theme.is_billing() {
                    ThemeKind::Billing
                } else {
                    ThemeKind::Streaming
                },
                table: s.theme.table().name(),
                enabled: s.enabled,
                builtin: s.builtin,
                params: s
                    .theme
                    .def
                    .params
                    .iter()
                    .map(|p| ParamInfo {
                        name: p.name.clone(),
                        default: p.default.clone(),
                        doc: p.doc.clone(),
                        value: self
                            .config
                            .params
                            .get(&p.name)
                            .unwrap_or(&p.default)
                            .clone(),
                    })
                    .collect(),
                hits: s.hits,
                evaluations: s.evaluations,
                last_error: s.last_error.clone(),
                evaluated_until: core.progress.get(&s.theme.def.id).copied(),
                sql: s.theme.def.source.clone(),
            })
            .collect()
    }

    /// Adds a theme from SQL source: validated (parsed and planned) first; a
    /// bad one changes nothing. It judges windows closing from now on.
    pub async fn add_theme(&self, source: &str) -> Result<String, MonitorError> {
        let theme = self.check_theme(source).await?;
        let mut core = self.core.lock().await;
        let id = theme.def.id.clone();
        if core.themes.contains_key(&id) {
            return Err(MonitorError::Conflict(format!(
                "theme {id} exists; choose another id or disable the old one"
            )));
        }
        if let Some(w) = theme.table().stream().and_then(|s| core.wm.trigger(s)) {
            core.progress.insert(id.clone(), w);
            core.planned.insert(id.clone(), w);
            core.pending.progress.insert(id.clone(), w);
        }
        let stored = StoredTheme {
            id: id.clone(),
            source: source.to_string(),
            enabled: true,
        };
        core.pending.themes.insert(id.clone(), Some(stored));
        core.themes
            .insert(id.clone(), super::ThemeSlot::new(theme, true, false));
        self.flush(&mut core).await?;
        Ok(id)
    }

    pub async fn set_theme_enabled(&self, id: &str, enabled: bool) -> Result<(), MonitorError> {
        let mut core = self.core.lock().await;
        let slot = core
            .themes
            .get_mut(id)
            .ok_or_else(|| MonitorError::NotFound(format!("no theme {id}")))?;
        slot.enabled = enabled;
        if !slot.builtin {
            let stored = StoredTheme {
                id: id.to_string(),
                source: slot.theme.def.source.clone(),
                enabled,
            };
            core.pending.themes.insert(id.to_string(), Some(stored));
        }
        self.flush(&mut core).await?;
        Ok(())
    }

    /// Runs a theme (by id, or given as source) over the state held now,
    /// without raising anything.
    pub async fn dry_run(&self, id_or_source: &str) -> Result<Vec<Hit>, MonitorError> {
        let core = self.core.lock().await;
        let theme = match core.themes.get(id_or_source) {
            Some(s) => s.theme.clone(),
            None => self.check_theme(id_or_source).await?,
        };
        let mut hits = Vec::new();
        if theme.is_billing() {
            for p in core.billing.values() {
                let batch = crate::tables::bill(p).map_err(|e| EngineError::Table {
                    table: "bill",
                    message: e.to_string(),
                })?;
                hits.extend(self.engine.run(&theme, batch).await?);
            }
        } else if let Some(new) = theme.table().stream().and_then(|s| core.wm.trigger(s)) {
            let sources = Sources {
                store: &core.store,
                archive: &core.archive,
                clock: self.clock(),
            };
            for b in evaluate::batches_for_step(&sources, &theme, None, new, &[]) {
                hits.extend(self.engine.run(&theme, b?).await?);
            }
        }
        Ok(hits)
    }

    /// Parses and plans a theme's source: the check every new theme passes.
    async fn check_theme(&self, source: &str) -> Result<Theme, MonitorError> {
        let def = ThemeDef::parse(source, &self.config.params)
            .map_err(|e| MonitorError::BadRequest(e.to_string()))?;
        self.engine
            .check(def)
            .await
            .map_err(|e| MonitorError::BadRequest(e.to_string()))
    }
}
