//! `cargo run --bin export-udfs -- <dir>`: writes `<dir>/<name>.rs` for
//! every Arroyo UDF, the single-file sources to submit to the cluster.
//!
//! The text is the one `build.rs` rendered into `OUT_DIR` for this build
//! ([`jicha_arroyo_udfs::GENERATED`]), i.e. exactly what the agreement tests
//! (`tests/udf_*.rs`) compiled and checked against jicha-domain. The files
//! are build output: write them outside the repository (or under the
//! ignored `target/`), never commit them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: export-udfs <dir>

Writes <dir>/<name>.rs, one single-file Arroyo UDF source per UDF (the
`definition` of POST /api/v1/udfs), creating <dir> if needed. Existing files
of those names are overwritten; other files are left alone.";

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let dir = match args.as_slice() {
        [arg] if arg == "-h" || arg == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [dir] if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match export(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("export-udfs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn export(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for (name, text) in jicha_arroyo_udfs::GENERATED {
        let path = dir.join(format!("{name}.rs"));
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("{}", path.display());
    }
    warn_about_other_sources(dir);
    Ok(())
}

/// A `.rs` file left from an older export (a renamed or removed UDF) would be
/// submitted by `for f in <dir>/*.rs`; say so rather than delete it.
fn warn_about_other_sources(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = jicha_arroyo_udfs::GENERATED
            .iter()
            .any(|(udf, _)| name == format!("{udf}.rs"));
        if name.ends_with(".rs") && !ours {
            eprintln!(
                "export-udfs: warning: {} is not a current UDF; remove it before submitting {}/*.rs",
                entry.path().display(),
                dir.display()
            );
        }
    }
}
