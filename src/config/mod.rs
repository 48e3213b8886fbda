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
use jicha_pipeline::theme::Severity;
use jicha_pipeline::time::{parse_duration_ms, BusinessClock};
use jicha_pipeline::workorder::deadline::{StageLimits, TimeLimits};
use jicha_pipeline::workorder::sampling::SamplingRules;
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
    /// An open work order not dispatched this long after it was raised is
    /// overdue (督办); the later stages' limits are `[time_limits]`.
    pub escalate_after: Millis,
    /// Stage time limits, `[time_limits.default]` and per severity
    /// (`[time_limits.critical]` …): `accept`, `feedback`, `review`.
    pub time_limits: BTreeMap<String, StageConfig>,
    /// A work order is warned once this share (%) of its stage's limit has passed.
    pub escalation_warn_percent: u8,
    /// Serve `POST /api/v1/admin/clock` (admin only), which moves the
    /// monitor's clock ahead: for tests and drills, never in production.
    pub test_clock: bool,
    /// A theme evaluation running longer fails.
    pub eval_timeout: Millis,
    /// A whitelist entry valid for more days is refused.
    pub whitelist_max_days: u32,
    /// `[triage] manual = ["theme", …]`: themes whose hits wait as
    /// `pending` for an auditor to dispatch or dismiss.
    pub triage: TriageConfig,
    /// `[sampling]`: the default size of a 抽检 draw.
    pub sampling: SamplingConfig,
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
            escalate_after: Millis(monitor.time_limits.default.dispatch),
            time_limits: BTreeMap::new(),
            escalation_warn_percent: u8::try_from(monitor.time_limits.warn_percent).unwrap_or(80),
            test_clock: false,
            eval_timeout: Millis::of(monitor.engine.eval_timeout),
            whitelist_max_days: u32::try_from(monitor.whitelist_max_days).unwrap_or(u32::MAX),
            triage: TriageConfig::default(),
            sampling: SamplingConfig::of(monitor.sampling),
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
            time_limits: self.time_limits()?,
            whitelist_max_days: i64::from(self.whitelist_max_days),
            manual_triage: self.triage.manual.iter().cloned().collect(),
            sampling: self.sampling.rules()?,
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriageConfig {
    #[serde(default)]
    pub manual: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingConfig {
    /// The share drawn, a decimal written as text (`"0.05"` for 5 %).
    pub share: String,
    /// At least this many orders per draw (all when there are fewer).
    pub min: usize,
    /// At most this many.
    pub max: usize,
}

impl SamplingConfig {
    fn of(r: SamplingRules) -> Self {
        SamplingConfig {
            share: r.share.to_string(),
            min: r.min,
            max: r.max,
        }
    }

    fn rules(&self) -> Result<SamplingRules> {
        let share: rust_decimal::Decimal = self.share.trim().parse().ok().filter(|s| {
            *s > rust_decimal::Decimal::ZERO && *s <= rust_decimal::Decimal::ONE
        }).with_context(|| {
            format!(
                "[sampling] share = {:?}: write a decimal above 0 and at most 1, e.g. \"0.05\" for 5 %",
                self.share
            )
        })?;
        if self.min > self.max {
            bail!(
                "[sampling] min = {} is above max = {}; lower min or raise max",
                self.min,
                self.max
            );
        }
        Ok(SamplingRules {
            share,
            min: self.min,
            max: self.max,
        })
    }
}

/// One severity's stage limits in the file; a stage left out keeps the
/// default's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<Millis>,
}

impl StageConfig {
    fn over(&self, base: StageLimits) -> StageLimits {
        StageLimits {
            dispatch: base.dispatch,
            accept: self.accept.map_or(base.accept, |m| m.0),
            feedback: self.feedback.map_or(base.feedback, |m| m.0),
            review: self.review.map_or(base.review, |m| m.0),
        }
    }
}

impl Settings {
    /// `escalate_after` and `[time_limits]` merged over the defaults.
    fn time_limits(&self) -> Result<TimeLimits> {
        let mut t = TimeLimits::default();
        t.default.dispatch = self.escalate_after.0;
        if let Some(d) = self.time_limits.get("default") {
            t.default = d.over(t.default);
        }
        for (key, c) in &self.time_limits {
            if key == "default" {
                continue;
            }
            let Some(severity) = Severity::parse(key) else {
                bail!(
                    "[time_limits.{key}]: not a severity; use default, {}",
                    Severity::ALL.join(", ")
                );
            };
            t.by_severity.insert(severity, c.over(t.default));
        }
        if !(1..=100).contains(&self.escalation_warn_percent) {
            bail!(
                "escalation_warn_percent = {}: use 1 to 100",
                self.escalation_warn_percent
            );
        }
        t.warn_percent = i64::from(self.escalation_warn_percent);
        Ok(t)
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
