//! `jicha.toml` and `JICHA_*` settings. Precedence: command-line flag, then
//! environment variable (both via clap), then the config file, then the default.

use anyhow::{bail, Context, Result};
use jicha_pipeline::records::Stream;
use jicha_pipeline::time::{parse_duration_ms, BusinessClock};
use jicha_pipeline::MonitorConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub mqtt: Option<String>,
    pub redis: Option<String>,
    pub http: Option<String>,
    pub archive: Option<PathBuf>,
    pub themes: Option<PathBuf>,
    /// MQTT client id; the persistent session is keyed by it.
    pub client_id: Option<String>,
    /// Redis key prefix, so several deployments can share one Redis.
    pub redis_prefix: Option<String>,
    pub timezone: Option<String>,
    pub max_payload_bytes: Option<usize>,
    pub escalate_after: Option<String>,
    pub eval_timeout: Option<String>,
    #[serde(default)]
    pub streams: BTreeMap<String, StreamConfig>,
    /// Theme parameter overrides, e.g. `over_capacity_ratio = 1.25`.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// Where work-order events go (`[[sinks]]`, chosen by `kind`).
    #[serde(default)]
    pub sinks: Vec<jicha_connectors::sinks::SinkConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub out_of_orderness: Option<String>,
    /// Another stream whose watermark also closes this stream's windows
    /// (default: event follows load); "none" to turn it off.
    pub follows: Option<String>,
}

impl FileConfig {
    pub fn read(path: &Path) -> Result<FileConfig> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("cannot read config file {}; check --config", path.display())
        })?;
        toml::from_str(&text)
            .with_context(|| format!("config file {} is not valid", path.display()))
    }

    pub fn monitor_config(&self) -> Result<MonitorConfig> {
        let mut c = MonitorConfig::default();
        if let Some(tz) = &self.timezone {
            c.clock = BusinessClock::parse_tz(tz).map_err(anyhow::Error::msg)?;
        }
        if let Some(n) = self.max_payload_bytes {
            c.max_payload_bytes = n;
        }
        if let Some(d) = &self.escalate_after {
            c.escalate_after_ms = parse_duration_ms(d)
                .map_err(anyhow::Error::msg)
                .context("escalate_after")?;
        }
        if let Some(d) = &self.eval_timeout {
            let ms = parse_duration_ms(d)
                .map_err(anyhow::Error::msg)
                .context("eval_timeout")?;
            c.engine.eval_timeout = std::time::Duration::from_millis(ms.max(1) as u64);
        }
        for (name, s) in &self.streams {
            let Some(stream) = Stream::parse(name) else {
                bail!("[streams.{name}]: unknown stream; use load, freeze or event");
            };
            if let Some(d) = &s.out_of_orderness {
                let ms = parse_duration_ms(d)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("[streams.{name}] out_of_orderness"))?;
                c.out_of_orderness.insert(stream, ms);
            }
            if let Some(f) = &s.follows {
                let leader = match f.as_str() {
                    "none" | "" => None,
                    other => Some(Stream::parse(other).with_context(|| {
                        format!("[streams.{name}] follows: unknown stream {other:?}")
                    })?),
                };
                c.follows.insert(stream, leader);
            }
        }
        for (k, v) in &self.params {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => bail!("[params] {k} = {other}: use a number or a string"),
            };
            c.params.insert(k.clone(), text);
        }
        Ok(c)
    }
}
