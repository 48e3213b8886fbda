//! Phase (b): Mosquitto → `jicha run` with Redis state and all built-in
//! themes, on the same messages; then jicha's and Redis's state sizes.

use crate::args::Args;
use crate::format::{opt, thousands};
use crate::measure::*;
use crate::poll::*;
use crate::publisher::{join, publisher};
use crate::workload::{Msg, Workload};
use crate::Env;
use anyhow::{anyhow, bail, Context, Result};
use jicha_testkit::{metric_by_label, metric_sum, mqtt_options, App};
use rumqttc::{AsyncClient, QoS};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) async fn redis_info_used(con: &mut redis::aio::MultiplexedConnection) -> Result<f64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(con).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow!("INFO memory has no used_memory"))
}

/// Bytes, records and segments of `jicha:seg:{stream}:*`, and the archive hash.
pub(crate) async fn redis_breakdown(
    con: &mut redis::aio::MultiplexedConnection,
    f: &mut Figures,
) -> Result<()> {
    let keys = jicha_connectors::redis_state::scan_keys(con, "jicha:seg:*").await?;
    for chunk in keys.chunks(100) {
        let mut p = redis::pipe();
        for k in chunk {
            p.cmd("MEMORY").arg("USAGE").arg(k).arg("SAMPLES").arg(0);
        }
        let bytes: Vec<Option<u64>> = p.query_async(con).await?;
        let blobs: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(chunk).query_async(con).await?;
        for ((k, b), blob) in chunk.iter().zip(bytes).zip(blobs) {
            let stream = k.split(':').nth(2).unwrap_or("?").to_string();
            let records = blob
                .map(|v| jicha_pipeline::segment_codec::decode(&v).map(|r| r.len()))
                .transpose()
                .with_context(|| format!("segment {k} unreadable"))?
                .unwrap_or(0);
            let e = f.redis_rec.entry(stream).or_insert((0.0, 0.0, 0.0));
            e.0 += b.unwrap_or(0) as f64;
            e.1 += records as f64;
            e.2 += 1.0;
        }
    }
    let arch: Option<u64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("jicha:customers")
        .arg("SAMPLES")
        .arg(0)
        .query_async(con)
        .await?;
    f.redis_archive = arch.map(|b| b as f64);
    Ok(())
}

pub(crate) async fn phase_b(
    env: &mut Env,
    wl: &Workload,
    msgs: &Arc<Vec<Msg>>,
    a: &Args,
    f: &mut Figures,
) -> Result<()> {
    let bin = a
        .bin
        .clone()
        // Cargo builds the package's binaries for its benches, in the
        // same profile, so `cargo bench` alone is enough.
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_jicha")));
    if !bin.is_file() {
        bail!(
            "{} is missing: check the --bin path, or run cargo bench again to build it",
            bin.display()
        );
    }
    let archive = env.svc.dir.join("archive.json");
    std::fs::write(&archive, serde_json::to_vec(&wl.archive)?)?;
    let mut con = redis::Client::open(env.svc.redis_url())?
        .get_multiplexed_async_connection()
        .await
        .context("connecting to the benchmark's Redis")?;
    let redis_before = redis_info_used(&mut con).await?;
    let http_port = jicha_testkit::free_port()?;
    let addr = format!("127.0.0.1:{http_port}");
    let started = Instant::now();
    let mut cmd = App::command(&bin, &env.svc, http_port, Some(archive.as_path()));
    cmd.env("JICHA_LOG", "warn");
    let log = env.svc.dir.join("jicha.log");
    // Blocks this worker while jicha loads the archive: nothing else runs yet.
    let mut jicha = App::start(&mut cmd, &log, http_port, Duration::from_secs(300))?;
    let jpid = jicha.pid();
    // The HTTP server is up before the MQTT subscription: probe with a record
    // for an unknown meter (rejected, never counted as ingested) until jicha
    // reports rejecting it.
    {
        let (client, mut el) = AsyncClient::new(mqtt_options("bench-probe", env.svc.mqtt_port), 10);
        let driver = tokio::spawn(async move { while el.poll().await.is_ok() {} });
        let probe = r#"{"meter_id":"MBENCHPROBE","ts":"2026-05-01T00:00:00+08:00","p_kw":1.00}"#;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let _ = client
                .publish(
                    "meter/load/bench-probe",
                    QoS::AtLeastOnce,
                    false,
                    probe.as_bytes().to_vec(),
                )
                .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            if let Ok((200, body)) = http_get(&addr, "/metrics").await {
                if metric_sum(&body, "jicha_records_rejected_total", &[]) >= 1.0 {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("jicha does not receive MQTT messages (probe not rejected within 30 s; log: {})", jicha.log().display());
            }
        }
        let _ = client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        driver.abort();
    }
    f.startup_s = Some(started.elapsed().as_secs_f64());
    f.jicha_rss_idle_kb = jpid.and_then(|p| status_kb(p, "VmRSS"));
    let (j0, m0, r0, c0, s0) = (
        jpid.and_then(proc_cpu),
        env.svc.mosquitto_pid().and_then(proc_cpu),
        env.svc.redis_pid().and_then(proc_cpu),
        machine_cpu(),
        cpu_ticks("/proc/self/stat"),
    );

    let st = Arc::new(Mutex::new(PollState::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let pollers = spawn_pollers(
        Duration::from_millis(a.poll_ms.max(1)),
        addr.clone(),
        Arc::clone(&st),
        Arc::clone(&stop),
    );
    let timeout = Duration::from_secs(a.timeout);
    let pub_h = publisher(
        env.svc.mqtt_port,
        Arc::clone(msgs),
        a.rate,
        "bench-publisher-b",
        timeout,
    );
    let good = wl.records() as f64;
    let want: HashSet<(String, String)> = wl
        .planted
        .iter()
        .map(|p| (p.theme.to_string(), p.customer_id.clone()))
        .collect();
    let t0 = Instant::now();
    let mut outcome: Result<()> = Ok(());
    let (mut last_ing, mut last_change) = (-1.0f64, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let (ing, all_seen) = {
            let s = st.lock().map_err(|_| anyhow!("poll state poisoned"))?;
            (
                s.ingested.last().map(|x| x.1).unwrap_or(0.0),
                want.iter().all(|k| s.seen.contains_key(k)),
            )
        };
        if ing >= good && all_seen {
            break;
        }
        if ing != last_ing {
            (last_ing, last_change) = (ing, Instant::now());
        } else if ing < good && last_change.elapsed() > Duration::from_secs(a.stall) {
            let cpu = jpid
                .and_then(proc_cpu)
                .zip(j0)
                .map(|(x, y)| (x - y) as f64 / env.tck);
            outcome = Err(anyhow!(
                "jicha stopped ingesting: its counter stood at {} of {} records for {} s (jicha CPU {} s so far); \
                 see \"stalls\" in docs/performance.md",
                thousands(ing),
                thousands(good),
                a.stall,
                opt(cpu, |c| format!("{c:.1}"))
            ));
            break;
        }
        if let Some(why) = jicha.exited() {
            outcome = Err(anyhow!("{why}"));
            break;
        }
        if t0.elapsed() > timeout {
            let missing: Vec<String> = {
                let s = st.lock().map_err(|_| anyhow!("poll state poisoned"))?;
                want.iter()
                    .filter(|k| !s.seen.contains_key(*k))
                    .map(|(t, c)| format!("{t}/{c}"))
                    .collect()
            };
            outcome = Err(anyhow!(
                "jicha did not finish within {} s: ingested {ing} of {good} records; work orders missing: {} (raise --timeout or lower --customers; last poll error: {})",
                a.timeout,
                if missing.is_empty() { "none".into() } else { missing.join(", ") },
                st.lock().ok().and_then(|s| s.error.clone()).unwrap_or_else(|| "none".into())
            ));
            break;
        }
    }
    let (j1, m1, r1, c1, s1) = (
        jpid.and_then(proc_cpu),
        env.svc.mosquitto_pid().and_then(proc_cpu),
        env.svc.redis_pid().and_then(proc_cpu),
        machine_cpu(),
        cpu_ticks("/proc/self/stat"),
    );
    stop.store(true, Ordering::Relaxed);
    for p in pollers {
        let _ = tokio::time::timeout(Duration::from_secs(130), p).await;
    }
    let p = join(pub_h).await;
    f.jicha_hwm_kb = jpid.and_then(|p| status_kb(p, "VmHWM"));
    f.jicha_rss_end_kb = jpid.and_then(|p| status_kb(p, "VmRSS"));
    f.b_jicha_cpu = j0.zip(j1).map(|(x, y)| (y - x) as f64 / env.tck);
    f.b_mosq_cpu = m0.zip(m1).map(|(x, y)| (y - x) as f64 / env.tck);
    f.b_redis_cpu = r0.zip(r1).map(|(x, y)| (y - x) as f64 / env.tck);
    f.b_busy = busy_pct(c0, c1);
    f.b_bench_cpu = s0.zip(s1).map(|(x, y)| (y - x) as f64 / env.tck);
    f.b_others_cpu = others(
        c0,
        c1,
        &[j0.zip(j1), m0.zip(m1), r0.zip(r1), s0.zip(s1)],
        env.tck,
    );
    // Final counters and work orders (also on failure: they explain it).
    if let Ok((200, body)) = http_get(&addr, "/metrics").await {
        f.ingested = Some(metric_sum(&body, "jicha_records_ingested_total", &[]));
        f.rejected = Some(metric_sum(&body, "jicha_records_rejected_total", &[]));
        f.late = Some(metric_sum(&body, "jicha_records_late_total", &[]));
        for (stream, bytes) in metric_by_label(&body, "jicha_state_bytes", "stream") {
            f.state.entry(stream).or_default().0 = bytes;
        }
        for (stream, records) in metric_by_label(&body, "jicha_state_records", "stream") {
            f.state.entry(stream).or_default().1 = records;
        }
        let mut eval: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for l in body.lines() {
            for (suffix, slot) in [("_sum{", 0), ("_count{", 1)] {
                if let Some(rest) = l.strip_prefix(&format!("jicha_theme_eval_seconds{suffix}")) {
                    let theme = rest.split('"').nth(1).unwrap_or("?").to_string();
                    let v: f64 = l
                        .rsplit(' ')
                        .next()
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(0.0);
                    let e = eval.entry(theme).or_insert((0.0, 0.0));
                    if slot == 0 {
                        e.0 = v
                    } else {
                        e.1 = v
                    }
                }
            }
        }
        f.eval = eval.into_iter().map(|(k, (s, n))| (k, s, n)).collect();
    }
    if let Ok(items) = all_workorders(&addr).await {
        f.wo_total = Some(items.len());
        f.wo_unexpected = items.into_iter().filter(|k| !want.contains(k)).collect();
    }
    if let Ok(used) = redis_info_used(&mut con).await {
        f.redis_delta = Some(used - redis_before);
    }
    if let Err(e) = redis_breakdown(&mut con, f).await {
        eprintln!("note: Redis breakdown failed: {e:#}");
    }
    jicha.terminate(Duration::from_secs(15));
    let p = p?;
    outcome?;
    // Times.
    let s = st.lock().map_err(|_| anyhow!("poll state poisoned"))?;
    let t_ing = reached(&s.ingested, good).ok_or_else(|| anyhow!("ingestion never completed"))?;
    let t_wo = want
        .iter()
        .filter_map(|k| s.seen.get(k).copied())
        .max()
        .unwrap_or(t_ing);
    f.b_elapsed = Some(t_ing.max(t_wo).duration_since(p.first).as_secs_f64());
    f.b_ingested_at = Some(t_ing.duration_since(p.first).as_secs_f64());
    f.b_publish = p.last_ack.map(|t| t.duration_since(p.first).as_secs_f64());
    f.b_pub_cpu = p.cpu_ticks.map(|t| t as f64 / env.tck);
    // Detection latency of every planted window.
    let mut cum = Vec::with_capacity(msgs.len());
    let mut acc = 0u64;
    for m in msgs.iter() {
        acc += m.records;
        cum.push(acc as f64);
    }
    for pl in &wl.planted {
        let (Some(i), Some(seen)) = (
            pl.closing,
            s.seen.get(&(pl.theme.to_string(), pl.customer_id.clone())),
        ) else {
            continue;
        };
        if let Some(sent) = p.sent_at.get(i) {
            f.lat_e2e
                .push(seen.saturating_duration_since(*sent).as_secs_f64());
        }
        if let Some(t) = reached(&s.ingested, cum[i]) {
            f.lat_internal
                .push(seen.saturating_duration_since(t).as_secs_f64());
        }
    }
    Ok(())
}
