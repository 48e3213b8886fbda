//! `cargo run --bin export-udfs -- <dir>` writes the five single-file UDF
//! sources an operator submits: exactly the text the agreement tests
//! (`tests/udf_*.rs`) compile, and what the generator renders from the
//! current domain and glue sources.

use jicha_arroyo_udfs::single_file::{render, UDFS};
use jicha_arroyo_udfs::GENERATED;
use std::path::PathBuf;
use std::process::Command;

const EXPORT_UDFS: &str = env!("CARGO_BIN_EXE_export-udfs");

fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn writes_one_file_per_udf_with_the_generated_text() {
    let dir = scratch_dir("export-udfs");
    let out = Command::new(EXPORT_UDFS)
        .arg(&dir)
        .output()
        .expect("run export-udfs");
    assert!(out.status.success(), "{out:?}");

    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("export dir exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    let mut want: Vec<String> = UDFS.iter().map(|udf| udf.file_name()).collect();
    want.sort();
    assert_eq!(files, want);
    assert_eq!(files.len(), 5);

    for (udf, (name, generated)) in UDFS.iter().zip(GENERATED) {
        assert_eq!(udf.name, *name);
        let path = dir.join(udf.file_name());
        let text = std::fs::read_to_string(&path).expect("read exported file");
        assert!(
            text == *generated,
            "{} differs from OUT_DIR",
            path.display()
        );
        assert!(
            text == render(udf),
            "{} differs from render()",
            path.display()
        );
        assert!(
            text.starts_with("/*\n[dependencies]\n"),
            "{}",
            path.display()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 5, "{stdout}");
}

#[test]
fn overwrites_and_warns_about_foreign_sources() {
    let dir = scratch_dir("export-udfs-again");
    std::fs::create_dir_all(&dir).expect("create dir");
    std::fs::write(dir.join("round_yuan.rs"), "stale").expect("write stale file");
    std::fs::write(dir.join("old_udf.rs"), "fn old() {}").expect("write foreign file");
    let out = Command::new(EXPORT_UDFS)
        .arg(&dir)
        .output()
        .expect("run export-udfs");
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(dir.join("round_yuan.rs")).expect("read");
    assert!(text.contains("fn round_yuan("));
    assert!(
        dir.join("old_udf.rs").exists(),
        "foreign files are left alone"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("old_udf.rs"), "{stderr}");
}

#[test]
fn needs_exactly_one_directory() {
    for args in [&[][..], &["a", "b"][..], &[""][..]] {
        let out = Command::new(EXPORT_UDFS)
            .args(args)
            .output()
            .expect("run export-udfs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: export-udfs <dir>"));
    }
}
