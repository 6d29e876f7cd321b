//! The control for methods that draw with replacement: uniform draws with
//! replacement.

use rand::Rng;

use super::{PlanContext, Strategy};
use crate::error::Result;
use crate::plan::{Planned, StepPlan};
use crate::seed::stream;

/// Uniform sampling with replacement: every training id of every step is
/// drawn independently and uniformly from all N ids, with weight 1.
///
/// It takes the [`Schedule`](crate::Schedule)'s slots — the same steps and
/// batch sizes as [`Uniform`](super::Uniform) at every budget — so the two
/// differ only in the draw. It is the control that separates a heuristic
/// from drawing with replacement (issue 35; METHODS, "Baselines"): the
/// weighted strategies draw with replacement, which alone spreads draws
/// unevenly (ids repeat within an epoch, others are skipped), while the
/// uniform baseline visits every id once per epoch.
#[derive(Clone, Debug, Default)]
pub struct UniformWithReplacement;

impl UniformWithReplacement {
    /// The strategy.
    pub fn new() -> Self {
        Self
    }
}

impl Strategy for UniformWithReplacement {
    fn name(&self) -> &'static str {
        "uniform_with_replacement"
    }

    fn plan(&mut self, ctx: &PlanContext<'_>) -> Result<Option<Planned>> {
        let Some(slot) = ctx.schedule.slot(ctx.optimiser_step) else {
            return Ok(None);
        };
        let mut rng = ctx.rng(stream::UNIFORM_DRAW);
        let n = ctx.table.len();
        let ids = slot.range.map(|_| rng.random_range(0..n)).collect();
        Ok(Some(Planned::Train(StepPlan::unweighted(ids))))
    }
}
