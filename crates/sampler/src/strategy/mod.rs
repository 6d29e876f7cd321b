//! Strategies: one trait that turns the score table into step plans, and
//! its implementations.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::diagnostics::StrategyDiagnostics;
use crate::error::{Result, SamplerError};
use crate::plan::{Planned, StepPlan};
use crate::schedule::Schedule;
use crate::seed::rng_for;
use crate::table::ScoreTable;

mod afss;
mod config;
mod infobatch;
mod inputs;
mod presampling;
mod rank;
mod rho_loss;
mod selective;
mod uniform;
mod uniform_replacement;
mod unseen;
mod weighted;

pub use afss::{Afss, AfssConfig, AfssEpoch, Tier};
pub use config::StrategyConfig;
pub use infobatch::{InfoBatch, InfoBatchConfig};
pub use inputs::StrategyInputs;
pub use presampling::{Presampling, PresamplingConfig};
pub use rank::{OnlineBatchConfig, OnlineBatchSelection};
pub use rho_loss::{RhoLoss, RhoLossConfig};
pub use selective::{SelectiveBackprop, SelectiveBackpropConfig};
pub use uniform::Uniform;
pub use uniform_replacement::UniformWithReplacement;
pub use weighted::{
    UnseenPolicy, WeightedConfig, WeightedWithReplacement, WeightedWithoutReplacement, Weighting,
};

/// Turns the score table into step plans.
///
/// The protocol a training loop follows (the [`Sampler`](crate::Sampler)
/// enforces it):
///
/// 1. [`Strategy::plan`] hands out [`Planned::Train`] (one-phase strategies)
///    or [`Planned::ScoreFirst`] candidates (selective backprop, presampling
///    once on).
/// 2. The loop runs the forward pass — with gradients for a training plan,
///    without for candidates — and records one score per id in the table.
///    After every record, [`Strategy::observe`] is told which ids changed.
/// 3. For candidates, [`Strategy::select`] reads their scores from the table
///    and returns the plan to train on.
/// 4. The loop backpropagates the weighted losses of the plan's training
///    ids and steps the optimiser.
///
/// Plans must be pure functions of (seed, table state, step) and the
/// strategy's own state, which in turn follows from the scores recorded: all
/// randomness comes from [`PlanContext::rng`] and [`PlanContext::epoch_rng`].
pub trait Strategy {
    /// A short name for logs and error messages.
    fn name(&self) -> &'static str;

    /// Plans the next step; `Ok(None)` once the strategy has nothing left to
    /// plan (its epochs are over).
    fn plan(&mut self, ctx: &PlanContext<'_>) -> Result<Option<Planned>>;

    /// Completes a step whose plan was [`Planned::ScoreFirst`]: `candidates`
    /// are those ids, all scored in this step. One-phase strategies keep the
    /// default, which refuses.
    fn select(&mut self, ctx: &PlanContext<'_>, candidates: &[usize]) -> Result<StepPlan> {
        let _ = (ctx, candidates);
        Err(SamplerError::SelectionUnsupported {
            strategy: self.name(),
        })
    }

    /// Told that scores for `ids` were just recorded in `table`, so that
    /// derived structures (a sum tree, the set of unseen samples) stay in
    /// sync in O(|ids| log N).
    fn observe(&mut self, table: &ScoreTable, ids: &[usize]) {
        let _ = (table, ids);
    }

    /// The strategy's own state for logs (presampling: τ and its switch);
    /// all `None` for strategies without such state.
    fn diagnostics(&self) -> StrategyDiagnostics {
        StrategyDiagnostics::default()
    }
}

impl<S: Strategy + ?Sized> Strategy for Box<S> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn plan(&mut self, ctx: &PlanContext<'_>) -> Result<Option<Planned>> {
        (**self).plan(ctx)
    }

    fn select(&mut self, ctx: &PlanContext<'_>, candidates: &[usize]) -> Result<StepPlan> {
        (**self).select(ctx, candidates)
    }

    fn observe(&mut self, table: &ScoreTable, ids: &[usize]) {
        (**self).observe(table, ids)
    }

    fn diagnostics(&self) -> StrategyDiagnostics {
        (**self).diagnostics()
    }
}

/// Everything a strategy may read while planning one step.
#[derive(Clone, Copy, Debug)]
pub struct PlanContext<'a> {
    /// The score table.
    pub table: &'a ScoreTable,
    /// The budgeted schedule.
    pub schedule: &'a Schedule,
    /// The step being planned: the count of plans handed out before it.
    pub step: u64,
    /// Optimiser steps taken before this step.
    pub optimiser_step: u64,
    /// The run seed.
    pub seed: u64,
}

impl PlanContext<'_> {
    /// The generator for this step and `stream`: a pure function of (seed,
    /// stream, step).
    pub fn rng(&self, stream: u64) -> ChaCha8Rng {
        rng_for(&[self.seed, stream, self.step])
    }

    /// The generator for `epoch` and `stream`: a pure function of (seed,
    /// stream, epoch), for draws made once per epoch.
    pub fn epoch_rng(&self, stream: u64, epoch: u64) -> ChaCha8Rng {
        rng_for(&[self.seed, stream, u64::MAX, epoch])
    }
}

/// A seeded permutation of all ids for one epoch, cached until the epoch
/// changes.
#[derive(Clone, Debug, Default)]
pub(crate) struct EpochPermutation {
    epoch: Option<u64>,
    ids: Vec<u32>,
}

impl EpochPermutation {
    /// The permutation of `0..len` for `epoch` on `stream`.
    pub(crate) fn get(&mut self, ctx: &PlanContext<'_>, stream: u64, epoch: u64) -> &[u32] {
        let len = ctx.table.len();
        if self.epoch != Some(epoch) || self.ids.len() != len {
            self.ids.clear();
            self.ids.extend(0..len as u32);
            self.ids.shuffle(&mut ctx.epoch_rng(stream, epoch));
            self.epoch = Some(epoch);
        }
        &self.ids
    }
}

/// An endless stream of uniformly chosen candidates: successive seeded
/// shuffles of the dataset, read in order (no repeats within one pass).
#[derive(Clone, Debug, Default)]
pub(crate) struct CandidateStream {
    permutation: EpochPermutation,
    position: u64,
}

impl CandidateStream {
    /// The next `count` candidates.
    pub(crate) fn next(&mut self, ctx: &PlanContext<'_>, stream: u64, count: usize) -> Vec<usize> {
        let len = ctx.table.len() as u64;
        (0..count)
            .map(|_| {
                let (pass, index) = (self.position / len, self.position % len);
                self.position += 1;
                self.permutation.get(ctx, stream, pass)[index as usize] as usize
            })
            .collect()
    }
}
