//! Placeholder replaced by the benchmark (docs/performance.md).
fn main() {
    eprintln!("benchmark not written yet");
    std::process::exit(1);
}
