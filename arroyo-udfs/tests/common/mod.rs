//! Calls a single-file UDF the way Arroyo does: Arrow arrays across the C
//! data interface into the macro-generated `__run`, an Arrow array back.
// Each test crate uses only some of these helpers.
#![allow(dead_code)]

use arroyo_udf_plugin::arrow::array::{make_array, ArrayData, ArrayRef};
use arroyo_udf_plugin::arrow::ffi::from_ffi;
use arroyo_udf_plugin::{FfiArraySchema, FfiArrays, RunResult};

pub type Run = extern "C-unwind" fn(FfiArrays) -> RunResult;

/// Runs one batch; panics if the UDF reported a panic.
pub fn call(run: Run, args: Vec<ArrayData>) -> ArrayRef {
    match run(FfiArrays::from_vec(args)) {
        RunResult::Ok(FfiArraySchema(array, schema)) => {
            // SAFETY: `array` and `schema` were just exported by `__run` via
            // `to_ffi`, and ownership is moved here exactly once.
            make_array(unsafe { from_ffi(array, &schema) }.expect("valid FFI array"))
        }
        RunResult::Err => panic!("the UDF panicked on this batch"),
    }
}

/// Deterministic xorshift for input generation.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Day texts: every edge we care about plus a spread of valid and broken
/// dates and timestamps.
pub fn day_texts(rng: &mut Rng, n: usize) -> Vec<String> {
    let mut out: Vec<String> = [
        "2024-02-29",
        "2023-02-28",
        "2023-02-29",
        "2024-01-01",
        "2024-12-31",
        "1900-02-28",
        "2000-02-29",
        "2100-02-28",
        "2024-02-29T23:59:59",
        "2024-03-01 00:00:00.000001",
        "2024-03-01T07:00",
        "2024-03-01Z",
        "2024-03-01T00:00:00+08:00",
        "",
        " ",
        "garbage",
        "2024-13-01",
        "2024-04-31",
        "+2024-01-01",
        "99999-01-01",
        "0000-01-01",
        "-0001-12-31",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    while out.len() < n {
        let year = 1990 + rng.below(80) as i32;
        let month = 1 + rng.below(13) as u32; // 13 is invalid on purpose
        let day = 1 + rng.below(32) as u32; // 32 (and 31 in short months) too
        let text = match rng.below(4) {
            0 => format!("{year:04}-{month:02}-{day:02}"),
            1 => format!("{year:04}-{month:02}-{day:02}T{:02}:15:00", rng.below(25)),
            2 => format!("{year:04}-{month:02}-{day:02} 23:45:00.5"),
            _ => format!("{year:04}-{month:02}-{day:02}T08:00:00Z"),
        };
        out.push(text);
    }
    out
}

/// Decimal texts: edges, exponents, garbage and a spread of amounts.
pub fn decimal_texts(rng: &mut Rng, n: usize) -> Vec<String> {
    let mut out: Vec<String> = [
        "0",
        "-0",
        "0.1",
        "2.345",
        "-2.345",
        "2.344",
        "0.005",
        "-0.005",
        "2000",
        "25.00",
        "1e3",
        "1.5E-2",
        "-2.5e-1",
        "8e2",
        "1.2",
        "8",
        "800",
        "315.5",
        "1e-28",
        "1e-29",
        "1e28",
        "1e29",
        "79228162514264337593543950335",
        "-79228162514264337593543950335",
        "79228162514264337593543950336",
        "NaN",
        "inf",
        "-Infinity",
        "",
        " ",
        "1,000",
        "1_000",
        "0x10",
        "1.2.3",
        "--1",
        ".5",
        "5.",
        "12a",
        "1e",
        "9999999999999999999999999999.995",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    while out.len() < n {
        let mantissa = rng.next() as i64 % 10_000_000_000;
        let scale = rng.below(8) as u32;
        let text = match rng.below(5) {
            0 => format!("{mantissa}e-{scale}"),
            1 => format!("{mantissa}E{}", rng.below(20)),
            2 => format!(" {} ", rust_decimal::Decimal::new(mantissa, scale)),
            _ => rust_decimal::Decimal::new(mantissa, scale).to_string(),
        };
        out.push(text);
    }
    out
}
