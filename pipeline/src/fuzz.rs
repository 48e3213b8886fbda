//! Randomised robustness tests for everything that parses outside input:
//! record decoders, archive, billing, whitelist, work-order actions and
//! theme files. Each run is deterministic (fixed seeds) and bounded (a few
//! seconds), so it belongs in the normal test command. The property is
//! always the same: no panic, and every input ends in a value or a clear
//! rejection; valid inputs survive mutation of their neighbours.

use crate::archive::Archive;
use crate::billing::parse_billing;
use crate::decode::decode_payload;
use crate::records::{Record, Stream};
use crate::theme::ThemeDef;
use crate::whitelist::WhitelistEntry;
use crate::workorder::Action;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SEEDS: &[&str] = &[
    r#"{"meter_id":"M1","ts":"2026-11-03T14:00:00+08:00","p_kw":12.5,"q_kvar":1}"#,
    r#"[{"meter_id":"M1","ts":1793700000000,"p_kw":0.1},{"meter_id":"M2","ts":"2026-11-03T14:15:00+08:00","p_kw":-3}]"#,
    r#"{"meter_id":"M1","date":"2026-11-03","ts":"2026-11-04T00:00:00+08:00","reg_total":54693.74,"reg_valley":1e3}"#,
    r#"{"meter_id":"M1","ts":"2026-11-03T22:00:00+08:00","code":"cover_open","state":"start"}"#,
];

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "true",
    "1e999",
    "-0",
    "\\u0000",
    "\u{1F600}",
    "9999999999999999999999999999999",
    "0.1",
    "\"ts\"",
    "\"p_kw\"",
];

fn mutate(rng: &mut Rng, s: &str) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            1 if !b.is_empty() => {
                let n = rng.below(b.len());
                b.truncate(n);
            }
            2 => {
                let i = rng.below(b.len() + 1);
                let t = TOKENS[rng.below(TOKENS.len())];
                b.splice(i..i, t.bytes());
            }
            3 if !b.is_empty() => {
                let i = rng.below(b.len());
                let j = (i + rng.below(8)).min(b.len());
                b.drain(i..j);
            }
            _ => {
                let i = rng.below(b.len() + 1);
                let depth = rng.below(3000);
                let open = if rng.below(2) == 0 { "[" } else { "{\"a\":" };
                b.splice(i..i, open.repeat(depth).bytes());
            }
        }
    }
    b
}

#[test]
fn decoders_never_panic_on_mutated_payloads() {
    let mut rng = Rng(7);
    for i in 0..30_000 {
        let seed = SEEDS[i % SEEDS.len()];
        let payload = mutate(&mut rng, seed);
        for stream in Stream::ALL {
            for r in decode_payload(stream, &payload, 1 << 20) {
                if let Err(rej) = r {
                    assert!(!rej.detail.is_empty(), "a rejection must say why");
                    assert!(rej.raw.len() <= 2048 + 32, "dead letters are clipped");
                }
            }
        }
    }
}

#[test]
fn good_records_survive_bad_neighbours() {
    let mut rng = Rng(11);
    for _ in 0..2_000 {
        let mut items = Vec::new();
        let mut good = Vec::new();
        for k in 0..(1 + rng.below(20)) {
            if rng.below(3) == 0 {
                let bad = mutate(&mut rng, SEEDS[0]);
                // keep it one JSON value so the batch stays an array
                items.push(
                    serde_json::to_string(&String::from_utf8_lossy(&bad)).unwrap_or_default(),
                );
            } else {
                let cents = rng.next() % 10_000_000;
                let kw = Decimal::new(cents as i64, 2);
                good.push(kw);
                items.push(format!(
                    r#"{{"meter_id":"M{k}","ts":"2026-11-03T14:00:00+08:00","p_kw":{kw}}}"#
                ));
            }
        }
        let payload = format!("[{}]", items.join(","));
        let out = decode_payload(Stream::Load, payload.as_bytes(), 1 << 20);
        assert_eq!(out.len(), items.len());
        let decoded: Vec<Decimal> = out
            .iter()
            .filter_map(|r| match r {
                Ok((Record::Load(l), _)) => Some(l.p_kw),
                _ => None,
            })
            .collect();
        assert_eq!(
            decoded, good,
            "every good record decodes to exactly its value"
        );
    }
}

#[test]
fn document_parsers_never_panic() {
    let docs = [
        r#"{"customers":[{"customer_id":"C1","org_code":"41/4107/410727","usage_category":"large_industry","tariff_kind":"two_part","contract_kva":400,"meters":[{"meter_id":"M1","multiplier":1000}],"capacity_changes":[{"kind":"suspend","kva":80,"start":"2026-06-01","end":null}]}]}"#,
        r#"{"period":"2026-10","bills":[{"customer_id":"C1","tariff_kind":"two_part","tariff_category":"large_industry","energy_kwh":"69822.00","basic_fee_kva":"320","basic_fee_yuan":"8000.00","energy_fee_yuan":"43289.64","pf_adjust_applied":true}]}"#,
        r#"{"customer_id":"C1","theme":"over_capacity","reason":"x","valid_from":"2026-10-01","valid_until":"2026-12-31"}"#,
        r#"{"action":"feedback","confirmed":true,"measures":"m","recovered_kwh":"1.5","recovered_yuan":2}"#,
    ];
    let mut rng = Rng(13);
    for i in 0..20_000 {
        let b = mutate(&mut rng, docs[i % docs.len()]);
        let s = String::from_utf8_lossy(&b);
        let _ = Archive::parse_document(&s);
        let _ = parse_billing(&s);
        let _ = WhitelistEntry::parse(&s);
        let _ = Action::parse(&s);
    }
    // the unmutated documents are valid
    assert!(Archive::parse_document(docs[0]).is_ok());
    assert!(parse_billing(docs[1]).is_ok());
    assert!(WhitelistEntry::parse(docs[2]).is_ok());
    assert!(Action::parse(docs[3]).is_ok());
}

#[test]
fn theme_files_never_panic() {
    let src = "-- theme: t\n-- param: k = 1.2\nSELECT hop(interval '15 minutes', interval '30 minutes') AS window, customer_id FROM load_point WHERE p_kw > $k GROUP BY window, customer_id";
    assert!(ThemeDef::parse(src, &BTreeMap::new()).is_ok());
    let mut rng = Rng(17);
    for _ in 0..20_000 {
        let b = mutate(&mut rng, src);
        let _ = ThemeDef::parse(&String::from_utf8_lossy(&b), &BTreeMap::new());
    }
}

#[test]
fn quantities_out_of_range_are_rejected_not_wrapped() {
    for v in ["1e15", "-1e15", "123456789012345678901234567", "1e28"] {
        let p = format!(r#"{{"meter_id":"M1","ts":"2026-11-03T14:00:00+08:00","p_kw":{v}}}"#);
        let out = decode_payload(Stream::Load, p.as_bytes(), 1 << 20);
        assert!(
            matches!(&out[0], Err(r) if r.reason == crate::decode::Reason::BadValue),
            "{v}"
        );
    }
    let ok = r#"{"meter_id":"M1","ts":"2026-11-03T14:00:00+08:00","p_kw":999999999999999.999999}"#;
    assert!(decode_payload(Stream::Load, ok.as_bytes(), 1 << 20)[0].is_ok());
}
