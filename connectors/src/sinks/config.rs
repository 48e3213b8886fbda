//! A `[[sinks]]` entry: `kind` and its own keys, plus the keys every kind
//! takes (name, filters, retry, timeout). serde cannot refuse unknown keys
//! across a flattened struct, so the entry is read as a map, split into
//! the common keys and the kind's, and each part read strictly: a typo is
//! refused with its name either way.

use jicha_pipeline::outbox::EventKind;
use jicha_pipeline::theme::Severity;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One `[[sinks]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkConfig {
    pub common: Common,
    pub kind: SinkKind,
}

/// The keys every kind takes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Common {
    /// Delivery progress, counters and dead letters are kept under this
    /// name; renaming a sink starts it afresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only events of orders this severe or more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// Only these themes (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub themes: Vec<String>,
    /// Only orders in these org subtrees (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orgs: Vec<String>,
    /// Only these event kinds (default: all; chat robots: workorder_opened
    /// and escalated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventKind>>,
    /// Attempts per batch before its events are dead-lettered (0: for ever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// First wait after a failure, doubling up to `max_backoff` ("500ms").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_backoff: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff: Option<String>,
    /// HTTP request timeout ("10s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Jicha's address as people reach it, for links to work orders in
    /// alerts and chat messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

const COMMON_KEYS: &[&str] = &[
    "name",
    "min_severity",
    "themes",
    "orgs",
    "events",
    "max_attempts",
    "initial_backoff",
    "max_backoff",
    "timeout",
    "public_url",
];

/// What each kind needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkKind {
    /// Appends one JSON object per event and line to `path`.
    EventLog { path: PathBuf },
    /// Posts each work order as an alert to Alertmanager's v2 API.
    Alertmanager {
        /// Alertmanager's base URL (`http://host:9093`).
        url: String,
        /// How long a firing alert lasts without a further event ("7d").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alert_ttl: Option<String>,
        /// Static labels added to every alert (for routing).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String>,
    },
    /// Posts each event as JSON, signed with `secret`.
    Webhook {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    /// A WeCom group robot.
    Wecom {
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
    /// A DingTalk group robot (signed when `secret` is set).
    Dingtalk {
        access_token: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
}

impl<'de> Deserialize<'de> for SinkConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Value::Object(mut kind) = Value::deserialize(d)? else {
            return Err(D::Error::custom(
                "a [[sinks]] entry must be a table with a `kind` (event_log, alertmanager, webhook, wecom, dingtalk)",
            ));
        };
        let mut common = Map::new();
        for k in COMMON_KEYS {
            if let Some(v) = kind.remove(*k) {
                common.insert((*k).to_string(), v);
            }
        }
        let common: Common =
            serde_json::from_value(Value::Object(common)).map_err(D::Error::custom)?;
        let kind: SinkKind =
            serde_json::from_value(Value::Object(kind)).map_err(D::Error::custom)?;
        Ok(SinkConfig { common, kind })
    }
}

impl Serialize for SinkConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let mut all = match serde_json::to_value(&self.kind).map_err(S::Error::custom)? {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        if let Value::Object(c) = serde_json::to_value(&self.common).map_err(S::Error::custom)? {
            all.extend(c);
        }
        Value::Object(all).serialize(s)
    }
}
