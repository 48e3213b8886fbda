//! Test harness of the integration tests: the shared test kit
//! (`jicha-testkit`: services on free ports, the `jicha` process, HTTP and
//! MQTT clients, metrics, waits, the seeded generator) plus what only these
//! tests use: business-time helpers, archive/record/billing builders and
//! `Env`, one test's running system.
#![allow(dead_code, unused_imports)]

mod builders;
pub mod chrome;
mod env;
pub mod prometheus;
pub mod receiver;
pub mod sse;
mod time;

pub use builders::*;
pub use env::*;
pub use jicha_testkit::*;
pub use time::*;

/// A free local port not handed out before in this process.
pub fn free_port() -> u16 {
    jicha_testkit::free_port().unwrap_or_else(|e| panic!("{e}"))
}

/// Sends `sig` (e.g. "TERM") to one of our own children, by its pid.
pub fn signal_child(child: &std::process::Child, sig: &str) {
    jicha_testkit::signal_child(child, sig).unwrap_or_else(|e| panic!("{e}"))
}
