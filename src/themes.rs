//! The built-in themes, compiled into the binary from `queries/` so that
//! `jicha` runs from anywhere; `--themes DIR` replaces them.

use anyhow::{Context, Result};
use std::path::Path;

const BUILTIN: &[(&str, &str)] = &[
    (
        "streaming/over_capacity.sql",
        include_str!("../queries/streaming/over_capacity.sql"),
    ),
    (
        "streaming/valley_excess.sql",
        include_str!("../queries/streaming/valley_excess.sql"),
    ),
    (
        "streaming/register_reversal.sql",
        include_str!("../queries/streaming/register_reversal.sql"),
    ),
    (
        "streaming/zero_consumption.sql",
        include_str!("../queries/streaming/zero_consumption.sql"),
    ),
    (
        "streaming/energy_drop.sql",
        include_str!("../queries/streaming/energy_drop.sql"),
    ),
    (
        "streaming/meter_cover_open.sql",
        include_str!("../queries/streaming/meter_cover_open.sql"),
    ),
    (
        "billing/two_part_missing.sql",
        include_str!("../queries/billing/two_part_missing.sql"),
    ),
    (
        "billing/basic_fee_undue.sql",
        include_str!("../queries/billing/basic_fee_undue.sql"),
    ),
    (
        "billing/large_industry_tariff_misuse.sql",
        include_str!("../queries/billing/large_industry_tariff_misuse.sql"),
    ),
    (
        "billing/pf_adjust_missing.sql",
        include_str!("../queries/billing/pf_adjust_missing.sql"),
    ),
    (
        "billing/basic_fee_shortfall.sql",
        include_str!("../queries/billing/basic_fee_shortfall.sql"),
    ),
];

pub fn builtin() -> Vec<(String, String)> {
    BUILTIN
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

/// Every `*.sql` below `dir`, sorted by path.
pub fn from_dir(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).with_context(|| {
            format!(
                "cannot read theme directory {}; check --themes",
                d.display()
            )
        })?;
        for e in entries {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "sql") {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read theme file {}", p.display()))?;
                out.push((p.display().to_string(), text));
            }
        }
    }
    out.sort();
    if out.is_empty() {
        anyhow::bail!(
            "no *.sql theme files under {}; check --themes",
            dir.display()
        );
    }
    Ok(out)
}
