//! Reference data from outside the streams: the archive (customers and
//! meters) and billing periods, whose billing themes run when posted.

use super::{Monitor, MonitorError};
use crate::archive::Customer;
use crate::billing::BillingPeriod;
use crate::decode::{Reason, Rejection};
use crate::engine::EngineError;
use crate::ids::CustomerId;

/// What posting a billing period did.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingSummary {
    pub period: String,
    pub bills: usize,
    /// Customers billed but not in the archive (dead-lettered).
    pub unknown_customers: Vec<CustomerId>,
    pub hits: usize,
    pub workorders_created: usize,
}

impl Monitor {
    /// Upserts customers (interfaces.md §3); returns how many.
    pub async fn upsert_archive(&self, customers: Vec<Customer>) -> Result<usize, MonitorError> {
        let mut core = self.core.lock().await;
        let n = customers.len();
        for c in customers {
            core.pending
                .customers
                .insert(c.customer_id.to_string(), c.clone());
            core.archive.upsert(c);
        }
        self.publish_meter_index(&core);
        self.engine.set_archive(&core.archive)?;
        self.flush(&mut core).await?;
        Ok(n)
    }

    /// Stores a billing period and runs the enabled billing themes on it.
    pub async fn post_billing(
        &self,
        period: BillingPeriod,
    ) -> Result<BillingSummary, MonitorError> {
        let mut core = self.core.lock().await;
        let unknown: Vec<CustomerId> = period
            .bills
            .iter()
            .filter(|b| core.archive.customer(&b.customer_id).is_none())
            .map(|b| b.customer_id.clone())
            .collect();
        let batch = crate::tables::bill(&period).map_err(|e| EngineError::Table {
            table: "bill",
            message: e.to_string(),
        })?;
        let themes: Vec<_> = core
            .themes
            .values()
            .filter(|s| s.enabled && s.theme.is_billing())
            .map(|s| s.theme.clone())
            .collect();
        let mut hits = Vec::new();
        for theme in &themes {
            let timer = std::time::Instant::now();
            let res = self.engine.run(theme, batch.clone()).await;
            self.metrics
                .theme_eval
                .with_label_values(&[&theme.def.id])
                .observe(timer.elapsed().as_secs_f64());
            if let Some(slot) = core.themes.get_mut(&theme.def.id) {
                slot.evaluations += 1;
                slot.last_error = res.as_ref().err().map(|e| e.to_string());
            }
            hits.extend(res?);
        }
        let n_hits = hits.len();
        let before = core.book.len();
        self.apply_hits(&mut core, hits);
        let created = core.book.len() - before;
        for c in &unknown {
            let rejection = Rejection {
                reason: Reason::UnknownMeter,
                detail: format!("bill for customer {c} who is not in the archive; its billing themes cannot be judged (load it with POST /api/v1/archive, then post the period again)"),
                raw: format!("{{\"period\":\"{}\",\"customer_id\":\"{c}\"}}", period.period),
            };
            self.dead_letter(&mut core, "billing", "/api/v1/billing", rejection);
        }
        let summary = BillingSummary {
            period: period.period.clone(),
            bills: period.bills.len(),
            unknown_customers: unknown,
            hits: n_hits,
            workorders_created: created,
        };
        core.pending
            .billing
            .insert(period.period.clone(), period.clone());
        core.billing.insert(period.period.clone(), period);
        self.flush(&mut core).await?;
        Ok(summary)
    }
}
