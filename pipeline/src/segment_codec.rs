//! A segment: the records of one stream at one instant (load points,
//! events) or one date (freezes) that one commit put, stored as one blob.
//!
//! The state backend writes a segment per bucket per commit instead of a
//! hash field per record: one value to send and to free instead of
//! thousands, and eviction drops whole segments. Inside, meter ids are
//! prefix-compressed against the previous record's (archive ids share long
//! prefixes) and instants are relative to the bucket, so a load point with
//! only `p_kw` takes about 8 bytes.
//!
//! Layout (integers zig-zag LEB128): `S`, version `2`, stream (0 load,
//! 1 freeze, 2 event), bucket (instant ms, or days since 1970-01-01 for
//! freezes), base instant (ms; the first record's), then per record:
//! - the meter id: `2 × n + f`, where `n` is the length of the part of the
//!   id not shared with the previous record's; `f` is 0 when the id is as
//!   long as the previous one (so the shared part is the rest), else 1 and
//!   the shared length follows; then the `n` bytes. Archive ids are of one
//!   length and share long prefixes, so `M0000012345` after `M0000012344`
//!   costs 2 bytes;
//! - the record in [`crate::record_codec`]'s form relative to the base
//!   instant and the bucket's date, which says itself where it ends.
//!
//! Later records replace earlier ones with the same key. Version 1, still
//! read, wrote the shared length, then the rest of the id and the record
//! each with a length before it: one or two bytes more per record.

use crate::ids::MeterId;
use crate::record_codec::{self, put_int, Base, CodecError, Reader};
use crate::records::{Record, Stream};
use crate::time::days_since_epoch;

const MAGIC: u8 = b'S';
const VERSION_1: u8 = 1;
const VERSION: u8 = 2;

/// The bucket a record is stored and evicted by: its instant, or for a
/// freeze its date as days since 1970-01-01.
pub fn bucket_of(r: &Record) -> i64 {
    match r {
        Record::Load(l) => l.ts,
        Record::Freeze(f) => days_since_epoch(f.date),
        Record::Event(e) => e.ts,
    }
}

/// The instant a record's other instants are written relative to.
fn instant_of(r: &Record) -> i64 {
    match r {
        Record::Load(l) => l.ts,
        Record::Freeze(f) => f.ts,
        Record::Event(e) => e.ts,
    }
}

/// Builds one segment; records are appended in the order they were put.
pub struct SegmentWriter {
    buf: Vec<u8>,
    stream: Stream,
    base: Base,
    prev_id: String,
    records: usize,
}

impl SegmentWriter {
    /// A segment for the stream and bucket of `first`, which is not yet
    /// added (push it next).
    pub fn new(first: &Record) -> Self {
        let (stream, bucket) = (first.stream(), bucket_of(first));
        let base = Base {
            ms: instant_of(first),
            days: if stream == Stream::Freeze { bucket } else { 0 },
        };
        let mut buf = vec![MAGIC, VERSION, stream as u8];
        put_int(&mut buf, i128::from(bucket));
        put_int(&mut buf, i128::from(base.ms));
        Self {
            buf,
            stream,
            base,
            prev_id: String::new(),
            records: 0,
        }
    }

    /// Appends a record of this segment's stream and bucket.
    pub fn push(&mut self, r: &Record) {
        debug_assert_eq!(r.stream(), self.stream);
        let id = r.meter_id().as_str();
        let shared = common_prefix(&self.prev_id, id);
        let rest = &id.as_bytes()[shared..];
        let same_len = id.len() == self.prev_id.len();
        put_int(
            &mut self.buf,
            2 * rest.len() as i128 + i128::from(!same_len),
        );
        if !same_len {
            put_int(&mut self.buf, shared as i128);
        }
        self.buf.extend_from_slice(rest);
        record_codec::encode_into(r, self.base, &mut self.buf);
        self.prev_id.clear();
        self.prev_id.push_str(id);
        self.records += 1;
    }

    pub fn records(&self) -> usize {
        self.records
    }

    /// The segment's size so far, in bytes.
    pub fn encoded_len(&self) -> usize {
        self.buf.len()
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Length of the common prefix, cut back to a character boundary.
fn common_prefix(a: &str, b: &str) -> usize {
    let mut n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !b.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// Reads a segment; never panics on any input.
pub fn decode(blob: &[u8]) -> Result<Vec<Record>, CodecError> {
    let mut r = Reader(blob);
    if r.byte()? != MAGIC {
        return Err(CodecError("not a segment"));
    }
    let version = r.byte()?;
    if version != VERSION && version != VERSION_1 {
        return Err(CodecError(
            "segment version unknown to this jicha; upgrade jicha",
        ));
    }
    let stream = match r.byte()? {
        0 => Stream::Load,
        1 => Stream::Freeze,
        2 => Stream::Event,
        _ => return Err(CodecError("unknown stream in segment")),
    };
    let int =
        |r: &mut Reader| i64::try_from(r.int()?).map_err(|_| CodecError("instant out of range"));
    let bucket = int(&mut r)?;
    let base = Base {
        ms: int(&mut r)?,
        days: if stream == Stream::Freeze { bucket } else { 0 },
    };
    let mut out = Vec::new();
    let mut id = String::new();
    let mut meter = MeterId::new("");
    let length =
        |r: &mut Reader| usize::try_from(r.int()?).map_err(|_| CodecError("bad id prefix"));
    while !r.0.is_empty() {
        let (shared, rest) = if version == VERSION_1 {
            (length(&mut r)?, r.bytes()?)
        } else {
            let head = length(&mut r)?;
            let n = head / 2;
            let shared = if head % 2 == 0 {
                id.len().checked_sub(n).ok_or(CodecError("bad id prefix"))?
            } else {
                length(&mut r)?
            };
            (shared, r.take(n)?)
        };
        if shared > id.len() || !id.is_char_boundary(shared) {
            return Err(CodecError("bad id prefix"));
        }
        let rest = std::str::from_utf8(rest).map_err(|_| CodecError("id is not UTF-8"))?;
        if shared != id.len() || !rest.is_empty() {
            id.truncate(shared);
            id.push_str(rest);
            meter = MeterId::new(&id);
        }
        let rec = if version == VERSION_1 {
            record_codec::decode_from(&meter, r.bytes()?, base)?
        } else {
            record_codec::read(&meter, &mut r, base)?
        };
        if rec.stream() != stream {
            return Err(CodecError("record of another stream in segment"));
        }
        out.push(rec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_codec::put_bytes;
    use crate::records::{Freeze, LoadPoint, MeterEvent, Phases};
    use rust_decimal::Decimal;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn load(meter: &str, ts: i64, kw: &str) -> Record {
        Record::Load(LoadPoint {
            q_kvar: Some(dec("-1.50")),
            phases: Phases::from_values([None, None, None, None, None, None, Some(dec("0.95"))]),
            ..LoadPoint::power_only(MeterId::new(meter), ts, dec(kw))
        })
    }

    fn roundtrip(recs: &[Record]) -> Vec<u8> {
        let mut w = SegmentWriter::new(&recs[0]);
        recs.iter().for_each(|r| w.push(r));
        assert_eq!(w.records(), recs.len());
        let blob = w.finish();
        assert_eq!(decode(&blob).unwrap(), recs);
        blob
    }

    #[test]
    fn records_round_trip_exactly_with_shared_id_prefixes() {
        let ts = 1_793_000_700_000;
        let recs = [
            load("M0000000010", ts, "12.500"),
            load("M0000000011", ts, "0"),
            load("M0000000011", ts, "7"),
            load("M01", ts, "1"),
            load("表计-0001", ts, "-3.25"),
            load("表计-0002", ts, "3"),
            load("M0000000010", ts, "99999999999.999999"),
        ];
        roundtrip(&recs);

        let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        let freeze = Record::Freeze(Box::new(Freeze {
            meter_id: MeterId::new("M1"),
            date,
            ts: 1_793_030_400_000,
            reg_total: dec("12345.67"),
            reg_sharp: None,
            reg_peak: Some(dec("1")),
            reg_flat: None,
            reg_valley: Some(dec("0.01")),
            reg_q_total: None,
        }));
        let event = Record::Event(Box::new(MeterEvent {
            meter_id: MeterId::new("M1"),
            ts,
            code: "cover_open".into(),
            phase: Some("A".into()),
            state: None,
        }));
        let mut other_meter = freeze.clone();
        if let Record::Freeze(f) = &mut other_meter {
            f.meter_id = MeterId::new("M2");
        }
        let one = roundtrip(std::slice::from_ref(&freeze));
        let two = roundtrip(&[freeze, other_meter]);
        // The header is shared and the date and instant are the base's.
        assert!(
            two.len() < 2 * one.len() - 5,
            "{} vs {}",
            two.len(),
            one.len()
        );
        roundtrip(&[event.clone(), event]);
    }

    #[test]
    fn load_points_take_a_few_bytes_each() {
        let ts = 1_793_000_700_000;
        let recs: Vec<Record> = (0..1000)
            .map(|i| {
                let mut r = load(&format!("M{:010}", i), ts, "12.34");
                if let Record::Load(l) = &mut r {
                    l.q_kvar = None;
                    l.phases = None;
                }
                r
            })
            .collect();
        let blob = roundtrip(&recs);
        // id: suffix length, ≤ 3 suffix bytes; record: kind, ts, presence,
        // scale, 2-byte mantissa.
        assert!(blob.len() < 1000 * 9, "{} bytes", blob.len());
    }

    /// A day's freezes of meters whose total register is the sum of its
    /// time-of-use registers, as meters report them.
    #[test]
    fn freezes_take_about_twenty_bytes_each() {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        let recs: Vec<Record> = (0..1000i64)
            .map(|i| {
                let total = 200_000 + i * 4_799;
                let part = |pct: i64| Decimal::new(total * pct / 100, 2);
                let (sharp, peak, flat) = (part(8), part(35), part(27));
                let valley = Decimal::new(total, 2) - sharp - peak - flat;
                Record::Freeze(Box::new(Freeze {
                    meter_id: MeterId::new(&format!("M{:010}", i)),
                    date,
                    ts: 1_793_030_400_000,
                    reg_total: Decimal::new(total, 2),
                    reg_sharp: Some(sharp),
                    reg_peak: Some(peak),
                    reg_flat: Some(flat),
                    reg_valley: Some(valley),
                    reg_q_total: None,
                }))
            })
            .collect();
        let blob = roundtrip(&recs);
        // id 2-3 bytes; kind, date, ts, presence, scale, the total's
        // difference from its parts: a byte each; four 3-4-byte mantissas.
        assert!(blob.len() < 1000 * 22, "{} bytes", blob.len());
    }

    /// Segments written before the current layout, with a length before
    /// the id's prefix, the id's rest and the record, read back the same.
    #[test]
    fn version_1_segments_are_still_read() {
        let ts = 1_793_000_700_000;
        let recs = [
            load("M0000000010", ts, "12.500"),
            load("M0000000011", ts + 1, "0"),
            load("表计-0001", ts, "-3.25"),
        ];
        let base = Base { ms: ts, days: 0 };
        let mut blob = vec![MAGIC, VERSION_1, 0];
        put_int(&mut blob, i128::from(ts));
        put_int(&mut blob, i128::from(ts));
        let mut prev = "";
        for r in &recs {
            let id = r.meter_id().as_str();
            let shared = common_prefix(prev, id);
            put_int(&mut blob, shared as i128);
            put_bytes(&mut blob, &id.as_bytes()[shared..]);
            put_bytes(&mut blob, &{
                let mut w = Vec::new();
                record_codec::encode_into(r, base, &mut w);
                w
            });
            prev = id;
        }
        assert_eq!(decode(&blob).unwrap(), recs);
        // The current layout has no record lengths, and no shared length
        // for an id as long as the one before (the second and the third:
        // 表计 is 6 bytes of UTF-8).
        let mut w = SegmentWriter::new(&recs[0]);
        recs.iter().for_each(|r| w.push(r));
        assert_eq!(w.finish().len() + recs.len() + 2, blob.len());
    }

    #[test]
    fn damaged_segments_are_errors_not_panics() {
        let ts = 1_793_000_700_000;
        let blob = roundtrip(&[load("M0000000010", ts, "1"), load("M0000000011", ts, "2")]);
        for cut in 0..blob.len() {
            let _ = decode(&blob[..cut]);
        }
        for i in 0..blob.len() {
            for b in [0u8, 0x7f, 0x80, 0xff] {
                let mut d = blob.clone();
                d[i] = b;
                let _ = decode(&d);
            }
        }
        assert!(decode(b"").is_err());
        assert!(decode(b"{\"stream\":\"load\"}").is_err());
        // A load record inside a freeze segment is refused, in either layout.
        let mut v1 = vec![MAGIC, VERSION_1, 1, 0, 0];
        put_int(&mut v1, 0);
        put_bytes(&mut v1, b"M1");
        put_bytes(&mut v1, &record_codec::encode(&load("M1", 0, "1")));
        let mut v2 = vec![MAGIC, VERSION, 1, 0, 0];
        put_int(&mut v2, 2 * 2 + 1);
        put_int(&mut v2, 0);
        v2.extend_from_slice(b"M1");
        v2.extend_from_slice(&record_codec::encode(&load("M1", 0, "1")));
        for bad in [v1, v2] {
            assert_eq!(
                decode(&bad),
                Err(CodecError("record of another stream in segment"))
            );
        }
        // An id said to share more than the previous id has.
        let mut long = vec![MAGIC, VERSION, 0, 0, 0];
        put_int(&mut long, 2 * 3);
        long.extend_from_slice(b"M12");
        assert_eq!(decode(&long), Err(CodecError("bad id prefix")));
    }
}
