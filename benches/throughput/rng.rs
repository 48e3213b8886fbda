//! The draws the generator makes, on the test kit's seeded generator
//! (ChaCha8): the same `--seed` gives the same workload.

use jicha_testkit::{seeded, Rng as _, SeededRng};

pub(crate) struct BenchRng(SeededRng);

impl BenchRng {
    pub(crate) fn new(seed: u64) -> Self {
        BenchRng(seeded(seed))
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    /// Uniform in [0, n) (0 when n is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n.max(1))
    }

    /// One element of a non-empty constant table.
    pub(crate) fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.0.random_range(0..xs.len())]
    }
}
