//! Data parallelism with a global sampler: every rank of a data-parallel
//! run holds the same sampler (same table, schedule, strategy and seed),
//! draws the same global plan, and trains or scores only its share of it.
//! The ranks' scores are all-gathered in rank order and every rank records
//! all of them, so the tables stay bit-identical and the next global plan
//! is again the same on every rank; the budget counts global passes. The
//! collective (NCCL) is the training loop's; this module is the part that
//! decides who does what (docs/distributed.md).
//!
//! ```
//! use isdet_sampler::{Rank, StepPlan};
//!
//! let plan = StepPlan::new((0..10).collect(), vec![1.0; 10], vec![])?;
//! let shares: Vec<_> = (0..3).map(|r| plan.share(Rank::new(r, 3).unwrap())).collect();
//! let train: Vec<usize> = shares.iter().flat_map(|s| s.train.clone()).collect();
//! assert_eq!(train, plan.train()); // concatenated in rank order: the plan
//! assert_eq!(shares[0].global_train_len, 10); // normalise the loss by this
//! # Ok::<(), isdet_sampler::SamplerError>(())
//! ```

use std::ops::Range;

use crate::error::{Result, SamplerError};
use crate::plan::StepPlan;

/// One process of a data-parallel run: `index` of `world`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rank {
    index: usize,
    world: usize,
}

impl Rank {
    /// Rank `index` of `world` processes; an error unless
    /// `index < world`.
    pub fn new(index: usize, world: usize) -> Result<Self> {
        isdet_base::require::<SamplerError>(world >= 1, "world", world as f64, "at least 1")?;
        isdet_base::require::<SamplerError>(
            index < world,
            "rank",
            index as f64,
            "below the world size",
        )?;
        Ok(Rank { index, world })
    }

    /// This rank's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The number of ranks.
    pub fn world(&self) -> usize {
        self.world
    }

    /// The positions `[start, end)` of a list of `len` items that this
    /// rank handles: contiguous blocks whose sizes differ by at most one,
    /// so concatenating the ranks' blocks in rank order gives the list
    /// back, and an all-gather in rank order restores the global order.
    pub fn share(&self, len: usize) -> Range<usize> {
        let at = |r: usize| r * len / self.world;
        at(self.index)..at(self.index + 1)
    }
}

/// One rank's part of a global step plan.
#[derive(Clone, Debug, PartialEq)]
pub struct RankShare {
    /// The training ids this rank forwards and backpropagates.
    pub train: Vec<usize>,
    /// Their weights.
    pub weights: Vec<f32>,
    /// The scoring-only ids this rank forwards without gradients.
    pub score_only: Vec<usize>,
    /// Training ids in the whole plan: each rank divides its weighted loss
    /// sum by this (not by its share's length), so the all-reduced
    /// gradient is the single-process one.
    pub global_train_len: usize,
}

impl StepPlan {
    /// Rank `rank`'s share of this plan ([`Rank::share`] of its training
    /// and of its scoring-only ids).
    pub fn share(&self, rank: Rank) -> RankShare {
        let train = rank.share(self.train().len());
        let score_only = rank.share(self.score_only().len());
        RankShare {
            train: self.train()[train.clone()].to_vec(),
            weights: self.weights()[train].to_vec(),
            score_only: self.score_only()[score_only].to_vec(),
            global_train_len: self.train().len(),
        }
    }
}
