//! The test kit of Jicha's integration tests (`tests/`) and throughput
//! benchmark (`benches/`): private Mosquitto and Redis on free ports, the
//! `jicha` process against them, a small HTTP/1.1 client, an MQTT publisher,
//! Prometheus text parsing, waits on progress and one seeded generator.
//!
//! Everything that starts a process stops it on drop, also while a panic
//! unwinds. A missing `mosquitto` or `redis-server` is an error that says
//! what to install, never a silent skip.

pub mod app;
pub mod error;
pub mod http;
pub mod metrics;
pub mod mqtt;
pub mod process;
pub mod rng;
pub mod services;
pub mod wait;

pub use app::App;
pub use error::{KitError, KitResult};
pub use http::{enc, http, http_with, Resp};
pub use metrics::{metric_by_label, metric_sum};
pub use mqtt::{mqtt_options, Publisher};
pub use process::{signal_child, signal_pid, wait_exit, Proc};
pub use rng::{seeded, Rng, SeededRng};
pub use services::{find_program, free_port, ServiceOptions, Services};
pub use wait::wait_for;
