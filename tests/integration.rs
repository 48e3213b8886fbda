//! Integration tests: the `jicha` binary against its own Mosquitto and Redis
//! (started per test on free ports), driven over MQTT and HTTP only.
//! One test binary keeps link time low; each area is a module.

mod support;

#[path = "integration/alert_rules.rs"]
mod alert_rules;
#[path = "integration/auth.rs"]
mod auth;
#[path = "integration/billing.rs"]
mod billing;
#[path = "integration/closed_loop.rs"]
mod closed_loop;
#[path = "integration/daily.rs"]
mod daily;
#[path = "integration/dashboards.rs"]
mod dashboards;
#[path = "integration/demo.rs"]
mod demo;
#[path = "integration/events.rs"]
mod events;
#[path = "integration/ingest.rs"]
mod ingest;
#[path = "integration/outbox.rs"]
mod outbox;
#[path = "integration/over_capacity.rs"]
mod over_capacity;
#[path = "integration/push.rs"]
mod push;
#[path = "integration/reliability.rs"]
mod reliability;
#[path = "integration/replay.rs"]
mod replay;
#[path = "integration/restart.rs"]
mod restart;
#[path = "integration/valley.rs"]
mod valley;
#[path = "integration/wallboard.rs"]
mod wallboard;
#[path = "integration/whitelist.rs"]
mod whitelist;
#[path = "integration/workorders.rs"]
mod workorders;
