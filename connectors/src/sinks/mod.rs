//! Outbox sinks (`jicha_pipeline::outbox::Sink`) and their configuration:
//! `[[sinks]]` tables in `jicha.toml`, each chosen by `kind`, like Vector's
//! sinks: the JSON-lines event log, Alertmanager, a signed JSON webhook,
//! and the WeCom and DingTalk group robots. Every kind takes the same
//! filters and retry settings (`config.rs`); `docs/push.md` is the
//! reference.

pub mod alertmanager;
pub mod config;
pub mod dingtalk;
pub mod event_log;
pub mod filter;
pub mod http;
pub mod message;
pub mod sign;
#[cfg(test)]
mod testing;
pub mod webhook;
pub mod wecom;

pub use config::{Common, SinkConfig, SinkKind};

use chrono_tz::Tz;
use filter::Filter;
use futures::future::BoxFuture;
use jicha_pipeline::outbox::{EventKind, OutboxEvent, RetryPolicy, Sink, SinkError};
use jicha_pipeline::time::parse_duration_ms;
use std::sync::Arc;
use std::time::Duration;

/// What every sink is built with besides its own entry.
#[derive(Debug, Clone, Copy)]
pub struct BuildContext {
    /// The business time zone, for times in messages.
    pub tz: Tz,
}

impl Default for BuildContext {
    fn default() -> Self {
        BuildContext {
            tz: chrono_tz::Asia::Shanghai,
        }
    }
}

/// A sink with its entry's filters and retry policy.
struct Configured {
    inner: Box<dyn Sink>,
    filter: Filter,
    retry: RetryPolicy,
}

impl Sink for Configured {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    fn accepts(&self, e: &OutboxEvent) -> bool {
        self.filter.accepts(e)
    }
    fn retry(&self) -> RetryPolicy {
        self.retry
    }
    fn deliver<'a>(&'a self, events: &'a [OutboxEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        self.inner.deliver(events)
    }
}

fn duration(
    sink: &str,
    key: &str,
    v: Option<&str>,
    default: Duration,
) -> Result<Duration, SinkError> {
    match v {
        None => Ok(default),
        Some(text) => match parse_duration_ms(text) {
            Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms as u64)),
            Ok(_) => Err(SinkError::Config(format!(
                "sink {sink}: `{key}` must be above zero, e.g. \"500ms\" or \"30s\""
            ))),
            Err(e) => Err(SinkError::Config(format!("sink {sink}: `{key}`: {e}"))),
        },
    }
}

/// The URL without its query (which may hold a token), for default names.
fn without_query(url: &str) -> String {
    url.split(['?', '#'])
        .next()
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_string()
}

impl SinkConfig {
    /// The name progress is kept under.
    pub fn name(&self) -> String {
        if let Some(n) = &self.common.name {
            return n.clone();
        }
        match &self.kind {
            SinkKind::EventLog { path } => format!("event_log:{}", path.display()),
            SinkKind::Alertmanager { url, .. } => format!("alertmanager:{}", without_query(url)),
            SinkKind::Webhook { url, .. } => format!("webhook:{}", without_query(url)),
            SinkKind::Wecom { .. } => "wecom".into(),
            SinkKind::Dingtalk { .. } => "dingtalk".into(),
        }
    }

    pub fn build(&self, ctx: BuildContext) -> Result<Arc<dyn Sink>, SinkError> {
        let name = self.name();
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            return Err(SinkError::Config(format!(
                "sink name {name:?} is empty or has control characters; give the entry a plain `name`"
            )));
        }
        let c = &self.common;
        let robot = matches!(
            self.kind,
            SinkKind::Wecom { .. } | SinkKind::Dingtalk { .. }
        );
        // Chat groups want findings and 督办, not every life-cycle step.
        let events = c.events.clone().unwrap_or_else(|| {
            if robot {
                vec![EventKind::WorkorderOpened, EventKind::Escalated]
            } else {
                Vec::new()
            }
        });
        let filter = Filter::new(
            &name,
            c.min_severity,
            c.themes.clone(),
            c.orgs.clone(),
            events,
        )
        .map_err(SinkError::Config)?;
        let defaults = match self.kind {
            // A file that cannot be written is an outage to fix, not a
            // reason to drop the audit trail.
            SinkKind::EventLog { .. } => RetryPolicy::forever(),
            _ => RetryPolicy::default(),
        };
        let retry = RetryPolicy {
            max_attempts: c.max_attempts.unwrap_or(defaults.max_attempts),
            initial: duration(
                &name,
                "initial_backoff",
                c.initial_backoff.as_deref(),
                defaults.initial,
            )?,
            max: duration(&name, "max_backoff", c.max_backoff.as_deref(), defaults.max)?,
        };
        if retry.max < retry.initial {
            return Err(SinkError::Config(format!(
                "sink {name}: `max_backoff` is shorter than `initial_backoff`; raise it or lower `initial_backoff`"
            )));
        }
        let timeout = duration(
            &name,
            "timeout",
            c.timeout.as_deref(),
            http::DEFAULT_TIMEOUT,
        )?;
        let public_url = match &c.public_url {
            None => None,
            Some(u) => Some(
                http::parse_url(&name, "public_url", u)?
                    .as_str()
                    .trim_end_matches('/')
                    .to_string(),
            ),
        };
        let inner: Box<dyn Sink> = match &self.kind {
            SinkKind::EventLog { path } => Box::new(event_log::EventLog::new(name, path.clone())?),
            SinkKind::Alertmanager {
                url,
                alert_ttl,
                labels,
            } => Box::new(alertmanager::Alertmanager::new(
                name.clone(),
                alertmanager::AlertmanagerSettings {
                    url: url.clone(),
                    tz: ctx.tz,
                    public_url,
                    ttl: duration(
                        &name,
                        "alert_ttl",
                        alert_ttl.as_deref(),
                        alertmanager::DEFAULT_TTL,
                    )?,
                    labels: labels.clone(),
                    timeout,
                },
            )?),
            SinkKind::Webhook { url, secret } => Box::new(webhook::Webhook::new(
                name,
                url,
                secret.as_deref(),
                timeout,
            )?),
            SinkKind::Wecom { key, url } => Box::new(wecom::WeCom::new(
                name,
                url.as_deref(),
                key,
                ctx.tz,
                public_url,
                timeout,
            )?),
            SinkKind::Dingtalk {
                access_token,
                secret,
                url,
            } => Box::new(dingtalk::DingTalk::new(
                name,
                dingtalk::DingTalkSettings {
                    url: url.as_deref(),
                    access_token,
                    secret: secret.as_deref(),
                    tz: ctx.tz,
                    public_url,
                    timeout,
                },
            )?),
        };
        Ok(Arc::new(Configured {
            inner,
            filter,
            retry,
        }))
    }
}

/// The configured sinks, built.
pub fn build_all(
    configs: &[SinkConfig],
    ctx: BuildContext,
) -> Result<Vec<Arc<dyn Sink>>, SinkError> {
    configs.iter().map(|c| c.build(ctx)).collect()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
