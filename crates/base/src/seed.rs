//! Seeded randomness: every draw in isdet comes from a generator derived
//! from a run seed and the coordinates of the thing being drawn (a stream
//! tag, an epoch, a step, a sample id), so that a draw is a pure function
//! of them, the same on every run.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator type used throughout isdet (portable and reproducible
/// across platforms, unlike `StdRng`).
pub type Rng = ChaCha8Rng;

/// SplitMix64's finaliser: a bijective mix of 64 bits.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit key from an ordered list of parts; different orders give
/// different keys.
pub fn key(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x1234_5678_9ABC_DEF0, |acc, &p| mix64(acc ^ mix64(p)))
}

/// A generator that is a pure function of `parts` (e.g. seed, stream, epoch,
/// sample id).
pub fn rng_for(parts: &[u64]) -> Rng {
    Rng::seed_from_u64(key(parts))
}
