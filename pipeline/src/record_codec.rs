//! The compact binary form of a record, as the state backend stores it.
//!
//! JSON cost ≈ 255 B per load point and ≈ 344 B per freeze in Redis, and
//! serialising it was a large share of a commit's CPU (`docs/performance.md`).
//! This form is 5–40 B: the meter id is left out (the segment it is stored
//! in names it, `crate::segment_codec`), instants and dates are zig-zag
//! varints relative to a [`Base`] (the segment's instant), and decimals
//! are their mantissas as zig-zag varints after one scale byte shared by
//! the record's decimals, so they round-trip exactly. The first byte names the record kind and is never
//! `{`, so values written as JSON by earlier versions are still told apart
//! and read.
//!
//! Layout (all integers zig-zag LEB128 unless noted; ts and date minus the
//! base):
//! - load:   `0x04` ts, presence byte (bit i: the i-th optional field),
//!   scale, `p_kw`, then q_kvar, ua, ub, uc, ia, ib, ic, pf when present
//! - freeze: `0x05` date (days since 1970-01-01), ts, presence byte,
//!   scale, `reg_total`, then sharp, peak, flat, valley, q_total when
//!   present. Presence bit 5 says `reg_total` is written as its difference
//!   from the sum of the time-of-use registers present (sharp, peak, flat,
//!   valley): a meter's total register equals that sum (domain.md, code 06
//!   分时电量和总电量不等 is the anomaly), so the difference takes one byte
//!   where the total takes four. It is used only when shorter.
//! - event:  `0x03` ts, code, presence byte, phase, state
//!   (strings: length, then UTF-8 bytes)
//! - scale: one raw byte (≤ 28), the scale of every decimal of the record
//!
//! A load or freeze whose decimals differ in scale is written `0x01` or
//! `0x02`, with a scale byte before each decimal's mantissa instead of the
//! shared one; so were all of them before the shared scale (five bytes less
//! per freeze), and both forms are read.

use crate::ids::MeterId;
use crate::records::{Freeze, LoadPoint, MeterEvent, Phases, Record};
use crate::time::{date_from_days, days_since_epoch};
use rust_decimal::Decimal;

const LOAD_SCALE_EACH: u8 = 0x01;
const FREEZE_SCALE_EACH: u8 = 0x02;
const EVENT: u8 = 0x03;
const LOAD: u8 = 0x04;
const FREEZE: u8 = 0x05;

/// Freeze presence bit: `reg_total` is written as its difference from the
/// time-of-use registers' sum.
const TOTAL_FROM_PARTS: u8 = 1 << 5;

/// A freeze's `reg_total` as read: itself, or its mantissa's difference
/// from the time-of-use registers' and the shared scale.
enum Total {
    Literal(Decimal),
    FromParts(i128, u32),
}

/// How a record's decimals are written: see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decimals {
    ScaleEach,
    Shared(u32),
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("stored record unreadable: {0}; delete the key (it will not be used) or restore Redis from a backup")]
pub struct CodecError(pub(crate) &'static str);

/// Whether `bytes` is a record in this form (rather than legacy JSON).
pub fn is_binary(bytes: &[u8]) -> bool {
    matches!(
        bytes.first(),
        Some(&(LOAD_SCALE_EACH | FREEZE_SCALE_EACH | EVENT | LOAD | FREEZE))
    )
}

pub fn encode(r: &Record) -> Vec<u8> {
    let mut w = Vec::with_capacity(32);
    encode_into(r, Base::ZERO, &mut w);
    w
}

/// What instants and dates are written relative to. A record alone uses
/// [`Base::ZERO`]; a segment of records of one instant or date
/// (`crate::segment_codec`) uses that instant, so each record's own
/// instant takes one byte instead of six.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base {
    pub ms: i64,
    pub days: i64,
}

impl Base {
    pub const ZERO: Base = Base { ms: 0, days: 0 };
}

/// Appends `r` in the binary form, instants relative to `base`.
pub fn encode_into(r: &Record, base: Base, w: &mut Vec<u8>) {
    let ms = |t: i64| i128::from(t) - i128::from(base.ms);
    match r {
        Record::Load(l) => {
            let kind = w.len();
            w.push(LOAD);
            put_int(w, ms(l.ts));
            let [ua, ub, uc, ia, ib, ic, pf] = l.phase_values();
            let opts = [l.q_kvar, ua, ub, uc, ia, ib, ic, pf];
            put_presence(w, &opts);
            if !put_decimals(w, l.p_kw, None, &opts) {
                w[kind] = LOAD_SCALE_EACH;
            }
        }
        Record::Freeze(f) => {
            let kind = w.len();
            w.push(FREEZE);
            put_int(
                w,
                i128::from(days_since_epoch(f.date)) - i128::from(base.days),
            );
            put_int(w, ms(f.ts));
            let opts = [
                f.reg_sharp,
                f.reg_peak,
                f.reg_flat,
                f.reg_valley,
                f.reg_q_total,
            ];
            let difference = total_difference(f, &opts);
            let presence = w.len();
            put_presence(w, &opts);
            if difference.is_some() {
                w[presence] |= TOTAL_FROM_PARTS;
            }
            if !put_decimals(w, f.reg_total, difference, &opts) {
                w[kind] = FREEZE_SCALE_EACH;
            }
        }
        Record::Event(e) => {
            w.push(EVENT);
            put_int(w, ms(e.ts));
            put_str(w, &e.code);
            put_presence(w, &[e.phase.as_ref(), e.state.as_ref()]);
            [&e.phase, &e.state]
                .into_iter()
                .flatten()
                .for_each(|s| put_str(w, s));
        }
    }
}

/// Reads a record stored for `meter`; never panics on any input.
pub fn decode(meter: &MeterId, bytes: &[u8]) -> Result<Record, CodecError> {
    decode_from(meter, bytes, Base::ZERO)
}

/// Reads a record written relative to `base`.
pub fn decode_from(meter: &MeterId, bytes: &[u8], base: Base) -> Result<Record, CodecError> {
    let mut r = Reader(bytes);
    let record = read(meter, &mut r, base)?;
    if !r.0.is_empty() {
        return Err(CodecError("trailing bytes"));
    }
    Ok(record)
}

/// Reads the record `r` starts with, written relative to `base`, and
/// leaves `r` after it: the form itself says where a record ends.
pub(crate) fn read(meter: &MeterId, r: &mut Reader, base: Base) -> Result<Record, CodecError> {
    let ms = |v: i128| {
        i64::try_from(v + i128::from(base.ms)).map_err(|_| CodecError("instant out of range"))
    };
    let record = match r.byte()? {
        kind @ (LOAD | LOAD_SCALE_EACH) => {
            let ts = ms(r.int()?)?;
            let present = r.byte()?;
            let form = r.decimals(kind == LOAD)?;
            let p_kw = r.decimal(form)?;
            let mut opt = |i: u8| r.opt_decimal(form, present, i);
            Record::Load(LoadPoint {
                meter_id: meter.clone(),
                ts,
                p_kw,
                q_kvar: opt(0)?,
                phases: Phases::from_values([
                    opt(1)?,
                    opt(2)?,
                    opt(3)?,
                    opt(4)?,
                    opt(5)?,
                    opt(6)?,
                    opt(7)?,
                ]),
            })
        }
        kind @ (FREEZE | FREEZE_SCALE_EACH) => {
            let days = r.int()? + i128::from(base.days);
            let date = i64::try_from(days)
                .ok()
                .and_then(date_from_days)
                .ok_or(CodecError("freeze date out of range"))?;
            let ts = ms(r.int()?)?;
            let present = r.byte()?;
            let form = r.decimals(kind == FREEZE)?;
            let total = match (present & TOTAL_FROM_PARTS != 0, form) {
                (true, Decimals::Shared(scale)) => Total::FromParts(r.int()?, scale),
                (true, Decimals::ScaleEach) => {
                    return Err(CodecError("total difference without a shared scale"))
                }
                (false, _) => Total::Literal(r.decimal(form)?),
            };
            let mut opt = |i: u8| r.opt_decimal(form, present, i);
            let mut f = Freeze {
                meter_id: meter.clone(),
                date,
                ts,
                reg_total: Decimal::ZERO,
                reg_sharp: opt(0)?,
                reg_peak: opt(1)?,
                reg_flat: opt(2)?,
                reg_valley: opt(3)?,
                reg_q_total: opt(4)?,
            };
            f.reg_total = match total {
                Total::Literal(d) => d,
                Total::FromParts(difference, scale) => {
                    let sum: i128 = time_of_use(&f).iter().flatten().map(|d| d.mantissa()).sum();
                    difference
                        .checked_add(sum)
                        .and_then(|m| Decimal::try_from_i128_with_scale(m, scale).ok())
                        .ok_or(CodecError("decimal out of range"))?
                }
            };
            Record::Freeze(Box::new(f))
        }
        EVENT => {
            let ts = ms(r.int()?)?;
            let code = r.string()?;
            let present = r.byte()?;
            let phase = if present & 1 != 0 {
                Some(r.string()?)
            } else {
                None
            };
            let state = if present & 2 != 0 {
                Some(r.string()?)
            } else {
                None
            };
            Record::Event(Box::new(MeterEvent {
                meter_id: meter.clone(),
                ts,
                code,
                phase,
                state,
            }))
        }
        _ => return Err(CodecError("unknown record kind")),
    };
    Ok(record)
}

fn put_presence<T>(w: &mut Vec<u8>, opts: &[Option<T>]) {
    let bits = opts
        .iter()
        .enumerate()
        .fold(0u8, |b, (i, o)| if o.is_some() { b | 1 << i } else { b });
    w.push(bits);
}

pub(crate) fn put_int(w: &mut Vec<u8>, v: i128) {
    let mut z = ((v << 1) ^ (v >> 127)) as u128;
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            w.push(b);
            return;
        }
        w.push(b | 0x80);
    }
}

/// Whether every present decimal has `first`'s scale.
fn scale_shared(first: Decimal, rest: &[Option<Decimal>]) -> bool {
    rest.iter().flatten().all(|d| d.scale() == first.scale())
}

/// Writes `first` and the present `rest`: one scale byte, then the
/// mantissas, when they all share it (true); else scale and mantissa each.
/// `first_as`, given only with a shared scale, is written in place of
/// `first`'s mantissa.
fn put_decimals(
    w: &mut Vec<u8>,
    first: Decimal,
    first_as: Option<i128>,
    rest: &[Option<Decimal>],
) -> bool {
    let shared = scale_shared(first, rest);
    if shared {
        w.push(first.scale() as u8);
    }
    for (i, d) in std::iter::once(&first)
        .chain(rest.iter().flatten())
        .enumerate()
    {
        if !shared {
            w.push(d.scale() as u8);
        }
        match first_as {
            Some(v) if i == 0 && shared => put_int(w, v),
            _ => put_int(w, d.mantissa()),
        }
    }
    shared
}

/// A freeze's time-of-use registers, in the order they are written.
fn time_of_use(f: &Freeze) -> [Option<Decimal>; 4] {
    [f.reg_sharp, f.reg_peak, f.reg_flat, f.reg_valley]
}

/// `reg_total`'s mantissa minus the time-of-use registers', when the
/// freeze's decimals (`opts`: its optional ones) share one scale, at least
/// one time-of-use register is present and the difference is shorter.
fn total_difference(f: &Freeze, opts: &[Option<Decimal>]) -> Option<i128> {
    let parts = time_of_use(f);
    if parts.iter().all(Option::is_none) || !scale_shared(f.reg_total, opts) {
        return None;
    }
    // Four mantissas below 2^96 each cannot overflow an i128.
    let sum: i128 = parts.iter().flatten().map(|d| d.mantissa()).sum();
    let difference = f.reg_total.mantissa() - sum;
    (int_len(difference) < int_len(f.reg_total.mantissa())).then_some(difference)
}

/// The bytes `put_int` writes for `v`.
fn int_len(v: i128) -> usize {
    let z = ((v << 1) ^ (v >> 127)) as u128;
    (128 - z.leading_zeros() as usize).max(1).div_ceil(7)
}

fn put_str(w: &mut Vec<u8>, s: &str) {
    put_bytes(w, s.as_bytes());
}

/// A length-prefixed run of bytes.
pub(crate) fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    put_int(w, b.len() as i128);
    w.extend_from_slice(b);
}

pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn byte(&mut self) -> Result<u8, CodecError> {
        let (&b, rest) = self.0.split_first().ok_or(CodecError("truncated"))?;
        self.0 = rest;
        Ok(b)
    }

    pub(crate) fn int(&mut self) -> Result<i128, CodecError> {
        let mut z: u128 = 0;
        for shift in (0..128).step_by(7) {
            let b = self.byte()?;
            // Bits beyond 128 fall off; the value is range-checked later.
            z |= u128::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((z >> 1) as i128 ^ -((z & 1) as i128));
            }
        }
        Err(CodecError("integer too long"))
    }

    /// The shared scale of a record written with one, else each decimal's own.
    fn decimals(&mut self, shared: bool) -> Result<Decimals, CodecError> {
        Ok(if shared {
            Decimals::Shared(u32::from(self.byte()?))
        } else {
            Decimals::ScaleEach
        })
    }

    fn decimal(&mut self, form: Decimals) -> Result<Decimal, CodecError> {
        let scale = match form {
            Decimals::ScaleEach => u32::from(self.byte()?),
            Decimals::Shared(scale) => scale,
        };
        Decimal::try_from_i128_with_scale(self.int()?, scale)
            .map_err(|_| CodecError("decimal out of range"))
    }

    fn opt_decimal(
        &mut self,
        form: Decimals,
        present: u8,
        bit: u8,
    ) -> Result<Option<Decimal>, CodecError> {
        if present & (1 << bit) == 0 {
            return Ok(None);
        }
        self.decimal(form).map(Some)
    }

    /// A length-prefixed run of bytes.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let len = usize::try_from(self.int()?).map_err(|_| CodecError("bad length"))?;
        self.take(len)
    }

    /// The next `len` bytes.
    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], CodecError> {
        if len > self.0.len() {
            return Err(CodecError("truncated"));
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(s)
    }

    fn string(&mut self) -> Result<String, CodecError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| CodecError("string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_payload;
    use crate::records::Stream;

    fn decoded(stream: Stream, json: &str) -> Vec<Record> {
        decode_payload(stream, json.as_bytes(), 1 << 20)
            .into_iter()
            .map(|r| match r {
                Ok((rec, _)) => rec,
                Err(e) => panic!("invalid sample: {e:?}"),
            })
            .collect()
    }

    fn samples() -> Vec<Record> {
        let mut v = decoded(
            Stream::Load,
            r#"[{"meter_id":"M1","ts":"2026-11-03T14:00:00+08:00","p_kw":12.5,"q_kvar":-1,"pf":0.987654},
                {"meter_id":"M1","ts":0,"p_kw":-79228162514264.337593543950335},
                {"meter_id":"M1","ts":"1969-07-20T20:15:00Z","p_kw":0,"ua":220.1,"ub":1e3,"uc":0.000001,"ia":5,"ib":-5,"ic":99999999999999}]"#,
        );
        v.extend(decoded(
            Stream::Freeze,
            r#"[{"meter_id":"M1","date":"2026-11-03","ts":"2026-11-04T00:00:00+08:00","reg_total":54693.74,"reg_valley":1e3},
                {"meter_id":"M1","date":"1901-02-28","ts":"1901-03-01T00:00:00+08:00","reg_total":0,"reg_sharp":1,"reg_peak":2,"reg_flat":3,"reg_valley":4,"reg_q_total":5.5}]"#,
        ));
        v.extend(decoded(
            Stream::Event,
            r#"[{"meter_id":"M1","ts":"2026-11-03T22:00:00+08:00","code":"cover_open","state":"start"},
                {"meter_id":"M1","ts":"2026-11-03T22:00:00+08:00","code":"断相","phase":"A"},
                {"meter_id":"M1","ts":"2026-11-03T22:00:00+08:00","code":"x","phase":"","state":"end"}]"#,
        ));
        v
    }

    #[test]
    fn every_field_round_trips_exactly_and_small() {
        let meter = MeterId::new("M1");
        for r in samples() {
            let bytes = encode(&r);
            assert!(is_binary(&bytes));
            assert_eq!(decode(&meter, &bytes).as_ref(), Ok(&r), "{r:?}");
            assert!(bytes.len() < 80, "{} bytes for {r:?}", bytes.len());
        }
        // A typical load point is far smaller than its JSON.
        let l = &samples()[0];
        assert!(encode(l).len() <= 24, "{}", encode(l).len());
        // Scale survives: 1.50 stays 1.50, not 1.5.
        let r = decoded(Stream::Load, r#"{"meter_id":"M1","ts":0,"p_kw":1.50}"#).remove(0);
        let Ok(Record::Load(back)) = decode(&meter, &encode(&r)) else {
            panic!("not a load point")
        };
        assert_eq!(back.p_kw.to_string(), "1.50");
    }

    /// Loads and freezes written with a scale byte per decimal (before the
    /// packed form) read back as they were written.
    #[test]
    fn records_with_scale_bytes_are_still_read() {
        let meter = MeterId::new("M1");
        // ts 0, no optional fields, p_kw: scale 2, mantissa 1250 (zig-zag 2500).
        let Ok(Record::Load(l)) = decode(&meter, &[LOAD_SCALE_EACH, 0, 0, 2, 0xc4, 0x13]) else {
            panic!("not a load point")
        };
        assert_eq!((l.ts, l.p_kw.to_string()), (0, "12.50".to_string()));
        // 1970-01-02, ts 0, reg_total 0.1, reg_valley present: 7.
        let Ok(Record::Freeze(f)) = decode(&meter, &[FREEZE_SCALE_EACH, 2, 0, 0b1000, 1, 2, 0, 14])
        else {
            panic!("not a freeze")
        };
        assert_eq!(f.date.to_string(), "1970-01-02");
        assert_eq!(f.reg_total.to_string(), "0.1");
        assert_eq!(f.reg_valley.map(|d| d.to_string()), Some("7".to_string()));
        assert_eq!((f.reg_sharp, f.reg_q_total), (None, None));
    }

    /// A freeze of M1 on 2026-11-03 with the register fields `regs`.
    fn freeze_with(regs: &str) -> Record {
        decoded(
            Stream::Freeze,
            &format!(
                r#"{{"meter_id":"M1","date":"2026-11-03","ts":"2026-11-04T00:00:00+08:00",{regs}}}"#
            ),
        )
        .remove(0)
    }

    /// Decimals of one scale share one scale byte; mixed scales fall back
    /// to a byte each.
    #[test]
    fn a_shared_scale_is_written_once() {
        // Totals unlike their parts, so they are written as they are.
        let same = freeze_with(
            r#""reg_total":100.00,"reg_sharp":1234.56,"reg_peak":23456.78,"reg_flat":19876.54,"reg_valley":10125.86,"reg_q_total":8123.45"#,
        );
        let mixed = freeze_with(
            r#""reg_total":100.00,"reg_sharp":1234.5,"reg_peak":23456.78,"reg_flat":19876.54,"reg_valley":10125.86,"reg_q_total":8123.45"#,
        );
        let (a, b) = (encode(&same), encode(&mixed));
        assert_eq!((a[0], b[0]), (FREEZE, FREEZE_SCALE_EACH));
        // Five scale bytes fewer (the mantissas take the same bytes here).
        assert_eq!(a.len() + 5, b.len(), "{a:?} vs {b:?}");
        let meter = MeterId::new("M1");
        assert_eq!(decode(&meter, &a), Ok(same));
        assert_eq!(decode(&meter, &b), Ok(mixed));
    }

    /// A total equal to its time-of-use registers' sum, or near it, is
    /// written as the difference; one unlike them, or with registers of
    /// mixed scales, as it is. All read back exactly.
    #[test]
    fn a_total_is_written_as_its_difference_from_the_parts_when_shorter() {
        // Relative to the record's own date and instant, so each takes a
        // byte and the presence byte is the fourth.
        let base = |r: &Record| match r {
            Record::Freeze(f) => Base {
                ms: f.ts,
                days: days_since_epoch(f.date),
            },
            _ => panic!("not a freeze"),
        };
        let encoded = |r: &Record| {
            let mut w = Vec::new();
            encode_into(r, base(r), &mut w);
            w
        };
        let parts =
            r#""reg_sharp":1234.56,"reg_peak":23456.78,"reg_flat":19876.54,"reg_valley":10125.86"#;
        let equal = freeze_with(&format!(
            r#""reg_total":54693.74,{parts},"reg_q_total":8123.45"#
        ));
        let near = freeze_with(&format!(
            r#""reg_total":54693.70,{parts},"reg_q_total":8123.45"#
        ));
        let unlike = freeze_with(&format!(
            r#""reg_total":99999.99,{parts},"reg_q_total":8123.45"#
        ));
        let mixed = freeze_with(&format!(r#""reg_total":54693.7,{parts}"#));
        let only_reactive = freeze_with(r#""reg_total":54693.74,"reg_q_total":54693.74"#);
        let meter = MeterId::new("M1");
        for (r, from_parts) in [
            (&equal, true),
            (&near, true),
            (&unlike, false),
            (&mixed, false),
            (&only_reactive, false),
        ] {
            let b = encoded(r);
            assert_eq!(b[3] & TOTAL_FROM_PARTS != 0, from_parts, "{r:?}: {b:?}");
            assert_eq!(decode_from(&meter, &b, base(r)).as_ref(), Ok(r));
            assert_eq!(decode(&meter, &encode(r)).as_ref(), Ok(r));
        }
        // 9,999,999 takes four bytes, a difference of 0 or -4 one.
        let (e, n, u) = (encoded(&equal), encoded(&near), encoded(&unlike));
        assert_eq!((e.len(), n.len()), (u.len() - 3, u.len() - 3));
        // The flag without a shared scale is refused, not misread.
        let mut bad = e.clone();
        bad[0] = FREEZE_SCALE_EACH;
        assert_eq!(
            decode_from(&meter, &bad, base(&equal)),
            Err(CodecError("total difference without a shared scale"))
        );
    }

    #[test]
    fn legacy_json_is_not_mistaken_for_binary() {
        assert!(!is_binary(b"{\"stream\":\"load\"}"));
        assert!(!is_binary(b""));
    }

    /// Every prefix and every single-byte change of a valid value decodes to
    /// a record or an error, never a panic; prefixes are always errors.
    #[test]
    fn damaged_values_are_errors_not_panics() {
        let meter = MeterId::new("M1");
        for r in samples() {
            let bytes = encode(&r);
            for n in 0..bytes.len() {
                assert!(decode(&meter, &bytes[..n]).is_err(), "prefix {n} of {r:?}");
            }
            for i in 0..bytes.len() {
                for b in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut m = bytes.clone();
                    m[i] = b;
                    let _ = decode(&meter, &m);
                }
            }
        }
        // Scale 29, in either form.
        assert_eq!(
            decode(&meter, &[LOAD_SCALE_EACH, 0, 0, 29, 2]),
            Err(CodecError("decimal out of range"))
        );
        assert_eq!(
            decode(&meter, &[LOAD, 0, 0, 29, 2]),
            Err(CodecError("decimal out of range"))
        );
        assert!(decode(
            &meter,
            &[
                LOAD, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
            ]
        )
        .is_err());
        assert!(decode(&meter, &[EVENT, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
