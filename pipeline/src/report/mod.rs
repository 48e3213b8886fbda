//! 三报一评: the evaluation of units over a period (日报, 周报, 月度评价),
//! computed from the work orders as they are now. The HTTP layer renders
//! it as JSON, CSV and the printable monthly report.

pub mod evaluation;
pub mod period;

pub use evaluation::{evaluate, Evaluation, UnitFigures};
pub use period::Period;
