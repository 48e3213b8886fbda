//! Builds the workload: the fleet's load curves, daily freezes and
//! events as batched MQTT messages in event-time order, with planted
//! anomalies and the message that closes each one's window.

use crate::args::Args;
use crate::fleet::*;
use crate::rng::BenchRng;
use crate::workload::*;
use anyhow::{bail, Result};
use rumqttc::{Publish, QoS};
use std::collections::HashMap;
use std::fmt::Write as _;

pub(crate) fn generate(a: &Args) -> Result<Workload> {
    let n = a.customers;
    let days = a.days.max(1);
    let batch = a.batch.max(1);
    let fleet = build_fleet(n, a.seed);
    let archive = archive_json(&fleet);
    // Flat meter list: (customer, meter index).
    let flat: Vec<(usize, usize)> = fleet
        .iter()
        .enumerate()
        .flat_map(|(ci, c)| (0..c.meters.len()).map(move |mi| (ci, mi)))
        .collect();
    let meter_of = |f: usize| {
        let (ci, mi) = flat[f];
        (&fleet[ci], &fleet[ci].meters[mi])
    };
    let first_flat: Vec<usize> = {
        let mut v = Vec::with_capacity(n);
        let mut k = 0;
        for c in &fleet {
            v.push(k);
            k += c.meters.len();
        }
        v
    };

    // ── planted anomalies on distinct customers, spread over the fleet ──
    let n_over = (n / 400).clamp(4, 50);
    let n_cover = 3usize;
    let n_special = n_over + n_cover + 1;
    if n < n_special + 1 {
        bail!(
            "--customers must be at least {} (planted anomalies need their own customers)",
            n_special + 1
        );
    }
    let stride = n / n_special;
    let special = |k: usize| k * stride + stride / 2;
    let day0 = first_day();
    let day_local_ms = |d: i64| (day0 + d) * DAY_MS;
    let mut planted = Vec::new();
    // over_capacity: customer total > 1.2 × C at slots a and a+1 of day d.
    // a ≤ 88 so that the window [a, a+2) closes within the day (the
    // watermark must reach end + 1 h + one more slot).
    let mut over: HashMap<usize, (u32, usize)> = HashMap::new();
    for k in 0..n_over {
        let ci = special(k);
        let d = (k as u32) % days;
        let a_slot = 2 + (k * 86 / n_over.max(1)) % 87;
        over.insert(ci, (d, a_slot));
        let end_local = day_local_ms(i64::from(d)) + (a_slot as i64 + 2) * SLOT_MS;
        planted.push(Planted {
            theme: "over_capacity",
            customer_id: fleet[ci].id.clone(),
            stream: Stream::Load,
            closes_after_ms: end_local - OFFSET_MS,
            closing: None,
        });
    }
    // meter_cover_open: a `cover_open`/`start` event (row-wise theme).
    let mut day_events: Vec<Vec<PlanEvent>> = (0..days).map(|_| Vec::new()).collect();
    for k in 0..n_cover {
        let ci = special(n_over + k);
        let d = (k as u32) % days;
        let local_ms =
            day_local_ms(i64::from(d)) + (3 + 6 * k as i64) * HOUR_MS + 17 * 60_000 + 42_000;
        day_events[d as usize].push(PlanEvent {
            local_ms,
            meter: first_flat[ci],
            code: "cover_open",
            state: Some("start"),
        });
        planted.push(Planted {
            theme: "meter_cover_open",
            customer_id: fleet[ci].id.clone(),
            stream: Stream::Event,
            closes_after_ms: local_ms - OFFSET_MS,
            closing: None,
        });
    }
    // register_reversal: a meter's register wound back at the end of day
    // days-2 (its daily window closes with the next day's freezes).
    let reversal = (days >= 2).then(|| {
        let ci = special(n_over + n_cover);
        let d = days - 2;
        planted.push(Planted {
            theme: "register_reversal",
            customer_id: fleet[ci].id.clone(),
            stream: Stream::Freeze,
            closes_after_ms: day_local_ms(i64::from(d) + 1) - OFFSET_MS,
            closing: None,
        });
        (first_flat[ci], d)
    });
    // Background events: a clock_error on ~0.5 % of meters a day.
    let mut rng = BenchRng::new(a.seed.wrapping_mul(31) ^ 0xE7E7);
    for (d, evs) in day_events.iter_mut().enumerate() {
        for f in 0..flat.len() {
            if rng.unit() < 0.005 {
                evs.push(PlanEvent {
                    local_ms: day_local_ms(d as i64) + rng.below(86_400) as i64 * 1000,
                    meter: f,
                    code: "clock_error",
                    state: None,
                });
            }
        }
        evs.sort_by_key(|e| (e.local_ms, e.meter));
    }

    // ── registers: secondary-side hundredths of kWh per TOU bucket ──
    // A register hundredth is 4 × multiplier hundredth-kW slot units, the
    // remainder carries to the next slot: freezes match the load exactly.
    let mut regs: Vec<[i64; 4]> = Vec::with_capacity(flat.len());
    let mut carry: Vec<[i64; 4]> = vec![[0; 4]; flat.len()];
    for _ in 0..flat.len() {
        let total = 200_000 + rng.below(4_800_000) as i64;
        let s = total * 8 / 100;
        let p = total * 35 / 100;
        let fl = total * 27 / 100;
        regs.push([s, p, fl, total - s - p - fl]);
    }
    let scale: Vec<f64> = (0..flat.len())
        .map(|f| {
            let (c, m) = meter_of(f);
            c.kva as f64 * 100.0 * m.share_pm as f64 / 1000.0 * c.load_factor
        })
        .collect();

    let mut msgs: Vec<Msg> = Vec::new();
    let (mut load, mut freezes, mut events, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let push = |msgs: &mut Vec<Msg>,
                bytes: &mut u64,
                topic: String,
                payload: String,
                records: u64,
                stream,
                max_event_ms| {
        *bytes += payload.len() as u64;
        msgs.push(Msg {
            publish: Publish::new(topic, QoS::AtLeastOnce, payload.into_bytes()),
            records,
            stream,
            max_event_ms,
        });
    };
    let freeze_msgs =
        |msgs: &mut Vec<Msg>, bytes: &mut u64, regs: &[[i64; 4]], date_day: i64| -> u64 {
            let date = iso_date(date_day);
            let ts = rfc3339_local((date_day + 1) * DAY_MS);
            let event_ms = (date_day + 1) * DAY_MS - OFFSET_MS;
            let mut count = 0;
            for (t, chunk) in (0..flat.len())
                .collect::<Vec<_>>()
                .chunks(batch)
                .enumerate()
            {
                let mut p = String::with_capacity(chunk.len() * 220);
                p.push('[');
                for (k, f) in chunk.iter().enumerate() {
                    if k > 0 {
                        p.push(',');
                    }
                    let r = &regs[*f];
                    let _ = write!(
                        p,
                        r#"{{"meter_id":"{}","date":"{}","ts":"{}","reg_total":"#,
                        meter_of(*f).1.id,
                        date,
                        ts
                    );
                    dec2(&mut p, r.iter().sum());
                    for (name, v) in [
                        ("reg_sharp", r[0]),
                        ("reg_peak", r[1]),
                        ("reg_flat", r[2]),
                        ("reg_valley", r[3]),
                    ] {
                        let _ = write!(p, r#","{name}":"#);
                        dec2(&mut p, v);
                    }
                    p.push('}');
                }
                p.push(']');
                count += chunk.len() as u64;
                push(
                    msgs,
                    bytes,
                    format!("meter/freeze/T{t:05}"),
                    p,
                    chunk.len() as u64,
                    Stream::Freeze,
                    event_ms,
                );
            }
            count
        };

    // Opening freezes: the day before the first, so day 0's energy is defined.
    freezes += freeze_msgs(&mut msgs, &mut bytes, &regs, day0 - 1);
    // Each customer's total registers × multipliers (hundredths of kWh) at
    // the end of each day from day0 − 1, for the energy_drop oracle below.
    let customer_registers = |regs: &[[i64; 4]]| {
        let mut v = vec![0i64; fleet.len()];
        for (f, r) in regs.iter().enumerate() {
            v[flat[f].0] += r.iter().sum::<i64>() * meter_of(f).1.multiplier;
        }
        v
    };
    let mut day_end_registers = vec![customer_registers(&regs)];
    for d in 0..days {
        let day_ms = day_local_ms(i64::from(d));
        let evs = &day_events[d as usize];
        let mut next_ev = 0;
        for slot in 0..SLOTS {
            let local = day_ms + slot as i64 * SLOT_MS;
            let ts = rfc3339_local(local);
            let b = bucket(slot);
            for (t, chunk) in (0..flat.len())
                .collect::<Vec<_>>()
                .chunks(batch)
                .enumerate()
            {
                let mut p = String::with_capacity(chunk.len() * 96);
                p.push('[');
                for (k, f) in chunk.iter().enumerate() {
                    let (ci, _) = flat[*f];
                    let (c, m) = meter_of(*f);
                    let pw = match over.get(&ci) {
                        Some((od, oa)) if *od == d && (slot == *oa || slot == *oa + 1) => {
                            c.kva * 135 * m.share_pm / 1000
                        }
                        _ => (scale[*f] * level(c.kind, slot) * (0.95 + 0.1 * rng.unit())) as i64,
                    };
                    let acc = carry[*f][b] + pw;
                    let unit = 4 * m.multiplier;
                    regs[*f][b] += acc.div_euclid(unit);
                    carry[*f][b] = acc.rem_euclid(unit);
                    if k > 0 {
                        p.push(',');
                    }
                    let _ = write!(p, r#"{{"meter_id":"{}","ts":"{}","p_kw":"#, m.id, ts);
                    dec2(&mut p, pw);
                    p.push_str(r#","q_kvar":"#);
                    dec2(&mut p, pw * 3 / 10);
                    p.push('}');
                }
                p.push(']');
                load += chunk.len() as u64;
                push(
                    &mut msgs,
                    &mut bytes,
                    format!("meter/load/T{t:05}"),
                    p,
                    chunk.len() as u64,
                    Stream::Load,
                    local - OFFSET_MS,
                );
            }
            // This slot's events, batched.
            let end = local + SLOT_MS;
            let start_ev = next_ev;
            while next_ev < evs.len() && evs[next_ev].local_ms < end {
                next_ev += 1;
            }
            for chunk in evs[start_ev..next_ev].chunks(batch) {
                let mut p = String::from("[");
                let mut max_ms = i64::MIN;
                for (k, e) in chunk.iter().enumerate() {
                    if k > 0 {
                        p.push(',');
                    }
                    let _ = write!(
                        p,
                        r#"{{"meter_id":"{}","ts":"{}","code":"{}""#,
                        meter_of(e.meter).1.id,
                        rfc3339_local(e.local_ms),
                        e.code
                    );
                    if let Some(s) = e.state {
                        let _ = write!(p, r#","state":"{s}""#);
                    }
                    p.push('}');
                    max_ms = max_ms.max(e.local_ms - OFFSET_MS);
                }
                p.push(']');
                events += chunk.len() as u64;
                push(
                    &mut msgs,
                    &mut bytes,
                    "meter/event/T00000".to_string(),
                    p,
                    chunk.len() as u64,
                    Stream::Event,
                    max_ms,
                );
            }
        }
        if let Some((f, rd)) = reversal {
            if rd == d {
                // Someone winds the flat register back 300.00 kWh.
                regs[f][2] -= 30_000;
            }
        }
        freezes += freeze_msgs(&mut msgs, &mut bytes, &regs, day0 + i64::from(d));
        day_end_registers.push(customer_registers(&regs));
    }
    // energy_drop is not planted, but from eight days on the data can meet
    // its rule (themes.md): the wound-back register above does. Every day
    // that meets it, and closes within the run (not the last), is expected.
    for (ci, c) in fleet.iter().enumerate() {
        let energy: Vec<i64> = day_end_registers
            .windows(2)
            .map(|w| w[1][ci] - w[0][ci])
            .collect();
        for d in 7..energy.len().saturating_sub(1) {
            let before: i64 = energy[d - 7..d].iter().sum();
            // mean ≥ 100 kWh and E(D) < 0.3 × mean, in hundredths of kWh.
            if before >= 7 * 100 * 100 && 70 * energy[d] < 3 * before {
                planted.push(Planted {
                    theme: "energy_drop",
                    customer_id: c.id.clone(),
                    stream: Stream::Freeze,
                    closes_after_ms: day_local_ms(d as i64 + 1) - OFFSET_MS,
                    closing: None,
                });
            }
        }
    }

    // ── which message closes each planted window ──
    let (mut load_max, mut event_max, mut freeze_max) = (i64::MIN, i64::MIN, i64::MIN);
    for (i, m) in msgs.iter().enumerate() {
        match m.stream {
            Stream::Load => load_max = load_max.max(m.max_event_ms),
            Stream::Event => event_max = event_max.max(m.max_event_ms),
            Stream::Freeze => freeze_max = freeze_max.max(m.max_event_ms),
        }
        let wm = |x: i64| (x != i64::MIN).then(|| x - OOO_MS);
        for p in planted.iter_mut().filter(|p| p.closing.is_none()) {
            let trigger = match p.stream {
                Stream::Load => wm(load_max),
                Stream::Freeze => wm(freeze_max),
                Stream::Event => wm(load_max).max(wm(event_max)),
            };
            if trigger.is_some_and(|t| t > p.closes_after_ms) {
                p.closing = Some(i);
            }
        }
    }
    if let Some(p) = planted.iter().find(|p| p.closing.is_none()) {
        bail!(
            "generator bug: the window of planted {} for {} never closes",
            p.theme,
            p.customer_id
        );
    }
    Ok(Workload {
        fleet_meters: flat.len(),
        n_msgs: msgs.len(),
        customers: n,
        msgs,
        load,
        freezes,
        events,
        bytes,
        planted,
        archive,
    })
}
