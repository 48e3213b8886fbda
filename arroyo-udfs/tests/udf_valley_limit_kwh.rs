//! Runs the single-file source of `valley_limit_kwh` that is submitted to Arroyo
//! (`OUT_DIR/udf_valley_limit_kwh.rs`, rendered by build.rs, the text `export-udfs`
//! writes) through its macro-generated `__run` (Arrow FFI, as Arroyo does)
//! and checks it against the crate, i.e. against jicha-domain, on many
//! inputs.

include!(concat!(env!("OUT_DIR"), "/udf_valley_limit_kwh.rs"));

mod common;

use arroyo_udf_plugin::arrow::array::{Array, AsArray, Int64Array, StringArray};
use common::{call, decimal_texts, Rng};

#[test]
fn agrees_with_jicha_domain() {
    let mut rng = Rng(0x5EED_0004);
    let texts = decimal_texts(&mut rng, 600);
    let n = 4_000;
    let mut cols: [Vec<Option<&str>>; 3] = Default::default();
    let mut days: Vec<Option<i64>> = Vec::with_capacity(n);
    for _ in 0..n {
        for col in cols.iter_mut() {
            let pick = rng.below(texts.len() as u64) as usize;
            col.push((rng.below(50) != 0).then(|| texts[pick].as_str()));
        }
        days.push(match rng.below(40) {
            0 => None,
            1 => Some(-1),
            2 => Some(i64::MAX),
            k => Some((k as i64) - 3), // 0..=36: in and out of 1..=31
        });
    }
    let mut args: Vec<_> = cols
        .iter()
        .map(|c| StringArray::from(c.clone()).into_data())
        .collect();
    args.push(Int64Array::from(days.clone()).into_data());
    let out = call(__run, args);
    let out = out.as_string::<i32>();
    let mut non_null = 0;
    for i in 0..n {
        let want = match (cols[0][i], cols[1][i], cols[2][i], days[i]) {
            (Some(c), Some(o), Some(h), Some(d)) => jicha_arroyo_udfs::valley_limit_kwh(c, o, h, d),
            _ => None,
        };
        let have = out.is_valid(i).then(|| out.value(i).to_string());
        assert_eq!(have, want, "row {i}");
        non_null += usize::from(have.is_some());
    }
    assert!(
        non_null > 500,
        "inputs should often be valid, got {non_null}"
    );
}

#[test]
fn tv1_seed_valley_bound() {
    let args = vec![
        StringArray::from(vec!["800", "800", "800"]).into_data(),
        StringArray::from(vec!["1.2", "1.2", "x"]).into_data(),
        StringArray::from(vec!["8", "8", "8"]).into_data(),
        Int64Array::from(vec![31, 30, 31]).into_data(),
    ];
    let out = call(__run, args);
    let have: Vec<Option<&str>> = out.as_string::<i32>().iter().collect();
    assert_eq!(have, vec![Some("238080"), Some("230400"), None]);
}
