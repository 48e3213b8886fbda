//! Which events a sink wants: a minimum severity, a list of themes, a list
//! of org subtrees and a list of event kinds, each empty meaning "all".
//! The rest count as passed for that sink, never as delivered.

use jicha_pipeline::org::covers;
use jicha_pipeline::outbox::{EventKind, OutboxEvent};
use jicha_pipeline::theme::Severity;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub min_severity: Option<Severity>,
    pub themes: Vec<String>,
    /// Org paths (`41/4107`); an event's `org_code` must lie in one of
    /// their subtrees, by whole path segments.
    pub orgs: Vec<String>,
    pub events: Vec<EventKind>,
}

impl Filter {
    /// Checks the lists; `sink` names the entry in the message.
    pub fn new(
        sink: &str,
        min_severity: Option<Severity>,
        themes: Vec<String>,
        orgs: Vec<String>,
        events: Vec<EventKind>,
    ) -> Result<Filter, String> {
        if themes.iter().any(|t| t.trim().is_empty()) {
            return Err(format!(
                "sink {sink}: `themes` holds an empty theme id; list theme ids, or leave `themes` out for all"
            ));
        }
        let mut clean = Vec::with_capacity(orgs.len());
        for o in orgs {
            let o = o.trim().trim_end_matches('/').to_string();
            if o.is_empty() || o.split('/').any(str::is_empty) {
                return Err(format!(
                    "sink {sink}: `orgs` holds {o:?}, not an org path; write units as 41/4107/410727, or leave `orgs` out for all"
                ));
            }
            clean.push(o);
        }
        Ok(Filter {
            min_severity,
            themes,
            orgs: clean,
            events,
        })
    }

    pub fn accepts(&self, e: &OutboxEvent) -> bool {
        self.min_severity.is_none_or(|min| e.severity >= min)
            && (self.themes.is_empty() || self.themes.contains(&e.theme))
            && (self.orgs.is_empty() || self.orgs.iter().any(|o| covers(o, &e.org_code)))
            && (self.events.is_empty() || self.events.contains(&e.kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::testing::event;

    #[test]
    fn each_condition_narrows_and_empty_lists_mean_all() {
        let e = event(1, EventKind::WorkorderOpened);
        assert!(Filter::default().accepts(&e), "no filter takes everything");
        let f = |sev, themes: &[&str], orgs: &[&str], events: &[EventKind]| {
            Filter::new(
                "s",
                sev,
                themes.iter().map(|t| t.to_string()).collect(),
                orgs.iter().map(|t| t.to_string()).collect(),
                events.to_vec(),
            )
            .unwrap()
        };
        // The event: high, over_capacity, 41/4107/410727.
        assert!(f(Some(Severity::High), &[], &[], &[]).accepts(&e));
        assert!(f(Some(Severity::Medium), &[], &[], &[]).accepts(&e));
        assert!(!f(Some(Severity::Critical), &[], &[], &[]).accepts(&e));
        assert!(f(None, &["valley_theft", "over_capacity"], &[], &[]).accepts(&e));
        assert!(!f(None, &["valley_theft"], &[], &[]).accepts(&e));
        assert!(f(None, &[], &["41/4107"], &[]).accepts(&e));
        assert!(
            f(None, &[], &["41/4107/"], &[]).accepts(&e),
            "a trailing slash is the same unit"
        );
        assert!(f(None, &[], &["41/4107/410727"], &[]).accepts(&e));
        assert!(
            !f(None, &[], &["41/410"], &[]).accepts(&e),
            "whole segments only"
        );
        assert!(!f(None, &[], &["41/4108"], &[]).accepts(&e));
        assert!(f(None, &[], &[], &[EventKind::WorkorderOpened]).accepts(&e));
        assert!(!f(None, &[], &[], &[EventKind::Escalated]).accepts(&e));
        // All conditions must hold.
        assert!(!f(Some(Severity::Low), &["over_capacity"], &["41/4108"], &[]).accepts(&e));
    }

    #[test]
    fn bad_lists_are_refused_with_what_to_write() {
        let e = Filter::new("s", None, vec![], vec!["41//4107".into()], vec![]).unwrap_err();
        assert!(e.contains("41/4107/410727"), "{e}");
        let e = Filter::new("s", None, vec![" ".into()], vec![], vec![]).unwrap_err();
        assert!(e.contains("themes"), "{e}");
    }
}
