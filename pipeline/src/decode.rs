//! Payload → records. A payload is one JSON object or an array of them; each
//! record is validated on its own so one bad record never costs its batch.
//! Numbers are taken from their literal text (exact decimals), and nothing
//! from outside is unwrapped: every failure becomes a [`Rejection`].

use crate::archive::MeterIndex;
use crate::fields::{opt_num, opt_str, req_meter, req_num, req_str, req_ts, short, FieldResult};
use crate::records::{Freeze, LoadPoint, MeterEvent, Phases, Record, Stream};
use crate::time::parse_date;
use serde::Deserialize;
use serde_json::value::RawValue;

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

/// Largest raw text kept in a dead letter; the rest is cut.
const DEAD_LETTER_RAW_MAX: usize = 2048;

pub fn clip(raw: &str) -> String {
    if raw.len() <= DEAD_LETTER_RAW_MAX {
        return raw.to_string();
    }
    let mut end = DEAD_LETTER_RAW_MAX;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…(+{} bytes)", &raw[..end], raw.len() - end)
}

fn reject(reason: Reason, detail: impl Into<String>, raw: &str) -> Rejection {
    Rejection {
        reason,
        detail: detail.into(),
        raw: clip(raw),
    }
}

/// One MQTT message, decoded ahead of the monitor's lock (so decoding can
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
    /// `raw` is a slice of `payload` (decode_payload only hands out those).
    fn of(payload: &[u8], raw: &str) -> Span {
        Span {
            start: (raw.as_ptr() as usize).saturating_sub(payload.as_ptr() as usize),
            len: raw.len(),
        }
    }

    pub fn text(self, payload: &[u8]) -> &str {
        payload
            .get(self.start..self.start.saturating_add(self.len))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

impl DecodedMessage {
    pub fn decode(topic: String, payload: Vec<u8>, max_bytes: usize) -> DecodedMessage {
        let stream = Stream::of_topic(&topic);
        let records = match stream {
            None => Vec::new(),
            Some(s) => decode_payload(s, &payload, max_bytes)
                .into_iter()
                .map(|r| r.map(|(rec, raw)| (rec, Span::of(&payload, raw))))
                .collect(),
        };
        DecodedMessage {
            topic,
            payload,
            stream,
            records,
            resolved: None,
        }
    }

    /// Looks each record's meter up in `index`, replacing a known meter's
    /// id by the archive's shared copy. Done while decoding, off the
    /// monitor's lock; the monitor uses the result only if the archive has
    /// not changed since.
    pub fn resolve(&mut self, index: &MeterIndex) {
        let known = self
            .records
            .iter_mut()
            .map(|r| match r {
                Ok((rec, _)) => match index.canonical(rec.meter_id()) {
                    Some(id) => {
                        rec.set_meter_id(id.clone());
                        true
                    }
                    None => false,
                },
                Err(_) => false,
            })
            .collect();
        self.resolved = Some((index.clone(), known));
    }

    /// The topic, the records (or rejections), the payload their spans
    /// point into, and what [`DecodedMessage::resolve`] found.
    pub fn into_parts(self) -> MessageParts {
        (self.topic, self.records, self.payload, self.resolved)
    }

    /// The start of the payload, for the dead letter of a message refused whole.
    pub fn prefix(&self) -> String {
        String::from_utf8_lossy(&self.payload[..self.payload.len().min(256)]).into_owned()
    }
}

/// Decodes one MQTT payload of `stream`. Returns one entry per record found
/// (or a single rejection when the payload itself is unusable).
pub fn decode_payload(
    stream: Stream,
    payload: &[u8],
    max_bytes: usize,
) -> Vec<Result<(Record, &str), Rejection>> {
    if payload.len() > max_bytes {
        let prefix = String::from_utf8_lossy(&payload[..payload.len().min(256)]).into_owned();
        return vec![Err(reject(
            Reason::PayloadTooLarge,
            format!(
                "payload of {} bytes exceeds the limit of {max_bytes} bytes; split it into smaller batches or raise max_payload_bytes",
                payload.len()
            ),
            &prefix,
        ))];
    }
    let text = match std::str::from_utf8(payload) {
        Ok(t) => t,
        Err(e) => {
            let lossy = String::from_utf8_lossy(payload).into_owned();
            return vec![Err(reject(
                Reason::MalformedJson,
                format!("payload is not UTF-8: {e}"),
                &lossy,
            ))];
        }
    };
    let first = text.bytes().find(|b| !b.is_ascii_whitespace());
    if first == Some(b'[') {
        match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(items) => items
                .into_iter()
                .map(|raw| decode_record(stream, raw))
                .collect(),
            Err(e) => vec![Err(reject(
                Reason::MalformedJson,
                format!("batch is not a JSON array of records: {e}"),
                text,
            ))],
        }
    } else {
        match serde_json::from_str::<&RawValue>(text) {
            Ok(raw) => vec![decode_record(stream, raw)],
            Err(e) => vec![Err(reject(
                Reason::MalformedJson,
                format!("payload is not JSON: {e}"),
                text,
            ))],
        }
    }
}

fn decode_record(stream: Stream, raw: &RawValue) -> Result<(Record, &str), Rejection> {
    let text = raw.get();
    if !text.trim_start().starts_with('{') {
        return Err(reject(
            Reason::NotAnObject,
            format!("a record must be a JSON object, found {}", short(text)),
            text,
        ));
    }
    let res = match stream {
        Stream::Load => serde_json::from_str::<LoadIn>(text)
            .map_err(shape_error)
            .and_then(LoadIn::validate),
        Stream::Freeze => serde_json::from_str::<FreezeIn>(text)
            .map_err(shape_error)
            .and_then(FreezeIn::validate),
        Stream::Event => serde_json::from_str::<EventIn>(text)
            .map_err(shape_error)
            .and_then(EventIn::validate),
    };
    res.map(|r| (r, text))
        .map_err(|(reason, detail)| reject(reason, detail, text))
}

fn shape_error(e: serde_json::Error) -> (Reason, String) {
    (
        Reason::MalformedJson,
        format!("record is not a valid object: {e}"),
    )
}

#[derive(Deserialize)]
struct LoadIn<'a> {
    #[serde(borrow)]
    meter_id: Option<&'a RawValue>,
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(borrow)]
    p_kw: Option<&'a RawValue>,
    #[serde(borrow)]
    q_kvar: Option<&'a RawValue>,
    #[serde(borrow)]
    ua: Option<&'a RawValue>,
    #[serde(borrow)]
    ub: Option<&'a RawValue>,
    #[serde(borrow)]
    uc: Option<&'a RawValue>,
    #[serde(borrow)]
    ia: Option<&'a RawValue>,
    #[serde(borrow)]
    ib: Option<&'a RawValue>,
    #[serde(borrow)]
    ic: Option<&'a RawValue>,
    #[serde(borrow)]
    pf: Option<&'a RawValue>,
}

/// Load points are 15-minute points: a timestamp off that grid is not one.
const LOAD_GRID_MS: i64 = 15 * 60_000;

impl LoadIn<'_> {
    fn validate(self) -> FieldResult<Record> {
        let ts = req_ts(self.ts, "ts")?;
        if ts.rem_euclid(LOAD_GRID_MS) != 0 {
            return Err((
                Reason::BadTimestamp,
                "`ts` of a load point must lie on the 15-minute grid (:00, :15, :30, :45)".into(),
            ));
        }
        Ok(Record::Load(LoadPoint {
            meter_id: req_meter(self.meter_id)?,
            ts,
            p_kw: req_num(self.p_kw, "p_kw")?,
            q_kvar: opt_num(self.q_kvar, "q_kvar")?,
            phases: Phases::from_values([
                opt_num(self.ua, "ua")?,
                opt_num(self.ub, "ub")?,
                opt_num(self.uc, "uc")?,
                opt_num(self.ia, "ia")?,
                opt_num(self.ib, "ib")?,
                opt_num(self.ic, "ic")?,
                opt_num(self.pf, "pf")?,
            ]),
        }))
    }
}

#[derive(Deserialize)]
struct FreezeIn<'a> {
    #[serde(borrow)]
    meter_id: Option<&'a RawValue>,
    #[serde(borrow)]
    date: Option<&'a RawValue>,
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(borrow)]
    reg_total: Option<&'a RawValue>,
    #[serde(borrow)]
    reg_sharp: Option<&'a RawValue>,
    #[serde(borrow)]
    reg_peak: Option<&'a RawValue>,
    #[serde(borrow)]
    reg_flat: Option<&'a RawValue>,
    #[serde(borrow)]
    reg_valley: Option<&'a RawValue>,
    #[serde(borrow)]
    reg_q_total: Option<&'a RawValue>,
}

impl FreezeIn<'_> {
    fn validate(self) -> FieldResult<Record> {
        let date_text = req_str(self.date, "date")?;
        let date =
            parse_date(&date_text).map_err(|e| (Reason::BadTimestamp, format!("`date`: {e}")))?;
        let reg_total = req_num(self.reg_total, "reg_total")?;
        let regs = [
            ("reg_sharp", opt_num(self.reg_sharp, "reg_sharp")?),
            ("reg_peak", opt_num(self.reg_peak, "reg_peak")?),
            ("reg_flat", opt_num(self.reg_flat, "reg_flat")?),
            ("reg_valley", opt_num(self.reg_valley, "reg_valley")?),
            ("reg_q_total", opt_num(self.reg_q_total, "reg_q_total")?),
        ];
        if reg_total.is_sign_negative()
            || regs
                .iter()
                .any(|(_, v)| v.is_some_and(|d| d.is_sign_negative() && !d.is_zero()))
        {
            return Err((
                Reason::BadValue,
                "register readings cannot be negative".into(),
            ));
        }
        Ok(Record::Freeze(Freeze {
            meter_id: req_meter(self.meter_id)?,
            date,
            ts: req_ts(self.ts, "ts")?,
            reg_total,
            reg_sharp: regs[0].1,
            reg_peak: regs[1].1,
            reg_flat: regs[2].1,
            reg_valley: regs[3].1,
            reg_q_total: regs[4].1,
        }))
    }
}

#[derive(Deserialize)]
struct EventIn<'a> {
    #[serde(borrow)]
    meter_id: Option<&'a RawValue>,
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(borrow)]
    code: Option<&'a RawValue>,
    #[serde(borrow)]
    phase: Option<&'a RawValue>,
    #[serde(borrow)]
    state: Option<&'a RawValue>,
}

impl EventIn<'_> {
    fn validate(self) -> FieldResult<Record> {
        let code = req_str(self.code, "code")?;
        if code.is_empty() {
            return Err((Reason::BadValue, "`code` is empty".into()));
        }
        Ok(Record::Event(MeterEvent {
            meter_id: req_meter(self.meter_id)?,
            ts: req_ts(self.ts, "ts")?,
            code,
            phase: opt_str(self.phase, "phase")?,
            state: opt_str(self.state, "state")?,
        }))
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
}
