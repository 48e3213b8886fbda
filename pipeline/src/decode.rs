//! Payload → records. A payload is one JSON object or an array of them; each
//! record is validated on its own so one bad record never costs its batch.
//! Numbers are taken from their literal text (exact decimals), and nothing
//! from outside is unwrapped: every failure becomes a [`Rejection`].
//!
//! A payload is parsed once: each record's fields are taken as raw JSON as
//! the parser meets them, and its text is found by offsets, not copied. A
//! payload that pass refuses (malformed JSON, a duplicate field) is decoded
//! again value by value, which keeps a bad record's error its own.

mod record_fields;

use crate::archive::MeterIndex;
use crate::fields::short;
use crate::records::{Record, Stream};
use record_fields::Fields;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Why a record (or a whole payload) was refused. The `reason` is the
/// metric label and dead-letter reason; `detail` tells the operator what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
    /// The offending record's text (or a prefix of the payload), for the dead letter.
    pub raw: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    MalformedJson,
    PayloadTooLarge,
    NotAnObject,
    MissingField,
    WrongType,
    BadValue,
    BadTimestamp,
    UnknownMeter,
    UnknownTopic,
    Late,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Reason::MalformedJson => "malformed_json",
            Reason::PayloadTooLarge => "payload_too_large",
            Reason::NotAnObject => "not_an_object",
            Reason::MissingField => "missing_field",
            Reason::WrongType => "wrong_type",
            Reason::BadValue => "bad_value",
            Reason::BadTimestamp => "bad_timestamp",
            Reason::UnknownMeter => "unknown_meter",
            Reason::UnknownTopic => "unknown_topic",
            Reason::Late => "late",
        }
    }
}

/// Most characters of raw text kept in a dead letter; the rest is cut.
pub const DEAD_LETTER_RAW_CHARS: usize = 2048;

/// A record's text as kept in a dead letter.
pub fn clip(raw: &str) -> String {
    jicha_domain::text::clip(raw, DEAD_LETTER_RAW_CHARS).into_owned()
}

fn reject(reason: Reason, detail: impl Into<String>, raw: &str) -> Rejection {
    Rejection {
        reason,
        detail: detail.into(),
        raw: clip(raw),
    }
}

/// One message of a source (an MQTT message, a replayed line), decoded ahead of the monitor's lock (so decoding can
/// run beside the evaluation of the batch before). Each record keeps its
/// text as a span of the payload, for a dead letter if it is refused later.
pub struct DecodedMessage {
    pub topic: String,
    payload: Vec<u8>,
    /// None: the topic is under no stream.
    pub stream: Option<Stream>,
    records: Vec<Result<(Record, Span), Rejection>>,
    /// The meter index the records were resolved against, and for each
    /// record whether its meter is in it.
    resolved: Option<(MeterIndex, Vec<bool>)>,
}

/// What [`DecodedMessage::into_parts`] hands over.
pub type MessageParts = (
    String,
    Vec<Result<(Record, Span), Rejection>>,
    Vec<u8>,
    Option<(MeterIndex, Vec<bool>)>,
);

/// Where a record's text lies in its payload.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    start: usize,
    len: usize,
}

impl Span {
    pub fn text(self, payload: &[u8]) -> &str {
        payload
            .get(self.start..self.start.saturating_add(self.len))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

impl DecodedMessage {
    /// Decodes a message of `stream`, as its source routed it (None: the
    /// source could not route it; the monitor dead-letters it as
    /// unknown_topic). `topic` is only its origin, for dead letters.
    ///
    /// Given the archive's `meters`, each record's meter is resolved on the
    /// way: a known meter's id is the archive's shared copy. Done off the
    /// monitor's lock; the monitor uses the result only if the archive has
    /// not changed since (without `meters` it looks every meter up itself).
    pub fn decode(
        stream: Option<Stream>,
        topic: String,
        payload: Vec<u8>,
        max_bytes: usize,
        meters: Option<&MeterIndex>,
    ) -> DecodedMessage {
        let Records { list, known } = match stream {
            None => Records::default(),
            Some(s) => decode_records(s, &payload, max_bytes, meters),
        };
        DecodedMessage {
            topic,
            payload,
            stream,
            records: list,
            resolved: meters.map(|m| (m.clone(), known)),
        }
    }

    /// A message its source could not take apart (e.g. a replay line that is
    /// not JSON): refused whole, with `rejection` as its dead letter under
    /// `stream` (None: unknown_topic, as a message no route takes).
    pub fn refused(stream: Option<Stream>, topic: String, rejection: Rejection) -> DecodedMessage {
        let payload = rejection.raw.clone().into_bytes();
        DecodedMessage {
            topic,
            payload,
            stream,
            records: vec![Err(rejection)],
            resolved: None,
        }
    }

    /// The topic, the records (or rejections), the payload their spans
    /// point into, and the meters they were resolved against.
    pub fn into_parts(self) -> MessageParts {
        (self.topic, self.records, self.payload, self.resolved)
    }

    /// The start of the payload, for the dead letter of a message refused whole.
    pub fn prefix(&self) -> String {
        String::from_utf8_lossy(&self.payload[..self.payload.len().min(256)]).into_owned()
    }
}

/// Decodes one MQTT payload of `stream`. Returns one entry per record found
/// (or a single rejection when the payload itself is unusable), each with
/// its text.
pub fn decode_payload(
    stream: Stream,
    payload: &[u8],
    max_bytes: usize,
) -> Vec<Result<(Record, &str), Rejection>> {
    decode_records(stream, payload, max_bytes, None)
        .list
        .into_iter()
        .map(|r| r.map(|(rec, span)| (rec, span.text(payload))))
        .collect()
}

/// A payload's records in order, each decoded (with where its text lies)
/// or refused, and for each whether the meters it was resolved against
/// know its meter.
#[derive(Default)]
struct Records {
    list: Vec<Result<(Record, Span), Rejection>>,
    known: Vec<bool>,
}

impl Records {
    fn refused(rejection: Rejection) -> Records {
        let mut records = Records::default();
        records.refuse(rejection);
        records
    }

    fn accept(&mut self, record: Record, known: bool, span: Span) {
        self.list.push(Ok((record, span)));
        self.known.push(known);
    }

    fn refuse(&mut self, rejection: Rejection) {
        self.list.push(Err(rejection));
        self.known.push(false);
    }
}

/// Decodes a payload, resolving meters against `meters` if given. A
/// payload too large, not UTF-8 or not JSON is one rejection.
fn decode_records(
    stream: Stream,
    payload: &[u8],
    max_bytes: usize,
    meters: Option<&MeterIndex>,
) -> Records {
    if payload.len() > max_bytes {
        let prefix = String::from_utf8_lossy(&payload[..payload.len().min(256)]).into_owned();
        return Records::refused(reject(
            Reason::PayloadTooLarge,
            format!(
                "payload of {} bytes exceeds the limit of {max_bytes} bytes; split it into smaller batches or raise max_payload_bytes",
                payload.len()
            ),
            &prefix,
        ));
    }
    let text = match std::str::from_utf8(payload) {
        Ok(t) => t,
        Err(e) => {
            let lossy = String::from_utf8_lossy(payload).into_owned();
            return Records::refused(reject(
                Reason::MalformedJson,
                format!("payload is not UTF-8: {e}"),
                &lossy,
            ));
        }
    };
    let ctx = Ctx {
        stream,
        meters,
        text,
    };
    single_pass(ctx).unwrap_or_else(|_| per_record(ctx))
}

/// What every record of a payload is decoded with.
#[derive(Clone, Copy)]
struct Ctx<'p, 'm> {
    stream: Stream,
    meters: Option<&'m MeterIndex>,
    /// The payload; a record's bounds are byte offsets into it.
    text: &'p str,
}

impl Ctx<'_, '_> {
    /// Where `part`, a slice of the payload, starts in it.
    fn offset(&self, part: &str) -> usize {
        (part.as_ptr() as usize).wrapping_sub(self.text.as_ptr() as usize)
    }

    /// The first byte at or after `at` that is not JSON whitespace.
    fn skip_ws(&self, at: usize) -> usize {
        let rest = self.text.as_bytes().get(at..).unwrap_or_default();
        at + rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\n' | b'\t' | b'\r'))
            .count()
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.text.as_bytes().get(at).copied()
    }
}

/// The usual way: one parse of the payload, each record decoded as the
/// parser meets it. Anything unusual (malformed JSON, a duplicate field, a
/// key serde_json refuses) fails it; [`per_record`] then decides, so such
/// payloads end exactly as they would have there.
fn single_pass(ctx: Ctx<'_, '_>) -> serde_json::Result<Records> {
    let mut records = Records::default();
    let mut de = serde_json::Deserializer::from_str(ctx.text);
    let start = ctx.skip_ws(0);
    if ctx.byte(start) == Some(b'[') {
        de.deserialize_seq(Batch {
            ctx,
            open: start,
            out: &mut records,
        })?;
    } else {
        Element {
            ctx,
            start,
            out: &mut records,
        }
        .deserialize(&mut de)?;
    }
    de.end()?;
    Ok(records)
}

/// The payload split into its values first, then each record parsed on its
/// own: slower, but a record's errors stay its own and name positions in
/// its text, and a payload that is not JSON is refused whole.
fn per_record(ctx: Ctx<'_, '_>) -> Records {
    let text = ctx.text;
    let first = text.bytes().find(|b| !b.is_ascii_whitespace());
    let mut records = Records::default();
    if first == Some(b'[') {
        match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(items) => {
                for raw in items {
                    record_alone(ctx, raw.get(), &mut records);
                }
            }
            Err(e) => records.refuse(reject(
                Reason::MalformedJson,
                format!("batch is not a JSON array of records: {e}"),
                text,
            )),
        }
    } else {
        match serde_json::from_str::<&RawValue>(text) {
            Ok(raw) => record_alone(ctx, raw.get(), &mut records),
            Err(e) => records.refuse(reject(
                Reason::MalformedJson,
                format!("payload is not JSON: {e}"),
                text,
            )),
        }
    }
    records
}

/// One record, `raw` (valid JSON, a slice of the payload), parsed by itself.
fn record_alone(ctx: Ctx<'_, '_>, raw: &str, out: &mut Records) {
    let mut de = serde_json::Deserializer::from_str(raw);
    let element = Element {
        ctx,
        start: ctx.offset(raw),
        out,
    };
    if let Err(e) = element.deserialize(&mut de) {
        out.refuse(reject(
            Reason::MalformedJson,
            format!("record is not a valid object: {e}"),
            raw,
        ));
    }
}

/// Raised when a record's bounds cannot be found where the JSON says they
/// are: never for JSON serde_json accepts, but if it were, [`per_record`]
/// would decide rather than a record getting a wrong text.
const BOUNDS_LOST: &str = "record bounds lost";

/// The elements of a batch array that starts at byte `open`, decoded into `out`.
struct Batch<'p, 'm, 'o> {
    ctx: Ctx<'p, 'm>,
    open: usize,
    out: &'o mut Records,
}

impl<'de> Visitor<'de> for Batch<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ctx = self.ctx;
        // Elements are separated by a comma and whitespace, which is all
        // that lies between one's end and the next one's start.
        let mut start = ctx.skip_ws(self.open + 1);
        while let Some(end) = seq.next_element_seed(Element {
            ctx,
            start,
            out: &mut *self.out,
        })? {
            let after = ctx.skip_ws(end);
            start = match ctx.byte(after) {
                Some(b',') => ctx.skip_ws(after + 1),
                _ => after,
            };
        }
        Ok(())
    }
}

/// One record (or whatever stands in its place) starting at byte `start`,
/// decoded into `out`. Yields the offset just past it.
struct Element<'p, 'm, 'o> {
    ctx: Ctx<'p, 'm>,
    start: usize,
    out: &'o mut Records,
}

impl<'de> DeserializeSeed<'de> for Element<'_, '_, '_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        if self.ctx.byte(self.start) == Some(b'{') {
            return d.deserialize_map(self);
        }
        // Taken raw: any JSON value is a record's worth of refusal.
        let raw = <&RawValue>::deserialize(d)?.get();
        if self.ctx.offset(raw) != self.start {
            return Err(de::Error::custom(BOUNDS_LOST));
        }
        self.out.refuse(reject(
            Reason::NotAnObject,
            format!("a record must be a JSON object, found {}", short(raw)),
            raw,
        ));
        Ok(self.start + raw.len())
    }
}

impl<'de> Visitor<'de> for Element<'_, '_, '_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let ctx = self.ctx;
        let mut fields = Fields::of(ctx.stream);
        // The end of the last value (or of the opening brace): only
        // whitespace lies between it and the closing brace.
        let mut last = self.start + 1;
        while let Some(Key(key)) = map.next_key()? {
            let value: &'de RawValue = match fields.slot(&key) {
                Some((name, slot)) => {
                    if slot.is_some() {
                        // Refused before the value, as a derived
                        // `Deserialize` does, so the message per_record
                        // gives is the one it always gave.
                        return Err(de::Error::duplicate_field(name));
                    }
                    slot.insert(map.next_value()?)
                }
                None => map.next_value()?,
            };
            last = ctx.offset(value.get()) + value.get().len();
        }
        let close = ctx.skip_ws(last);
        let text = match (ctx.byte(close), ctx.text.get(self.start..close + 1)) {
            (Some(b'}'), Some(text)) => text,
            _ => return Err(de::Error::custom(BOUNDS_LOST)),
        };
        match fields.validate(ctx.meters) {
            Ok((record, known)) => {
                let span = Span {
                    start: self.start,
                    len: text.len(),
                };
                self.out.accept(record, known, span);
            }
            Err((reason, detail)) => self.out.refuse(reject(reason, detail, text)),
        }
        Ok(close + 1)
    }
}

/// A field name: borrowed from the payload unless it has escapes.
struct Key<'p>(Cow<'p, str>);

impl<'p> Deserialize<'p> for Key<'p> {
    fn deserialize<D: Deserializer<'p>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'p> Visitor<'p> for KeyVisitor {
    type Value = Key<'p>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'p str) -> Result<Key<'p>, E> {
        Ok(Key(Cow::Borrowed(s)))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'p>, E> {
        Ok(Key(Cow::Owned(s.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn one(stream: Stream, s: &str) -> Result<Record, Rejection> {
        let mut v = decode_payload(stream, s.as_bytes(), 1 << 20);
        assert_eq!(v.len(), 1);
        v.remove(0).map(|(r, _)| r)
    }

    #[test]
    fn load_batch_keeps_good_records_around_bad_ones() {
        let p = r#"[{"meter_id":"M1","ts":"2026-11-03T14:00:00+08:00","p_kw":0.1},
                   {"meter_id":"M1","ts":"2026-11-03T14:15:00+08:00","p_kw":"abc"},
                   42,
                   {"meter_id":"M2","ts":1793700000000,"p_kw":12.5,"q_kvar":null}]"#;
        let v = decode_payload(Stream::Load, p.as_bytes(), 1 << 20);
        assert_eq!(v.len(), 4);
        match &v[0] {
            Ok((Record::Load(l), _)) => assert_eq!(l.p_kw.to_string(), "0.1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(v[1].as_ref().unwrap_err().reason, Reason::WrongType);
        assert_eq!(v[2].as_ref().unwrap_err().reason, Reason::NotAnObject);
        assert!(v[3].is_ok());
    }

    #[test]
    fn whole_payload_failures() {
        assert_eq!(
            one(Stream::Load, "{not json").unwrap_err().reason,
            Reason::MalformedJson
        );
        // Nesting up to the payload limit is refused, never a stack overflow.
        for depth in [100, 10_000, 500_000] {
            let deep = "[".repeat(depth) + &"]".repeat(depth);
            let r = decode_payload(Stream::Load, deep.as_bytes(), 1 << 20);
            assert!(r.iter().all(|x| x.is_err()), "depth {depth}");
            let deep_obj = "{\"a\":".repeat(depth) + "1" + &"}".repeat(depth);
            assert!(
                one(Stream::Load, &deep_obj).is_err(),
                "object depth {depth}"
            );
        }
        let big = vec![b' '; 2 << 20];
        let v = decode_payload(Stream::Load, &big, 1 << 20);
        assert_eq!(v[0].as_ref().unwrap_err().reason, Reason::PayloadTooLarge);
    }

    #[test]
    fn field_checks() {
        let r = one(
            Stream::Load,
            r#"{"meter_id":"M1","ts":"2026-11-03T14:07:00+08:00","p_kw":1}"#,
        );
        assert_eq!(r.unwrap_err().reason, Reason::BadTimestamp);
        let r = one(Stream::Load, r#"{"meter_id":"M1","p_kw":1}"#);
        assert_eq!(r.unwrap_err().reason, Reason::MissingField);
        let r = one(
            Stream::Freeze,
            r#"{"meter_id":"M1","date":"2026-11-03","ts":"2026-11-04T00:00:00+08:00","reg_total":-1}"#,
        );
        assert_eq!(r.unwrap_err().reason, Reason::BadValue);
        let r = one(
            Stream::Freeze,
            r#"{"meter_id":"M1","date":"2026-11-03","ts":"2026-11-04T00:00:00+08:00","reg_total":1e2}"#,
        );
        match r {
            Ok(Record::Freeze(f)) => assert_eq!(f.reg_total, Decimal::from(100)),
            other => panic!("{other:?}"),
        }
        let r = one(
            Stream::Event,
            r#"{"meter_id":"M1","ts":"2026-11-03T14:07:00+08:00","code":["x"]}"#,
        );
        assert_eq!(r.unwrap_err().reason, Reason::WrongType);
    }

    /// One entry of a decode: the record with its text, or its rejection.
    type Outcome = Result<(Record, String), Rejection>;

    /// Each entry of a decode, with its text and whether its meter is known.
    fn outcomes(payload: &str, r: &Records) -> Vec<(Outcome, bool)> {
        r.list
            .iter()
            .zip(&r.known)
            .map(|(x, k)| {
                let x = match x {
                    Ok((rec, span)) => Ok((rec.clone(), span.text(payload.as_bytes()).to_string())),
                    Err(rej) => Err(rej.clone()),
                };
                (x, *k)
            })
            .collect()
    }

    fn ctx<'p, 'm>(stream: Stream, text: &'p str, meters: Option<&'m MeterIndex>) -> Ctx<'p, 'm> {
        Ctx {
            stream,
            meters,
            text,
        }
    }

    fn meters(ids: &[&str]) -> MeterIndex {
        let meters: Vec<String> = ids
            .iter()
            .map(|m| format!(r#"{{"meter_id":"{m}","multiplier":1}}"#))
            .collect();
        let doc = format!(
            r#"{{"customers":[{{"customer_id":"C1","org_code":"41/4107/410727","usage_category":"large_industry",
            "tariff_kind":"two_part","contract_kva":400,"meters":[{}]}}]}}"#,
            meters.join(",")
        );
        let mut archive = crate::archive::Archive::default();
        for c in crate::archive::Archive::parse_document(&doc).unwrap() {
            archive.upsert(c);
        }
        archive.meter_index().clone()
    }

    /// The single pass decodes what the two passes would, entry by entry,
    /// text by text.
    fn agree(stream: Stream, payload: &str, m: Option<&MeterIndex>) -> Records {
        let c = ctx(stream, payload, m);
        let single = single_pass(c).unwrap_or_else(|e| panic!("{e}: {payload}"));
        assert_eq!(
            outcomes(payload, &single),
            outcomes(payload, &per_record(c)),
            "{payload}"
        );
        single
    }

    #[test]
    fn single_pass_edge_cases() {
        let p = "[ {\"meter_id\":\"M1\",\"ts\":\"2026-11-03T14:00:00+08:00\",\"p_kw\":1,\"extra\":{\"a\":[1,{}]}} ,\n\
                 42,\r\n\t{\"meter\\u005fid\":\"M\\u0031\",\"ts\":\"2026-11-03T14:15:00Z\",\"p_kw\":\"x\"},\
                 {\"meter_id\":\"M\\u0032\",\"ts\":\"2026-11-03T14:30:00.000+08:00\",\"p_kw\":2.50}, { } ]";
        let m = meters(&["M1"]);
        let r = agree(Stream::Load, p, Some(&m));
        let texts: Vec<&str> = r
            .list
            .iter()
            .map(|x| match x {
                Ok((_, span)) => span.text(p.as_bytes()),
                Err(rej) => rej.raw.as_str(),
            })
            .collect();
        assert_eq!(texts, [
            "{\"meter_id\":\"M1\",\"ts\":\"2026-11-03T14:00:00+08:00\",\"p_kw\":1,\"extra\":{\"a\":[1,{}]}}",
            "42",
            "{\"meter\\u005fid\":\"M\\u0031\",\"ts\":\"2026-11-03T14:15:00Z\",\"p_kw\":\"x\"}",
            "{\"meter_id\":\"M\\u0032\",\"ts\":\"2026-11-03T14:30:00.000+08:00\",\"p_kw\":2.50}",
            "{ }",
        ]);
        // An unknown field is ignored; the known meter is the archive's copy.
        match &r.list[0] {
            Ok((Record::Load(l), _)) => {
                let shared = m.canonical("M1").map(|id| id.as_str().as_ptr());
                assert_eq!(Some(l.meter_id.as_str().as_ptr()), shared);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.list[1].as_ref().unwrap_err().reason, Reason::NotAnObject);
        // An escaped key still names its field: the record gets as far as `p_kw`.
        let wrong = r.list[2].as_ref().unwrap_err();
        assert_eq!(
            (wrong.reason, wrong.detail.as_str()),
            (
                Reason::WrongType,
                "`p_kw` must be a JSON number, found \"x\""
            )
        );
        // An escaped value is unescaped.
        match &r.list[3] {
            Ok((Record::Load(l), _)) => {
                assert_eq!(l.meter_id.as_str(), "M2");
                assert_eq!(l.p_kw.to_string(), "2.50");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.list[4].as_ref().unwrap_err().reason, Reason::MissingField);
        assert_eq!(r.known, [true, false, false, false, false]);
    }

    /// A duplicate field costs its record only, with the error serde gives
    /// for that record's own text.
    #[test]
    fn duplicate_field_is_the_records_own_failure() {
        let p = r#"[{"meter_id":"M1","ts":0,"p_kw":1},
                    {"meter_id":"M1","ts":0,"meter_id":"M2","p_kw":1},
                    {"meter_id":"M3","ts":0,"p_kw":1}]"#;
        assert!(single_pass(ctx(Stream::Load, p, None)).is_err());
        let v = decode_payload(Stream::Load, p.as_bytes(), 1 << 20);
        assert_eq!(v.len(), 3);
        assert!(v[0].is_ok() && v[2].is_ok());
        let dup = v[1].as_ref().unwrap_err();
        assert_eq!(dup.reason, Reason::MalformedJson);
        assert_eq!(
            dup.detail,
            "record is not a valid object: duplicate field `meter_id` at line 1 column 34"
        );
        assert_eq!(
            dup.raw,
            r#"{"meter_id":"M1","ts":0,"meter_id":"M2","p_kw":1}"#
        );
        // Also when the field was null the first time, as a derived struct sees it.
        let p = r#"{"meter_id":null,"ts":0,"p_kw":1,"meter_id":"M1"}"#;
        let v = decode_payload(Stream::Load, p.as_bytes(), 1 << 20);
        assert_eq!(v[0].as_ref().unwrap_err().reason, Reason::MalformedJson);
    }

    /// Payloads of every kind of element, with any JSON whitespace between:
    /// the single pass takes them all and agrees with the two passes.
    #[test]
    fn single_pass_agrees_with_two_passes() {
        let elements = [
            r#"{"meter_id":"M1","ts":"2026-11-03T14:00:00+08:00","p_kw":12.34,"q_kvar":1.20}"#,
            r#"{"meter_id":"M2","date":"2026-11-03","ts":"2026-11-04T00:00:00+08:00","reg_total":5.5,"reg_valley":null}"#,
            r#"{"meter_id":"M1","ts":1793700000000,"code":"cover_open","state":"start","phase":"A"}"#,
            r#"{"meter_id":"M\u0032","ts":"2026-02-29T00:00:00+08:00","p_kw":1,"code":"\u00e9"}"#,
            r#"{"meter_id":"","ts":"2024-02-29T00:00:00Z","p_kw":[1],"date":"x","reg_total":-1,"code":""}"#,
            r#"{"x":{"y":[[[{}]]]},"meter_id":"M9","ts":"1969-12-31T23:45:00-00:30","p_kw":"1","code":7}"#,
            r#"{"\u0074s":0,"meter_id":"M1","p_kw":1e2,"reg_total":0,"date":"2026-11-03","code":"c"}"#,
            "{}",
            "42",
            "1e999",
            r#""a string""#,
            "[1,{\"a\":2}]",
            "null",
            "true",
        ];
        let ws = ["", " ", "\n", "\t", "\r\n  "];
        let m = meters(&["M1", "M2"]);
        let mut state = 7u64;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        for _ in 0..3_000 {
            let count = next(6);
            let mut p = String::from(ws[next(ws.len())]);
            // Now and then a lone value rather than an array.
            let single = count == 1 && next(2) == 0;
            if !single {
                p.push('[');
            }
            for i in 0..count {
                if i > 0 {
                    p.push_str(ws[next(ws.len())]);
                    p.push(',');
                }
                p.push_str(ws[next(ws.len())]);
                p.push_str(elements[next(elements.len())]);
                p.push_str(ws[next(ws.len())]);
            }
            if !single {
                p.push(']');
            }
            p.push_str(ws[next(ws.len())]);
            for stream in Stream::ALL {
                agree(stream, &p, Some(&m));
                agree(stream, &p, None);
            }
        }
    }

    /// Decoding with the archive's meters marks each record known or not,
    /// and a known meter's id is the archive's shared copy.
    #[test]
    fn meters_resolved_while_decoding() {
        let m = meters(&["M1"]);
        let p = r#"[{"meter_id":"M1","ts":0,"p_kw":1},{"meter_id":"M2","ts":0,"p_kw":1},7,{"meter_id":"M1","ts":1,"p_kw":1}]"#;
        let (_, records, _, resolved) = DecodedMessage::decode(
            Some(Stream::Load),
            "meter/load/x".into(),
            p.into(),
            1 << 20,
            Some(&m),
        )
        .into_parts();
        let (index, known) = resolved.unwrap();
        assert!(index.same(&m));
        // The second meter is unknown; the third and fourth are rejected.
        assert_eq!(known, [true, false, false, false]);
        let id = |i: usize| match &records[i] {
            Ok((r, _)) => r.meter_id().as_str().as_ptr(),
            Err(e) => panic!("record {i}: {e:?}"),
        };
        let shared = m.canonical("M1").unwrap().as_str().as_ptr();
        assert_eq!(id(0), shared);
        assert_ne!(id(1), shared);
        assert!(records[2].is_err() && records[3].is_err());
        let unresolved = DecodedMessage::decode(
            Some(Stream::Load),
            "meter/load/x".into(),
            p.into(),
            1 << 20,
            None,
        );
        assert!(unresolved.into_parts().3.is_none());
    }
}
