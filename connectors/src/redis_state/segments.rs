//! Records in Redis as segments: `{prefix}seg:{stream}:{bucket}:{seq}`, a
//! string holding the records of one stream and bucket (instant, or date
//! for freezes) that commit `seq` put (`jicha_pipeline::segment_codec`).
//! A segment is cut into parts of at most ≈ 64 KiB, the later ones keyed
//! `{seq}.{part}`: no value grows with the fleet (a load instant of ten
//! million meters would be a 100 MB `SET`), and a full part fills its
//! allocation in Redis instead of leaving up to a quarter of a large one
//! unused.
//!
//! A commit writes one `SET` per bucket it touched and one `UNLINK` for
//! every segment of buckets eviction passed, so Redis does a handful of
//! operations per commit, not one per record. A replaced record is written
//! again in a later segment; reading segments in `seq` order makes the
//! latest win. The backend keeps the index of segment keys in memory (read
//! back by `SCAN` at start-up), so eviction needs no lookup in Redis.

use jicha_pipeline::ids::IdMap;
use jicha_pipeline::record_codec::CodecError;
use jicha_pipeline::records::{Record, Stream};
use jicha_pipeline::segment_codec::{self, bucket_of, SegmentWriter};
use jicha_pipeline::store::{Eviction, RecordChanges};
use jicha_pipeline::time::{date_from_days, days_since_epoch};
use std::collections::BTreeMap;

/// A segment key, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SegmentKey {
    pub stream: Stream,
    pub bucket: i64,
    pub seq: u64,
    pub part: u32,
}

/// A segment part is cut once it holds this many bytes. With the record
/// that passes the mark (a few dozen bytes) and Redis's string header, it
/// stays within 64 KiB, a size class of jemalloc, Redis's allocator.
const PART_BYTES: usize = 63 * 1024;

fn bucket_text(stream: Stream, bucket: i64) -> String {
    match stream {
        Stream::Freeze => date_from_days(bucket)
            .map(|d| d.to_string())
            .unwrap_or_else(|| format!("d{bucket}")),
        Stream::Load | Stream::Event => bucket.to_string(),
    }
}

impl SegmentKey {
    pub fn text(&self, prefix: &str) -> String {
        let (stream, bucket) = (self.stream.name(), bucket_text(self.stream, self.bucket));
        match self.part {
            0 => format!("{prefix}seg:{stream}:{bucket}:{}", self.seq),
            part => format!("{prefix}seg:{stream}:{bucket}:{}.{part}", self.seq),
        }
    }

    pub fn parse(prefix: &str, key: &str) -> Option<SegmentKey> {
        let rest = key.strip_prefix(prefix)?.strip_prefix("seg:")?;
        let mut parts = rest.split(':');
        let (stream, bucket, seq) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let (seq, part) = match seq.split_once('.') {
            Some((seq, part)) => (seq, part.parse().ok().filter(|p| *p > 0)?),
            None => (seq, 0),
        };
        let stream = Stream::parse(stream)?;
        let bucket = match stream {
            Stream::Freeze => match bucket.strip_prefix('d') {
                Some(days) => days.parse().ok()?,
                None => days_since_epoch(bucket.parse().ok()?),
            },
            Stream::Load | Stream::Event => bucket.parse().ok()?,
        };
        Some(SegmentKey {
            stream,
            bucket,
            seq: seq.parse().ok()?,
            part,
        })
    }
}

/// The bucket before which a stream's segments are evicted.
fn cutoff(e: &Eviction, stream: Stream) -> i64 {
    match stream {
        Stream::Load => e.load_before,
        Stream::Freeze => days_since_epoch(e.freeze_before),
        Stream::Event => e.event_before,
    }
}

/// What one commit does to the records in Redis.
#[derive(Debug, Default)]
pub(super) struct SegmentPlan {
    pub writes: Vec<(String, Vec<u8>)>,
    pub unlink: Vec<String>,
}

/// The segment keys Redis holds, by stream and bucket.
#[derive(Debug, Default)]
pub(super) struct SegmentIndex {
    next_seq: u64,
    keys: BTreeMap<(Stream, i64), Vec<String>>,
}

impl SegmentIndex {
    /// Registers a key found in Redis at start-up.
    pub fn restore(&mut self, k: &SegmentKey, text: String) {
        self.next_seq = self.next_seq.max(k.seq + 1);
        self.keys
            .entry((k.stream, k.bucket))
            .or_default()
            .push(text);
    }

    /// The segments for `changes` under a fresh sequence number, and the
    /// segments their eviction removes. New keys are indexed at once: if
    /// the commit fails they may or may not exist, and unlinking a key
    /// that does not exist is harmless.
    pub fn plan(&mut self, prefix: &str, changes: &RecordChanges) -> SegmentPlan {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut plan = SegmentPlan::default();
        let mut emit = |(stream, bucket): (Stream, i64), part: u32, w: SegmentWriter| {
            let key = SegmentKey {
                stream,
                bucket,
                seq,
                part,
            }
            .text(prefix);
            self.keys
                .entry((stream, bucket))
                .or_default()
                .push(key.clone());
            plan.writes.push((key, w.finish()));
        };
        let mut writers: IdMap<(Stream, i64), (SegmentWriter, u32)> = IdMap::default();
        for r in &changes.puts {
            if changes.evicted.is_some_and(|e| e.drops(r)) {
                continue;
            }
            let at = (r.stream(), bucket_of(r));
            let (w, part) = writers
                .entry(at)
                .or_insert_with(|| (SegmentWriter::new(r), 0));
            w.push(r);
            if w.encoded_len() >= PART_BYTES {
                emit(at, *part, std::mem::replace(w, SegmentWriter::new(r)));
                *part += 1;
            }
        }
        for (at, (w, part)) in writers {
            if w.records() > 0 {
                emit(at, part, w);
            }
        }
        if let Some(e) = changes.evicted {
            for s in Stream::ALL {
                let gone = self.keys.range((s, i64::MIN)..(s, cutoff(&e, s)));
                plan.unlink
                    .extend(gone.flat_map(|(_, ks)| ks.iter().cloned()));
            }
        }
        plan
    }

    /// Forgets the segments an eviction removed, once its commit succeeded.
    pub fn evicted(&mut self, e: &Eviction) {
        self.keys.retain(|(s, bucket), _| *bucket >= cutoff(e, *s));
    }
}

/// Reads the records of segments fetched from Redis, oldest commit first,
/// so a later copy of a record replaces an earlier one when restored.
pub(super) fn records_of(
    mut segments: Vec<(SegmentKey, String, Vec<u8>)>,
    mut skipped: impl FnMut(&str, CodecError),
) -> Vec<Record> {
    segments.sort_by_key(|(k, _, _)| (k.seq, k.stream, k.bucket, k.part));
    let mut out = Vec::new();
    for (_, key, blob) in segments {
        match segment_codec::decode(&blob) {
            Ok(records) => out.extend(records),
            Err(e) => skipped(&key, e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jicha_pipeline::ids::MeterId;
    use jicha_pipeline::records::LoadPoint;
    use rust_decimal::Decimal;

    fn lp(meter: &str, ts: i64, kw: i64) -> Record {
        Record::Load(LoadPoint::power_only(
            MeterId::new(meter),
            ts,
            Decimal::from(kw),
        ))
    }

    fn evict_load_before(ts: i64) -> Eviction {
        Eviction {
            load_before: ts,
            freeze_before: chrono::NaiveDate::MIN,
            event_before: i64::MIN,
        }
    }

    #[test]
    fn keys_round_trip() {
        for k in [
            SegmentKey {
                stream: Stream::Load,
                bucket: 1_793_000_700_000,
                seq: 7,
                part: 0,
            },
            SegmentKey {
                stream: Stream::Freeze,
                bucket: 20_395,
                seq: 0,
                part: 3,
            },
            SegmentKey {
                stream: Stream::Event,
                bucket: -5,
                seq: u64::MAX,
                part: u32::MAX,
            },
        ] {
            let text = k.text("jicha:");
            assert_eq!(SegmentKey::parse("jicha:", &text), Some(k), "{text}");
        }
        assert_eq!(
            SegmentKey::parse("jicha:", "jicha:seg:freeze:2025-11-03:1").map(|k| k.bucket),
            Some(days_since_epoch(
                chrono::NaiveDate::from_ymd_opt(2025, 11, 3).unwrap()
            ))
        );
        for bad in [
            "jicha:rec:load:M1",
            "jicha:seg:load:1",
            "jicha:seg:load:x:1",
            "jicha:seg:bill:1:1",
            "jicha:seg:load:1:1:1",
            "jicha:seg:load:1:1.0",
            "jicha:seg:load:1:1.x",
            "jicha:seg:load:1:1.",
            "other:seg:load:1:1",
        ] {
            assert_eq!(SegmentKey::parse("jicha:", bad), None, "{bad}");
        }
    }

    #[test]
    fn a_commit_writes_a_segment_per_bucket_and_unlinks_evicted_ones() {
        let mut idx = SegmentIndex::default();
        let first = idx.plan(
            "p:",
            &RecordChanges {
                puts: vec![lp("M1", 0, 1), lp("M2", 0, 2), lp("M1", 900, 3)],
                evicted: None,
            },
        );
        let mut keys: Vec<&str> = first.writes.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["p:seg:load:0:0", "p:seg:load:900:0"]);
        assert!(first.unlink.is_empty());

        // A put the same commit evicts is not written; older buckets go.
        let second = idx.plan(
            "p:",
            &RecordChanges {
                puts: vec![lp("M1", 900, 4), lp("M1", 1800, 5)],
                evicted: Some(evict_load_before(1800)),
            },
        );
        let written: Vec<&str> = second.writes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(written, ["p:seg:load:1800:1"]);
        let mut unlinked = second.unlink.clone();
        unlinked.sort();
        assert_eq!(unlinked, ["p:seg:load:0:0", "p:seg:load:900:0"]);
        idx.evicted(&evict_load_before(1800));
        let third = idx.plan(
            "p:",
            &RecordChanges {
                puts: vec![lp("M1", 1800, 6)],
                evicted: Some(evict_load_before(1800)),
            },
        );
        assert!(third.unlink.is_empty());

        // Restoring reads oldest commit first, so the replacement wins; a
        // damaged segment is reported and skipped.
        let mut segs: Vec<(SegmentKey, String, Vec<u8>)> = third
            .writes
            .into_iter()
            .chain(second.writes)
            .map(|(k, v)| (SegmentKey::parse("p:", &k).unwrap(), k, v))
            .collect();
        segs.push((
            SegmentKey::parse("p:", "p:seg:load:5:0").unwrap(),
            "p:seg:load:5:0".into(),
            b"junk".to_vec(),
        ));
        let mut skipped = Vec::new();
        let recs = records_of(segs, |k, _| skipped.push(k.to_string()));
        assert_eq!(skipped, ["p:seg:load:5:0"]);
        assert_eq!(recs, [lp("M1", 1800, 5), lp("M1", 1800, 6)]);
    }

    /// A bucket's records beyond a part's size go on in further parts of
    /// the same commit, each within 64 KiB; restored in order, the latest
    /// copy of a record still wins.
    #[test]
    fn a_large_bucket_is_cut_into_parts() {
        let mut idx = SegmentIndex::default();
        let mut puts: Vec<Record> = (0..30_000)
            .map(|i| lp(&format!("M{i:010}"), 0, 1_000_000 + i))
            .collect();
        puts.push(lp("M0000000007", 0, -1));
        let plan = idx.plan(
            "p:",
            &RecordChanges {
                puts: puts.clone(),
                evicted: None,
            },
        );
        assert!(plan.writes.len() >= 3, "{} parts", plan.writes.len());
        for (key, blob) in &plan.writes {
            assert!(blob.len() < 64 * 1024 - 64, "{key}: {} bytes", blob.len());
        }
        let mut keys: Vec<SegmentKey> = plan
            .writes
            .iter()
            .map(|(k, _)| SegmentKey::parse("p:", k).unwrap())
            .collect();
        keys.sort_by_key(|k| k.part);
        let parts: Vec<u32> = keys.iter().map(|k| k.part).collect();
        assert_eq!(parts, (0..plan.writes.len() as u32).collect::<Vec<_>>());
        assert!(keys.iter().all(|k| (k.seq, k.bucket) == (0, 0)));
        // Handed over in any order, read back in the order put.
        let segs = plan
            .writes
            .into_iter()
            .rev()
            .map(|(k, v)| (SegmentKey::parse("p:", &k).unwrap(), k, v))
            .collect();
        assert_eq!(records_of(segs, |k, e| panic!("{k}: {e}")), puts);
    }
}
