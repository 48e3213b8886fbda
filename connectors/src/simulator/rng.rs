//! A tiny deterministic PRNG (splitmix64). The crate has no `rand`, and the
//! simulator must be reproducible from a seed: the same options give the
//! same bytes on every run and platform. Only `+ − × /`, `sqrt` and integer
//! conversions are applied to its output (all exactly specified by IEEE 754),
//! never `sin`/`exp`, whose last bits can differ between libm builds.

/// splitmix64 state.
#[derive(Clone, Debug)]
pub(super) struct Rng(u64);

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The splitmix64 output function: a bijective 64-bit mixer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// An independent stream for one purpose, e.g. `(seed, [TAG, meter, day])`:
    /// each meter-day gets its own stream, so generating day 9 does not depend
    /// on how many numbers day 8 happened to draw.
    pub(super) fn derive(seed: u64, parts: &[u64]) -> Self {
        let mut s = mix(seed ^ 0x6A09_E667_F3BC_C909);
        for p in parts {
            s = mix(s ^ p.wrapping_mul(GOLDEN).wrapping_add(0x3C6E_F372_FE94_F82B));
        }
        Rng(s)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
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
            self.next_u64() % n
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

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::derive(7, &[1, 2]);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::derive(7, &[1, 2]);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::derive(7, &[2, 1]);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut r = Rng::derive(1, &[]);
        for _ in 0..1000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
