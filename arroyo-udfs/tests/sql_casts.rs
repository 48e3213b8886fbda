//! The day UDFs take text because arroyo-udf-plugin 0.2's sync `#[udf]`
//! cannot take `SystemTime`. SQL passes `CAST(ts AS TEXT)` (or a DATE cast
//! to TEXT); DataFusion casts with arrow's cast kernel, so check that what
//! arrow prints for naive timestamps and dates is what `parse_day` reads.

use arroyo_udf_plugin::arrow::array::{
    Array, AsArray, Date32Array, TimestampMicrosecondArray, TimestampNanosecondArray,
};
use arroyo_udf_plugin::arrow::compute::cast;
use arroyo_udf_plugin::arrow::datatypes::DataType;
use chrono::NaiveDate;
use jicha_arroyo_udfs::{days_in_month, parse_day};

fn naive_nanos(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|day| day.and_hms_opt(h, min, 0))
        .and_then(|at| at.and_utc().timestamp_nanos_opt())
        .expect("valid test timestamp")
}

#[test]
fn cast_of_naive_timestamps_to_text_is_read_as_the_local_day() {
    // Naive local event time: 2024-02-29 23:15 is still February 29th.
    let nanos = vec![
        naive_nanos(2024, 2, 29, 23, 15),
        naive_nanos(2024, 3, 1, 0, 0),
        naive_nanos(2023, 12, 31, 7, 0) + 123_456,
    ];
    let array = TimestampNanosecondArray::from(nanos);
    let text = cast(&array, &DataType::Utf8).expect("timestamp casts to text");
    let text = text.as_string::<i32>();
    let days: Vec<_> = (0..text.len()).map(|i| parse_day(text.value(i))).collect();
    assert_eq!(
        days,
        vec![
            NaiveDate::from_ymd_opt(2024, 2, 29),
            NaiveDate::from_ymd_opt(2024, 3, 1),
            NaiveDate::from_ymd_opt(2023, 12, 31),
        ],
        "arrow printed {:?}",
        (0..text.len()).map(|i| text.value(i)).collect::<Vec<_>>()
    );
    assert_eq!(days_in_month(text.value(0)), Some(29));
}

#[test]
fn cast_of_microsecond_timestamps_and_dates_to_text() {
    let micros = TimestampMicrosecondArray::from(vec![naive_nanos(2024, 4, 30, 12, 0) / 1_000]);
    let text = cast(&micros, &DataType::Utf8).expect("timestamp casts to text");
    assert_eq!(days_in_month(text.as_string::<i32>().value(0)), Some(30));

    // DATE 2024-02-29 is day 19782 since the epoch.
    let dates = Date32Array::from(vec![19_782]);
    let text = cast(&dates, &DataType::Utf8).expect("date casts to text");
    assert_eq!(text.as_string::<i32>().value(0), "2024-02-29");
    assert_eq!(days_in_month(text.as_string::<i32>().value(0)), Some(29));
}
