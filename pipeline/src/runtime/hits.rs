//! Hits become work orders, or suppressed alerts where the whitelist
//! covers them. Hits are applied in window order so that the first window
//! of an order does not depend on which theme finished first.

use super::{Core, Monitor};
use crate::engine::Hit;
use crate::state::KEEP_SUPPRESSED;
use crate::theme::Severity;
use crate::workorder::{HitOutcome, SuppressedAlert, Triage};

impl Monitor {
    pub(super) fn apply_hits(&self, core: &mut Core, mut hits: Vec<Hit>) {
        hits.sort_by(|a, b| {
            (a.window_start, a.window_end, &a.theme, &a.customer_id).cmp(&(
                b.window_start,
                b.window_end,
                &b.theme,
                &b.customer_id,
            ))
        });
        let now = self.now();
        for hit in hits {
            let Some(cust) = core.archive.customer(&hit.customer_id) else {
                tracing::warn!(theme = %hit.theme, customer = %hit.customer_id, "hit for a customer not in the archive; ignored");
                continue;
            };
            let org = cust.org_code.clone();
            let date = self
                .clock()
                .local_date(hit.window_start.max(hit.window_end - 1));
            if let Some(w) = core.whitelist.covering(&hit.theme, &hit.customer_id, date) {
                let whitelist_id = w.id.clone();
                self.suppress(core, &hit, whitelist_id, now);
                continue;
            }
            let severity = core
                .themes
                .get(&hit.theme)
                .map_or(Severity::Medium, |s| s.theme.def.severity);
            let triage = if self.config.manual_triage.contains(&hit.theme) {
                Triage::Manual
            } else {
                Triage::Auto
            };
            match core.book.apply_hit(&hit, &org, severity, triage, now) {
                HitOutcome::Created(_) | HitOutcome::Added(_) => {
                    self.metrics.alerts.with_label_values(&[&hit.theme]).inc();
                    self.metrics
                        .findings
                        .with_label_values(&[
                            &hit.theme,
                            severity.as_str(),
                            &crate::org::county(&org),
                        ])
                        .inc();
                    if let Some(slot) = core.themes.get_mut(&hit.theme) {
                        slot.hits += 1;
                    }
                }
                HitOutcome::AlreadyCounted(_) | HitOutcome::Suppressed(_) => {}
            }
        }
    }

    /// Keeps a whitelisted hit as a suppressed alert, once per window.
    fn suppress(&self, core: &mut Core, hit: &Hit, whitelist_id: String, now: i64) {
        let already = core.suppressed.iter().any(|s| {
            s.theme == hit.theme
                && s.customer_id == hit.customer_id
                && s.window_start == hit.window_start
                && s.window_end == hit.window_end
        });
        if already {
            return;
        }
        let s = SuppressedAlert {
            theme: hit.theme.clone(),
            customer_id: hit.customer_id.clone(),
            window_start: hit.window_start,
            window_end: hit.window_end,
            whitelist_id,
            detected_at: now,
            evidence: hit.evidence.clone(),
        };
        self.metrics.alerts.with_label_values(&[&hit.theme]).inc();
        self.metrics
            .suppressed
            .with_label_values(&[&hit.theme])
            .inc();
        core.suppressed.push_back(s.clone());
        while core.suppressed.len() > KEEP_SUPPRESSED {
            core.suppressed.pop_front();
        }
        core.pending.suppressed.push(s);
    }
}
