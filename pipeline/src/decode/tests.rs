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
