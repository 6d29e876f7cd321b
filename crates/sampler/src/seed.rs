//! Seeded randomness: every draw in this crate comes from a generator derived
//! from the run seed, a stream tag and the step or epoch being planned, so
//! that a plan is a pure function of (seed, table state, step).
//!
//! The mixing functions are `isdet-base`'s.

pub(crate) use isdet_base::seed::rng_for;

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
    /// Per-step draws of uniform sampling with replacement.
    pub const UNIFORM_DRAW: u64 = 0x554e_4452;
    /// Candidate shuffles of RHO-LOSS.
    pub const RHO_CANDIDATES: u64 = 0x5248_4f43;
    /// Per-epoch draws and shuffles of AFSS.
    pub const AFSS_EPOCH: u64 = 0x4146_5353;
}
