//! The four layers and their merge: defaults < TOML file < `JICHA_*`
//! environment < flags. Each layer names itself in errors (the file's path,
//! the variable, the flag), so a bad value says where to fix it.

use super::Settings;
use anyhow::{Context, Result};
use figment::error::Kind;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The flags of `jicha run`. Each also reads from `JICHA_<FLAG>` and from
/// the config file key of the same name (flag > environment > file).
#[derive(clap::Args, Debug, Default, Serialize)]
pub struct RunArgs {
    /// The TOML config file [env: JICHA_CONFIG]
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// MQTT broker, mqtt://host:port or mqtts:// [env: JICHA_MQTT]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<String>,
    /// Redis, redis://host:port/db [env: JICHA_REDIS]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
    /// Address the HTTP API listens on [env: JICHA_HTTP]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// Token file of the API's access control (see deploy/auth.example.toml) [env: JICHA_AUTH]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<PathBuf>,
    /// Customer archive (JSON) to load [env: JICHA_ARCHIVE]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<PathBuf>,
    /// Theme directory (default: the built-in themes) [env: JICHA_THEMES]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub themes: Option<PathBuf>,
}

/// Prefix of every environment variable Jicha reads.
const ENV_PREFIX: &str = "JICHA_";

/// The process environment, as the environment layer takes it. Variables
/// that are not UTF-8 are none of Jicha's and are passed over.
pub fn process_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

impl Settings {
    /// Merges defaults, the config file (the `--config` flag, else
    /// `JICHA_CONFIG`), the `JICHA_*` variables among `env` and the flags.
    /// `env` is passed in, not read here, so tests need not touch the
    /// process environment.
    pub fn load(flags: &RunArgs, env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let env = EnvLayer::new(env);
        let path = flags.config.clone().or_else(|| env.config_path());
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = &path {
            figment = figment.merge(FileLayer::read(path)?);
        }
        figment
            .merge(env)
            .merge(FlagLayer(Serialized::defaults(flags)))
            .extract_lossy::<Settings>()
            .map_err(|e| anyhow::anyhow!(describe(e, path.as_deref())))
            .context("invalid configuration")
    }
}

/// The config file, read up front so a missing file is its own clear error.
struct FileLayer {
    path: PathBuf,
    text: String,
}

impl FileLayer {
    fn read(path: &Path) -> Result<FileLayer> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read config file {}; check --config (or JICHA_CONFIG)",
                path.display()
            )
        })?;
        Ok(FileLayer {
            path: path.to_path_buf(),
            text,
        })
    }
}

impl Provider for FileLayer {
    fn metadata(&self) -> Metadata {
        Metadata::from("config file", self.path.as_path()).interpolater(|_, keys| keys.join("."))
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Toml::string(&self.text).data()
    }
}

/// The `JICHA_<KEY>` variables whose KEY (lower-cased) is a top-level value
/// of [`Settings`]; other variables (`JICHA_LOG`, a sibling tool's) are
/// none of the settings' business. Empty values count as unset, as they
/// did when the flags read the environment themselves.
struct EnvLayer(Vec<(String, String)>);

impl EnvLayer {
    fn new(env: impl IntoIterator<Item = (String, String)>) -> EnvLayer {
        EnvLayer(
            env.into_iter()
                .filter_map(|(k, v)| {
                    let key = k.strip_prefix(ENV_PREFIX)?.to_ascii_lowercase();
                    (!v.is_empty()).then_some((key, v))
                })
                .collect(),
        )
    }

    fn config_path(&self) -> Option<PathBuf> {
        self.0
            .iter()
            .find(|(k, _)| k == "config")
            .map(|(_, v)| PathBuf::from(v))
    }
}

/// The keys of [`Settings`] that hold one value (not a section): those an
/// environment variable can set.
fn scalar_keys() -> Vec<String> {
    let Ok(mut data) = Serialized::defaults(Settings::default()).data() else {
        return Vec::new();
    };
    data.remove(&Profile::Default)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, v)| !matches!(v, Value::Dict(..) | Value::Array(..)))
        .map(|(k, _)| k)
        .collect()
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment")
            .interpolater(|_, keys| format!("{ENV_PREFIX}{}", keys.join("_").to_ascii_uppercase()))
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        let keys = scalar_keys();
        let dict: Dict = self
            .0
            .iter()
            .filter(|(k, _)| keys.contains(k))
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        Ok(Profile::Default.collect(dict))
    }
}

/// The flags, named as flags in errors.
struct FlagLayer<'a>(Serialized<&'a RunArgs>);

impl Provider for FlagLayer<'_> {
    fn metadata(&self) -> Metadata {
        Metadata::named("command line")
            .interpolater(|_, keys| format!("--{}", keys.join(".").replace('_', "-")))
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        self.0.data()
    }
}

/// Figment's errors, one a line, with an unknown key (a typo, most likely)
/// said plainly: the key as written in the file, and the keys there are.
/// Only the file can hold one: the environment and flag layers carry known
/// keys only.
fn describe(e: figment::Error, file: Option<&Path>) -> String {
    e.into_iter()
        .map(|e| match &e.kind {
            Kind::UnknownField(found, expected) => {
                // The path ends in the unknown key itself.
                let key = if e.path.is_empty() {
                    found.clone()
                } else {
                    e.path.join(".")
                };
                let file = file.map_or_else(String::new, |p| format!(" {}", p.display()));
                format!(
                    "unknown key `{key}` in config file{file} (a typo?); the keys there are: {}",
                    expected.join(", ")
                )
            }
            _ => e.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
