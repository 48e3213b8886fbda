//! The meter-stream decoder: records sent in any field order, number form
//! and string escaping decode to exactly their values; each kind of damage
//! costs only its record, with its own reason and a detail naming the field.

use super::{id, json_string, object, optional, quantity, text, Sent, CASES};
use crate::decode::{DecodedMessage, Reason, Rejection, DEAD_LETTER_RAW_CHARS};
use crate::ids::MeterId;
use crate::records::{Freeze, LoadPoint, MeterEvent, Phases, Record, Stream};
use crate::time::{date_from_days, EpochMs};
use chrono::{DateTime, FixedOffset, SecondsFormat};
use proptest::prelude::*;
use proptest::sample::select;

/// The decoder under test. Every test decodes through here, so a change of
/// `DecodedMessage::decode`'s signature is a change of this function only.
fn decode(stream: Stream, payload: &[u8], max_bytes: usize) -> Vec<Result<Record, Rejection>> {
    let topic = format!("meter/{}/T0001", stream.name());
    let (_, records, _, _) =
        DecodedMessage::decode(Some(stream), topic, payload.to_vec(), max_bytes, None).into_parts();
    records.into_iter().map(|r| r.map(|(rec, _)| rec)).collect()
}

const LIMIT: usize = 1 << 20;

/// A record as sent: its fields as JSON text, and what it must decode to.
#[derive(Debug, Clone)]
struct Rec {
    fields: Vec<(String, String)>,
    expected: Record,
}

impl Rec {
    fn json(&self) -> String {
        object(&self.fields)
    }
}

/// Fields of `expected` in the order given; absent optional ones are left
/// out or sent as `null` as `nulls` says.
fn rec(fields: Vec<(&str, Option<String>)>, nulls: bool, expected: Record) -> Rec {
    let fields = fields
        .into_iter()
        .filter_map(|(k, v)| match v {
            Some(v) => Some((k.to_string(), v)),
            None => nulls.then(|| (k.to_string(), "null".to_string())),
        })
        .collect();
    Rec { fields, expected }
}

fn meter() -> impl Strategy<Value = Sent<MeterId>> {
    (id(), any::<bool>()).prop_map(|(s, esc)| Sent {
        value: MeterId::new(&s),
        json: json_string(&s, esc),
    })
}

/// 15 minutes: load points lie on this grid.
const QUARTER_MS: i64 = 900_000;

/// An instant (on the load grid if `grid`) from 1970 to about 2100, as
/// epoch milliseconds or RFC 3339 with one of several offsets.
fn instant(grid: bool) -> impl Strategy<Value = Sent<EpochMs>> {
    let ms = if grid {
        (0i64..4_500_000).prop_map(|q| q * QUARTER_MS).boxed()
    } else {
        (0i64..4_100_000_000_000).boxed()
    };
    (
        ms,
        select(vec![
            None,
            Some(0),
            Some(8 * 3600),
            Some(-(3 * 3600 + 1800)),
        ]),
    )
        .prop_map(|(ms, offset)| {
            let json = match offset {
                None => ms.to_string(),
                Some(secs) => {
                    let t = DateTime::from_timestamp_millis(ms)
                        .unwrap()
                        .with_timezone(&FixedOffset::east_opt(secs).unwrap());
                    json_string(&t.to_rfc3339_opts(SecondsFormat::AutoSi, secs == 0), false)
                }
            };
            Sent { value: ms, json }
        })
}

fn load() -> impl Strategy<Value = Rec> {
    (
        meter(),
        instant(true),
        quantity(-super::QUANTITY_MAX),
        optional(quantity(-super::QUANTITY_MAX)),
        proptest::collection::vec(optional(quantity(-super::QUANTITY_MAX)), 7),
        any::<bool>(),
    )
        .prop_map(|(m, ts, p, q, phases, nulls)| {
            let values: Vec<_> = phases.iter().map(|p| p.as_ref().map(|s| s.value)).collect();
            let expected = Record::Load(LoadPoint {
                meter_id: m.value,
                ts: ts.value,
                p_kw: p.value,
                q_kvar: q.as_ref().map(|s| s.value),
                phases: Phases::from_values(values.try_into().unwrap()),
            });
            let mut fields = vec![
                ("meter_id", Some(m.json)),
                ("ts", Some(ts.json)),
                ("p_kw", Some(p.json)),
                ("q_kvar", q.map(|s| s.json)),
            ];
            for (name, v) in ["ua", "ub", "uc", "ia", "ib", "ic", "pf"]
                .into_iter()
                .zip(phases)
            {
                fields.push((name, v.map(|s| s.json)));
            }
            rec(fields, nulls, expected)
        })
}

fn freeze() -> impl Strategy<Value = Rec> {
    (
        meter(),
        0i64..47_000,
        instant(false),
        quantity(0),
        proptest::collection::vec(optional(quantity(0)), 5),
        any::<bool>(),
    )
        .prop_map(|(m, day, ts, total, regs, nulls)| {
            let date = date_from_days(day).unwrap();
            let r: Vec<_> = regs.iter().map(|s| s.as_ref().map(|s| s.value)).collect();
            let expected = Record::Freeze(Box::new(Freeze {
                meter_id: m.value,
                date,
                ts: ts.value,
                reg_total: total.value,
                reg_sharp: r[0],
                reg_peak: r[1],
                reg_flat: r[2],
                reg_valley: r[3],
                reg_q_total: r[4],
            }));
            let mut fields = vec![
                ("meter_id", Some(m.json)),
                ("date", Some(json_string(&date.to_string(), false))),
                ("ts", Some(ts.json)),
                ("reg_total", Some(total.json)),
            ];
            let names = [
                "reg_sharp",
                "reg_peak",
                "reg_flat",
                "reg_valley",
                "reg_q_total",
            ];
            for (name, v) in names.into_iter().zip(regs) {
                fields.push((name, v.map(|s| s.json)));
            }
            rec(fields, nulls, expected)
        })
}

fn event() -> impl Strategy<Value = Rec> {
    (
        meter(),
        instant(false),
        text(1),
        proptest::option::of(text(0)),
        proptest::option::of(text(0)),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(m, ts, code, phase, state, esc, nulls)| {
            let expected = Record::Event(Box::new(MeterEvent {
                meter_id: m.value,
                ts: ts.value,
                code: code.clone(),
                phase: phase.clone(),
                state: state.clone(),
            }));
            let s = |t: Option<String>| t.map(|t| json_string(&t, esc));
            let fields = vec![
                ("meter_id", Some(m.json)),
                ("ts", Some(ts.json)),
                ("code", s(Some(code))),
                ("phase", s(phase)),
                ("state", s(state)),
            ];
            rec(fields, nulls, expected)
        })
}

/// A valid record of `stream`, its fields in any order.
fn record(stream: Stream) -> BoxedStrategy<Rec> {
    let r = match stream {
        Stream::Load => load().boxed(),
        Stream::Freeze => freeze().boxed(),
        Stream::Event => event().boxed(),
    };
    r.prop_flat_map(|r| {
        let expected = r.expected.clone();
        Just(r.fields).prop_shuffle().prop_map(move |fields| Rec {
            fields,
            expected: expected.clone(),
        })
    })
    .boxed()
}

/// A stream and a batch of 1 to 6 valid records of it.
fn batch() -> impl Strategy<Value = (Stream, Vec<Rec>)> {
    select(Stream::ALL.to_vec())
        .prop_flat_map(|s| (Just(s), proptest::collection::vec(record(s), 1..6)))
}

/// One record alone (as a bare object or a one-element array) or a batch.
fn payload(records: &[Rec], bare: bool) -> String {
    let items: Vec<String> = records.iter().map(Rec::json).collect();
    if bare && items.len() == 1 {
        items[0].clone()
    } else {
        format!("[{}]", items.join(",\n "))
    }
}

/// What a field of a stream is, for damaging it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Number,
    Text,
    Meter,
    Instant,
    Date,
}

/// The fields of a stream: name, kind, required.
fn fields_of(stream: Stream) -> Vec<(&'static str, Kind, bool)> {
    use Kind::*;
    match stream {
        Stream::Load => {
            let mut f = vec![
                ("meter_id", Meter, true),
                ("ts", Instant, true),
                ("p_kw", Number, true),
                ("q_kvar", Number, false),
            ];
            for p in ["ua", "ub", "uc", "ia", "ib", "ic", "pf"] {
                f.push((p, Number, false));
            }
            f
        }
        Stream::Freeze => vec![
            ("meter_id", Meter, true),
            ("date", Date, true),
            ("ts", Instant, true),
            ("reg_total", Number, true),
            ("reg_sharp", Number, false),
            ("reg_peak", Number, false),
            ("reg_flat", Number, false),
            ("reg_valley", Number, false),
            ("reg_q_total", Number, false),
        ],
        Stream::Event => vec![
            ("meter_id", Meter, true),
            ("ts", Instant, true),
            ("code", Text, true),
            ("phase", Text, false),
            ("state", Text, false),
        ],
    }
}

/// A damage done to one field: its new JSON text (None: removed), and the
/// reason the record must be refused with.
#[derive(Debug, Clone)]
struct Damage {
    field: &'static str,
    json: Option<String>,
    reason: Reason,
}

/// Every kind of damage that fits field `name` of kind `kind`.
fn damages(
    stream: Stream,
    (name, kind, required): (&'static str, Kind, bool),
) -> BoxedStrategy<Damage> {
    let d = move |json: Option<String>, reason| Damage {
        field: name,
        json,
        reason,
    };
    let not_scalar = select(vec!["true", "false", "[1]", "{\"v\":1}", "[]", "{}"]);
    let mut options: Vec<BoxedStrategy<Damage>> = Vec::new();
    if required {
        options.push(
            select(vec![None, Some("null".to_string())])
                .prop_map(move |j| d(j, Reason::MissingField))
                .boxed(),
        );
    }
    match kind {
        Kind::Number => {
            options.push(
                prop_oneof![
                    not_scalar.prop_map(str::to_string),
                    "[0-9]{1,5}".prop_map(|s| format!("\"{s}\"")),
                ]
                .prop_map(move |j| d(Some(j), Reason::WrongType))
                .boxed(),
            );
            // At or beyond 1e15, or past what a decimal holds at all.
            options.push(
                (1u32..1000, 15u32..60, any::<bool>())
                    .prop_map(move |(m, e, neg)| {
                        let sign = if neg && stream != Stream::Freeze {
                            "-"
                        } else {
                            ""
                        };
                        d(Some(format!("{sign}{m}e{e}")), Reason::BadValue)
                    })
                    .boxed(),
            );
        }
        Kind::Text | Kind::Meter => {
            options.push(
                prop_oneof![
                    not_scalar.prop_map(str::to_string),
                    (-1000i64..1000).prop_map(|n| n.to_string()),
                ]
                .prop_map(move |j| d(Some(j), Reason::WrongType))
                .boxed(),
            );
            // Longer than 128 bytes.
            options.push(
                "[a-z]{129,200}"
                    .prop_map(move |s| d(Some(json_string(&s, false)), Reason::BadValue))
                    .boxed(),
            );
            if kind == Kind::Meter || name == "code" {
                let blank = if kind == Kind::Meter {
                    "[ \t]{0,3}"
                } else {
                    ""
                };
                options.push(
                    blank
                        .prop_map(move |s| d(Some(json_string(&s, false)), Reason::BadValue))
                        .boxed(),
                );
            }
        }
        Kind::Instant => {
            options.push(
                not_scalar
                    .prop_map(move |j| d(Some(j.to_string()), Reason::WrongType))
                    .boxed(),
            );
            let bad = select(vec![
                "2026-13-01T00:00:00+08:00",
                "2026-02-30T00:00:00Z",
                "2026-11-03 14:00",
                "2026-11-03T14:00:00",
                "yesterday",
                "",
            ]);
            options.push(
                bad.prop_map(move |s| d(Some(json_string(s, false)), Reason::BadTimestamp))
                    .boxed(),
            );
            if stream == Stream::Load {
                // Off the 15-minute grid.
                options.push(
                    (0i64..4_500_000, 1i64..QUARTER_MS)
                        .prop_map(move |(q, off)| {
                            d(
                                Some((q * QUARTER_MS + off).to_string()),
                                Reason::BadTimestamp,
                            )
                        })
                        .boxed(),
                );
            }
        }
        Kind::Date => {
            options.push(
                select(vec![
                    "2026-02-30",
                    "2026-13-01",
                    "20261103",
                    "2026/11/03",
                    "x",
                ])
                .prop_map(move |s| d(Some(json_string(s, false)), Reason::BadTimestamp))
                .boxed(),
            );
            options.push(
                not_scalar
                    .prop_map(move |j| d(Some(j.to_string()), Reason::WrongType))
                    .boxed(),
            );
        }
    }
    proptest::strategy::Union::new(options).boxed()
}

/// A stream, a batch of valid records, and one more record damaged in one
/// field, to be put at `at`.
fn damaged_batch() -> impl Strategy<Value = (Stream, Vec<Rec>, Rec, Damage, usize)> {
    select(Stream::ALL.to_vec()).prop_flat_map(|s| {
        let field = select(fields_of(s)).prop_flat_map(move |f| damages(s, f));
        (
            Just(s),
            proptest::collection::vec(record(s), 0..4),
            record(s),
            field,
            0usize..4,
        )
    })
}

fn damage(mut r: Rec, d: &Damage) -> Rec {
    r.fields.retain(|(k, _)| k != d.field);
    if let Some(json) = &d.json {
        r.fields.push((d.field.to_string(), json.clone()));
    }
    r
}

fn assert_decoded(out: &[Result<Record, Rejection>], records: &[Rec]) -> Result<(), TestCaseError> {
    prop_assert_eq!(out.len(), records.len());
    for (got, sent) in out.iter().zip(records) {
        prop_assert_eq!(got.as_ref().ok(), Some(&sent.expected), "{}", sent.json());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Valid records decode to exactly their values, whatever the field
    /// order, number form, escaping, and absent-or-null optional fields.
    #[test]
    fn valid_records_round_trip((stream, records) in batch(), bare in any::<bool>()) {
        let p = payload(&records, bare);
        assert_decoded(&decode(stream, p.as_bytes(), LIMIT), &records)?;
    }

    /// Unknown fields are ignored (the policy: a newer feed may send more),
    /// whatever they hold, deep nesting included.
    #[test]
    fn unknown_fields_are_ignored(
        (stream, mut records) in batch(),
        extra in proptest::collection::vec(("[a-z]{1,8}", select(vec![
            "1", "\"x\"", "null", "[1,{\"a\":[]}]", "{\"ts\":\"bad\"}", "1e999",
        ]), 0usize..2000), 1..4),
    ) {
        for r in &mut records {
            for (i, (name, value, depth)) in extra.iter().enumerate() {
                let value = format!("{}{value}{}", "[".repeat(*depth), "]".repeat(*depth));
                r.fields.insert(i % (r.fields.len() + 1), (format!("x{i}_{name}"), value));
            }
        }
        assert_decoded(&decode(stream, payload(&records, false).as_bytes(), LIMIT), &records)?;
    }

    /// One field damaged: that record alone is refused, with the reason
    /// for that damage, a detail naming the field, and its own text as the
    /// dead letter; its neighbours decode as sent.
    #[test]
    fn damaged_field_costs_its_record_only(
        (stream, mut records, victim, d, at) in damaged_batch()
    ) {
        let bad = damage(victim, &d);
        let at = at.min(records.len());
        records.insert(at, bad.clone());
        let out = decode(stream, payload(&records, false).as_bytes(), LIMIT);
        prop_assert_eq!(out.len(), records.len());
        for (i, (got, sent)) in out.iter().zip(&records).enumerate() {
            if i != at {
                prop_assert_eq!(got.as_ref().ok(), Some(&sent.expected));
                continue;
            }
            let rej = got.as_ref().err();
            prop_assert!(rej.is_some(), "{} accepted: {:?}", bad.json(), got);
            let rej = rej.unwrap();
            prop_assert_eq!(rej.reason, d.reason, "{}: {}", bad.json(), rej.detail);
            prop_assert!(
                rej.detail.contains(&format!("`{}`", d.field)),
                "detail does not name `{}`: {}", d.field, rej.detail
            );
            prop_assert_eq!(&rej.raw, &bad.json());
        }
    }

    /// A negative register reading is refused as a bad value.
    #[test]
    fn negative_registers_are_refused(
        r in freeze(),
        field in select(vec!["reg_total", "reg_sharp", "reg_peak", "reg_flat", "reg_valley", "reg_q_total"]),
        q in quantity(1),
    ) {
        let d = Damage { field, json: Some(format!("-{}", q.json)), reason: Reason::BadValue };
        let bad = damage(r, &d);
        let out = decode(Stream::Freeze, bad.json().as_bytes(), LIMIT);
        let rej = out[0].as_ref().unwrap_err();
        prop_assert_eq!(rej.reason, Reason::BadValue);
        prop_assert!(rej.detail.contains("cannot be negative"), "{}", rej.detail);
    }

    /// A payload not UTF-8 is refused whole, saying so.
    #[test]
    fn invalid_utf8_is_refused_whole(
        (stream, records) in batch(),
        bad in select(vec![vec![0xFFu8], vec![0xC0, 0x80], vec![0x80], vec![0xE7, 0xA8], vec![0xED, 0xA0, 0x80]]),
        at in any::<proptest::sample::Index>(),
    ) {
        let mut p = payload(&records, false).into_bytes();
        let at = at.index(p.len() + 1);
        p.splice(at..at, bad);
        let out = decode(stream, &p, LIMIT);
        prop_assert_eq!(out.len(), 1);
        let rej = out[0].as_ref().unwrap_err();
        prop_assert_eq!(rej.reason, Reason::MalformedJson);
        prop_assert!(rej.detail.contains("not UTF-8"), "{}", rej.detail);
    }

    /// Any bytes at all: no panic, and each entry is a record or a
    /// rejection that says why, its dead letter clipped.
    #[test]
    fn arbitrary_bytes_end_in_values_or_reasons(
        stream in select(Stream::ALL.to_vec()),
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        check_entries(&decode(stream, &bytes, LIMIT))?;
    }

    /// Valid payloads damaged byte by byte: no panic, every entry a value
    /// or a reason.
    #[test]
    fn mutated_payloads_end_in_values_or_reasons(
        (stream, records) in batch(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>(), 0..3u8), 1..6),
    ) {
        let mut p = payload(&records, false).into_bytes();
        for (at, byte, op) in edits {
            let i = at.index(p.len() + 1);
            match op {
                0 if i < p.len() => p[i] = byte,
                1 if i < p.len() => { p.remove(i); }
                _ => p.insert(i, byte),
            }
        }
        check_entries(&decode(stream, &p, LIMIT))?;
    }
}

fn check_entries(out: &[Result<Record, Rejection>]) -> Result<(), TestCaseError> {
    for r in out {
        if let Err(rej) = r {
            prop_assert!(!rej.detail.is_empty(), "a rejection must say why");
            prop_assert!(rej.raw.chars().count() <= DEAD_LETTER_RAW_CHARS + 1);
        }
    }
    Ok(())
}

proptest! {
    // Megabyte payloads and deep nesting: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Over the limit: one rejection for the whole payload, naming the
    /// limit and the setting to raise; at or under it, none.
    #[test]
    fn payload_over_the_limit_is_refused_whole(
        (stream, records) in batch(),
        pad in 0usize..(2 << 20),
        limit in 1usize..(1 << 21),
    ) {
        let p = format!("{}{}", " ".repeat(pad), payload(&records, false));
        let out = decode(stream, p.as_bytes(), limit);
        if p.len() > limit {
            prop_assert_eq!(out.len(), 1);
            let rej = out[0].as_ref().unwrap_err();
            prop_assert_eq!(rej.reason, Reason::PayloadTooLarge);
            prop_assert!(
                rej.detail.contains(&p.len().to_string()) && rej.detail.contains("max_payload_bytes"),
                "{}", rej.detail
            );
            prop_assert!(rej.raw.chars().count() <= 256);
        } else {
            assert_decoded(&out, &records)?;
        }
    }

    /// Deep nesting never overflows the stack: as a record it is not an
    /// object; in a known field it is the wrong type, naming the field; the
    /// neighbours decode as sent.
    #[test]
    fn deep_nesting_is_refused_by_record(
        (stream, records) in batch(),
        depth in 1usize..100_000,
        open in select(vec!["[", "{\"a\":"]),
        in_field in any::<bool>(),
    ) {
        let close = if open == "[" { "]" } else { "}" };
        let deep = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        let (text, reason, field) = if in_field {
            let name = match stream {
                Stream::Load => "p_kw",
                Stream::Freeze => "reg_total",
                Stream::Event => "code",
            };
            let mut r = records[0].clone();
            r.fields.retain(|(k, _)| k != name);
            r.fields.push((name.to_string(), deep));
            (r.json(), Reason::WrongType, Some(name))
        } else if open == "[" {
            (deep, Reason::NotAnObject, None)
        } else {
            // An object holding only an unknown field: the first required
            // field is missing.
            (deep, Reason::MissingField, None)
        };
        let mut items = vec![text];
        items.extend(records.iter().map(Rec::json));
        let p = format!("[{}]", items.join(","));
        let out = decode(stream, p.as_bytes(), LIMIT);
        prop_assert_eq!(out.len(), records.len() + 1);
        let rej = out[0].as_ref().unwrap_err();
        prop_assert_eq!(rej.reason, reason, "{}", rej.detail);
        if let Some(f) = field {
            prop_assert!(rej.detail.contains(&format!("`{f}`")), "{}", rej.detail);
        }
        assert_decoded(&out[1..], &records)?;
    }
}

/// Quantities at the bound: just under 1e15 is taken, 1e15 and beyond
/// (or beyond what a decimal holds) are refused, never wrapped.
#[test]
fn quantities_out_of_range_are_rejected_not_wrapped() {
    for v in [
        "1e15",
        "-1e15",
        "123456789012345678901234567",
        "1e28",
        "1e40",
    ] {
        let p = format!(r#"{{"meter_id":"M1","ts":"2026-11-03T14:00:00+08:00","p_kw":{v}}}"#);
        let out = decode(Stream::Load, p.as_bytes(), LIMIT);
        let rej = out[0].as_ref().unwrap_err();
        assert_eq!(rej.reason, Reason::BadValue, "{v}");
        assert!(rej.detail.contains("`p_kw`"), "{}", rej.detail);
    }
    let ok = r#"{"meter_id":"M1","ts":"2026-11-03T14:00:00+08:00","p_kw":999999999999999.999999}"#;
    assert!(decode(Stream::Load, ok.as_bytes(), LIMIT)[0].is_ok());
}
