//! Jicha's domain rules as Arroyo UDFs (`arroyo-udf-plugin` 0.2).
//!
//! Why: when one machine is not enough, the themes run on an Arroyo
//! cluster, and they must give the same answers there as in the in-process
//! pipeline. So the UDFs are thin adapters ([`glue`]) over `jicha-domain`,
//! and the single-file sources submitted to Arroyo ([`single_file`],
//! rendered at build time into [`GENERATED`], written out by the
//! `export-udfs` binary) embed that very source.
//!
//! The crate is outside the main workspace: arroyo-udf-plugin 0.2 needs
//! arrow 51 and chrono < 0.4.40, which cannot share a lockfile with the
//! workspace's DataFusion 55. See README.md.
//!
//! The plain functions exported here are what the `#[udf]` items call; the
//! `#[udf]` items themselves live only in the generated single-file sources,
//! one per file, because the macro exports a fixed `__run` symbol per UDF
//! and Arroyo loads one UDF per library.

/// The domain rules, under the path `glue.rs` expects (`crate::domain`); in
/// the single-file sources the same path is an inline module.
use jicha_domain as domain;

pub mod glue;
pub mod single_file;

pub use glue::{
    days_in_month, overlap_days, parse_day, round_yuan, suspended_days_in_year, valley_limit_kwh,
};

/// The single-file sources `build.rs` rendered into `OUT_DIR` for this
/// build, as `(SQL name, file text)` in [`single_file::UDFS`] order: the
/// text `tests/udf_<name>.rs` compiles and `export-udfs` writes as
/// `<name>.rs`.
pub const GENERATED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/udf_sources.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sources_are_what_the_generator_renders_now() {
        let names: Vec<_> = GENERATED.iter().map(|(name, _)| *name).collect();
        let want: Vec<_> = single_file::UDFS.iter().map(|udf| udf.name).collect();
        assert_eq!(names, want);
        for (udf, (_, text)) in single_file::UDFS.iter().zip(GENERATED) {
            assert!(
                *text == single_file::render(udf),
                "OUT_DIR/{} differs from single_file::render: build.rs did not rerun",
                udf.generated_file_name()
            );
        }
    }
}
