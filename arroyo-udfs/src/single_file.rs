//! Renders the single-file UDF sources that Arroyo's `POST /api/v1/udfs`
//! (and `/udfs/validate`, or a pipeline's `udfs` list) accepts.
//!
//! Why generated: Arroyo compiles each UDF from one source text with a
//! leading `/*\n[dependencies]\n…*/` block, resolving dependencies from
//! crates.io only, so it cannot see our path crate `jicha-domain`. Instead
//! of a hand-kept copy, each file embeds the domain modules' source text
//! (`domain/src/{calendar,money,tariff,text}.rs`, tests stripped) and this crate's
//! `glue.rs`, then adds its one `#[udf]` function.
//!
//! Why not committed: the files would be five copies of the domain code.
//! This module is shared, via `#[path]`, by the library and by `build.rs`,
//! which renders every file into `OUT_DIR` on each build. The agreement
//! tests (`tests/udf_*.rs`) compile that text, and `export-udfs` writes the
//! same text for an operator to submit, so what is tested and what is
//! submitted is the current domain code, byte for byte.
//!
//! Nothing here may use `OUT_DIR` or the crate's dependencies: the build
//! script compiles this file on its own.

/// One UDF: its SQL name and its `#[udf]` item.
#[derive(Debug, Clone, Copy)]
pub struct UdfSource {
    /// SQL function name (and Rust fn name).
    pub name: &'static str,
    /// The `#[udf]` item, delegating to `glue`.
    pub item: &'static str,
}

impl UdfSource {
    /// File name `export-udfs` writes: `<name>.rs`.
    pub fn file_name(&self) -> String {
        format!("{}.rs", self.name)
    }

    /// File name `build.rs` writes under `OUT_DIR`: `udf_<name>.rs` (what
    /// `tests/udf_<name>.rs` includes).
    pub fn generated_file_name(&self) -> String {
        format!("udf_{}.rs", self.name)
    }
}

/// Every UDF the crate provides, in export order.
pub const UDFS: &[UdfSource] = &[
    UdfSource {
        name: "days_in_month",
        item: r#"/// Days in the month of a naive local (+08:00) date or timestamp text,
/// e.g. `days_in_month(CAST(ts AS TEXT))`; NULL for unreadable text.
#[udf]
fn days_in_month(day: &str) -> Option<i64> {
    glue::days_in_month(day)
}
"#,
    },
    UdfSource {
        name: "overlap_days",
        item: r#"/// Days of `[start, end]` (NULL end: open-ended) inside `[from, to]`,
/// all inclusive, over naive local date texts; NULL for unreadable text.
#[udf]
fn overlap_days(start: &str, end: Option<&str>, from: &str, to: &str) -> Option<i64> {
    glue::overlap_days(start, end, from, to)
}
"#,
    },
    UdfSource {
        name: "suspended_days_in_year",
        item: r#"/// Days of one suspend change inside the calendar year of
/// `period_last_day`, its end capped there, both ends inclusive
/// (basic_fee_shortfall); NULL for unreadable text.
#[udf]
fn suspended_days_in_year(start: &str, end: Option<&str>, period_last_day: &str) -> Option<i64> {
    glue::suspended_days_in_year(start, end, period_last_day)
}
"#,
    },
    UdfSource {
        name: "valley_limit_kwh",
        item: r#"/// overload × contract_kva × hours × day_of_month as exact decimal text
/// (valley_excess); NULL for unreadable decimals or a day outside 1..=31.
#[udf]
fn valley_limit_kwh(contract_kva: &str, overload: &str, hours: &str, day_of_month: i64) -> Option<String> {
    glue::valley_limit_kwh(contract_kva, overload, hours, day_of_month)
}
"#,
    },
    UdfSource {
        name: "round_yuan",
        item: r#"/// Decimal text rounded half-up to 0.01 yuan, printed with two decimals;
/// NULL for unreadable text.
#[udf]
fn round_yuan(x: &str) -> Option<String> {
    glue::round_yuan(x)
}
"#,
    },
];

/// The dependency block Arroyo reads (regex `/\*\n\[dependencies]\n…\*/`);
/// `arroyo-udf-plugin` itself is added by Arroyo. Same requirements as this
/// crate's Cargo.toml; arroyo-udf-plugin's own bound keeps chrono < 0.4.40.
pub const DEPENDENCIES: &str = r#"/*
[dependencies]
chrono = { version = "0.4", default-features = false, features = ["std"] }
rust_decimal = { version = "1.36", default-features = false, features = ["std"] }
thiserror = "2"
*/
"#;

/// The files a rendered source is made of, relative to this crate's
/// directory: `build.rs` declares them with `cargo:rerun-if-changed`. They
/// must be the files `DOMAIN_MODULES` and `GLUE` embed (unit test
/// `inputs_are_the_embedded_files`), plus this generator.
pub const INPUTS: [&str; 6] = [
    "../domain/src/calendar.rs",
    "../domain/src/money.rs",
    "../domain/src/tariff.rs",
    "../domain/src/text.rs",
    "src/glue.rs",
    "src/single_file.rs",
];

/// Domain modules embedded in every file, with their source.
const DOMAIN_MODULES: [(&str, &str); 4] = [
    ("calendar", include_str!("../../domain/src/calendar.rs")),
    ("money", include_str!("../../domain/src/money.rs")),
    ("tariff", include_str!("../../domain/src/tariff.rs")),
    ("text", include_str!("../../domain/src/text.rs")),
];

const GLUE: &str = include_str!("glue.rs");

/// A module's source without its trailing `#[cfg(test)] mod tests`.
fn without_tests(source: &str) -> &str {
    let body = match source.find("\n#[cfg(test)]\nmod tests") {
        Some(at) => &source[..at],
        None => source,
    };
    body.trim_end()
}

/// The complete single-file source for `udf`, as Arroyo expects it.
pub fn render(udf: &UdfSource) -> String {
    let mut out = String::with_capacity(48 * 1024);
    out.push_str(DEPENDENCIES);
    out.push_str(&format!(
        "// Arroyo UDF `{name}` of Jicha. GENERATED at build time by arroyo-udfs/build.rs\n\
         // (src/single_file.rs) from domain/src/{{calendar,money,tariff,text}}.rs and\n\
         // arroyo-udfs/src/glue.rs: do not edit. Write it with\n\
         // `cargo run --bin export-udfs -- <dir>` in arroyo-udfs/ and submit it as\n\
         // the `definition` of POST /api/v1/udfs.\n\n",
        name = udf.name
    ));
    out.push_str("use arroyo_udf_plugin::udf;\n\n");
    out.push_str(udf.item);
    out.push_str("\n// ---- arroyo-udfs/src/glue.rs ----\n#[allow(dead_code)]\nmod glue {\n");
    out.push_str(without_tests(GLUE));
    out.push_str(
        "\n}\n\n// ---- jicha-domain (domain/src) ----\n#[allow(dead_code)]\nmod domain {\n",
    );
    for (name, source) in DOMAIN_MODULES {
        out.push_str(&format!(
            "// ---- domain/src/{name}.rs ----\npub mod {name} {{\n"
        ));
        out.push_str(without_tests(source));
        out.push_str("\n}\n");
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_file_has_the_dependency_block_first_and_one_udf() {
        for udf in UDFS {
            let text = render(udf);
            assert!(text.starts_with("/*\n[dependencies]\n"), "{}", udf.name);
            assert_eq!(
                text.matches("/*\n[dependencies]\n").count(),
                1,
                "{}",
                udf.name
            );
            assert_eq!(
                text.lines().filter(|l| l.trim() == "#[udf]").count(),
                1,
                "{}",
                udf.name
            );
            assert!(
                text.contains(&format!("#[udf]\nfn {}(", udf.name)),
                "{}",
                udf.name
            );
        }
    }

    #[test]
    fn tests_are_stripped_but_code_is_kept() {
        for udf in UDFS {
            let text = render(udf);
            assert!(!text.contains("#[cfg(test)]"), "{}", udf.name);
            for needle in [
                "pub fn parse_decimal(",
                "pub fn overlap_days(",
                "pub fn checked_valley_limit_kwh(",
                "pub fn parse_day(",
            ] {
                assert!(text.contains(needle), "{} lacks {needle}", udf.name);
            }
        }
    }

    #[test]
    fn inputs_are_the_embedded_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let read = |path: &str| {
            std::fs::read_to_string(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        for (name, source) in DOMAIN_MODULES {
            let path = format!("../domain/src/{name}.rs");
            assert!(INPUTS.contains(&path.as_str()), "INPUTS lacks {path}");
            assert_eq!(read(&path), source, "{path}");
        }
        assert!(INPUTS.contains(&"src/glue.rs"));
        assert_eq!(read("src/glue.rs"), GLUE);
        assert!(INPUTS.contains(&"src/single_file.rs"));
        assert_eq!(INPUTS.len(), DOMAIN_MODULES.len() + 2);
    }

    #[test]
    fn without_tests_keeps_sources_without_a_test_module() {
        assert_eq!(without_tests("fn a() {}\n"), "fn a() {}");
        assert_eq!(
            without_tests("fn a() {}\n\n#[cfg(test)]\nmod tests {\n}\n"),
            "fn a() {}"
        );
    }
}
