//! The budget accountant: what a run has spent, and whether it may go on.

use serde::{Deserialize, Serialize};

use crate::error::{Result, SamplerError, require};

/// What one step costs, counted per image.
///
/// A forward pass of one image counts 1, with or without gradients; a
/// backward pass of one image counts 1; images are the distinct samples the
/// step loads; a step with at least one image to backpropagate takes one
/// optimiser step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassCost {
    /// Per-image forward passes (scoring passes and training passes).
    pub forward: u64,
    /// Per-image backward passes.
    pub backward: u64,
    /// Distinct images loaded.
    pub images: u64,
    /// Optimiser steps (0 or 1 for one plan).
    pub optimiser_steps: u64,
}

/// Counts optimiser steps, forward passes, backward passes and images seen,
/// and says when the budget is spent.
///
/// The budget is a number of optimiser steps, usually a fraction of the
/// full schedule's (e.g. 0.3 of the steps uniform sampling at 100% takes).
/// A charge that would take more optimiser steps than remain is refused, so
/// no strategy can overspend; forward passes spent on scoring are counted
/// beside, so that their cost is reported rather than hidden.
///
/// ```
/// use isdet_sampler::{BudgetAccountant, PassCost};
///
/// let mut budget = BudgetAccountant::fraction_of(100, 0.3)?;
/// assert_eq!(budget.limit(), 30);
/// let step = PassCost { forward: 96, backward: 32, images: 96, optimiser_steps: 1 };
/// budget.charge(&step)?;
/// assert_eq!((budget.optimiser_steps(), budget.forward_passes()), (1, 96));
/// assert_eq!(budget.remaining_steps(), 29);
/// # Ok::<(), isdet_sampler::SamplerError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetAccountant {
    limit: u64,
    spent: PassCost,
}

impl BudgetAccountant {
    /// A budget of `limit_steps` optimiser steps, nothing spent.
    pub fn new(limit_steps: u64) -> Self {
        Self {
            limit: limit_steps,
            spent: PassCost::default(),
        }
    }

    /// A budget of `⌊fraction · full_steps⌋` optimiser steps (fraction in
    /// (0, 1]); products within 10⁻⁹ of an integer count as that integer,
    /// so that 0.3 · 100 is 30, not 29.
    pub fn fraction_of(full_steps: u64, fraction: f64) -> Result<Self> {
        require::<SamplerError>(
            fraction > 0.0 && fraction <= 1.0,
            "budget",
            fraction,
            "a fraction in (0, 1]",
        )?;
        let limit = (fraction * full_steps as f64 + 1e-9).floor() as u64;
        Ok(Self::new(limit.min(full_steps)))
    }

    /// Adds one step's cost; refused, with nothing charged, when it would
    /// exceed the optimiser-step budget.
    pub fn charge(&mut self, cost: &PassCost) -> Result<()> {
        if cost.optimiser_steps > self.remaining_steps() {
            return Err(SamplerError::BudgetExceeded {
                limit: self.limit,
                spent: self.spent.optimiser_steps,
                requested: cost.optimiser_steps,
            });
        }
        self.spent.forward += cost.forward;
        self.spent.backward += cost.backward;
        self.spent.images += cost.images;
        self.spent.optimiser_steps += cost.optimiser_steps;
        Ok(())
    }

    /// The budget, in optimiser steps.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Optimiser steps still allowed.
    pub fn remaining_steps(&self) -> u64 {
        self.limit - self.spent.optimiser_steps
    }

    /// Whether every optimiser step of the budget has been charged.
    pub fn is_spent(&self) -> bool {
        self.remaining_steps() == 0
    }

    /// Optimiser steps charged.
    pub fn optimiser_steps(&self) -> u64 {
        self.spent.optimiser_steps
    }

    /// Per-image forward passes charged (scoring and training).
    pub fn forward_passes(&self) -> u64 {
        self.spent.forward
    }

    /// Per-image backward passes charged.
    pub fn backward_passes(&self) -> u64 {
        self.spent.backward
    }

    /// Distinct images loaded, summed over steps.
    pub fn images_seen(&self) -> u64 {
        self.spent.images
    }

    /// Everything charged so far.
    pub fn spent(&self) -> PassCost {
        self.spent
    }
}
