//! The broker's address and the client options every Jicha client uses.

use anyhow::{anyhow, bail, Result};
use rumqttc::{MqttOptions, Transport};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl BrokerUrl {
    /// `mqtt://[user:pass@]host[:port]` or `mqtts://…` for TLS.
    pub fn parse(url: &str) -> Result<BrokerUrl> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| anyhow!("MQTT URL {url:?} must start with mqtt:// or mqtts://"))?;
        let tls = match scheme {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            _ => bail!("MQTT URL {url:?}: scheme {scheme:?} is not mqtt:// or mqtts://"),
        };
        let rest = rest.trim_end_matches('/');
        let (cred, hostport) = match rest.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| anyhow!("MQTT URL {url:?}: port {p:?} is not a number"))?,
            ),
            None => (hostport.to_string(), if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            bail!("MQTT URL {url:?} has no host");
        }
        let (username, password) = match cred.map(|c| c.split_once(':').unwrap_or((c, ""))) {
            Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
            None => (None, None),
        };
        Ok(BrokerUrl {
            host,
            port,
            tls,
            username,
            password,
        })
    }

    pub fn options(&self, client_id: &str, clean_session: bool) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, self.host.clone(), self.port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_clean_session(clean_session);
        // The limit that matters is jicha's own max_payload_bytes, which
        // rejects with a dead letter; a smaller client limit would drop the
        // connection on every redelivery of an oversized message instead.
        o.set_max_packet_size(256 * 1024 * 1024, 16 * 1024 * 1024);
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            o.set_credentials(u.clone(), p.clone());
        }
        if self.tls {
            let _ = rustls::crypto::ring::default_provider().install_default();
            o.set_transport(Transport::tls_with_default_config());
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = BrokerUrl::parse("mqtt://127.0.0.1:1884").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("127.0.0.1", 1884, false));
        let u = BrokerUrl::parse("mqtts://user:pw@broker.example").unwrap();
        assert_eq!(
            (u.port, u.tls, u.username.as_deref()),
            (8883, true, Some("user"))
        );
        assert!(BrokerUrl::parse("http://x").is_err());
        assert!(BrokerUrl::parse("mqtt://x:notaport").is_err());
    }
}
