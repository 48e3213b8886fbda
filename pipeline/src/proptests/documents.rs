//! The documents posted to the API: archive, billing, whitelist entries and
//! work-order actions. Valid documents come back as exactly their values;
//! a damaged field fails the document with a message naming the field (and,
//! in a list, which entry); nothing panics.

use super::{id, json_string, object, quantity, text, Sent, CASES, QUANTITY_MAX};
use crate::archive::{
    Archive, BasicFeeMode, CapacityChange, ChangeKind, Customer, CustomerStatus, MeterSpec,
    TariffKind,
};
use crate::billing::{parse_billing, Bill, BillingPeriod};
use crate::ids::{CustomerId, MeterId};
use crate::theme::ThemeDef;
use crate::time::date_from_days;
use crate::whitelist::WhitelistEntry;
use crate::workorder::{Action, Feedback};
use chrono::NaiveDate;
use proptest::prelude::*;
use proptest::sample::select;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// A decimal as documents carry it: a JSON number or a decimal string.
fn decimal(min: i64) -> impl Strategy<Value = Sent<Decimal>> {
    (quantity(min), any::<bool>()).prop_map(|(q, quoted)| Sent {
        json: if quoted {
            format!("\"{}\"", q.json)
        } else {
            q.json
        },
        value: q.value,
    })
}

/// A date from 1970 to 2098, and one that many days later.
fn dates() -> impl Strategy<Value = (NaiveDate, NaiveDate)> {
    (0i64..46_000, 0i64..1000)
        .prop_map(|(d, n)| (date_from_days(d).unwrap(), date_from_days(d + n).unwrap()))
}

fn date_json(d: NaiveDate) -> String {
    json_string(&d.to_string(), false)
}

/// Fields given as (name, JSON) pairs, absent ones left out.
fn fields(list: Vec<(&str, Option<String>)>) -> Vec<(String, String)> {
    list.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect()
}

/// One field replaced by `json`, or removed.
fn damaged(mut f: Vec<(String, String)>, field: &str, json: Option<&str>) -> String {
    f.retain(|(k, _)| k != field);
    if let Some(j) = json {
        f.push((field.to_string(), j.to_string()));
    }
    object(&f)
}

fn customer() -> impl Strategy<Value = (Customer, Vec<(String, String)>)> {
    let meter = (id(), proptest::option::of(decimal(1)));
    let change = (any::<bool>(), decimal(0), dates(), any::<bool>());
    (
        (
            id(),
            "[0-9]{2}/[0-9]{4}/[0-9]{6}(/[0-9]{1,4})?",
            "[a-z_]{1,16}",
        ),
        (select(vec!["two_part", "single"]), decimal(0)),
        proptest::option::of(text(0)),
        proptest::option::of(select(vec!["capacity", "demand", "none"])),
        proptest::option::of(select(vec!["normal", "suspended", "closed"])),
        proptest::collection::vec(meter, 0..3),
        proptest::collection::vec(change, 0..3),
    )
        .prop_map(
            |((cid, org, usage), (tariff, kva), name, fee, status, meters, changes)| {
                let c = Customer {
                    customer_id: CustomerId::new(&cid),
                    name: name.clone().unwrap_or_default(),
                    org_code: org.clone(),
                    usage_category: usage.clone(),
                    tariff_kind: TariffKind::parse(tariff).unwrap(),
                    tariff_category: String::new(),
                    contract_kva: kva.value,
                    running_kva: None,
                    voltage_kv: None,
                    pf_standard: None,
                    basic_fee_mode: BasicFeeMode::parse(fee.unwrap_or("none")).unwrap(),
                    status: CustomerStatus::parse(status.unwrap_or("normal")).unwrap(),
                    meters: meters
                        .iter()
                        .map(|(m, mult)| MeterSpec {
                            meter_id: MeterId::new(m),
                            multiplier: mult.as_ref().map_or(Decimal::ONE, |s| s.value),
                        })
                        .collect(),
                    capacity_changes: changes
                        .iter()
                        .map(|(suspend, kva, (start, end), open)| CapacityChange {
                            kind: if *suspend {
                                ChangeKind::Suspend
                            } else {
                                ChangeKind::Reduce
                            },
                            kva: kva.value,
                            start: *start,
                            end: (!open).then_some(*end),
                        })
                        .collect(),
                };
                let meters_json: Vec<String> = meters
                    .iter()
                    .map(|(m, mult)| {
                        object(&fields(vec![
                            ("meter_id", Some(json_string(m, false))),
                            ("multiplier", mult.as_ref().map(|s| s.json.clone())),
                        ]))
                    })
                    .collect();
                let changes_json: Vec<String> = changes
                    .iter()
                    .map(|(suspend, kva, (start, end), open)| {
                        object(&fields(vec![
                            (
                                "kind",
                                Some(
                                    if *suspend {
                                        "\"suspend\""
                                    } else {
                                        "\"reduce\""
                                    }
                                    .into(),
                                ),
                            ),
                            ("kva", Some(kva.json.clone())),
                            ("start", Some(date_json(*start))),
                            (
                                "end",
                                Some(if *open {
                                    "null".into()
                                } else {
                                    date_json(*end)
                                }),
                            ),
                        ]))
                    })
                    .collect();
                let f = fields(vec![
                    ("customer_id", Some(json_string(&cid, false))),
                    ("name", name.map(|n| json_string(&n, false))),
                    ("org_code", Some(json_string(&org, false))),
                    ("usage_category", Some(json_string(&usage, false))),
                    ("tariff_kind", Some(json_string(tariff, false))),
                    ("contract_kva", Some(kva.json)),
                    ("basic_fee_mode", fee.map(|s| json_string(s, false))),
                    ("status", status.map(|s| json_string(s, false))),
                    ("meters", Some(format!("[{}]", meters_json.join(",")))),
                    (
                        "capacity_changes",
                        Some(format!("[{}]", changes_json.join(","))),
                    ),
                ]);
                (c, f)
            },
        )
}

/// Damage to one customer field: (field, new JSON or removed, what the
/// message must contain).
const CUSTOMER_DAMAGE: &[(&str, Option<&str>, &str)] = &[
    ("tariff_kind", Some("\"three_part\""), "`tariff_kind`"),
    ("contract_kva", Some("true"), "`contract_kva`"),
    ("contract_kva", Some("\"abc\""), "`contract_kva`"),
    ("contract_kva", None, "`contract_kva`"),
    ("org_code", Some("\"41/4107\""), "`org_code`"),
    ("usage_category", None, "`usage_category`"),
    ("usage_category", Some("7"), "`usage_category`"),
    ("status", Some("\"gone\""), "`status`"),
    ("basic_fee_mode", Some("\"x\""), "`basic_fee_mode`"),
    ("running_kva", Some("\"1e40\""), "`running_kva`"),
    ("meters", Some("{}"), "`meters`"),
    (
        "meters",
        Some("[{\"meter_id\":\"M1\",\"multiplier\":0}]"),
        "`meters[0].multiplier`",
    ),
    (
        "meters",
        Some("[{\"multiplier\":2}]"),
        "`meters[0]`: missing field `meter_id`",
    ),
    (
        "capacity_changes",
        Some("[{\"kind\":\"grow\",\"kva\":1,\"start\":\"2026-01-01\"}]"),
        "`capacity_changes[0].kind`",
    ),
    (
        "capacity_changes",
        Some("[{\"kind\":\"reduce\",\"kva\":1,\"start\":\"2026-02-01\",\"end\":\"2026-01-01\"}]"),
        "`capacity_changes[0].end`",
    ),
    (
        "capacity_changes",
        Some("[{\"kind\":\"reduce\",\"kva\":1,\"start\":\"2026-02-30\"}]"),
        "`capacity_changes[0].start`",
    ),
];

fn bill(n: usize) -> impl Strategy<Value = (Bill, Vec<(String, String)>)> {
    (
        id(),
        select(vec!["two_part", "single"]),
        proptest::option::of("[a-z_]{0,16}"),
        proptest::collection::vec(decimal(-QUANTITY_MAX), 4),
        any::<bool>(),
    )
        .prop_map(move |(cid, tariff, category, money, pf)| {
            // Unique per document: one bill per customer.
            let cid = format!("{cid}-{n}");
            let b = Bill {
                customer_id: CustomerId::new(&cid),
                tariff_kind: TariffKind::parse(tariff).unwrap(),
                tariff_category: category.clone().unwrap_or_default(),
                energy_kwh: money[0].value,
                basic_fee_kva: money[1].value,
                basic_fee_yuan: money[2].value,
                energy_fee_yuan: money[3].value,
                pf_adjust_applied: pf,
            };
            let f = fields(vec![
                ("customer_id", Some(json_string(&cid, false))),
                ("tariff_kind", Some(json_string(tariff, false))),
                ("tariff_category", category.map(|c| json_string(&c, false))),
                ("energy_kwh", Some(money[0].json.clone())),
                ("basic_fee_kva", Some(money[1].json.clone())),
                ("basic_fee_yuan", Some(money[2].json.clone())),
                ("energy_fee_yuan", Some(money[3].json.clone())),
                ("pf_adjust_applied", Some(pf.to_string())),
            ]);
            (b, f)
        })
}

fn bills() -> impl Strategy<Value = Vec<(Bill, Vec<(String, String)>)>> {
    (0usize..5).prop_flat_map(|n| (0..n).map(bill).collect::<Vec<_>>())
}

const BILL_DAMAGE: &[(&str, Option<&str>, &str)] = &[
    ("energy_kwh", Some("\"abc\""), "`energy_kwh`"),
    ("basic_fee_yuan", Some("true"), "`basic_fee_yuan`"),
    ("energy_fee_yuan", None, "`energy_fee_yuan`"),
    ("basic_fee_kva", Some("1e40"), "`basic_fee_kva`"),
    ("pf_adjust_applied", Some("\"yes\""), "`pf_adjust_applied`"),
    ("pf_adjust_applied", None, "`pf_adjust_applied`"),
    ("tariff_kind", Some("\"x\""), "`tariff_kind`"),
    ("customer_id", None, "`customer_id`"),
];

fn whitelist() -> impl Strategy<Value = (WhitelistEntry, Vec<(String, String)>)> {
    (
        id(),
        "[a-z_]{1,20}|\\*",
        proptest::option::of(text(0)),
        dates(),
        proptest::option::of(id()),
    )
        .prop_map(|(cid, theme, reason, (from, until), requester)| {
            let e = WhitelistEntry {
                id: String::new(),
                customer_id: CustomerId::new(&cid),
                theme: theme.clone(),
                reason: reason.clone().unwrap_or_default(),
                valid_from: from,
                valid_until: until,
                requester: requester.clone(),
                approver: None,
                removed: None,
            };
            let f = fields(vec![
                ("customer_id", Some(json_string(&cid, true))),
                ("theme", Some(json_string(&theme, false))),
                ("reason", reason.map(|r| json_string(&r, false))),
                ("valid_from", Some(date_json(from))),
                ("valid_until", Some(date_json(until))),
                ("requester", requester.map(|r| json_string(&r, false))),
            ]);
            (e, f)
        })
}

const WHITELIST_DAMAGE: &[(&str, Option<&str>, &str)] = &[
    ("customer_id", None, "`customer_id`"),
    ("requester", Some("5"), "`requester`"),
    ("theme", Some("null"), "`theme`"),
    ("theme", Some("[]"), "`theme`"),
    ("valid_from", Some("\"2026-02-30\""), "`valid_from`"),
    ("valid_until", None, "`valid_until`"),
    (
        "valid_until",
        Some("\"1969-12-31\""),
        "`valid_until`: is before `valid_from`",
    ),
];

/// An action with its actor, and the body fields that express it.
type ActionCase = ((Action, Option<String>), Vec<(String, String)>);

fn action() -> impl Strategy<Value = ActionCase> {
    let s = |t: &str| Some(json_string(t, false));
    let feedback = (
        any::<bool>(),
        proptest::option::of(text(0)),
        proptest::option::of(decimal(0)),
        proptest::option::of(decimal(0)),
        proptest::collection::vec(id(), 0..3),
    );
    (
        prop_oneof![
            "[0-9/]{1,12}".prop_map(move |org| (
                Action::Dispatch {
                    org: Some(org.clone())
                },
                fields(vec![("action", s("dispatch")), ("org", s(&org))])
            )),
            Just((Action::Accept, fields(vec![("action", s("accept"))]))),
            feedback.prop_map(move |(confirmed, measures, kwh, yuan, attachments)| {
                let a = Action::Feedback(Feedback {
                    confirmed,
                    measures: measures.clone().unwrap_or_default(),
                    recovered_kwh: kwh.as_ref().map(|d| d.value),
                    recovered_yuan: yuan.as_ref().map(|d| d.value),
                    attachments: attachments.clone(),
                });
                let listed: Vec<String> =
                    attachments.iter().map(|a| json_string(a, false)).collect();
                (
                    a,
                    fields(vec![
                        ("action", s("feedback")),
                        ("confirmed", Some(confirmed.to_string())),
                        ("measures", measures.map(|m| json_string(&m, false))),
                        ("recovered_kwh", kwh.map(|d| d.json)),
                        ("recovered_yuan", yuan.map(|d| d.json)),
                        ("attachments", Some(format!("[{}]", listed.join(",")))),
                    ]),
                )
            }),
            Just((
                Action::Approve,
                fields(vec![
                    ("action", s("review")),
                    ("approve", Some("true".into()))
                ])
            )),
            proptest::option::of(text(0)).prop_map(move |r| (
                Action::Reject {
                    reason: r.clone().unwrap_or_default()
                },
                fields(vec![
                    ("action", s("review")),
                    ("approve", Some("false".into())),
                    ("reason", r.map(|r| json_string(&r, false)))
                ]),
            )),
        ],
        proptest::option::of(id()),
    )
        .prop_map(|((a, mut f), actor)| {
            if let Some(who) = &actor {
                f.push(("actor".into(), json_string(who, false)));
            }
            ((a, actor), f)
        })
}

/// A damaged action body and what its message must contain.
const ACTION_DAMAGE: &[(&str, &str)] = &[
    (
        r#"{"action":"escalate"}"#,
        "`action`: unknown variant `escalate`",
    ),
    (r#"{"org":"41"}"#, "`action`"),
    (r#"{"action":7}"#, "`action`"),
    (r#"{"action":"void"}"#, "`reason`"),
    (r#"{"action":"void","reason":" "}"#, "`reason`"),
    (r#"{"action":"rectify"}"#, "`result`"),
    (
        r#"{"action":"feedback","confirmed":true,"attachments":"a"}"#,
        "`attachments`",
    ),
    (r#"{"action":"feedback"}"#, "`confirmed`"),
    (r#"{"action":"feedback","confirmed":"yes"}"#, "`confirmed`"),
    (
        r#"{"action":"feedback","confirmed":true,"recovered_kwh":"abc"}"#,
        "`recovered_kwh`",
    ),
    (
        r#"{"action":"feedback","confirmed":true,"recovered_yuan":[1]}"#,
        "`recovered_yuan`",
    ),
    (r#"{"action":"review"}"#, "`approve`"),
    (r#"{"action":"accept","actor":5}"#, "`actor`"),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn archive_round_trips(customers in proptest::collection::vec(customer(), 0..4)) {
        let items: Vec<String> = customers.iter().map(|(_, f)| object(f)).collect();
        let doc = format!("{{\"customers\":[{}]}}", items.join(","));
        let parsed = Archive::parse_document(&doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected: Vec<Customer> = customers.into_iter().map(|(c, _)| c).collect();
        prop_assert_eq!(parsed, expected);
    }

    /// One bad customer fails the document, naming its index, its id and the field.
    #[test]
    fn archive_names_bad_customer_and_field(
        customers in proptest::collection::vec(customer(), 1..4),
        which in any::<proptest::sample::Index>(),
        damage in select(CUSTOMER_DAMAGE),
    ) {
        let i = which.index(customers.len());
        let (field, json, says) = damage;
        let items: Vec<String> = customers.iter().enumerate().map(|(k, (_, f))| {
            if k == i { damaged(f.clone(), field, json) } else { object(f) }
        }).collect();
        let doc = format!("{{\"customers\":[{}]}}", items.join(","));
        let e = Archive::parse_document(&doc).unwrap_err().to_string();
        let id = customers[i].0.customer_id.to_string();
        prop_assert!(
            e.contains(&format!("customers[{i}] ({id})")) && e.contains(says),
            "{} / {}", says, e
        );
    }

    #[test]
    fn billing_round_trips(year in 2000i32..2100, month in 1u32..=12, bills in bills()) {
        let items: Vec<String> = bills.iter().map(|(_, f)| object(f)).collect();
        let doc = format!("{{\"period\":\"{year}-{month:02}\",\"bills\":[{}]}}", items.join(","));
        let parsed = parse_billing(&doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap();
        let expected = BillingPeriod {
            period: format!("{year}-{month:02}"),
            first_day: first,
            next_first_day: first.checked_add_months(chrono::Months::new(1)).unwrap(),
            bills: bills.into_iter().map(|(b, _)| b).collect(),
        };
        prop_assert_eq!(parsed, expected);
    }

    /// One bad bill fails the whole period, naming the bill, its customer
    /// and the field; a bad period or a second bill for a customer too.
    #[test]
    fn billing_names_bad_bill_and_field(
        bills in bills().prop_filter("a bill to damage", |b| !b.is_empty()),
        which in any::<proptest::sample::Index>(),
        damage in select(BILL_DAMAGE),
        period in select(vec!["2026-00", "2026-13", "2026/10", "26-1x", "", "2026-10-01"]),
    ) {
        let i = which.index(bills.len());
        let (field, json, says) = damage;
        let items: Vec<String> = bills.iter().enumerate().map(|(k, (_, f))| {
            if k == i { damaged(f.clone(), field, json) } else { object(f) }
        }).collect();
        let doc = format!("{{\"period\":\"2026-10\",\"bills\":[{}]}}", items.join(","));
        let e = parse_billing(&doc).unwrap_err().to_string();
        let who = if field == "customer_id" { "?".to_string() } else { bills[i].0.customer_id.to_string() };
        prop_assert!(
            e.contains(&format!("bills[{i}] (customer {who})")) && e.contains(says),
            "{} / {}", says, e
        );
        let good: Vec<String> = bills.iter().map(|(_, f)| object(f)).collect();
        let doc = format!("{{\"period\":{},\"bills\":[{}]}}", json_string(period, false), good.join(","));
        let e = parse_billing(&doc).unwrap_err().to_string();
        prop_assert!(e.contains("`period`") && e.contains("YYYY-MM"), "{}", e);
        let twice = format!("{{\"period\":\"2026-10\",\"bills\":[{},{}]}}", good.join(","), good[i]);
        let e = parse_billing(&twice).unwrap_err().to_string();
        prop_assert!(e.contains("two bills"), "{}", e);
    }

    #[test]
    fn whitelist_entries_round_trip_or_name_the_field(
        (entry, f) in whitelist(),
        damage in select(WHITELIST_DAMAGE),
    ) {
        prop_assert_eq!(WhitelistEntry::parse(&object(&f)), Ok(entry));
        let (field, json, says) = damage;
        let e = WhitelistEntry::parse(&damaged(f, field, json)).unwrap_err().to_string();
        prop_assert!(e.contains(says), "{} / {}", says, e);
    }

    #[test]
    fn actions_round_trip_or_name_the_field(
        (expected, f) in action(),
        damage in select(ACTION_DAMAGE),
    ) {
        prop_assert_eq!(Action::parse(&object(&f)), Ok(expected));
        let (body, says) = damage;
        match Action::parse(body) {
            Err(e) => prop_assert!(e.to_string().contains(says), "{} / {}", says, e),
            other => prop_assert!(false, "{body}: {other:?}"),
        }
    }

    /// Any text at all: each parser answers with a value or an error that
    /// says something, never a panic.
    #[test]
    fn documents_never_panic(s in "\\PC{0,200}|[\\[\\]{}\",:0-9a-z\\-. ]{0,200}") {
        if let Err(e) = Archive::parse_document(&s) { prop_assert!(!e.to_string().is_empty()); }
        if let Err(e) = parse_billing(&s) { prop_assert!(!e.to_string().is_empty()); }
        if let Err(e) = WhitelistEntry::parse(&s) { prop_assert!(!e.to_string().is_empty()); }
        if let Err(e) = Action::parse(&s) { prop_assert!(!e.to_string().is_empty()); }
    }

    /// Theme files: the header, parameters and query in damaged forms.
    #[test]
    fn theme_files_never_panic(
        s in "(-- [a-z:= .'0-9]{0,30}\n){0,4}[A-Za-z0-9_ ,.'()$*<>=\n-]{0,200}",
    ) {
        if let Err(e) = ThemeDef::parse(&s, &BTreeMap::new()) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
