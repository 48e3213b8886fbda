//! Checks on the generated data itself: the messages are parsed as the
//! pipeline would parse them, the themes.md rules are recomputed from the
//! parsed records in exact decimals, and the set of hits must be exactly the
//! planted anomalies (so normal customers and near misses stay silent).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use rust_decimal::Decimal;
use serde_json::Value;

use super::curves::SLOTS;
use super::days::Generator;
use super::wire::{self, Message};
use super::{archive, fleet, near_misses, parse_mqtt_url, planted, SimOptions};

fn opts(seed: u64, start: (i32, u32, u32), days: u32) -> SimOptions {
    SimOptions {
        seed,
        start_date: NaiveDate::from_ymd_opt(start.0, start.1, start.2).expect("valid test date"),
        days,
        ..SimOptions::default()
    }
}

/// Where a message sits in the run: (day, slot), slot 96 = that day's
/// freezes, day None = the opening freezes.
type Pos = (Option<u32>, usize);

/// Every message of a run, in publish order.
fn run_messages(o: &SimOptions) -> Vec<(Pos, Message)> {
    let fleet = fleet::build(o);
    let mut gen = Generator::new(&fleet);
    let mut out: Vec<(Pos, Message)> = wire::freeze_messages(&fleet, &gen.opening(), o.batch_size)
        .into_iter()
        .map(|m| ((None, 0), m))
        .collect();
    for day in 0..o.days {
        let data = gen.next_day();
        for slot in 0..SLOTS {
            out.extend(
                wire::slot_messages(&fleet, &data, slot, o.batch_size)
                    .into_iter()
                    .map(|m| ((Some(day), slot), m)),
            );
        }
        out.extend(
            wire::freeze_messages(&fleet, &data.freezes, o.batch_size)
                .into_iter()
                .map(|m| ((Some(day), SLOTS), m)),
        );
    }
    out
}

// ---------------------------------------------------------------- archive view

struct Cust {
    id: String,
    c: Decimal,
    normal: bool,
    /// (meter_id, multiplier)
    meters: Vec<(String, Decimal)>,
}

struct Archive {
    customers: Vec<Cust>,
    owner: HashMap<String, usize>,
}

fn read_archive(v: &Value) -> Archive {
    let list = v["customers"].as_array().expect("customers array");
    let customers: Vec<Cust> = list
        .iter()
        .map(|c| Cust {
            id: c["customer_id"].as_str().expect("id").to_owned(),
            c: Decimal::from(c["contract_kva"].as_i64().expect("contract_kva")),
            normal: c["status"] == "normal",
            meters: c["meters"]
                .as_array()
                .expect("meters")
                .iter()
                .map(|m| {
                    (
                        m["meter_id"].as_str().expect("meter_id").to_owned(),
                        Decimal::from(m["multiplier"].as_i64().expect("mult")),
                    )
                })
                .collect(),
        })
        .collect();
    let owner = customers
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.meters.iter().map(move |(m, _)| (m.clone(), i)))
        .collect();
    Archive { customers, owner }
}

// ---------------------------------------------------------------- ingest

#[derive(Clone, Copy, Debug)]
struct Regs {
    total: Decimal,
    tou: [Decimal; 4],
}

#[derive(Default)]
struct Seen {
    /// meter → ts → p_kw
    loads: HashMap<String, BTreeMap<NaiveDateTime, Decimal>>,
    freezes: HashMap<(String, NaiveDate), Regs>,
    /// (meter, ts, code, state)
    events: Vec<(String, NaiveDateTime, String, Option<String>)>,
    rejected: Vec<String>,
}

fn dec(v: &Value) -> Option<Decimal> {
    if !v.is_number() {
        return None;
    }
    Decimal::from_str(&v.to_string()).ok()
}

fn time(v: &Value) -> Option<NaiveDateTime> {
    let t = DateTime::parse_from_rfc3339(v.as_str()?).ok()?;
    (t.offset().local_minus_utc() == 8 * 3600).then(|| t.naive_local())
}

fn ingest(arch: &Archive, msgs: &[(Pos, Message)]) -> Seen {
    let mut seen = Seen::default();
    for (_, m) in msgs {
        let v: Value = serde_json::from_str(&m.payload).expect("payload is JSON");
        let records = match v {
            Value::Array(a) => a,
            other => vec![other],
        };
        for r in records {
            if let Err(why) = ingest_one(arch, &m.topic, &r, &mut seen) {
                seen.rejected.push(why);
            }
        }
    }
    seen
}

fn ingest_one(arch: &Archive, topic: &str, r: &Value, seen: &mut Seen) -> Result<(), String> {
    let meter = r["meter_id"].as_str().ok_or("meter_id")?.to_owned();
    if !arch.owner.contains_key(&meter) {
        return Err("unknown_meter".into());
    }
    let ts = time(&r["ts"]).ok_or("ts")?;
    if topic.starts_with("meter/load/") {
        let p = dec(&r["p_kw"]).ok_or("p_kw")?;
        seen.loads.entry(meter).or_default().insert(ts, p);
    } else if topic.starts_with("meter/freeze/") {
        let date =
            NaiveDate::from_str(r["date"].as_str().ok_or("date")?).map_err(|e| e.to_string())?;
        let g = |k: &str| dec(&r[k]).ok_or_else(|| k.to_owned());
        let tou = [
            g("reg_sharp")?,
            g("reg_peak")?,
            g("reg_flat")?,
            g("reg_valley")?,
        ];
        seen.freezes.insert(
            (meter, date),
            Regs {
                total: g("reg_total")?,
                tou,
            },
        );
    } else if topic.starts_with("meter/event/") {
        let code = r["code"].as_str().ok_or("code")?.to_owned();
        seen.events
            .push((meter, ts, code, r["state"].as_str().map(str::to_owned)));
    } else {
        return Err(format!("topic {topic}"));
    }
    Ok(())
}

// ---------------------------------------------------------------- the rules

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal literal")
}

fn in_valley(t: NaiveDateTime) -> bool {
    t.hour() >= 23 || t.hour() < 7
}

/// A customer's total power per timestamp (sum of the meters that reported).
fn power(arch: &Archive, seen: &Seen, c: &Cust) -> BTreeMap<NaiveDateTime, Decimal> {
    let mut out: BTreeMap<NaiveDateTime, Decimal> = BTreeMap::new();
    for (m, _) in &c.meters {
        for (t, p) in seen.loads.get(m).into_iter().flatten() {
            *out.entry(*t).or_default() += *p;
        }
    }
    let _ = arch;
    out
}

/// Energy of day D per the notation of themes.md: defined only when every
/// meter has freezes for D and D−1; `pick` chooses total or a TOU register.
fn energy(seen: &Seen, c: &Cust, date: NaiveDate, pick: fn(&Regs) -> Decimal) -> Option<Decimal> {
    let mut sum = Decimal::ZERO;
    for (m, mult) in &c.meters {
        let now = seen.freezes.get(&(m.clone(), date))?;
        let before = seen.freezes.get(&(m.clone(), date - Duration::days(1)))?;
        sum += (pick(now) - pick(before)) * *mult;
    }
    Some(sum)
}

fn total(r: &Regs) -> Decimal {
    r.total
}
fn valley(r: &Regs) -> Decimal {
    r.tou[3]
}

/// Valley energy of a day from the 15-minute points instead of registers.
fn valley_from_points(power: &BTreeMap<NaiveDateTime, Decimal>, date: NaiveDate) -> Decimal {
    power
        .iter()
        .filter(|(t, _)| t.date() == date && in_valley(**t))
        .map(|(_, p)| *p * d("0.25"))
        .sum()
}

type Hits = BTreeSet<(&'static str, String)>;

/// Every (theme, customer) the streaming rules of themes.md raise on `seen`.
fn hits(arch: &Archive, seen: &Seen, dates: &[NaiveDate]) -> Hits {
    let mut out = Hits::new();
    for c in &arch.customers {
        let pw = power(arch, seen, c);
        let limit = d("1.2") * c.c;
        let over = pw
            .iter()
            .zip(pw.iter().skip(1))
            .any(|((t0, p0), (t1, p1))| {
                *t1 - *t0 == Duration::minutes(15) && *p0 > limit && *p1 > limit
            });
        if over {
            out.insert(("over_capacity", c.id.clone()));
        }
        if valley_excess(seen, c, dates, |date| energy(seen, c, date, valley)) {
            out.insert(("valley_excess", c.id.clone()));
        }
        let reversal = c.meters.iter().any(|(m, _)| {
            dates.iter().any(|date| {
                let now = seen.freezes.get(&(m.clone(), *date));
                let before = seen.freezes.get(&(m.clone(), *date - Duration::days(1)));
                matches!((now, before), (Some(a), Some(b)) if a.total < b.total)
            })
        });
        if reversal {
            out.insert(("register_reversal", c.id.clone()));
        }
        let e: Vec<Option<Decimal>> = dates
            .iter()
            .map(|date| energy(seen, c, *date, total))
            .collect();
        if c.normal
            && e.windows(7)
                .any(|w| w.iter().all(|x| *x == Some(Decimal::ZERO)))
        {
            out.insert(("zero_consumption", c.id.clone()));
        }
        if c.normal && e.windows(8).any(drops) {
            out.insert(("energy_drop", c.id.clone()));
        }
        let cover = seen.events.iter().any(|(m, _, code, state)| {
            code == "cover_open"
                && state.as_deref().is_none_or(|s| s == "start")
                && c.meters.iter().any(|(id, _)| id == m)
        });
        if cover {
            out.insert(("meter_cover_open", c.id.clone()));
        }
    }
    out
}

/// Month-to-date valley energy through D > 1.2 × C × 8 h × day_of_month(D),
/// summing only days whose valley energy is defined.
fn valley_excess(
    seen: &Seen,
    c: &Cust,
    dates: &[NaiveDate],
    valley_of: impl Fn(NaiveDate) -> Option<Decimal>,
) -> bool {
    let _ = seen;
    let mut mtd = Decimal::ZERO;
    let mut month = None;
    for date in dates {
        if month != Some((date.year(), date.month())) {
            month = Some((date.year(), date.month()));
            mtd = Decimal::ZERO;
        }
        mtd += valley_of(*date).unwrap_or_default();
        if mtd > d("1.2") * c.c * d("8") * Decimal::from(date.day()) {
            return true;
        }
    }
    false
}

/// `w` = energies of D−7…D: all defined, mean ≥ 100 and E(D) < 0.3 × mean.
fn drops(w: &[Option<Decimal>]) -> bool {
    let Some((last, before)) = w.split_last() else {
        return false;
    };
    let (Some(e), Some(prev)) = (
        last,
        before.iter().copied().collect::<Option<Vec<Decimal>>>(),
    ) else {
        return false;
    };
    let mean = prev.iter().copied().sum::<Decimal>() / Decimal::from(prev.len());
    mean >= d("100") && *e < d("0.3") * mean
}

struct World {
    o: SimOptions,
    arch: Archive,
    seen: Seen,
    msgs: Vec<(Pos, Message)>,
    dates: Vec<NaiveDate>,
}

fn world(o: SimOptions) -> World {
    let arch = read_archive(&archive(&o));
    let msgs = run_messages(&o);
    let seen = ingest(&arch, &msgs);
    let dates = (0..o.days)
        .map(|k| o.start_date + Duration::days(i64::from(k)))
        .collect();
    World {
        o,
        arch,
        seen,
        msgs,
        dates,
    }
}

fn planted_set(o: &SimOptions) -> Hits {
    planted(o)
        .into_iter()
        .map(|p| (p.theme, p.customer_id))
        .collect()
}

fn cust<'a>(w: &'a World, id: &str) -> &'a Cust {
    w.arch
        .customers
        .iter()
        .find(|c| c.id == id)
        .expect("customer in archive")
}

// ---------------------------------------------------------------- tests

/// The core property: on the data as published, the rules fire for exactly
/// the planted (theme, customer) pairs, for several seeds and start dates
/// (first of a month, mid-month, a Saturday).
#[test]
fn rules_fire_for_exactly_the_planted_anomalies() {
    for (seed, start) in [
        (20_260_601, (2026, 6, 1)),
        (7, (2026, 11, 17)),
        (99, (2027, 1, 30)),
    ] {
        let w = world(opts(seed, start, 10));
        let found = hits(&w.arch, &w.seen, &w.dates);
        let want = planted_set(&w.o);
        assert_eq!(
            want.len(),
            7,
            "every streaming anomaly planted for {start:?}"
        );
        assert_eq!(found, want, "seed {seed}, start {start:?}");
        for miss in near_misses(&w.o) {
            assert!(
                !found.contains(&(miss.theme, miss.customer_id.clone())),
                "near miss fired: {miss:?}"
            );
        }
    }
}

/// valley_excess also holds when valley energy is taken from the 15-minute
/// curve rather than the registers, and the near miss stays silent that way too.
#[test]
fn valley_rule_agrees_between_registers_and_points() {
    let w = world(opts(3, (2026, 6, 1), 5));
    for c in &w.arch.customers {
        let pw = power(&w.arch, &w.seen, c);
        let by_points = valley_excess(&w.seen, c, &w.dates, |date| {
            Some(valley_from_points(&pw, date))
        });
        let by_regs = valley_excess(&w.seen, c, &w.dates, |date| {
            energy(&w.seen, c, date, valley)
        });
        assert_eq!(by_points, by_regs, "{}", c.id);
    }
}

/// Register delta × multiplier equals Σ p × 0.25 h for every meter and day
/// (total and valley), the TOU registers sum to the total, and registers
/// never go down except on the planted reversal.
#[test]
fn registers_are_exact_and_monotonic() {
    let w = world(opts(11, (2026, 6, 1), 9));
    let reversal = planted(&w.o)
        .into_iter()
        .find(|p| p.theme == "register_reversal")
        .expect("reversal planted");
    for c in &w.arch.customers {
        for (m, mult) in &c.meters {
            let points = w.seen.loads.get(m).expect("meter has points");
            for date in &w.dates {
                let now = w.seen.freezes[&(m.clone(), *date)];
                let before = w.seen.freezes[&(m.clone(), *date - Duration::days(1))];
                assert_eq!(
                    now.total,
                    now.tou.iter().copied().sum::<Decimal>(),
                    "{m} {date}"
                );
                let reversed = c.id == reversal.customer_id && now.total < before.total;
                if reversed {
                    continue;
                }
                assert!(now.total >= before.total, "{m} {date} went down");
                let day: Vec<(&NaiveDateTime, &Decimal)> =
                    points.iter().filter(|(t, _)| t.date() == *date).collect();
                assert_eq!(day.len(), SLOTS, "{m} {date}: 96 points");
                let e: Decimal = day.iter().map(|(_, p)| **p * d("0.25")).sum();
                let v: Decimal = day
                    .iter()
                    .filter(|(t, _)| in_valley(**t))
                    .map(|(_, p)| **p * d("0.25"))
                    .sum();
                assert_eq!((now.total - before.total) * *mult, e, "{m} {date} total");
                assert_eq!((now.tou[3] - before.tou[3]) * *mult, v, "{m} {date} valley");
            }
        }
    }
}

/// Normal customers stay well under the 1.2 × C limit.
#[test]
fn normal_customers_stay_well_under_capacity() {
    let w = world(opts(5, (2026, 7, 1), 8));
    let special: Vec<String> = planted(&w.o)
        .into_iter()
        .chain(near_misses(&w.o))
        .map(|p| p.customer_id)
        .collect();
    for c in w.arch.customers.iter().filter(|c| !special.contains(&c.id)) {
        let max = power(&w.arch, &w.seen, c)
            .values()
            .copied()
            .max()
            .unwrap_or_default();
        assert!(
            max <= d("0.9") * c.c,
            "{} peaks at {max} kW on {} kVA",
            c.id,
            c.c
        );
    }
}

/// The near misses sit exactly on their limits (so they test strictness).
#[test]
fn near_misses_sit_exactly_on_the_limits() {
    let w = world(opts(17, (2026, 6, 1), 9));
    let misses = near_misses(&w.o);
    let of = |theme: &str, note: &str| {
        misses
            .iter()
            .find(|m| m.theme == theme && m.note.contains(note))
            .map(|m| cust(&w, &m.customer_id))
            .expect("near miss")
    };
    let exact = of("over_capacity", "exactly");
    let pw = power(&w.arch, &w.seen, exact);
    assert_eq!(pw.values().copied().max(), Some(d("1.2") * exact.c));
    let v0 = energy(&w.seen, exact, w.dates[0], valley).expect("valley energy");
    assert_eq!(
        v0,
        d("1.2") * exact.c * d("8"),
        "valley energy on day 1 equals the limit"
    );

    let spike = of("over_capacity", "single point");
    let above = power(&w.arch, &w.seen, spike)
        .values()
        .filter(|p| **p > d("1.2") * spike.c)
        .count();
    assert_eq!(above, 1);

    let drop = of("energy_drop", "exactly 0.3");
    let e: Vec<Decimal> = w
        .dates
        .iter()
        .map(|date| energy(&w.seen, drop, *date, total).expect("energy"))
        .collect();
    let mean = e[..7].iter().copied().sum::<Decimal>() / d("7");
    assert!(mean >= d("100"));
    assert_eq!(e[7], d("0.3") * mean);

    let almost = of("zero_consumption", "0.01 kWh");
    let e: Vec<Decimal> = w
        .dates
        .iter()
        .map(|date| energy(&w.seen, almost, *date, total).expect("energy"))
        .collect();
    assert_eq!(e.iter().filter(|x| x.is_zero()).count(), 8);
    assert_eq!(e[6], d("0.01"));

    let suspended = of("zero_consumption", "suspended");
    assert!(!suspended.normal);
}

/// Each planted anomaly satisfies its rule on the day the plan says (shows
/// up early: within the first 1–3 days where the rule allows).
#[test]
fn anomalies_appear_on_their_planned_days() {
    let o = opts(20_260_601, (2026, 6, 1), 10);
    let fleet = fleet::build(&o);
    for p in super::plan::anomalies(&fleet) {
        let mut shorter = o.clone();
        shorter.days = p.day + 1;
        let w = world(shorter);
        let key = (p.planted.theme, p.planted.customer_id.clone());
        assert!(
            hits(&w.arch, &w.seen, &w.dates).contains(&key),
            "{key:?} by run day {}",
            p.day
        );
        let early = match p.planted.theme {
            "zero_consumption" => 6,
            "energy_drop" => 7,
            _ => 1,
        };
        assert!(p.day <= early, "{key:?} planted late");
    }
    let few = opts(1, (2026, 6, 1), 3);
    let themes: Vec<&str> = planted(&few).iter().map(|p| p.theme).collect();
    assert!(
        !themes.contains(&"zero_consumption") && !themes.contains(&"energy_drop"),
        "{themes:?}"
    );
}

/// The archive has the shape of interfaces.md §3 and realistic values.
#[test]
fn archive_is_well_formed() {
    let o = SimOptions::default();
    let a = archive(&o);
    assert_eq!(a, archive(&o), "deterministic");
    assert_ne!(
        a,
        archive(&SimOptions {
            seed: 1,
            ..o.clone()
        }),
        "seed matters"
    );
    let list = a["customers"].as_array().expect("array");
    assert_eq!(list.len(), 200);
    let sizes = [16, 50, 100, 200, 315, 400, 630, 800, 1000, 1250, 1600];
    let mut categories = BTreeSet::new();
    let mut suspended = 0;
    for c in list {
        let id = c["customer_id"].as_str().expect("id");
        assert!(
            id.len() == 11 && id.starts_with('C') && id[1..].chars().all(|ch| ch.is_ascii_digit()),
            "{id}"
        );
        let org = c["org_code"].as_str().expect("org");
        assert!(
            org.starts_with("41/") && org.split('/').count() == 3,
            "{org}"
        );
        let cat = c["usage_category"].as_str().expect("category");
        categories.insert(cat.to_owned());
        let kva = c["contract_kva"].as_i64().expect("kva");
        assert!(sizes.contains(&kva), "{kva}");
        let two_part = c["tariff_kind"] == "two_part";
        assert_eq!(two_part, cat == "large_industry", "{id}");
        if two_part {
            assert!(kva >= 315);
        }
        let meters = c["meters"].as_array().expect("meters");
        assert!((1..=3).contains(&meters.len()));
        for m in meters {
            let mult = m["multiplier"].as_i64().expect("multiplier");
            if cat == "residential" {
                assert_eq!(mult, 1);
            } else {
                assert!((30..=2000).contains(&mult), "{id}: {mult}");
            }
        }
        if c["status"] == "suspended" {
            suspended += 1;
            assert_eq!(c["capacity_changes"][0]["kind"], "suspend");
        } else {
            assert_eq!(c["status"], "normal");
        }
        for k in [
            "name",
            "tariff_category",
            "running_kva",
            "voltage_kv",
            "pf_standard",
            "basic_fee_mode",
            "capacity_changes",
        ] {
            assert!(!c[k].is_null(), "{id} lacks {k}");
        }
    }
    assert_eq!(categories.len(), 4, "{categories:?}");
    assert!((1..=12).contains(&suspended), "{suspended} suspended");
}

/// Wire format: topics, batch sizes, RFC 3339 +08:00, event-time order,
/// freezes right after the day's last points, the malformed records.
#[test]
fn messages_follow_the_interface() {
    let o = SimOptions {
        batch_size: 40,
        ..opts(2, (2026, 6, 1), 2)
    };
    let w = world(o.clone());
    let (mut last_load, mut saw_freeze_after) = (None, false);
    for ((day, slot), m) in &w.msgs {
        let v: Value = serde_json::from_str(&m.payload).expect("json");
        if m.topic.starts_with("meter/load/") {
            let a = v.as_array().expect("load batches are arrays");
            assert!(a.len() <= 40 && !a.is_empty());
            let ts = a.iter().filter_map(|r| time(&r["ts"])).max();
            if let (Some(prev), Some(now)) = (last_load, ts) {
                assert!(now >= prev, "event-time order");
            }
            last_load = ts.or(last_load);
        } else if m.topic.starts_with("meter/freeze/") {
            let a = v.as_array().expect("freeze batches are arrays");
            for r in a {
                let date = NaiveDate::from_str(r["date"].as_str().expect("date")).expect("date");
                let ts = time(&r["ts"]).expect("freeze ts");
                assert_eq!(
                    ts,
                    date.and_hms_opt(0, 0, 0).expect("midnight") + Duration::days(1)
                );
                if let Some(day) = day {
                    assert_eq!(date, o.start_date + Duration::days(i64::from(*day)));
                    assert_eq!(*slot, SLOTS);
                    let after_last = last_load
                        .is_some_and(|t| t.date() == date && t.hour() == 23 && t.minute() == 45);
                    assert!(after_last, "freezes of {date} follow its last points");
                    saw_freeze_after = true;
                }
            }
        } else {
            assert!(m.topic.starts_with("meter/event/"), "{}", m.topic);
            assert!(v.is_object());
        }
    }
    assert!(saw_freeze_after, "freezes follow the day's last points");
    // Registers and powers are written with exactly two decimals.
    for (_, m) in &w.msgs {
        for key in [
            "p_kw",
            "q_kvar",
            "reg_total",
            "reg_sharp",
            "reg_peak",
            "reg_flat",
            "reg_valley",
            "reg_q_total",
        ] {
            assert!(two_decimals(&m.payload, key), "{key} in {}", m.payload);
        }
    }
    // Malformed records: 3 a day, each rejected for its own reason.
    let mut reasons = w.seen.rejected.clone();
    reasons.sort();
    assert_eq!(
        reasons,
        vec!["p_kw", "p_kw", "ts", "ts", "unknown_meter", "unknown_meter"]
    );
    let malformed: u64 = w.msgs.iter().map(|(_, m)| m.malformed).sum();
    assert_eq!(malformed, 2 * wire::MALFORMED_PER_DAY);
}

/// Every numeric `"key":` value in `payload` has exactly two decimals.
fn two_decimals(payload: &str, key: &str) -> bool {
    let pat = format!("\"{key}\":");
    payload.match_indices(&pat).all(|(i, _)| {
        let rest = &payload[i + pat.len()..];
        let num: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
            .collect();
        num.is_empty() || num.split_once('.').is_some_and(|(_, frac)| frac.len() == 2)
    })
}

#[test]
fn generation_is_deterministic() {
    let o = opts(42, (2026, 6, 1), 2);
    let a: Vec<String> = run_messages(&o)
        .into_iter()
        .map(|(_, m)| m.payload)
        .collect();
    let b: Vec<String> = run_messages(&o)
        .into_iter()
        .map(|(_, m)| m.payload)
        .collect();
    assert!(a == b);
    assert_eq!(planted(&o), planted(&o));
}

#[test]
fn small_fleets_plant_what_fits() {
    let o = SimOptions {
        customers: 13,
        ..opts(1, (2026, 6, 1), 10)
    };
    assert_eq!(planted(&o).len(), 7);
    assert_eq!(near_misses(&o).len(), 7);
    let tiny = SimOptions { customers: 3, ..o };
    assert_eq!(planted(&tiny).len(), 3);
    let w = world(tiny);
    assert_eq!(hits(&w.arch, &w.seen, &w.dates), planted_set(&w.o));
}

#[test]
fn mqtt_urls() {
    assert_eq!(
        parse_mqtt_url("mqtt://localhost:1884").expect("ok"),
        ("localhost".to_owned(), 1884)
    );
    assert_eq!(
        parse_mqtt_url("mqtt://10.0.0.1").expect("ok"),
        ("10.0.0.1".to_owned(), 1883)
    );
    assert_eq!(
        parse_mqtt_url("mqtt://[::1]:1883/").expect("ok"),
        ("::1".to_owned(), 1883)
    );
    for bad in [
        "mqtts://h:8883",
        "http://h:1",
        "mqtt://:1883",
        "mqtt://h:x",
        "mqtt://u:p@h:1",
    ] {
        assert!(parse_mqtt_url(bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------- over MQTT

/// An embedded rumqttd broker on a free loopback port (it runs on its own
/// threads for the rest of the test process).
fn start_broker() -> u16 {
    use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let server = ServerSettings {
        name: "v4".to_owned(),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 4 * 1024 * 1024,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        router: RouterConfig {
            max_connections: 64,
            max_outgoing_packet_count: 200,
            max_segment_size: 64 * 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some([("1".to_owned(), server)].into_iter().collect()),
        ..Config::default()
    };
    std::thread::spawn(move || {
        let _ = Broker::new(config).start();
    });
    port
}

/// Subscribe to `meter/#`; returns (messages, records) counters.
async fn subscriber(
    port: u16,
) -> std::sync::Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    use std::sync::atomic::Ordering;
    let mut mo = MqttOptions::new("sim-test-sub", "127.0.0.1", port);
    mo.set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024);
    let (client, mut el) = AsyncClient::new(mo, 16);
    let counts = std::sync::Arc::new((
        std::sync::atomic::AtomicU64::new(0),
        std::sync::atomic::AtomicU64::new(0),
    ));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let c2 = std::sync::Arc::clone(&counts);
    tokio::spawn(async move {
        let mut tx = Some(tx);
        let _keep = &client;
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.subscribe("meter/#", QoS::AtLeastOnce).await;
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let v: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    let n = v.as_array().map_or(1, |a| a.len() as u64);
                    c2.0.fetch_add(1, Ordering::SeqCst);
                    c2.1.fetch_add(n, Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(std::time::Duration::from_secs(10), rx)
        .await
        .expect("subscribed in time")
        .expect("subscribed");
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_everything_over_mqtt_and_stops_on_request() {
    use std::sync::atomic::Ordering;
    let port = start_broker();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let counts = subscriber(port).await;
    let url = format!("mqtt://127.0.0.1:{port}");
    let o = SimOptions {
        customers: 30,
        days: 2,
        points_per_second: 0.0,
        batch_size: 25,
        client_id: "sim-test-pub".to_owned(),
        ..SimOptions::default()
    };
    let report = super::publish(&o, &url, std::future::pending())
        .await
        .expect("publish");
    assert_eq!(report.days, 2);
    assert_eq!(report.planted, planted(&o));
    assert_eq!(report.malformed, 2 * wire::MALFORMED_PER_DAY);
    let expected: u64 = run_messages(&o)
        .iter()
        .map(|(_, m)| m.readings + m.malformed)
        .sum();
    assert_eq!(report.readings + report.malformed, expected);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while counts.0.load(Ordering::SeqCst) < report.messages
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(counts.0.load(Ordering::SeqCst), report.messages);
    assert_eq!(counts.1.load(Ordering::SeqCst), expected);

    // Paced and endless until stopped.
    let forever = SimOptions {
        days: 0,
        points_per_second: 200.0,
        client_id: "sim-test-stop".to_owned(),
        ..o
    };
    let started = std::time::Instant::now();
    let stopped = super::publish(
        &forever,
        &url,
        tokio::time::sleep(std::time::Duration::from_millis(700)),
    )
    .await
    .expect("stops cleanly");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(stopped.messages > 0 && stopped.days <= 2, "{stopped:?}");
}

#[tokio::test]
async fn unreachable_broker_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let o = SimOptions {
        days: 1,
        ..SimOptions::default()
    };
    let err = super::publish(
        &o,
        &format!("mqtt://127.0.0.1:{port}"),
        std::future::pending(),
    )
    .await
    .expect_err("no broker");
    assert!(
        err.to_string()
            .contains("cannot connect to the MQTT broker"),
        "{err}"
    );
    let err = super::publish(&o, "mqtts://127.0.0.1:8883", std::future::pending())
        .await
        .expect_err("no tls");
    assert!(err.to_string().contains("plain MQTT"), "{err}");
}

/// Benign events happen, and a meter records no load during its outage.
#[test]
fn benign_events_are_sent() {
    let w = world(opts(20_260_601, (2026, 6, 1), 10));
    let count = |code: &str| w.seen.events.iter().filter(|e| e.2 == code).count();
    assert!(
        count("clock_error") > 0 && count("power_off") > 0,
        "{} {}",
        count("clock_error"),
        count("power_off")
    );
    for (m, at, _, state) in w
        .seen
        .events
        .iter()
        .filter(|e| e.2 == "power_off" && e.3.as_deref() == Some("start"))
    {
        // The first whole 15 minutes inside the outage.
        let into_slot = Duration::seconds(i64::from(at.minute() % 15 * 60 + at.second()));
        let next = *at - into_slot + Duration::minutes(15);
        assert_eq!(w.seen.loads[m][&next], Decimal::ZERO, "{m} {at} {state:?}");
    }
}

/// `jicha demo` spawns the simulator on the runtime: its future must be Send.
#[test]
fn publish_future_is_send() {
    fn is_send<T: Send>(_: &T) {}
    let o = SimOptions::default();
    let fut = super::publish(&o, "mqtt://127.0.0.1:1", std::future::pending::<()>());
    is_send(&fut);
}
