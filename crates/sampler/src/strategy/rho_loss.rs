//! RHO-LOSS (Mindermann et al., ICML 2022): train on the candidates with the
//! largest reducible holdout loss.

use serde::{Deserialize, Serialize};

use super::inputs::{check_irreducible, check_irreducible_len};
use super::{CandidateStream, PlanContext, Strategy};
use crate::error::{Result, SamplerError, require};
use crate::plan::{Planned, StepPlan};
use crate::seed::stream;

/// Parameters of [`RhoLoss`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RhoLossConfig {
    /// Candidates per training sample, n_B / n_b (≥ 1; 10 by default, the
    /// paper's n_b / n_B = 10%).
    pub ratio: usize,
}

impl Default for RhoLossConfig {
    fn default() -> Self {
        Self { ratio: 10 }
    }
}

impl RhoLossConfig {
    /// Checks the ratio.
    pub fn validate(&self) -> Result<()> {
        require::<SamplerError>(
            self.ratio >= 1,
            "ratio",
            self.ratio as f64,
            "at least 1 candidate per training sample",
        )
    }
}

/// RHO-LOSS (Mindermann et al., "Prioritized Training on Points that are
/// Learnable, Worth Learning, and Not Yet Learnt", ICML 2022).
///
/// Each optimiser step is two calls. [`Strategy::plan`] hands out
/// n_B = ratio · n_b uniformly chosen candidates ([`Planned::ScoreFirst`];
/// n_b is the schedule slot's batch size, so steps and batch sizes are
/// those of [`Uniform`](super::Uniform); n_B is at most N). The loop
/// forwards them without gradients and records their training losses (the
/// run's heuristic must be the loss). [`Strategy::select`] then trains on
/// the n_b distinct candidates with the largest reducible loss
/// `last training loss − IL(id)`, weight 1; ties go to the earlier
/// candidate. It skips candidates that are noisy or not worth learning
/// (high IL) and those already learnt (low training loss).
///
/// The irreducible losses IL — one per training sample, from a model
/// trained on a holdout set — are not part of the configuration: the
/// trainer computes them and passes them to [`RhoLoss::new`] (through
/// [`StrategyInputs`](super::StrategyInputs)).
///
/// Costs are counted as for selective backprop: the n_B candidates are
/// forward passes without gradients (the plan's `score_only`), the n_b
/// selected ones are forwarded again with gradients and backpropagated,
/// so a step costs n_B + n_b forward and n_b backward passes and exactly
/// one optimiser step; the [`Sampler`](crate::Sampler) stops once the
/// schedule's optimiser steps are spent. Candidates come from successive
/// seeded shuffles of the dataset (the paper draws a uniform batch of the
/// shuffled data), so a candidate batch repeats an id only where it spans
/// two shuffles; a repeated id is selected at most once.
#[derive(Clone, Debug)]
pub struct RhoLoss {
    config: RhoLossConfig,
    irreducible: Vec<f32>,
    stream: CandidateStream,
}

impl RhoLoss {
    /// The strategy, after checking `config` and that every irreducible
    /// loss is finite and non-negative (their count is checked against the
    /// dataset when planning).
    pub fn new(config: RhoLossConfig, irreducible: Vec<f32>) -> Result<Self> {
        config.validate()?;
        check_irreducible(&irreducible)?;
        Ok(Self {
            config,
            irreducible,
            stream: CandidateStream::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RhoLossConfig {
        &self.config
    }

    /// The irreducible losses, indexed by id.
    pub fn irreducible_losses(&self) -> &[f32] {
        &self.irreducible
    }

    /// The reducible loss of `id` for training loss `loss`: `loss − IL(id)`.
    pub fn reducible_loss(&self, id: usize, loss: f32) -> f64 {
        let il = self.irreducible.get(id).copied().unwrap_or(0.0);
        f64::from(loss) - f64::from(il)
    }
}

/// The training batch of the current slot (the schedule's batch size once
/// the schedule is over, which the sampler never reaches).
fn slot_batch(ctx: &PlanContext<'_>) -> usize {
    ctx.schedule
        .slot(ctx.optimiser_step)
        .map_or(ctx.schedule.batch_size(), |s| s.range.len())
}

impl Strategy for RhoLoss {
    fn name(&self) -> &'static str {
        "rho_loss"
    }

    fn plan(&mut self, ctx: &PlanContext<'_>) -> Result<Option<Planned>> {
        check_irreducible_len(&self.irreducible, ctx.table.len())?;
        if ctx.schedule.slot(ctx.optimiser_step).is_none() {
            return Ok(None);
        }
        let count = (self.config.ratio * slot_batch(ctx)).min(ctx.table.len());
        let candidates = self.stream.next(ctx, stream::RHO_CANDIDATES, count);
        Ok(Some(Planned::ScoreFirst(candidates)))
    }

    fn select(&mut self, ctx: &PlanContext<'_>, candidates: &[usize]) -> Result<StepPlan> {
        let mut ranked: Vec<(f64, usize, usize)> = Vec::with_capacity(candidates.len());
        let mut taken = std::collections::HashSet::with_capacity(candidates.len());
        for (position, &id) in candidates.iter().enumerate() {
            if taken.insert(id) {
                let loss = ctx.table.get(id).map_or(0.0, |r| r.last());
                ranked.push((self.reducible_loss(id, loss), position, id));
            }
        }
        // Largest reducible loss first; ties by candidate position.
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranked.truncate(slot_batch(ctx));
        let train: Vec<usize> = ranked.iter().map(|&(_, _, id)| id).collect();
        let weights = vec![1.0; train.len()];
        StepPlan::new(train, weights, candidates.to_vec())
    }
}
