//! Number formatting and the steady-state projections the report prints.

use crate::measure::Figures;
use std::fmt::Write as _;

pub(crate) fn pct(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s.get(rank.clamp(1, s.len()) - 1).copied()
}

pub(crate) fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

pub(crate) fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "n/a".into())
}

pub(crate) fn row(out: &mut String, cells: &[&str]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

/// Load and event records as measured, freezes scaled to the 33 days a
/// meter keeps at steady state (docs/state.md). `measured`: a stream's
/// (bytes, records).
pub(crate) fn steady_state_projection(
    measured: impl Fn(&str) -> Option<(f64, f64)>,
    meters: f64,
) -> Option<f64> {
    let (fb, ff) = measured("freeze")?;
    let bytes = |s| measured(s).map_or(0.0, |x| x.0);
    Some((bytes("load") + bytes("event")) / meters + 33.0 * fb / ff.max(1.0))
}

pub(crate) fn redis_projection(f: &Figures, meters: f64) -> Option<f64> {
    steady_state_projection(|s| f.redis_rec.get(s).map(|x| (x.0, x.1)), meters)
}

pub(crate) fn state_projection(f: &Figures, meters: f64) -> Option<f64> {
    steady_state_projection(|s| f.state.get(s).copied(), meters)
}
