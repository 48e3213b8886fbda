//! Jicha's domain rules: calendar arithmetic, tariff limits and exact money.
//!
//! Why a crate of its own: the same rules run in two engines. The in-process
//! pipeline (DataFusion) calls them directly, and the Arroyo UDF plugin
//! (`arroyo-udfs/`, built outside the workspace because it pins arrow 51 and
//! chrono < 0.4.40) wraps them as `#[udf]`s. Keeping this crate free of engine
//! dependencies (only `chrono`, `rust_decimal`, `thiserror`) lets both link it,
//! so a theme gives the same answer wherever it runs.
//!
//! Every function here is pure and total: no I/O, no clock, and no panic on
//! any input. Invalid input yields `None`, `0` or an error, as each function
//! documents. Quantities of money and energy are [`rust_decimal::Decimal`],
//! never `f64`, because audit amounts must reproduce to the fen.
//!
//! The rules themselves are specified in `shared/spec/themes.md` (theme
//! reference semantics) and `shared/spec/domain.md` (business background).

pub mod calendar;
pub mod money;
pub mod tariff;
pub mod text;

pub use calendar::{
    active_whole_period, days_in_month, month_start, next_month_start, overlap_days,
    suspended_days_in_year,
};
pub use money::{parse_decimal, round_yuan, DecimalError};
pub use tariff::{checked_valley_limit_kwh, valley_limit_kwh};
