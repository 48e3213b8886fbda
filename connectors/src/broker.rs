//! The embedded MQTT broker of `jicha demo` (rumqttd), so the demo needs
//! nothing installed. Production uses Mosquitto (see `deploy/`).

use anyhow::{Context, Result};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use std::collections::HashMap;
use std::net::SocketAddr;

/// Starts a broker on `addr` (loopback) in its own thread.
pub fn start(addr: SocketAddr) -> Result<()> {
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 16 * 1024 * 1024,
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "v4-1".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let router = RouterConfig {
        max_connections: 100,
        max_outgoing_packet_count: 500,
        max_segment_size: 64 * 1024 * 1024,
        max_segment_count: 10,
        custom_segment: None,
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    };
    let config = Config {
        id: 0,
        router,
        v4: Some(HashMap::from([("1".to_string(), server)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    };
    let mut broker = Broker::new(config);
    std::thread::Builder::new()
        .name("embedded-mqtt".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .context("starting the embedded MQTT broker")?;
    Ok(())
}
