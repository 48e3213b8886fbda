//! Waiting on progress: poll a condition until it yields, with a deadline
//! and a description of what was awaited when it runs out.

use std::time::{Duration, Instant};

/// Polls `f` every `every` until it yields `Some`, or panics after
/// `timeout` with `what` and whatever `context()` says about the state.
#[track_caller]
pub fn wait_for<T>(
    timeout: Duration,
    every: Duration,
    what: &str,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                context()
            );
        }
        std::thread::sleep(every);
    }
}
