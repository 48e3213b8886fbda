//! Runs the single-file source of `round_yuan` that is submitted to Arroyo
//! (`OUT_DIR/udf_round_yuan.rs`, rendered by build.rs, the text `export-udfs`
//! writes) through its macro-generated `__run` (Arrow FFI, as Arroyo does)
//! and checks it against the crate, i.e. against jicha-domain, on many
//! inputs.

include!(concat!(env!("OUT_DIR"), "/udf_round_yuan.rs"));

mod common;

use arroyo_udf_plugin::arrow::array::{Array, AsArray, StringArray};
use common::{call, decimal_texts, Rng};

#[test]
fn agrees_with_jicha_domain() {
    let texts = decimal_texts(&mut Rng(0x5EED_0005), 5_000);
    let mut input: Vec<Option<&str>> = texts.iter().map(|s| Some(s.as_str())).collect();
    input.push(None);
    let out = call(__run, vec![StringArray::from(input.clone()).into_data()]);
    let out = out.as_string::<i32>();
    let mut non_null = 0;
    for (i, text) in input.iter().enumerate() {
        // The crate's adapter over jicha-domain, and jicha-domain directly.
        let want = text.and_then(jicha_arroyo_udfs::round_yuan);
        let direct = text
            .and_then(|t| jicha_domain::money::parse_decimal(t).ok())
            .map(|x| jicha_domain::money::round_yuan(x).to_string());
        assert_eq!(want, direct, "{text:?}");
        let have = out.is_valid(i).then(|| out.value(i).to_string());
        assert_eq!(have, want, "{text:?}");
        non_null += usize::from(have.is_some());
    }
    assert!(
        non_null > 4_000,
        "inputs should mostly be valid, got {non_null}"
    );
}

#[test]
fn known_values() {
    let input = vec![
        Some("2.345"),
        Some("-2.345"),
        Some("2.344"),
        Some("2000"),
        Some("NaN"),
        None,
    ];
    let out = call(__run, vec![StringArray::from(input).into_data()]);
    let have: Vec<Option<&str>> = out.as_string::<i32>().iter().collect();
    assert_eq!(
        have,
        vec![
            Some("2.35"),
            Some("-2.35"),
            Some("2.34"),
            Some("2000.00"),
            None,
            None
        ]
    );
}
