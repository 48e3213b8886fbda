//! The wallboard's figures: one pass over the book ([`Aggregate`]) plus
//! what a person reads next to the numbers — theme titles from the theme
//! headers, customer names from the archive. Built at most about once a
//! second by the API's live hub and shared by every open wallboard, which
//! only filters it by its caller's unit; so a wallboard costs the same with
//! 100,000 open orders as with ten.

use super::Monitor;
use crate::ids::CustomerId;
use crate::theme::Severity;
use crate::time::EpochMs;
use crate::workorder::aggregate::Aggregate;
use crate::workorder::Status;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// How many of its newest orders each county keeps on the board.
pub const NEWEST_PER_COUNTY: usize = 20;

#[derive(Debug, Clone)]
pub struct Board {
    /// When it was built (the monitor's clock).
    pub at: EpochMs,
    /// Start of the business day `at` falls in: "today" begins here.
    pub today_start: EpochMs,
    pub aggregate: Aggregate,
    /// Every loaded theme, enabled or not (orders outlive a disable).
    pub themes: BTreeMap<String, BoardTheme>,
    /// The orders named in `aggregate.newest`, by id.
    pub findings: BTreeMap<String, BoardFinding>,
}

#[derive(Debug, Clone)]
pub struct BoardTheme {
    pub title: String,
    pub severity: Severity,
    pub enabled: bool,
}

/// One of the newest orders, as a wallboard row shows it.
#[derive(Debug, Clone)]
pub struct BoardFinding {
    pub id: String,
    pub theme: String,
    pub customer_id: CustomerId,
    /// From the archive; absent when the customer left it.
    pub customer_name: Option<String>,
    pub org_code: String,
    pub status: Status,
    pub severity: Severity,
    pub created_at: EpochMs,
    pub hits: u64,
    pub estimated_loss_yuan: Option<Decimal>,
}

impl Monitor {
    pub async fn board(&self) -> Board {
        let at = self.now();
        let clock = self.clock();
        let today_start = clock.day_start(clock.local_date(at));
        let core = self.core.lock().await;
        let aggregate = Aggregate::of(core.book.iter(), today_start, NEWEST_PER_COUNTY);
        let themes = core
            .themes
            .iter()
            .map(|(id, slot)| {
                let def = &slot.theme.def;
                let t = BoardTheme {
                    title: def.title.clone(),
                    severity: def.severity,
                    enabled: slot.enabled,
                };
                (id.clone(), t)
            })
            .collect();
        let findings = aggregate
            .newest
            .values()
            .flatten()
            .filter_map(|id| core.book.get(id))
            .map(|w| {
                let f = BoardFinding {
                    id: w.id.clone(),
                    theme: w.theme.clone(),
                    customer_id: w.customer_id.clone(),
                    customer_name: core
                        .archive
                        .customer(&w.customer_id)
                        .map(|c| c.name.clone()),
                    org_code: w.org_code.clone(),
                    status: w.status,
                    severity: w.severity,
                    created_at: w.created_at,
                    hits: w.hits,
                    estimated_loss_yuan: w.estimated_loss_yuan,
                };
                (w.id.clone(), f)
            })
            .collect();
        Board {
            at,
            today_start,
            aggregate,
            themes,
            findings,
        }
    }
}
