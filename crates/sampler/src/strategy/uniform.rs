//! The baseline: uniform sampling without replacement.

use super::{EpochPermutation, PlanContext, Strategy};
use crate::error::Result;
use crate::plan::{Planned, StepPlan};
use crate::seed::stream;

/// Uniform sampling without replacement, the baseline of every study
/// (METHODS, "uniform"; unif-SGD of Arazo et al., BMVC 2021 under a budget):
/// each epoch is a seeded shuffle of the dataset, of which the first
/// `budget · N` ids are trained on, in batches, each with weight 1.
///
/// The warm-up epochs of the score-based strategies are exactly these plans.
#[derive(Clone, Debug, Default)]
pub struct Uniform {
    permutation: EpochPermutation,
}

impl Uniform {
    /// The baseline strategy.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Strategy for Uniform {
    fn name(&self) -> &'static str {
        "uniform"
    }

    fn plan(&mut self, ctx: &PlanContext<'_>) -> Result<Option<Planned>> {
        let Some(slot) = ctx.schedule.slot(ctx.optimiser_step) else {
            return Ok(None);
        };
        let order = self
            .permutation
            .get(ctx, stream::UNIFORM, slot.epoch.into());
        let ids = order[slot.range].iter().map(|&id| id as usize).collect();
        Ok(Some(Planned::Train(StepPlan::unweighted(ids))))
    }
}
