//! MQTT client settings shared by the tests and the benchmark, and the
//! tests' blocking publisher (QoS 1, each publish waits for its PUBACK).

use crate::services::next_seq;
use std::sync::mpsc;
use std::time::Duration;

/// Clean session, 30 s keep-alive, packets up to 64 MiB (big batches).
pub fn mqtt_options(id: &str, port: u16) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_session(true);
    o.set_max_packet_size(64 << 20, 64 << 20);
    o
}

pub struct Publisher {
    client: rumqttc::Client,
    acks: mpsc::Receiver<u16>,
}

impl Publisher {
    /// Connects to Mosquitto on `port`; panics when no CONNACK comes in 20 s.
    pub fn connect(port: u16) -> Publisher {
        let id = format!("it-pub-{}-{}", std::process::id(), next_seq());
        let (client, mut conn) = rumqttc::Client::new(mqtt_options(&id, port), 100);
        let (tx, rx) = mpsc::channel();
        let (ctx, crx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut connected = false;
            for ev in conn.iter() {
                match ev {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        if !connected {
                            connected = true;
                            let _ = ctx.send(());
                        }
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(a))) => {
                        if tx.send(a.pkid).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        // pkid 0 tells `publish` the connection dropped.
                        if tx.send(0).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        });
        crx.recv_timeout(Duration::from_secs(20))
            .expect("test publisher could not connect to mosquitto within 20 s");
        Publisher { client, acks: rx }
    }

    /// Publishes with QoS 1 and waits for the broker's PUBACK.
    pub fn publish(&self, topic: &str, payload: &[u8]) {
        for _ in 0..3 {
            self.client
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.to_vec())
                .expect("the test publisher's request queue is closed");
            match self.acks.recv_timeout(Duration::from_secs(20)) {
                Ok(pkid) if pkid != 0 => return,
                Ok(_) => continue, // connection error: publish again (records are keyed)
                Err(_) => panic!("no PUBACK from mosquitto within 20 s for {topic}"),
            }
        }
        panic!("could not publish to {topic}");
    }
}
