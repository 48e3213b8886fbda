//! Runs the single-file source of `suspended_days_in_year` that is submitted to Arroyo
//! (`OUT_DIR/udf_suspended_days_in_year.rs`, rendered by build.rs, the text `export-udfs`
//! writes) through its macro-generated `__run` (Arrow FFI, as Arroyo does)
//! and checks it against the crate, i.e. against jicha-domain, on many
//! inputs.

include!(concat!(env!("OUT_DIR"), "/udf_suspended_days_in_year.rs"));

mod common;

use arroyo_udf_plugin::arrow::array::{Array, AsArray, StringArray};
use arroyo_udf_plugin::arrow::datatypes::Int64Type;
use common::{call, day_texts, Rng};

#[test]
#[allow(clippy::needless_range_loop)] // rows index several columns
fn agrees_with_jicha_domain() {
    let mut rng = Rng(0x5EED_0003);
    let days = day_texts(&mut rng, 400);
    let n = 4_000;
    let mut cols: [Vec<Option<&str>>; 3] = Default::default();
    for _ in 0..n {
        for (c, col) in cols.iter_mut().enumerate() {
            let pick = rng.below(days.len() as u64) as usize;
            let null = if c == 1 {
                rng.below(3) == 0
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
        let want = match (cols[0][i], cols[2][i]) {
            (Some(s), Some(last)) => jicha_arroyo_udfs::suspended_days_in_year(s, cols[1][i], last),
            _ => None,
        };
        let have = out.is_valid(i).then(|| out.value(i));
        assert_eq!(
            have,
            want,
            "row {i}: {:?}",
            [cols[0][i], cols[1][i], cols[2][i]]
        );
        positive += usize::from(have.unwrap_or(0) > 0);
    }
    assert!(
        positive > 100,
        "inputs should often count days, got {positive}"
    );
}

#[test]
fn the_183_day_threshold_example() {
    let args = vec![
        StringArray::from(vec!["2023-10-01", "2023-10-01", "2024-03-01"]).into_data(),
        StringArray::from(vec![None, None, Some("2024-12-31")]).into_data(),
        StringArray::from(vec!["2024-06-30", "2024-07-01", "2024-03-31"]).into_data(),
    ];
    let out = call(__run, args);
    let have: Vec<Option<i64>> = out.as_primitive::<Int64Type>().iter().collect();
    assert_eq!(have, vec![Some(182), Some(183), Some(31)]);
}
