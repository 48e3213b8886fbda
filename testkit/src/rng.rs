//! The one seeded generator of tests, benchmark and simulator: ChaCha8,
//! reproducible from a `u64` seed on every platform.

pub use rand::{Rng, RngCore, SeedableRng};

pub type SeededRng = rand_chacha::ChaCha8Rng;

/// The generator for `seed`: the same seed gives the same numbers.
pub fn seeded(seed: u64) -> SeededRng {
    SeededRng::seed_from_u64(seed)
}
