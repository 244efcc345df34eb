//! Seed streams.
//!
//! Every Monte Carlo draw takes its generator from `(seed, index)`: draw `s` of a run
//! with seed `seed` always sees the same bits, whichever thread computes it and however
//! many threads there are. The generator is ChaCha8 keyed by `seed` with stream number
//! `index` (2⁶⁴ independent streams per seed), so the streams are independent by
//! construction rather than by hoping that nearby integer seeds decorrelate.

use rand::{RngExt, SeedableRng};
pub use rand_chacha::ChaCha8Rng;

pub use crate::ziggurat::fill_standard_normal;

/// The generator type of every Monte Carlo draw.
pub type DrawRng = ChaCha8Rng;

/// The generator of draw `index` of a run seeded with `seed`.
///
/// # Examples
///
/// ```
/// use mi_est::rng::stream;
/// use rand::RngExt;
/// let a: u64 = stream(7, 3).random();
/// let b: u64 = stream(7, 3).random();
/// let c: u64 = stream(7, 4).random();
/// assert_eq!(a, b);
/// assert_ne!(a, c);
/// ```
pub fn stream(seed: u64, index: u64) -> DrawRng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

/// Writes `out.len() / d` uniformly random permutations of `0..d`, one after another:
/// the permutations, and the generator state afterwards, of as many [`shuffle`]s of
/// the identity (each `random_range(0..=i)`, rand's 32-bit widening-multiply method,
/// replayed exactly), with the generator's 32-bit words drawn in blocks.
///
/// # Panics
///
/// If `d = 0` or `out.len()` is not a multiple of `d`.
pub fn shuffled_identities<R: rand::Rng + ?Sized>(rng: &mut R, d: usize, out: &mut [usize]) {
    assert!(
        d > 0 && out.len().is_multiple_of(d),
        "{} entries for width {d}",
        out.len()
    );
    assert!(d <= u32::MAX as usize, "width {d}");
    // Generator words drawn ahead in blocks of at most the number still certainly
    // needed (one per swap), so never a word the one-at-a-time code would not draw; the
    // state is kept in locals (the compiler keeps them in registers).
    let mut block = [0u32; 1024];
    let (mut pos, mut len) = (0usize, 0usize);
    let mut needed = out.len() / d * (d - 1);
    fn refill<R: rand::Rng + ?Sized>(
        rng: &mut R,
        block: &mut [u32; 1024],
        needed: usize,
    ) -> (usize, usize) {
        let len = needed.min(block.len());
        rng.fill(&mut block[..len]);
        (0, len)
    }
    // `targets[k]`: the index swapped with position `d − 1 − k`.
    let mut targets = vec![0u32; d - 1];
    for perm in out.chunks_mut(d) {
        for (i, p) in perm.iter_mut().enumerate() {
            *p = i;
        }
        // Fast path, when the block holds this permutation's words: all targets first
        // (independent multiplies), then the swaps, whose addresses are then known early
        // (interleaved, a load that aliases an earlier swap's store stalled the core).
        // A rare second word anywhere shifts the words after it: that permutation is
        // redone word by word below, from the same position.
        if len - pos >= d - 1 {
            let mut rare = false;
            for (k, (&word, t)) in block[pos..pos + d - 1].iter().zip(&mut targets).enumerate() {
                let range = (d - k) as u32;
                let m = u64::from(word) * u64::from(range);
                *t = (m >> 32) as u32;
                rare |= m as u32 > range.wrapping_neg();
            }
            if !rare {
                pos += d - 1;
                needed -= d - 1;
                for (k, &t) in targets.iter().enumerate() {
                    perm.swap(d - 1 - k, t as usize);
                }
                continue;
            }
        }
        for i in (1..d).rev() {
            // rand's `UniformInt::<u32>::sample_single_inclusive(0, i)`.
            if pos == len {
                (pos, len) = refill(rng, &mut block, needed);
            }
            let word = block[pos];
            pos += 1;
            needed -= 1;
            let range = i as u32 + 1;
            let m = u64::from(word) * u64::from(range);
            let (mut hi, lo) = ((m >> 32) as u32, m as u32);
            if lo > range.wrapping_neg() {
                // The rare second word (probability range / 2³²).
                if pos == len && needed > 0 {
                    (pos, len) = refill(rng, &mut block, needed);
                }
                let extra = if pos < len {
                    pos += 1;
                    block[pos - 1]
                } else {
                    rng.next_u32()
                };
                let extra = u64::from(extra) * u64::from(range);
                hi += u32::from(lo.checked_add((extra >> 32) as u32).is_none());
            }
            perm.swap(i, hi as usize);
        }
    }
}

/// Fisher–Yates shuffle in place: every ordering equally likely, `len − 1` draws.
pub fn shuffle<T, R: rand::Rng + ?Sized>(items: &mut [T], rng: &mut R) {
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}

/// A child seed for a named sub-computation (a repeat, a grid item), derived from
/// `(seed, index)` by the SplitMix64 finalizer, so nested studies stay reproducible
/// without sharing streams.
pub fn child_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_index_give_same_bits() {
        let a: Vec<u64> = (0..8)
            .map(|_| 0)
            .scan(stream(1, 2), |r, _: u64| Some(r.random()))
            .collect();
        let b: Vec<u64> = (0..8)
            .map(|_| 0)
            .scan(stream(1, 2), |r, _: u64| Some(r.random()))
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn shuffled_identities_replay_shuffle_exactly() {
        for (d, count) in [(1usize, 3usize), (2, 50), (7, 1000), (30, 300), (100, 40)] {
            let (mut a, mut b) = (stream(9, d as u64), stream(9, d as u64));
            let mut want = Vec::new();
            for _ in 0..count {
                let mut p: Vec<usize> = (0..d).collect();
                shuffle(&mut p, &mut a);
                want.extend(p);
            }
            let mut got = vec![usize::MAX; d * count];
            shuffled_identities(&mut b, d, &mut got);
            assert_eq!(want, got, "d = {d}");
            assert_eq!(a.random::<u64>(), b.random::<u64>(), "state after d = {d}");
        }
        // The rare second word (probability range / 2³² per swap) must be replayed too.
        // A generator whose every word is 0x5555_5555 takes it at each range-3 swap
        // (3 · 0x5555_5555 = 2³² − 1): one extra word per permutation of 0..3.
        struct Fives(u32);
        impl rand::TryRng for Fives {
            type Error = std::convert::Infallible;
            fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
                self.0 += 1;
                Ok(0x5555_5555)
            }
            fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
                Ok(u64::from(self.try_next_u32()?) | (u64::from(self.try_next_u32()?) << 32))
            }
            fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
                for c in dst.chunks_mut(4) {
                    let w = self.try_next_u32()?.to_le_bytes();
                    c.copy_from_slice(&w[..c.len()]);
                }
                Ok(())
            }
        }
        let (mut a, mut b) = (Fives(0), Fives(0));
        let mut want = Vec::new();
        for _ in 0..5 {
            let mut p: Vec<usize> = (0..3).collect();
            shuffle(&mut p, &mut a);
            want.extend(p);
        }
        let mut got = vec![0; 15];
        shuffled_identities(&mut b, 3, &mut got);
        assert_eq!(want, got);
        assert_eq!(
            (a.0, b.0),
            (15, 15),
            "words drawn: 2 per permutation + 1 extra"
        );
        // Wider: the extra word falls in the middle of each permutation's words, and
        // block boundaries land at every offset.
        for d in [30usize, 61] {
            let (mut a, mut b) = (Fives(0), Fives(0));
            let mut want = Vec::new();
            for _ in 0..100 {
                let mut p: Vec<usize> = (0..d).collect();
                shuffle(&mut p, &mut a);
                want.extend(p);
            }
            let mut got = vec![0; 100 * d];
            shuffled_identities(&mut b, d, &mut got);
            assert_eq!(want, got, "d = {d}");
            assert_eq!(a.0, b.0, "words drawn, d = {d}");
        }
    }

    #[test]
    fn different_streams_and_seeds_differ() {
        let x: u64 = stream(1, 2).random();
        assert_ne!(x, stream(1, 3).random::<u64>());
        assert_ne!(x, stream(2, 2).random::<u64>());
        assert_ne!(child_seed(1, 0), child_seed(1, 1));
        assert_ne!(child_seed(1, 0), child_seed(2, 0));
    }
}
