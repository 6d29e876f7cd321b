//! # isdet-sampler
//!
//! Decides what a training budget is spent on: turns per-sample importance
//! scores into step plans — which samples to train on, with what weight,
//! which to score without training, and what each step costs — for
//! budgeted training with importance sampling. It has no candle dependency
//! and knows nothing of models: any training loop that can produce one
//! score per sample can use it.
//!
//! - [`ScoreTable`]: per sample the last score, running mean, EMA, visit
//!   count and age, in 24 bytes.
//! - [`SumTree`]: weighted draws and updates in O(log N).
//! - One [`Strategy`] trait and its implementations, configured by
//!   [`StrategyConfig`]: [`Uniform`] (the baseline), [`WeightedWithReplacement`]
//!   and [`WeightedWithoutReplacement`] (smoothing, mixture ε, power α,
//!   warm-up, unseen samples, biased or unbiased weights:
//!   [`WeightedConfig`]), [`SelectiveBackprop`], [`Presampling`],
//!   [`InfoBatch`], [`OnlineBatchSelection`], [`UniformWithReplacement`]
//!   (the control for draws with replacement), [`RhoLoss`] (needs
//!   [`StrategyInputs`]) and [`Afss`].
//! - Diagnostics for any strategy: [`variance_reduction`] (τ of a score
//!   table), [`gini`] (how unevenly draws spread) and
//!   [`Strategy::diagnostics`] ([`StrategyDiagnostics`]).
//! - [`Schedule`] and [`BudgetAccountant`]: a budget is a fraction of the
//!   full schedule's optimiser steps; forward passes, backward passes and
//!   images are counted beside, and no strategy can overspend.
//! - [`Rank`]: data parallelism with one global sampler — each rank's
//!   share of every global plan ([`StepPlan::share`]).
//! - [`Sampler`]: all of the above behind one protocol. Every plan is a
//!   pure function of (seed, table state, step).
//!
//! ## The training-loop protocol
//!
//! 1. `plan()` returns [`Planned::Train`] or, for methods that look before
//!    they train (selective backprop, presampling, RHO-LOSS, AFSS's
//!    refreshes), [`Planned::ScoreFirst`] candidates; `None` once the
//!    budget is spent.
//! 2. Run the forward pass: with gradients for a training plan, without for
//!    candidates. `record()` one score per id.
//! 3. For candidates, `select()` returns the plan to train on; its training
//!    forward is not recorded again.
//! 4. Backpropagate the mean of `weights()[k] · loss(train()[k])` and step
//!    the optimiser (a selective-backprop plan or an AFSS refresh may have
//!    no training ids: skip the backward).
//!
//! ```
//! use isdet_sampler::{Planned, Sampler, Schedule, ScoreTable, StrategyConfig};
//!
//! let schedule = Schedule::new(1_000, 32, 3, 0.3)?;
//! let strategy = StrategyConfig::SelectiveBackprop(Default::default()).build()?;
//! let mut sampler = Sampler::new(ScoreTable::new(1_000)?, schedule, strategy, 7)?;
//! // Stands in for the model: one loss per sample.
//! let forward = |ids: &[usize]| -> Vec<f32> { ids.iter().map(|&id| (id % 10) as f32).collect() };
//! while let Some(planned) = sampler.plan()? {
//!     let plan = match planned {
//!         Planned::Train(plan) => {
//!             let losses = forward(plan.train()); // with gradients
//!             sampler.record(plan.train(), &losses)?;
//!             plan
//!         }
//!         Planned::ScoreFirst(candidates) => {
//!             let losses = forward(&candidates); // without gradients
//!             sampler.record(&candidates, &losses)?;
//!             sampler.select()?
//!         }
//!     };
//!     if plan.is_optimiser_step() {
//!         // backward on plan.train() weighted by plan.weights(), optimiser step
//!     }
//! }
//! let spent = sampler.budget();
//! assert_eq!(spent.optimiser_steps(), schedule.budget_steps());
//! assert_eq!(spent.backward_passes(), 32 * schedule.budget_steps());
//! assert!(spent.forward_passes() > spent.backward_passes());
//! # Ok::<(), isdet_sampler::SamplerError>(())
//! ```
#![deny(missing_docs)]

mod budget;
mod diagnostics;
mod error;
mod parallel;
mod plan;
mod sampler;
mod schedule;
mod seed;
mod strategy;
mod sum_tree;
mod table;

pub use budget::{BudgetAccountant, PassCost};
pub use diagnostics::{StrategyDiagnostics, gini, variance_reduction};
pub use error::{Result, SamplerError};
pub use isdet_base::InvalidParameter;
pub use parallel::{Rank, RankShare};
pub use plan::{Planned, StepPlan};
pub use sampler::Sampler;
pub use schedule::{Schedule, Slot};
pub use strategy::{
    Afss, AfssConfig, AfssEpoch, InfoBatch, InfoBatchConfig, OnlineBatchConfig,
    OnlineBatchSelection, PlanContext, Presampling, PresamplingConfig, RhoLoss, RhoLossConfig,
    SelectiveBackprop, SelectiveBackpropConfig, Strategy, StrategyConfig, StrategyInputs, Tier,
    Uniform, UniformWithReplacement, UnseenPolicy, WeightedConfig, WeightedWithReplacement,
    WeightedWithoutReplacement, Weighting,
};
pub use sum_tree::SumTree;
pub use table::{DEFAULT_EMA_MOMENTUM, ScoreField, ScoreRecord, ScoreTable};
