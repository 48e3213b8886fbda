use super::*;
use crate::ids::MeterId;
use crate::records::LoadPoint;
use crate::tables::{self, Placed, Run};
use rust_decimal::Decimal;

const KVA: &str = "-- theme: kva
-- title: test
SELECT p.window.start AS window_start, p.window.end AS window_end, p.customer_id, c.contract_kva AS kva
FROM (
    SELECT tumble(interval '15 minutes') AS window, customer_id
    FROM load_point GROUP BY window, customer_id
) p
JOIN customers c ON c.customer_id = p.customer_id";

fn archive(kva: u32) -> Archive {
    let doc = format!(
        r#"{{"customers":[{{"customer_id":"C1","org_code":"41/4107/410727","usage_category":"large_industry",
        "tariff_kind":"two_part","contract_kva":{kva},"meters":[{{"meter_id":"M1","multiplier":1}}]}}]}}"#
    );
    let mut a = Archive::default();
    for c in Archive::parse_document(&doc).unwrap() {
        a.upsert(c);
    }
    a
}

fn engine() -> Engine {
    Engine::new(
        BusinessClock::default(),
        EngineLimits::default(),
        &archive(400),
    )
    .unwrap()
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn check(engine: &Engine, sql: &str) -> Result<Theme, EngineError> {
    let def =
        ThemeDef::parse(&format!("-- theme: t\n{sql}"), &Default::default()).map_err(|e| {
            EngineError::Plan {
                theme: "t".into(),
                message: e.message,
            }
        })?;
    block_on(engine.check(def))
}

fn one_point(theme: &Theme) -> RecordBatch {
    let point = LoadPoint::power_only(MeterId::new("M1"), 0, Decimal::from(5));
    let placed = [Placed {
        row: &point,
        customer_id: "C1",
    }];
    let rows = tables::load_point(&placed, |t| t, &|c| theme.reads(c)).unwrap();
    let run = Run {
        start: 0,
        len: 1,
        window: Some((0, 900_000)),
    };
    tables::in_windows(&rows, &[run]).unwrap()
}

/// Plans are kept between evaluations, and they hold the reference
/// tables: an archive change must reach the next evaluation.
#[test]
fn a_kept_plan_sees_the_archive_as_changed() {
    let engine = engine();
    let theme = check(&engine, KVA).unwrap();
    block_on(async {
        let kva = |hits: Vec<Hit>| hits[0].evidence.get("kva").cloned();
        let first = engine.run(&theme, one_point(&theme)).await.unwrap();
        assert_eq!(kva(first), Some(serde_json::json!(400)));
        let again = engine.run(&theme, one_point(&theme)).await.unwrap();
        assert_eq!(again.len(), 1, "a kept plan runs on the new batch");
        engine.set_archive(&archive(800)).unwrap();
        let after = engine.run(&theme, one_point(&theme)).await.unwrap();
        assert_eq!(kva(after), Some(serde_json::json!(800)));
    });
}

/// The table and columns come from the optimized plan: what the query
/// really reads, whatever names appear in it. A column the plan reads but
/// the batch lacked would fail the run, not give a wrong result.
#[test]
fn the_plan_says_which_table_and_columns_a_theme_reads() {
    let engine = engine();
    let reads = |sql: &str, col: &str| check(&engine, sql).unwrap().reads(col);
    let windowed = "SELECT window.start AS window_start, window.end AS window_end, customer_id FROM (\
         SELECT hop(interval '15 minutes', interval '30 minutes') AS window, customer_id, sum(p_kw) AS kw \
         FROM load_point GROUP BY window, customer_id) WHERE kw > 10";
    assert!(reads(windowed, "p_kw") && reads(windowed, "customer_id"));
    assert!(!reads(windowed, "q_kvar") && !reads(windowed, "meter_id"));
    let row = |cols: &str, rest: &str| {
        format!("SELECT customer_id, ts AS window_start, ts AS window_end{cols} FROM load_point lp {rest}")
    };
    assert!(
        reads(
            "SELECT *, ts AS window_start, ts AS window_end FROM load_point",
            "q_kvar"
        ),
        "a wildcard reads every column"
    );
    assert!(reads(&row("", "WHERE Q_KVAR > 0"), "q_kvar"));
    assert!(
        !reads(&row(", 'q_kvar' AS label", "-- q_kvar"), "q_kvar"),
        "a string or a comment naming a column reads nothing"
    );
    let t = check(&engine, &row("", "")).unwrap();
    assert_eq!(t.table(), SourceTable::LoadPoint);
    let hits = block_on(engine.run(&t, one_point(&t))).unwrap();
    assert_eq!(
        hits.len(),
        1,
        "the batch built from the read set runs the plan"
    );
}

#[test]
fn a_theme_reads_exactly_one_event_table() {
    let engine = engine();
    let two = "SELECT l.customer_id, l.ts AS window_start, l.ts AS window_end \
               FROM load_point l JOIN meter_day d ON d.customer_id = l.customer_id";
    let e = check(&engine, two).unwrap_err().to_string();
    assert!(
        e.contains("reads 2 event tables (load_point, meter_day)"),
        "{e}"
    );
    let none = "SELECT customer_id, now() AS window_start, now() AS window_end FROM customers";
    let e = check(&engine, none).unwrap_err().to_string();
    assert!(e.contains("reads no event table"), "{e}");
    let missing =
        "SELECT customer_id, ts AS window_start, ts AS window_end FROM load_point WHERE nope > 1";
    let e = check(&engine, missing).unwrap_err().to_string();
    assert!(
        e.contains("nope"),
        "the planner's message names the column: {e}"
    );
}

/// A view over an event table counts as that table, keeps its window
/// columns, and is projected through: reading `kwh` of `customer_day`
/// reads `kwh` of `meter_day`, not its other registers.
#[test]
fn views_read_as_their_event_table() {
    let engine = engine();
    let t = check(
        &engine,
        "SELECT w.window.start AS window_start, w.window.end AS window_end, w.customer_id FROM (\
           SELECT tumble(interval '1 day') AS window, customer_id, kwh FROM customer_day) w \
         WHERE w.kwh = 0",
    )
    .unwrap();
    assert_eq!(t.table(), SourceTable::MeterDay);
    assert!(t.reads("kwh") && t.reads("customer_id"));
    assert!(!t.reads("kwh_valley") && !t.reads("kvarh") && !t.reads("reg_total"));
}
