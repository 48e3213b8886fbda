//! # jicha-connectors
//!
//! Jicha's edges: the MQTT source with acknowledgement after commit, the
//! replay of a recorded stream file, the Redis state backend, the outbox
//! sinks, the embedded broker of `jicha demo`, and the simulator that
//! publishes realistic meter data with planted anomalies.

pub mod broker;
pub mod mqtt;
pub mod redis_state;
pub mod replay;
pub mod simulator;
pub mod sinks;
