//! Seeded randomness: every draw in this crate comes from a generator derived
//! from a run seed and the coordinates of the thing being drawn.

pub use isdet_base::seed::{Rng, key, mix64, rng_for};

/// Stream tags keep generators for different purposes independent even when
/// the other coordinates coincide.
pub(crate) mod stream {
    pub const SYNTH: u64 = 0x5359_4e54;
    pub const MNIST_SCENE: u64 = 0x4d4e_5354;
    pub const DET_AUG: u64 = 0x4445_5441;
    pub const CLS_AUG: u64 = 0x434c_5341;
    pub const MIX: u64 = 0x4d49_5858;
    /// RandAugment's op and sign draws ("RAND"); its own stream, so turning
    /// RandAugment on leaves crop, flip and cutout draws as they were.
    pub const RAND_AUG: u64 = 0x5241_4e44;
    /// The frame-to-frame drift, scale and brightness of mnist-det clips
    /// ("CLIP"); its own stream, so frame 0 of a clip is the plain scene.
    pub const MNIST_CLIP: u64 = 0x434c_4950;
    /// The set-wide choices of a mnist-det regime ("RGME"): which clips are
    /// empty, which class each digit slot gets, which boxes are noisy or
    /// missing.
    pub const MNIST_REGIME: u64 = 0x5247_4d45;
}
