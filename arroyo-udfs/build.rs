//! Renders the single-file Arroyo UDF sources into `OUT_DIR`, so they are
//! never committed (they would be five copies of the domain code):
//!
//! - `OUT_DIR/udf_<name>.rs`: one per UDF, what `tests/udf_<name>.rs`
//!   `include!`s (compiled with the real `#[udf]` macro) and what
//!   `export-udfs` writes for an operator to submit;
//! - `OUT_DIR/udf_sources.rs`: the `(name, text)` list behind
//!   `jicha_arroyo_udfs::GENERATED`.
//!
//! The generator is `src/single_file.rs` itself, included by path, so the
//! build script and the library render with one code.

#[allow(dead_code)] // the library uses more of the module than this script
#[path = "src/single_file.rs"]
mod single_file;

use std::path::Path;

fn main() {
    for input in single_file::INPUTS {
        println!("cargo:rerun-if-changed={input}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    let out_dir = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    let out_dir = Path::new(&out_dir);
    let mut index = String::from("&[\n");
    for udf in single_file::UDFS {
        let file = udf.generated_file_name();
        write_if_changed(&out_dir.join(&file), &single_file::render(udf));
        index.push_str(&format!(
            "    ({:?}, include_str!(concat!(env!(\"OUT_DIR\"), \"/{file}\"))),\n",
            udf.name
        ));
    }
    index.push_str("]\n");
    write_if_changed(&out_dir.join("udf_sources.rs"), &index);
}

/// Leaves an unchanged file alone, so its mtime does not rebuild the tests
/// that include it (e.g. after an edit to a domain test module, which the
/// rendered text strips).
fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return;
    }
    if let Err(e) = std::fs::write(path, text) {
        panic!("writing {}: {e}", path.display());
    }
}
