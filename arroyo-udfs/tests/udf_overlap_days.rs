//! Runs the single-file source of `overlap_days` that is submitted to Arroyo
//! (`OUT_DIR/udf_overlap_days.rs`, rendered by build.rs, the text `export-udfs`
//! writes) through its macro-generated `__run` (Arrow FFI, as Arroyo does)
//! and checks it against the crate, i.e. against jicha-domain, on many
//! inputs.

include!(concat!(env!("OUT_DIR"), "/udf_overlap_days.rs"));

mod common;

use arroyo_udf_plugin::arrow::array::{Array, AsArray, StringArray};
use arroyo_udf_plugin::arrow::datatypes::Int64Type;
use common::{call, day_texts, Rng};

#[test]
#[allow(clippy::needless_range_loop)] // rows index several columns
fn agrees_with_jicha_domain() {
    let mut rng = Rng(0x5EED_0002);
    let days = day_texts(&mut rng, 400);
    let n = 4_000;
    let mut cols: [Vec<Option<&str>>; 4] = Default::default();
    for _ in 0..n {
        for (c, col) in cols.iter_mut().enumerate() {
            let pick = rng.below(days.len() as u64) as usize;
            // Nulls: the open end (column 1) often, the others rarely.
            let null = if c == 1 {
                rng.below(4) == 0
            } else {
                rng.below(50) == 0
            };
            col.push((!null).then(|| days[pick].as_str()));
        }
    }
    let args = cols
        .iter()
        .map(|c| StringArray::from(c.clone()).into_data())
        .collect();
    let out = call(__run, args);
    let out = out.as_primitive::<Int64Type>();
    let mut positive = 0;
    for i in 0..n {
        let want = match (cols[0][i], cols[2][i], cols[3][i]) {
            (Some(s), Some(f), Some(t)) => jicha_arroyo_udfs::overlap_days(s, cols[1][i], f, t),
            _ => None,
        };
        let have = out.is_valid(i).then(|| out.value(i));
        assert_eq!(
            have,
            want,
            "row {i}: {:?}",
            [cols[0][i], cols[1][i], cols[2][i], cols[3][i]]
        );
        positive += usize::from(have.unwrap_or(0) > 0);
    }
    assert!(
        positive > 100,
        "inputs should overlap often, got {positive}"
    );
}

#[test]
fn null_end_is_open_ended() {
    let args = vec![
        StringArray::from(vec![Some("2024-03-20"), Some("2024-03-01"), None]).into_data(),
        StringArray::from(vec![None, Some("2024-03-10"), None]).into_data(),
        StringArray::from(vec!["2024-03-01", "2024-03-01", "2024-03-01"]).into_data(),
        StringArray::from(vec!["2024-03-31", "2024-03-31", "2024-03-31"]).into_data(),
    ];
    let out = call(__run, args);
    let have: Vec<Option<i64>> = out.as_primitive::<Int64Type>().iter().collect();
    assert_eq!(have, vec![Some(12), Some(10), None]);
}
