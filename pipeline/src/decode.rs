//! Payload → records. A payload is one JSON object or an array of them; each
//! record is validated on its own so one bad record never costs its batch.
//! Numbers are taken from their literal text (exact decimals), and nothing
//! from outside is unwrapped: every failure becomes a [`Rejection`].
//!
//! A payload is parsed once: each record's fields are taken as raw JSON as
//! the parser meets them, and its text is found by offsets, not copied. A
//! payload that pass refuses (malformed JSON, a duplicate field) is decoded
//! again value by value, which keeps a bad record's error its own.

mod fields;
mod record_fields;

use crate::archive::MeterIndex;
use crate::closed_set::closed_set;
use crate::json_text::short;
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

closed_set!(
    /// Why a record was rejected: the `reason` label of the reject counter
    /// and of a dead letter.
    Reason {
        MalformedJson => "malformed_json",
        PayloadTooLarge => "payload_too_large",
        NotAnObject => "not_an_object",
        MissingField => "missing_field",
        WrongType => "wrong_type",
        BadValue => "bad_value",
        BadTimestamp => "bad_timestamp",
        UnknownMeter => "unknown_meter",
        UnknownTopic => "unknown_topic",
        Late => "late",
    }
);

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
mod tests;
