//! Per-stream event-time progress. A stream's watermark is the largest event
//! time seen minus its allowed out-of-orderness; a record older than its
//! stream's watermark is late.

use crate::records::Stream;
use crate::time::{EpochMs, HOUR_MS};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Watermarks {
    max_seen: BTreeMap<Stream, EpochMs>,
    out_of_orderness: BTreeMap<Stream, i64>,
    /// Streams whose windows also close when this other stream's watermark
    /// passes them (sparse streams such as meter events would otherwise wait
    /// for their next record, possibly forever).
    follows: BTreeMap<Stream, Stream>,
}

impl Default for Watermarks {
    fn default() -> Self {
        let out_of_orderness = Stream::ALL.into_iter().map(|s| (s, HOUR_MS)).collect();
        let follows = [(Stream::Event, Stream::Load)].into_iter().collect();
        Self {
            max_seen: BTreeMap::new(),
            out_of_orderness,
            follows,
        }
    }
}

impl Watermarks {
    pub fn set_out_of_orderness(&mut self, s: Stream, ms: i64) {
        self.out_of_orderness.insert(s, ms.max(0));
    }

    pub fn set_follows(&mut self, s: Stream, leader: Option<Stream>) {
        match leader {
            Some(l) if l != s => self.follows.insert(s, l),
            _ => self.follows.remove(&s),
        };
    }

    pub fn observe(&mut self, s: Stream, t: EpochMs) {
        let e = self.max_seen.entry(s).or_insert(t);
        *e = (*e).max(t);
    }

    pub fn max_seen(&self, s: Stream) -> Option<EpochMs> {
        self.max_seen.get(&s).copied()
    }

    /// The stream's own watermark: what decides lateness.
    pub fn watermark(&self, s: Stream) -> Option<EpochMs> {
        let ooo = self.out_of_orderness.get(&s).copied().unwrap_or(HOUR_MS);
        self.max_seen(s).map(|m| m - ooo)
    }

    /// What closes the stream's windows: its own watermark, or its leader's
    /// when that is further.
    pub fn trigger(&self, s: Stream) -> Option<EpochMs> {
        let own = self.watermark(s);
        let led = self.follows.get(&s).and_then(|l| self.watermark(*l));
        match (own, led) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn is_late(&self, s: Stream, t: EpochMs) -> bool {
        self.watermark(s).is_some_and(|w| t < w)
    }

    pub fn restore(&mut self, s: Stream, max_seen: EpochMs) {
        self.max_seen.insert(s, max_seen);
    }

    pub fn all_max_seen(&self) -> impl Iterator<Item = (Stream, EpochMs)> + '_ {
        self.max_seen.iter().map(|(s, t)| (*s, *t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_is_relative_to_the_streams_own_watermark() {
        let mut w = Watermarks::default();
        assert!(!w.is_late(Stream::Load, 0));
        w.observe(Stream::Load, 10 * HOUR_MS);
        w.observe(Stream::Load, 5 * HOUR_MS);
        assert_eq!(w.watermark(Stream::Load), Some(9 * HOUR_MS));
        assert!(w.is_late(Stream::Load, 9 * HOUR_MS - 1));
        assert!(!w.is_late(Stream::Load, 9 * HOUR_MS));
        // events have no own progress yet: not late, but their windows close with load
        assert!(!w.is_late(Stream::Event, 0));
        assert_eq!(w.trigger(Stream::Event), Some(9 * HOUR_MS));
        w.set_follows(Stream::Event, None);
        assert_eq!(w.trigger(Stream::Event), None);
    }
}
