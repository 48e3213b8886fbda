//! # jicha-pipeline
//!
//! The stream core of Jicha: records flow one way,
//! decode → window state → theme evaluation (DataFusion) → hits → work orders,
//! with every change of a micro-batch committed to a [`state::StateBackend`]
//! before the batch counts as done.
//!
//! | module | job |
//! |---|---|
//! | [`decode`] | MQTT payload → validated records, or rejections with reasons |
//! | [`documents`] | archive, billing, whitelist and action documents: serde types with field paths |
//! | [`json_text`] | a JSON value's literal text: exact quantities, strings without a copy |
//! | [`record_codec`] | the compact binary form of one record |
//! | [`segment_codec`] | one commit's records of one instant or date, as one stored blob |
//! | [`store`] | keyed window state, bucketed by instant; a re-sent record replaces the earlier one |
//! | [`watermark`] | per-stream event-time progress and lateness |
//! | [`window`] | `tumble` / `hop` / `cumulate` on the business wall clock |
//! | [`theme`] | a theme file: header; parameters and window call rewritten on the syntax tree |
//! | [`tables`] | the table registry, Arrow builders of event and reference tables, views |
//! | [`evaluate`] | which windows closed; the source batch for them |
//! | [`engine`] | plans a theme once, reads what it reads from the plan, runs it per batch; output rows → hits |
//! | [`org`] | org codes as paths; a caller's scope (a unit and those below it) |
//! | [`workorder`] | work orders, their life cycle and the open index, 督办, 抽检 |
//! | [`report`] | the evaluation of units over a day, week or month (三报一评) |
//! | [`outbox`] | work-order events committed with their cause, delivered to sinks after |
//! | [`runtime`] | the owner of the live state: ingest, planning, commit, orders, themes |
//! | [`runner`] | the micro-batch loop every source runs through (ack after commit) |

pub mod archive;
pub mod billing;
mod closed_set;
pub mod decode;
pub mod documents;
pub mod engine;
pub mod evaluate;
pub mod ids;
pub mod json_text;
pub mod metrics;
pub mod org;
pub mod outbox;
#[cfg(test)]
mod proptests;
pub mod record_codec;
pub mod records;
pub mod report;
pub mod runner;
pub mod runtime;
pub mod segment_codec;
pub mod state;
pub mod store;
pub mod tables;
pub mod theme;
pub mod time;
pub mod udf;
pub mod watermark;
pub mod whitelist;
pub mod window;
pub mod workorder;

pub use runtime::{Evaluation, Monitor, MonitorConfig, MonitorError, StagedCommit};
