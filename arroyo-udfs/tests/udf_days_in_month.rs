//! Runs the single-file source of `days_in_month` that is submitted to Arroyo
//! (`OUT_DIR/udf_days_in_month.rs`, rendered by build.rs, the text `export-udfs`
//! writes) through its macro-generated `__run` (Arrow FFI, as Arroyo does)
//! and checks it against the crate, i.e. against jicha-domain, on many
//! inputs.

include!(concat!(env!("OUT_DIR"), "/udf_days_in_month.rs"));

mod common;

use arroyo_udf_plugin::arrow::array::{Array, AsArray, StringArray};
use arroyo_udf_plugin::arrow::datatypes::Int64Type;
use common::{call, day_texts, Rng};

#[test]
fn agrees_with_jicha_domain() {
    let texts = day_texts(&mut Rng(0x5EED_0001), 3_000);
    let mut input: Vec<Option<&str>> = texts.iter().map(|s| Some(s.as_str())).collect();
    input.push(None);
    let out = call(__run, vec![StringArray::from(input.clone()).into_data()]);
    let out = out.as_primitive::<Int64Type>();
    assert_eq!(out.len(), input.len());
    let mut non_null = 0;
    for (i, text) in input.iter().enumerate() {
        let want = text.and_then(jicha_arroyo_udfs::days_in_month);
        let have = out.is_valid(i).then(|| out.value(i));
        assert_eq!(have, want, "{text:?}");
        non_null += usize::from(have.is_some());
    }
    assert!(
        non_null > 1_000,
        "inputs should mostly be valid days, got {non_null}"
    );
}

#[test]
fn known_values_and_nulls() {
    let input = vec![
        Some("2024-02-10"),
        Some("2023-02-10T23:00:00"),
        Some("2024-04-30"),
        Some("bad"),
        None,
    ];
    let out = call(__run, vec![StringArray::from(input).into_data()]);
    let out = out.as_primitive::<Int64Type>();
    let have: Vec<Option<i64>> = out.iter().collect();
    assert_eq!(have, vec![Some(29), Some(28), Some(30), None, None]);
}
