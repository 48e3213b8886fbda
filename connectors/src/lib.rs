//! # jicha-connectors
//!
//! Jicha's edges: the MQTT source with acknowledgement after commit, the
//! Redis state backend, the outbox sinks, the embedded broker of `jicha
//! demo`, and the simulator that publishes realistic meter data with
//! planted anomalies.

pub mod broker;
pub mod mqtt;
pub mod redis_state;
pub mod simulator;
pub mod sinks;
