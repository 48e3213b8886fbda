//! The runtime's own tests: meter resolution across archive changes,
//! restored state, and evaluations pipelined with accepts.

use super::*;
use crate::archive::Archive;
use crate::decode::DecodedMessage;
use crate::records::Record;
use crate::state::MemoryBackend;
use crate::state::StateBackend;

fn archive_doc(customer: &str, meter: &str) -> String {
    format!(
        r#"{{"customers":[{{"customer_id":"{customer}","org_code":"41/4107/410727","usage_category":"large_industry",
        "tariff_kind":"two_part","contract_kva":400,"meters":[{{"meter_id":"{meter}","multiplier":1}}]}}]}}"#
    )
}

/// Accepts and evaluates a batch, as the MQTT source does, up to its commit.
async fn ingest(m: &Arc<Monitor>, batch: Vec<DecodedMessage>) -> (IngestReport, StagedCommit) {
    let (rep, evaluation) = m.ingest(batch).await;
    (rep, evaluation.finish().await)
}

fn load_message(meter: &str, m: &Monitor) -> DecodedMessage {
    load_message_at(meter, "10:00", m)
}

fn load_message_at(meter: &str, hh_mm: &str, m: &Monitor) -> DecodedMessage {
    let payload =
        format!(r#"{{"meter_id":"{meter}","ts":"2026-11-03T{hh_mm}:00+08:00","p_kw":5}}"#);
    let index = m.meter_index();
    DecodedMessage::decode(
        Some(crate::records::Stream::Load),
        "meter/load/x".into(),
        payload.into_bytes(),
        1 << 20,
        Some(&index),
    )
}

/// Meters are resolved while decoding, against the archive as it was;
/// a meter added to the archive before the batch is processed counts
/// as known, one removed counts as unknown.
#[test]
fn meters_resolved_before_an_archive_change_are_looked_up_again() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let backend = Arc::new(MemoryBackend::default());
        let first = Archive::parse_document(&archive_doc("C1", "M1")).unwrap();
        let m = Monitor::open(MonitorConfig::default(), backend, Vec::new(), Some(first))
            .await
            .unwrap();
        let known = load_message("M1", &m);
        let stale_unknown = load_message("M2", &m);
        // C1 now has meter M2 instead of M1.
        let moved = Archive::parse_document(&archive_doc("C1", "M2")).unwrap();
        m.upsert_archive(moved).await.unwrap();
        let (rep, staged) = ingest(&m, vec![known, stale_unknown]).await;
        staged.commit().await.unwrap();
        assert_eq!((rep.accepted(), rep.rejected), (1, 1));
        let dead: Vec<String> = m
            .core
            .lock()
            .await
            .dead_letters
            .iter()
            .map(|d| d.record.clone())
            .collect();
        assert_eq!(dead.len(), 1);
        assert!(dead[0].contains("\"M1\""), "{dead:?}");

        // Resolved against the current archive: trusted as is.
        let (rep, staged) = ingest(&m, vec![load_message("M2", &m)]).await;
        staged.commit().await.unwrap();
        assert_eq!((rep.accepted(), rep.duplicates(), rep.rejected), (0, 1, 0));
    });
}

/// Records restored at start-up share the archive's meter ids, as
/// ingested ones do, rather than each holding a copy.
#[test]
fn restored_records_share_the_archives_meter_ids() {
    rt().block_on(async {
        let backend = Arc::new(MemoryBackend::default());
        let stored = (0..3).map(|i| {
            Record::Load(crate::records::LoadPoint::power_only(
                crate::ids::MeterId::new("M1"),
                1_793_000_700_000 + i * 900_000,
                rust_decimal::Decimal::ONE,
            ))
        });
        let commit = crate::state::Commit {
            records: crate::store::RecordChanges {
                puts: stored.collect(),
                evicted: None,
            },
            ..Default::default()
        };
        backend.commit(&commit).await.unwrap();
        let archive = Archive::parse_document(&archive_doc("C1", "M1")).unwrap();
        let m = Monitor::open(MonitorConfig::default(), backend, Vec::new(), Some(archive))
            .await
            .unwrap();
        let core = m.core.lock().await;
        let ours = core.archive.meter_index().canonical("M1").unwrap().clone();
        let restored = core.store.load_times(0, i64::MAX);
        assert_eq!(restored.len(), 3);
        for t in restored {
            let points = core.store.load_at(t);
            assert_eq!(points.len(), 1);
            assert!(points[0].meter_id.shares_text_with(&ours), "{t}");
        }
    });
}

/// A theme with a hit for every customer and 15-minute window holding a point.
const EVERY_WINDOW: &str = "-- theme: every_window
-- title: test
SELECT p.window.start AS window_start, p.window.end AS window_end, p.customer_id, p.points
FROM (
SELECT tumble(interval '15 minutes') AS window, customer_id, count(*) AS points
FROM load_point GROUP BY window, customer_id
) p";

/// Windows counted over all work orders.
fn hits_counted(core: &Core) -> u64 {
    core.book.iter().map(|w| w.hits).sum()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The next batch is accepted and planned while the batch before is
/// still being evaluated: it plans only the windows after those, and a
/// failed evaluation holds progress back so its windows are planned again.
#[test]
fn batches_planned_during_an_evaluation_take_the_later_windows_only() {
    rt().block_on(async {
        let backend = Arc::new(MemoryBackend::default());
        let archive = Archive::parse_document(&archive_doc("C1", "M1")).unwrap();
        let themes = vec![("every_window.sql".to_string(), EVERY_WINDOW.to_string())];
        let m = Monitor::open(MonitorConfig::default(), backend, themes, Some(archive))
            .await
            .unwrap();
        let job_of = |e: &mut Evaluation| {
            let i = e.jobs.iter().position(|j| j.id == "every_window");
            e.jobs.remove(i.expect("every_window planned"))
        };
        let (_, first) = m.ingest(vec![load_message_at("M1", "10:00", &m)]).await;
        first.finish().await.commit().await.unwrap();
        let start = m.core.lock().await.progress.get("every_window").copied();
        assert!(start.is_some(), "the first batch sets progress");

        // 12:00 closes the 10:00 window; 14:00 then closes the 12:00 one.
        let (_, mut b) = m.ingest(vec![load_message_at("M1", "12:00", &m)]).await;
        let (_, mut c) = m.ingest(vec![load_message_at("M1", "14:00", &m)]).await;
        let (jb, jc) = (job_of(&mut b), job_of(&mut c));
        assert_eq!(jb.old, start);
        assert_eq!(jc.old, Some(jb.new), "c starts where b ends");
        assert!(jc.new > jb.new);
        assert_eq!((jb.batches.len(), jc.batches.len()), (1, 1));

        // b fails, c succeeds: c's hits count, progress stays before b.
        let hits = m
            .run_job(&jc, jc.batches.iter().flatten().cloned().map(Ok).collect())
            .await
            .unwrap();
        assert_eq!(hits.len(), 1);
        {
            let mut core = m.core.lock().await;
            let failed = Err(MonitorError::BadRequest("injected failure".into()));
            m.settle_jobs(&mut core, vec![(jb, failed), (jc, Ok(hits))]);
            assert_eq!(core.progress.get("every_window").copied(), start);
            assert_eq!(core.planned.get("every_window").copied(), start);
            assert_eq!(hits_counted(&core), 1);
        }
        // The next batch plans b's and c's windows again; each counts once.
        let (_, d) = m.ingest(vec![load_message_at("M1", "14:15", &m)]).await;
        let jd = d
            .jobs
            .iter()
            .find(|j| j.id == "every_window")
            .map(|j| j.old);
        assert_eq!(jd, Some(start));
        d.finish().await.commit().await.unwrap();
        let core = m.core.lock().await;
        assert_eq!(hits_counted(&core), 2);
        assert!(core.progress.get("every_window").copied() > start);
    });
}
