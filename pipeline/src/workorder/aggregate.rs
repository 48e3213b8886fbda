//! The book in figures, one pass over the orders: what the metrics and the
//! wallboard show. Orders are grouped by county (the first three segments
//! of the customer's org) and theme, never by customer, so every grouping
//! stays as small as the org tree times the theme list, whatever the
//! number of orders.

use super::{Escalation, Status, WorkOrder};
use crate::theme::Severity;
use crate::time::EpochMs;
use rust_decimal::Decimal;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// The figures of one county and theme.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cell {
    /// Every order, by status.
    pub by_status: BTreeMap<Status, u64>,
    /// Active orders (not archived, voided or dismissed), by severity.
    pub open: BTreeMap<Severity, u64>,
    /// Active orders past their stage's time limit (督办).
    pub overdue: u64,
    /// Orders created at or after the pass's `since` (today's findings).
    pub new_since: u64,
    /// Yuan recovered by confirmed orders.
    pub recovered_yuan: Decimal,
    /// When the oldest active order was created.
    pub oldest_open: Option<EpochMs>,
}

impl Cell {
    pub fn open_total(&self) -> u64 {
        self.open.values().sum()
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Aggregate {
    /// By (county, theme).
    pub cells: BTreeMap<(String, String), Cell>,
    /// Per county, the ids of its newest orders, newest first.
    pub newest: BTreeMap<String, Vec<String>>,
}

impl Aggregate {
    /// One pass over `orders`; `since` starts "today", and each county
    /// keeps its `keep_newest` latest orders.
    pub fn of<'a>(
        orders: impl Iterator<Item = &'a WorkOrder>,
        since: EpochMs,
        keep_newest: usize,
    ) -> Aggregate {
        let mut cells: BTreeMap<(String, String), Cell> = BTreeMap::new();
        // Min-heaps of (created_at, id): the oldest of the kept is popped.
        let mut newest: BTreeMap<String, BinaryHeap<Reverse<(EpochMs, String)>>> = BTreeMap::new();
        for w in orders {
            let county = crate::org::county(&w.org_code);
            if keep_newest > 0 {
                let heap = newest.entry(county.clone()).or_default();
                heap.push(Reverse((w.created_at, w.id.clone())));
                if heap.len() > keep_newest {
                    heap.pop();
                }
            }
            let c = cells.entry((county, w.theme.clone())).or_default();
            *c.by_status.entry(w.status).or_insert(0) += 1;
            c.recovered_yuan += w.recovered_yuan();
            c.new_since += u64::from(w.created_at >= since);
            if !w.status.is_active() {
                continue;
            }
            *c.open.entry(w.severity).or_insert(0) += 1;
            c.overdue += u64::from(w.escalation == Escalation::Escalated);
            c.oldest_open = Some(c.oldest_open.map_or(w.created_at, |o| o.min(w.created_at)));
        }
        let newest = newest
            .into_iter()
            .map(|(county, heap)| {
                let ids = heap
                    .into_sorted_vec()
                    .into_iter()
                    .map(|Reverse((_, id))| id)
                    .collect();
                (county, ids)
            })
            .collect();
        Aggregate { cells, newest }
    }
}

#[cfg(test)]
mod tests;
