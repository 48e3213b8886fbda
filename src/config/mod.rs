//! The settings of `jicha run`, from four layers merged in one place
//! ([`Settings::load`]): defaults, then the TOML file (`--config` /
//! `JICHA_CONFIG`), then `JICHA_*` environment variables, then flags. Each
//! default is written once: here, or where the setting is used (the
//! monitor's and the MQTT source's own defaults), read from there.
//!
//! A new section of the file is one field of [`Settings`]; a new top-level
//! value (a string or number) is also read from `JICHA_<NAME>`.

mod layers;
#[cfg(test)]
mod tests;

pub use layers::{process_env, RunArgs};

use anyhow::{bail, Context, Result};
use jicha_connectors::mqtt::SourceSettings;
use jicha_pipeline::records::Stream;
use jicha_pipeline::time::{parse_duration_ms, BusinessClock};
use jicha_pipeline::MonitorConfig;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Everything `jicha run` is configured with; the TOML keys are the field
/// names, and a key the file has but this does not is refused, named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// MQTT broker, `mqtt://host:port` (`mqtts://` for TLS).
    pub mqtt: String,
    /// Redis, `redis://host:port/db`.
    pub redis: String,
    /// Address the HTTP API listens on.
    pub http: String,
    /// The token file (`[[token]]` entries, see `deploy/auth.example.toml`);
    /// without it the API is open and served on loopback only.
    pub auth: Option<PathBuf>,
    /// Serve `/metrics` without a token (for a Prometheus that sends none).
    pub metrics_public: bool,
    /// The customer archive (JSON) loaded at start.
    pub archive: Option<PathBuf>,
    /// Theme directory; the built-in themes when absent.
    pub themes: Option<PathBuf>,
    /// MQTT client id; the persistent session is keyed by it.
    pub client_id: String,
    /// Redis key prefix, so several deployments can share one Redis.
    pub redis_prefix: String,
    /// IANA time zone of the business day, month and valley hours.
    pub timezone: String,
    /// Larger MQTT payloads are refused and dead-lettered.
    pub max_payload_bytes: usize,
    /// Work orders not archived this long after creation are escalated.
    pub escalate_after: Millis,
    /// A theme evaluation running longer fails.
    pub eval_timeout: Millis,
    /// A whitelist entry valid for more days is refused.
    pub whitelist_max_days: u32,
    /// Per-stream settings, `[streams.load]` etc.
    pub streams: BTreeMap<String, StreamConfig>,
    /// Theme parameter overrides, e.g. `over_capacity_ratio = 1.25`.
    pub params: BTreeMap<String, toml::Value>,
    /// Where work-order events go (`[[sinks]]`, chosen by `kind`).
    pub sinks: Vec<jicha_connectors::sinks::SinkConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_orderness: Option<Millis>,
    /// Another stream whose watermark also closes this stream's windows
    /// (default: event follows load); "none" to turn it off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follows: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        let monitor = MonitorConfig::default();
        let source = SourceSettings::default();
        Settings {
            mqtt: source.url,
            redis: "redis://127.0.0.1:6379/0".into(),
            http: "127.0.0.1:8080".into(),
            auth: None,
            metrics_public: false,
            archive: None,
            themes: None,
            client_id: source.client_id,
            redis_prefix: "jicha:".into(),
            timezone: monitor.clock.tz().name().into(),
            max_payload_bytes: monitor.max_payload_bytes,
            escalate_after: Millis(monitor.escalate_after_ms),
            eval_timeout: Millis::of(monitor.engine.eval_timeout),
            whitelist_max_days: u32::try_from(monitor.whitelist_max_days).unwrap_or(u32::MAX),
            streams: BTreeMap::new(),
            params: BTreeMap::new(),
            sinks: Vec::new(),
        }
    }
}

impl Settings {
    /// The monitor's configuration; refuses an unknown stream or time zone
    /// and a parameter that is neither a number nor a string.
    pub fn monitor_config(&self) -> Result<MonitorConfig> {
        let mut c = MonitorConfig {
            clock: BusinessClock::parse_tz(&self.timezone).map_err(anyhow::Error::msg)?,
            max_payload_bytes: self.max_payload_bytes,
            escalate_after_ms: self.escalate_after.0,
            whitelist_max_days: i64::from(self.whitelist_max_days),
            ..MonitorConfig::default()
        };
        c.engine.eval_timeout = std::time::Duration::from_millis(self.eval_timeout.0.max(1) as u64);
        for (name, s) in &self.streams {
            let Some(stream) = Stream::parse(name) else {
                bail!("[streams.{name}]: unknown stream; use load, freeze or event");
            };
            if let Some(d) = s.out_of_orderness {
                c.out_of_orderness.insert(stream, d.0);
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

    /// How the MQTT source connects.
    pub fn source_settings(&self) -> SourceSettings {
        SourceSettings {
            url: self.mqtt.clone(),
            client_id: self.client_id.clone(),
            ..SourceSettings::default()
        }
    }
}

/// A duration, written as text such as `90s`, `30m`, `1h` or `7d` (see
/// [`parse_duration_ms`]); a bad one is refused where it is read, naming
/// the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub i64);

impl Millis {
    fn of(d: std::time::Duration) -> Millis {
        Millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}ms", self.0))
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration_ms(&text)
            .map(Millis)
            .map_err(serde::de::Error::custom)
    }
}
