//! All work orders, the open-per-(theme, customer) index, and what changed
//! since the last commit: the orders, and the outbox events saying how.

use super::{
    Escalation, HistoryAction, HistoryEntry, HitRecord, Triage, WorkOrder, RECENT_HITS_KEPT,
};
use crate::engine::Hit;
use crate::ids::CustomerId;
use crate::outbox::{EventId, EventKind, OutboxEvent};
use crate::theme::Severity;
use crate::time::EpochMs;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuppressedAlert {
    pub theme: String,
    pub customer_id: CustomerId,
    pub window_start: EpochMs,
    pub window_end: EpochMs,
    pub whitelist_id: String,
    pub detected_at: EpochMs,
    pub evidence: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HitOutcome {
    Created(String),
    Added(String),
    /// This window was already counted (a re-evaluation): nothing changes.
    AlreadyCounted(String),
    Suppressed(String),
}

#[derive(Debug, Default)]
pub struct WorkOrderBook {
    orders: BTreeMap<String, WorkOrder>,
    open: HashMap<(String, CustomerId), String>,
    next_seq: u64,
    dirty: BTreeSet<String>,
    /// The last outbox event id handed out.
    event_seq: u64,
    events: Vec<OutboxEvent>,
}

fn next_event(seq: &mut u64) -> EventId {
    *seq += 1;
    EventId(*seq)
}

impl WorkOrderBook {
    pub fn restore(&mut self, wo: WorkOrder) {
        if let Some(n) = wo.id.strip_prefix("WO").and_then(|n| n.parse::<u64>().ok()) {
            self.next_seq = self.next_seq.max(n);
        }
        if wo.status.is_active() {
            self.open
                .insert((wo.theme.clone(), wo.customer_id.clone()), wo.id.clone());
        }
        self.orders.insert(wo.id.clone(), wo);
    }

    /// Continues the outbox sequence after the last committed event.
    pub fn restore_event_seq(&mut self, last: EventId) {
        self.event_seq = self.event_seq.max(last.0);
    }

    /// The events recorded since the last call, in id order.
    pub fn take_events(&mut self) -> Vec<OutboxEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn get(&self, id: &str) -> Option<&WorkOrder> {
        self.orders.get(id)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &WorkOrder> {
        self.orders.values()
    }

    /// Orders with id greater than `after`, in id order.
    pub fn after<'a>(&'a self, after: Option<&str>) -> impl Iterator<Item = &'a WorkOrder> + 'a {
        let lower = match after {
            Some(a) => std::ops::Bound::Excluded(a.to_string()),
            None => std::ops::Bound::Unbounded,
        };
        self.orders
            .range((lower, std::ops::Bound::Unbounded))
            .map(|(_, w)| w)
    }

    pub fn take_dirty(&mut self) -> Vec<WorkOrder> {
        let ids = std::mem::take(&mut self.dirty);
        ids.into_iter()
            .filter_map(|id| self.orders.get(&id).cloned())
            .collect()
    }

    /// Applies a change to one order (an API action, 督办) and marks it
    /// dirty; each history entry the change added becomes an event.
    pub fn update<T>(&mut self, id: &str, f: impl FnOnce(&mut WorkOrder) -> T) -> Option<T> {
        let wo = self.orders.get_mut(id)?;
        let was_active = wo.status.is_active();
        let seen = wo.history.len();
        let out = f(wo);
        for h in wo.history.iter().skip(seen) {
            let e = OutboxEvent::for_history(next_event(&mut self.event_seq), wo, h);
            self.events.push(e);
        }
        if was_active && !wo.status.is_active() {
            self.open
                .remove(&(wo.theme.clone(), wo.customer_id.clone()));
        }
        self.dirty.insert(id.to_string());
        Some(out)
    }

    /// Records a hit that is not whitelisted: opens a work order (pending,
    /// under manual triage) or adds to the active one. Idempotent per
    /// (theme, customer, window).
    pub fn apply_hit(
        &mut self,
        hit: &Hit,
        org_code: &str,
        default_severity: Severity,
        triage: Triage,
        now: EpochMs,
    ) -> HitOutcome {
        let key = (hit.theme.clone(), hit.customer_id.clone());
        let record = HitRecord {
            window_start: hit.window_start,
            window_end: hit.window_end,
            detected_at: now,
            evidence: hit.evidence.clone(),
        };
        if let Some(id) = self.open.get(&key).cloned() {
            let Some(wo) = self.orders.get_mut(&id) else {
                self.open.remove(&key);
                return self.apply_hit(hit, org_code, default_severity, triage, now);
            };
            let counted = wo
                .recent_hits
                .iter()
                .any(|h| h.window_start == hit.window_start && h.window_end == hit.window_end)
                || (wo.first_window_start == hit.window_start
                    && wo.first_window_end == hit.window_end);
            if counted {
                return HitOutcome::AlreadyCounted(id);
            }
            wo.hits += 1;
            // An earlier hit that arrived later (sparse streams) still becomes the first window.
            if hit.window_start < wo.first_window_start {
                wo.first_window_start = hit.window_start;
                wo.first_window_end = hit.window_end;
            }
            wo.last_window_end = wo.last_window_end.max(hit.window_end);
            wo.updated_at = now;
            if let Some(loss) = hit.estimated_loss_yuan {
                wo.estimated_loss_yuan = Some(loss);
            }
            wo.recent_hits.push(record);
            if wo.recent_hits.len() > RECENT_HITS_KEPT {
                let excess = wo.recent_hits.len() - RECENT_HITS_KEPT;
                wo.recent_hits.drain(..excess);
            }
            let window = (hit.window_start, hit.window_end);
            let e = OutboxEvent::for_hit(
                next_event(&mut self.event_seq),
                EventKind::HitAdded,
                wo,
                window,
            );
            self.events.push(e);
            self.dirty.insert(id.clone());
            return HitOutcome::Added(id);
        }
        self.next_seq += 1;
        let id = format!("WO{:010}", self.next_seq);
        let status = triage.initial_status();
        let wo = WorkOrder {
            id: id.clone(),
            theme: hit.theme.clone(),
            customer_id: hit.customer_id.clone(),
            org_code: org_code.to_string(),
            status,
            severity: hit.severity.unwrap_or(default_severity),
            first_window_start: hit.window_start,
            first_window_end: hit.window_end,
            last_window_end: hit.window_end,
            hits: 1,
            created_at: now,
            updated_at: now,
            evidence: hit.evidence.clone(),
            estimated_loss_yuan: hit.estimated_loss_yuan,
            assigned_org: None,
            feedback: None,
            rectification: None,
            sampling: None,
            returns: 0,
            escalation: Escalation::None,
            recent_hits: vec![record],
            history: vec![HistoryEntry {
                at: now,
                action: HistoryAction::Create,
                from: status,
                to: status,
                actor: Some("jicha".into()),
                role: None,
                detail: None,
            }],
        };
        self.events.push(OutboxEvent::for_hit(
            next_event(&mut self.event_seq),
            EventKind::WorkorderOpened,
            &wo,
            (hit.window_start, hit.window_end),
        ));
        self.open.insert(key, id.clone());
        self.orders.insert(id.clone(), wo);
        self.dirty.insert(id.clone());
        HitOutcome::Created(id)
    }

    /// Counts of orders by (status, theme), for the gauge.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }
}

#[cfg(test)]
mod tests;
