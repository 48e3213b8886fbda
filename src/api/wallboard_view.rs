//! What one wallboard shows: the shared [`Board`] cut down to the caller's
//! unit. Counts come from the board's per-county cells, so this costs the
//! number of counties times themes, never the number of orders. Labels are
//! given in Chinese with the English (wire) name beside them; the page
//! writes every text with `textContent`, never as HTML.

use super::dto::at;
use jicha_domain::money::round_yuan;
use jicha_pipeline::org::Scope;
use jicha_pipeline::runtime::{Board, BoardFinding};
use jicha_pipeline::theme::Severity;
use jicha_pipeline::time::BusinessClock;
use jicha_pipeline::workorder::Status;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// Rows in the newest-findings table.
const NEWEST: usize = 20;

#[derive(Debug, Serialize)]
pub struct WallboardView {
    pub at: String,
    /// The caller's unit (`全省 · all` without one).
    pub scope: String,
    pub totals: Totals,
    /// Every state with its count, in life-cycle order.
    pub statuses: Vec<StatusCount>,
    /// The units one level below the caller's, most open orders first.
    pub units: Vec<UnitTile>,
    /// Themes with orders or enabled, most open orders first.
    pub themes: Vec<ThemeTile>,
    /// Newest orders first.
    pub newest: Vec<FindingRow>,
}

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    /// Orders not archived, voided or dismissed.
    pub open: u64,
    pub overdue: u64,
    /// Orders created since the start of the business day.
    pub today: u64,
    pub pending: u64,
    /// Recovered by confirmed orders, yuan with two places.
    pub recovered_yuan: Decimal,
}

#[derive(Debug, Serialize)]
pub struct StatusCount {
    pub status: &'static str,
    pub label: &'static str,
    pub count: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct UnitTile {
    pub org: String,
    pub open: u64,
    pub overdue: u64,
    pub today: u64,
    /// When its oldest open order was created.
    pub oldest_open: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ThemeTile {
    pub id: String,
    /// From the theme's header (`-- title:`).
    pub title: String,
    pub severity: &'static str,
    pub severity_label: &'static str,
    pub open: u64,
    pub overdue: u64,
    pub today: u64,
}

#[derive(Debug, Serialize)]
pub struct FindingRow {
    pub id: String,
    pub theme: String,
    pub title: String,
    pub customer_id: String,
    pub customer_name: Option<String>,
    pub org_code: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub severity: &'static str,
    pub severity_label: &'static str,
    pub created_at: String,
    pub hits: u64,
    pub estimated_loss_yuan: Option<Decimal>,
}

/// How many path segments the tiles of `scope` have: one below it, down
/// to the county (the cells' grain).
fn tile_depth(scope: &Scope) -> usize {
    match scope {
        Scope::All => 2,
        Scope::Unit(u) => (u.trim_end_matches('/').split('/').count() + 1).min(3),
    }
}

fn prefix(county: &str, depth: usize) -> String {
    county.split('/').take(depth).collect::<Vec<_>>().join("/")
}

impl WallboardView {
    pub fn new(board: &Board, scope: &Scope, clock: &BusinessClock) -> WallboardView {
        let depth = tile_depth(scope);
        let mut totals = Totals::default();
        let mut statuses: BTreeMap<Status, u64> = Status::ALL.iter().map(|s| (*s, 0)).collect();
        let mut units: BTreeMap<String, (UnitTile, Option<i64>)> = BTreeMap::new();
        let mut themes: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
        for ((county, theme), c) in &board.aggregate.cells {
            if !scope.covers(county) {
                continue;
            }
            let open = c.open_total();
            totals.open += open;
            totals.overdue += c.overdue;
            totals.today += c.new_since;
            totals.recovered_yuan += c.recovered_yuan;
            for (s, n) in &c.by_status {
                *statuses.entry(*s).or_insert(0) += n;
            }
            let (tile, oldest) = units.entry(prefix(county, depth)).or_default();
            tile.open += open;
            tile.overdue += c.overdue;
            tile.today += c.new_since;
            *oldest = match (*oldest, c.oldest_open) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let t = themes.entry(theme).or_default();
            *t = (t.0 + open, t.1 + c.overdue, t.2 + c.new_since);
        }
        for (id, t) in &board.themes {
            if t.enabled {
                themes.entry(id).or_default();
            }
        }
        totals.pending = statuses.get(&Status::Pending).copied().unwrap_or(0);
        totals.recovered_yuan = round_yuan(totals.recovered_yuan);
        let mut units: Vec<UnitTile> = units
            .into_iter()
            .map(|(org, (mut tile, oldest))| {
                tile.org = org;
                tile.oldest_open = oldest.map(|t| at(clock, t));
                tile
            })
            .collect();
        units.sort_by(|a, b| b.open.cmp(&a.open).then_with(|| a.org.cmp(&b.org)));
        let mut themes: Vec<ThemeTile> = themes
            .into_iter()
            .map(|(id, (open, overdue, today))| {
                let meta = board.themes.get(id);
                let severity = meta.map_or(Severity::Medium, |t| t.severity);
                ThemeTile {
                    id: id.to_string(),
                    title: meta.map_or_else(|| id.to_string(), |t| t.title.clone()),
                    severity: severity.as_str(),
                    severity_label: severity.label_zh(),
                    open,
                    overdue,
                    today,
                }
            })
            .collect();
        themes.sort_by(|a, b| b.open.cmp(&a.open).then_with(|| a.id.cmp(&b.id)));
        WallboardView {
            at: at(clock, board.at),
            scope: match scope {
                Scope::All => "全省 · all".into(),
                Scope::Unit(u) => u.clone(),
            },
            totals,
            statuses: statuses
                .into_iter()
                .map(|(s, count)| StatusCount {
                    status: s.name(),
                    label: s.label_zh(),
                    count,
                })
                .collect(),
            units,
            themes,
            newest: newest(board, scope, clock),
        }
    }
}

fn newest(board: &Board, scope: &Scope, clock: &BusinessClock) -> Vec<FindingRow> {
    let mut rows: Vec<&BoardFinding> = board
        .aggregate
        .newest
        .iter()
        .filter(|(county, _)| scope.covers(county))
        .flat_map(|(_, ids)| ids.iter().filter_map(|id| board.findings.get(id)))
        .collect();
    rows.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.id.cmp(&a.id))
    });
    rows.into_iter()
        .take(NEWEST)
        .map(|f| FindingRow {
            id: f.id.clone(),
            theme: f.theme.clone(),
            title: board
                .themes
                .get(&f.theme)
                .map_or_else(|| f.theme.clone(), |t| t.title.clone()),
            customer_id: f.customer_id.to_string(),
            customer_name: f.customer_name.clone(),
            org_code: f.org_code.clone(),
            status: f.status.name(),
            status_label: f.status.label_zh(),
            severity: f.severity.as_str(),
            severity_label: f.severity.label_zh(),
            created_at: at(clock, f.created_at),
            hits: f.hits,
            estimated_loss_yuan: f.estimated_loss_yuan.map(round_yuan),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_are_one_level_below_the_caller_down_to_the_county() {
        assert_eq!(tile_depth(&Scope::All), 2);
        assert_eq!(tile_depth(&Scope::Unit("41".into())), 2);
        assert_eq!(tile_depth(&Scope::Unit("41/4107".into())), 3);
        assert_eq!(tile_depth(&Scope::Unit("41/4107/410727".into())), 3);
        assert_eq!(prefix("41/4107/410727", 2), "41/4107");
    }
}
