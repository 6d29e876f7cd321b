//! Seeded randomness: every draw in this crate comes from a generator derived
//! from the run seed, a stream tag and the step or epoch being planned, so
//! that a plan is a pure function of (seed, table state, step).
//!
//! The mixing functions are those of `isdet-data`'s `seed` module, copied so
//! that this crate depends on nothing else in the workspace.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// SplitMix64's finaliser: a bijective mix of 64 bits.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit key from an ordered list of parts; different orders give
/// different keys.
pub(crate) fn key(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x1234_5678_9ABC_DEF0, |acc, &p| mix64(acc ^ mix64(p)))
}

/// A generator that is a pure function of `parts`.
pub(crate) fn rng_for(parts: &[u64]) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(key(parts))
}

/// Stream tags keep generators for different purposes independent even when
/// the seed and step coincide.
pub(crate) mod stream {
    /// Per-epoch shuffles of the uniform baseline (also used by warm-up).
    pub const UNIFORM: u64 = 0x554e_4946;
    /// Per-step draws of weighted sampling with replacement.
    pub const WEIGHTED_DRAW: u64 = 0x5744_5257;
    /// Per-epoch keys of weighted sampling without replacement.
    pub const WEIGHTED_EPOCH: u64 = 0x5745_504f;
    /// Candidate shuffles of selective backprop.
    pub const SB_CANDIDATES: u64 = 0x5342_4341;
    /// Keep decisions of selective backprop.
    pub const SB_KEEP: u64 = 0x5342_4b50;
    /// Candidate shuffles of presampling.
    pub const PRESAMPLE_CANDIDATES: u64 = 0x5052_4341;
    /// Importance draws among presampled candidates.
    pub const PRESAMPLE_DRAW: u64 = 0x5052_4457;
    /// Per-epoch pruning and shuffling of InfoBatch.
    pub const INFOBATCH: u64 = 0x494e_464f;
    /// Per-epoch rank tie-breaks of online batch selection.
    pub const RANK_EPOCH: u64 = 0x524e_4b45;
    /// Per-step rank draws of online batch selection.
    pub const RANK_DRAW: u64 = 0x524e_4b44;
}
