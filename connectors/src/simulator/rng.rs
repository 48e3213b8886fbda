//! The simulator's random numbers: ChaCha8 (`rand_chacha`), the workspace's
//! one seeded generator, behind the few draws the simulator needs. The same
//! options give the same bytes on every run and platform: ChaCha's output is
//! fully specified, and only `+ − × /`, `sqrt` and integer conversions are
//! applied to it (all exactly specified by IEEE 754), never `sin`/`exp`,
//! whose last bits can differ between libm builds.

use rand::{Rng as _, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone)]
pub(super) struct Rng(ChaCha8Rng);

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rng(ChaCha8)")
    }
}

impl Rng {
    /// An independent stream for one purpose, e.g. `(seed, [TAG, meter, day])`:
    /// each meter-day gets its own stream, so generating day 9 does not depend
    /// on how many numbers day 8 happened to draw. The seed and up to three
    /// parts are the ChaCha key word for word (distinct inputs, distinct
    /// streams); the number of parts selects the ChaCha stream, so `[1]` and
    /// `[1, 0]` differ too.
    pub(super) fn derive(seed: u64, parts: &[u64]) -> Self {
        debug_assert!(parts.len() <= 3, "at most three parts fit the key");
        let mut key = [0u8; 32];
        for (i, w) in std::iter::once(&seed)
            .chain(parts.iter().take(3))
            .enumerate()
        {
            key[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
        }
        let mut r = ChaCha8Rng::from_seed(key);
        r.set_stream(parts.len() as u64);
        Rng(r)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub(super) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub(super) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform in [-1, 1): symmetric noise.
    pub(super) fn signed(&mut self) -> f64 {
        2.0 * self.unit() - 1.0
    }

    /// Uniform integer in [0, n); 0 when n is 0 so callers never divide by zero.
    pub(super) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.0.random_range(0..n)
        }
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One element of a non-empty constant table (never called with an empty one;
    /// `get` keeps that a logic error instead of a panic).
    pub(super) fn pick<T: Copy>(&mut self, xs: &[T], fallback: T) -> T {
        let i = self.below(xs.len() as u64) as usize;
        xs.get(i).copied().unwrap_or(fallback)
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    fn draws(seed: u64, parts: &[u64]) -> Vec<u64> {
        let mut r = Rng::derive(seed, parts);
        (0..4).map(|_| r.next_u64()).collect()
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        assert_eq!(draws(7, &[1, 2]), draws(7, &[1, 2]));
        assert_ne!(draws(7, &[1, 2]), draws(7, &[2, 1]));
        assert_ne!(draws(7, &[1]), draws(7, &[1, 0]));
        assert_ne!(draws(7, &[1, 2]), draws(8, &[1, 2]));
        let mut r = Rng::derive(1, &[]);
        for _ in 0..1000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(r.below(3) < 3);
        }
        assert_eq!(r.below(0), 0);
    }
}
