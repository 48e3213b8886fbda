//! The layers' precedence, typos and bad values refused with the key named,
//! and the file's sections mapped into the monitor's configuration. The
//! environment is passed in, never set on the process.

use super::*;
use jicha_pipeline::theme::Severity;
use jicha_pipeline::time::{DAY_MS, HOUR_MS};
use std::path::{Path, PathBuf};

/// A config file of its own for each test.
fn file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jicha-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn with_file(path: &Path) -> RunArgs {
    RunArgs {
        config: Some(path.to_path_buf()),
        ..RunArgs::default()
    }
}

fn error(r: Result<Settings>) -> String {
    format!("{:#}", r.unwrap_err())
}

#[test]
fn defaults_when_nothing_is_given() {
    let s = Settings::load(&RunArgs::default(), env(&[])).unwrap();
    assert_eq!(s, Settings::default());
    assert_eq!(s.mqtt, "mqtt://127.0.0.1:1883");
    assert_eq!(s.redis, "redis://127.0.0.1:6379/0");
    assert_eq!(s.http, "127.0.0.1:8080");
    assert_eq!((s.archive.as_ref(), s.themes.as_ref()), (None, None));
    assert_eq!(
        (s.client_id.as_str(), s.redis_prefix.as_str()),
        ("jicha", "jicha:")
    );
    // The monitor's own defaults, unchanged by the trip through the layers.
    let c = s.monitor_config().unwrap();
    let d = MonitorConfig::default();
    assert_eq!(c.clock.tz(), d.clock.tz());
    assert_eq!(c.max_payload_bytes, d.max_payload_bytes);
    assert_eq!(c.time_limits, d.time_limits);
    assert_eq!(c.engine.eval_timeout, d.engine.eval_timeout);
    assert_eq!(
        (c.out_of_orderness, c.follows, c.params),
        (d.out_of_orderness, d.follows, d.params)
    );
    assert_eq!(s.source_settings().url, SourceSettings::default().url);
}

#[test]
fn flag_beats_environment_beats_file_beats_default() {
    let path = file(
        "precedence.toml",
        r#"
        mqtt = "mqtt://file:1883"
        http = "0.0.0.0:1"
        redis_prefix = "file:"
        max_payload_bytes = 1000
        escalate_after = "1h"
        "#,
    );
    let vars = env(&[
        ("JICHA_MQTT", "mqtt://env:1883"),
        ("JICHA_HTTP", "0.0.0.0:2"),
        ("JICHA_MAX_PAYLOAD_BYTES", "2000"),
        ("JICHA_LOG", "debug"),
        ("JICHA_ARCHIVE", ""),
        ("PATH", "/bin"),
    ]);
    let flags = RunArgs {
        mqtt: Some("mqtt://flag:1883".into()),
        ..with_file(&path)
    };
    let s = Settings::load(&flags, vars).unwrap();
    assert_eq!(s.mqtt, "mqtt://flag:1883");
    assert_eq!(s.http, "0.0.0.0:2");
    assert_eq!(s.max_payload_bytes, 2000);
    assert_eq!(s.redis_prefix, "file:");
    assert_eq!(s.escalate_after, Millis(HOUR_MS));
    assert_eq!(s.redis, Settings::default().redis);
    // An empty variable is unset; JICHA_LOG is not a setting.
    assert_eq!(s.archive, None);
    // Every top-level value has its variable.
    let s = Settings::load(
        &RunArgs::default(),
        env(&[
            ("JICHA_CLIENT_ID", "jicha-2"),
            ("JICHA_ESCALATE_AFTER", "7d"),
            ("JICHA_THEMES", "/etc/jicha/queries"),
        ]),
    )
    .unwrap();
    assert_eq!(s.client_id, "jicha-2");
    assert_eq!(s.escalate_after, Millis(7 * DAY_MS));
    assert_eq!(s.themes, Some(PathBuf::from("/etc/jicha/queries")));
}

#[test]
fn config_file_from_flag_or_environment() {
    let a = file("a.toml", "http = \"127.0.0.1:1\"");
    let b = file("b.toml", "http = \"127.0.0.1:2\"");
    let from_env = env(&[("JICHA_CONFIG", b.to_str().unwrap())]);
    let s = Settings::load(&RunArgs::default(), from_env.clone()).unwrap();
    assert_eq!(s.http, "127.0.0.1:2");
    let s = Settings::load(&with_file(&a), from_env).unwrap();
    assert_eq!(s.http, "127.0.0.1:1");
    let missing = error(Settings::load(
        &with_file(Path::new("/nonexistent/j.toml")),
        env(&[]),
    ));
    assert!(
        missing.contains("cannot read config file /nonexistent/j.toml")
            && missing.contains("--config"),
        "{missing}"
    );
}

#[test]
fn typo_in_the_file_is_refused_naming_the_key() {
    let path = file(
        "typo.toml",
        "mqtt = \"mqtt://x:1883\"\nredis_prefx = \"j:\"\n",
    );
    let e = error(Settings::load(&with_file(&path), env(&[])));
    assert!(
        e.contains("unknown key `redis_prefx`")
            && e.contains(&path.display().to_string())
            && e.contains("redis_prefix"),
        "{e}"
    );
    let path = file(
        "typo-stream.toml",
        "[streams.load]\nout_of_order = \"1h\"\n",
    );
    let e = error(Settings::load(&with_file(&path), env(&[])));
    assert!(e.contains("unknown key `streams.load.out_of_order`"), "{e}");
    assert!(e.contains("out_of_orderness"), "{e}");
}

#[test]
fn bad_durations_are_refused_naming_where() {
    let path = file("duration.toml", "escalate_after = \"ten days\"\n");
    let e = error(Settings::load(&with_file(&path), env(&[])));
    assert!(
        e.contains("duration \"ten days\" must look like 90s, 30m, 1h or 7d")
            && e.contains("escalate_after")
            && e.contains("duration.toml"),
        "{e}"
    );
    let path = file(
        "stream-duration.toml",
        "[streams.freeze]\nout_of_orderness = \"1w\"\n",
    );
    let e = error(Settings::load(&with_file(&path), env(&[])));
    assert!(
        e.contains("unknown unit \"w\"") && e.contains("streams.freeze.out_of_orderness"),
        "{e}"
    );
    let e = error(Settings::load(
        &RunArgs::default(),
        env(&[("JICHA_EVAL_TIMEOUT", "soon")]),
    ));
    assert!(
        e.contains("must look like") && e.contains("JICHA_EVAL_TIMEOUT"),
        "{e}"
    );
    let e = error(Settings::load(
        &RunArgs::default(),
        env(&[("JICHA_MAX_PAYLOAD_BYTES", "1MB")]),
    ));
    assert!(e.contains("JICHA_MAX_PAYLOAD_BYTES"), "{e}");
}

#[test]
fn streams_and_params_map_into_the_monitor_config() {
    let path = file(
        "sections.toml",
        r#"
        timezone = "Asia/Urumqi"
        eval_timeout = "90s"
        [streams.load]
        out_of_orderness = "2h"
        [streams.event]
        out_of_orderness = "30m"
        follows = "none"
        [streams.freeze]
        follows = "load"
        [params]
        over_capacity_ratio = 1.25
        min_days = 3
        basic_price_yuan_per_kva_month = "25.00"
        "#,
    );
    let c = Settings::load(&with_file(&path), env(&[]))
        .unwrap()
        .monitor_config()
        .unwrap();
    assert_eq!(c.clock.tz().name(), "Asia/Urumqi");
    assert_eq!(c.engine.eval_timeout, std::time::Duration::from_secs(90));
    assert_eq!(
        c.out_of_orderness.into_iter().collect::<Vec<_>>(),
        [(Stream::Load, 2 * HOUR_MS), (Stream::Event, 30 * 60_000)]
    );
    assert_eq!(
        c.follows.into_iter().collect::<Vec<_>>(),
        [(Stream::Freeze, Some(Stream::Load)), (Stream::Event, None)]
    );
    let params: Vec<(String, String)> = c.params.into_iter().collect();
    assert_eq!(
        params,
        [
            (
                "basic_price_yuan_per_kva_month".to_string(),
                "25.00".to_string()
            ),
            ("min_days".to_string(), "3".to_string()),
            ("over_capacity_ratio".to_string(), "1.25".to_string()),
        ]
    );
}

#[test]
fn bad_sections_keep_their_messages() {
    let cases = [
        (
            "[streams.lod]\nfollows = \"load\"\n",
            "[streams.lod]: unknown stream; use load, freeze or event",
        ),
        (
            "[streams.event]\nfollows = \"lod\"\n",
            "[streams.event] follows: unknown stream \"lod\"",
        ),
        (
            "[params]\nflag = true\n",
            "[params] flag = true: use a number or a string",
        ),
        (
            "timezone = \"Mars/Olympus\"\n",
            "unknown time zone \"Mars/Olympus\"",
        ),
    ];
    for (i, (text, says)) in cases.into_iter().enumerate() {
        let path = file(&format!("bad-{i}.toml"), text);
        let e = Settings::load(&with_file(&path), env(&[]))
            .unwrap()
            .monitor_config()
            .unwrap_err();
        assert!(format!("{e:#}").contains(says), "{e:#}");
    }
}

/// The example shipped in deploy/ stays valid and means the defaults.
#[test]
fn the_example_file_is_valid() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/jicha.toml"));
    let s = Settings::load(&with_file(path), env(&[])).unwrap();
    let d = Settings::default();
    assert_eq!(
        (
            &s.mqtt,
            &s.redis,
            &s.http,
            &s.client_id,
            &s.redis_prefix,
            &s.timezone
        ),
        (
            &d.mqtt,
            &d.redis,
            &d.http,
            &d.client_id,
            &d.redis_prefix,
            &d.timezone
        )
    );
    assert_eq!(
        (s.max_payload_bytes, s.escalate_after, s.eval_timeout),
        (d.max_payload_bytes, d.escalate_after, d.eval_timeout)
    );
    let c = s.monitor_config().unwrap();
    assert_eq!(c.follows.get(&Stream::Event), Some(&Some(Stream::Load)));
}

#[test]
fn access_control_from_file_environment_and_flag() {
    let f = file(
        "auth.toml",
        "auth = \"/etc/jicha/tokens.toml\"\nmetrics_public = true\n",
    );
    let s = Settings::load(&with_file(&f), env(&[])).unwrap();
    assert_eq!(s.auth.as_deref(), Some(Path::new("/etc/jicha/tokens.toml")));
    assert!(s.metrics_public);
    let flags = RunArgs {
        auth: Some("/run/tokens.toml".into()),
        ..with_file(&f)
    };
    let s = Settings::load(&flags, env(&[("JICHA_METRICS_PUBLIC", "false")])).unwrap();
    assert_eq!(s.auth.as_deref(), Some(Path::new("/run/tokens.toml")));
    assert!(!s.metrics_public);
    assert!(!Settings::default().metrics_public && Settings::default().auth.is_none());
}

#[test]
fn time_limits_per_severity_over_the_defaults() {
    let f = file(
        "limits.toml",
        "escalate_after = \"2d\"\nescalation_warn_percent = 50\n\
         [time_limits.default]\nfeedback = \"5d\"\n\
         [time_limits.critical]\naccept = \"2h\"\n",
    );
    let t = Settings::load(&with_file(&f), env(&[]))
        .unwrap()
        .monitor_config()
        .unwrap()
        .time_limits;
    assert_eq!(t.warn_percent, 50);
    assert_eq!(
        (
            t.default.dispatch,
            t.default.accept,
            t.default.feedback,
            t.default.review
        ),
        (2 * DAY_MS, DAY_MS, 5 * DAY_MS, 3 * DAY_MS)
    );
    let critical = t.by_severity[&Severity::Critical];
    assert_eq!(
        (critical.accept, critical.feedback),
        (2 * HOUR_MS, 5 * DAY_MS)
    );
    let bad = file("badlimits.toml", "[time_limits.urgent]\naccept = \"1h\"\n");
    let e = format!(
        "{:#}",
        Settings::load(&with_file(&bad), env(&[]))
            .and_then(|s| s.monitor_config())
            .unwrap_err()
    );
    assert!(
        e.contains("time_limits.urgent") && e.contains("critical"),
        "{e}"
    );
}

#[test]
fn triage_and_sampling_from_the_file() {
    let f = file(
        "triage.toml",
        "[triage]\nmanual = [\"energy_drop\"]\n[sampling]\nshare = \"0.10\"\n",
    );
    let c = Settings::load(&with_file(&f), env(&[]))
        .unwrap()
        .monitor_config()
        .unwrap();
    assert!(c.manual_triage.contains("energy_drop") && c.manual_triage.len() == 1);
    assert_eq!(c.sampling.share.to_string(), "0.10");
    assert_eq!(
        (c.sampling.min, c.sampling.max),
        (3, 50),
        "the defaults stay"
    );
    let d = Settings::default().monitor_config().unwrap();
    assert!(
        d.manual_triage.is_empty(),
        "every theme opens orders by default"
    );
    for (text, needle) in [
        ("[sampling]\nshare = \"5%\"\n", "[sampling] share"),
        ("[sampling]\nshare = \"1.5\"\n", "[sampling] share"),
        ("[sampling]\nmin = 60\n", "min = 60"),
    ] {
        let bad = file("badsampling.toml", text);
        let e = format!(
            "{:#}",
            Settings::load(&with_file(&bad), env(&[]))
                .and_then(|s| s.monitor_config())
                .unwrap_err()
        );
        assert!(e.contains(needle), "{text}: {e}");
    }
}
