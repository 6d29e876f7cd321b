//! Selective backprop (Jiang et al. 2019), held to the budget.

use std::collections::VecDeque;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{CandidateStream, PlanContext, Strategy};
use crate::error::{Result, SamplerError, require};
use crate::plan::{Planned, StepPlan};
use crate::seed::stream;

/// Parameters of [`SelectiveBackprop`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelectiveBackpropConfig {
    /// The exponent β of the keep probability (finite, ≥ 0; 3 by default).
    pub beta: f64,
    /// How many recent losses the percentile is taken among (≥ 1; 1,024).
    pub history: usize,
    /// Candidates forwarded per plan (≥ 1); `None` takes the schedule's
    /// batch size.
    pub candidates: Option<usize>,
}

impl Default for SelectiveBackpropConfig {
    fn default() -> Self {
        Self {
            beta: 3.0,
            history: 1024,
            candidates: None,
        }
    }
}

impl SelectiveBackpropConfig {
    /// Checks β, the history length and the candidate count.
    pub fn validate(&self) -> Result<()> {
        require::<SamplerError>(
            self.beta.is_finite() && self.beta >= 0.0,
            "beta",
            self.beta,
            "a finite exponent >= 0",
        )?;
        require::<SamplerError>(
            self.history >= 1,
            "history",
            self.history as f64,
            "at least 1 loss",
        )?;
        let candidates = self.candidates.unwrap_or(1);
        require(
            candidates >= 1,
            "candidates",
            candidates as f64,
            "at least 1 per step",
        )
    }
}

/// Selective backprop (Jiang et al., "Accelerating Deep Learning by
/// Focusing on the Biggest Losers", 2019): forward a batch of uniformly
/// chosen candidates without gradients, and keep each for backprop with
/// probability `percentile^β`, the percentile of its loss among the last
/// 1,024 losses (β = 3). Kept ids queue up; a training batch is handed out
/// whenever `batch_size` of them are waiting.
///
/// A plan is [`Planned::ScoreFirst`]: the candidates' losses are recorded,
/// then [`Strategy::select`] decides, returning a plan whose `score_only`
/// ids are the candidates and whose training ids are the next full batch of
/// kept ids (none while the queue fills: such a step costs forward passes
/// only and takes no optimiser step). When more than one batch is queued
/// (candidate batches larger than training batches), the next plan trains
/// on a queued batch directly ([`Planned::Train`], no candidates), so the
/// queue never grows without bound.
///
/// Held to the budget, unlike the reference code (METHODS, "Budgeted
/// training"): each training batch is one optimiser step charged to the
/// [`BudgetAccountant`](crate::BudgetAccountant), the
/// [`Sampler`](crate::Sampler) stops planning once the steps are spent, and
/// the forward passes spent on candidates are counted beside. The
/// percentile follows the reference code: the candidate's loss joins the
/// history first, then `percentileofscore(history, loss, kind="rank")`.
/// Candidates come from successive seeded shuffles of the dataset.
#[derive(Clone, Debug)]
pub struct SelectiveBackprop {
    config: SelectiveBackpropConfig,
    stream: CandidateStream,
    history: VecDeque<f32>,
    queue: VecDeque<usize>,
}

impl SelectiveBackprop {
    /// The strategy, after checking `config`.
    pub fn new(config: SelectiveBackpropConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            stream: CandidateStream::default(),
            history: VecDeque::with_capacity(config.history),
            queue: VecDeque::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SelectiveBackpropConfig {
        &self.config
    }

    /// Kept ids waiting for a full training batch.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The probability that a candidate with this loss is kept, given the
    /// current history: `p^β` where `p` is the loss's percentile rank (as
    /// a fraction, ties averaged) among the history once the loss joins it.
    pub fn keep_probability(&self, loss: f32) -> f64 {
        let evicted = usize::from(self.history.len() >= self.config.history);
        let (mut below, mut at_or_below, mut n) = (0usize, 1usize, 1usize);
        for &h in self.history.iter().skip(evicted) {
            n += 1;
            below += usize::from(h < loss);
            at_or_below += usize::from(h <= loss);
        }
        let percentile = (below + at_or_below + 1) as f64 / (2 * n) as f64;
        percentile.powf(self.config.beta)
    }

    /// The next `batch_size` kept ids, when that many are queued.
    fn full_batch(&mut self, ctx: &PlanContext<'_>) -> Option<Vec<usize>> {
        let batch = ctx.schedule.batch_size();
        (self.queue.len() >= batch).then(|| self.queue.drain(..batch).collect())
    }

    fn remember(&mut self, loss: f32) {
        if self.history.len() >= self.config.history {
            self.history.pop_front();
        }
        self.history.push_back(loss);
    }
}

impl Strategy for SelectiveBackprop {
    fn name(&self) -> &'static str {
        "selective_backprop"
    }

    fn plan(&mut self, ctx: &PlanContext<'_>) -> Result<Option<Planned>> {
        if let Some(batch) = self.full_batch(ctx) {
            return Ok(Some(Planned::Train(StepPlan::unweighted(batch))));
        }
        let count = self.config.candidates.unwrap_or(ctx.schedule.batch_size());
        let candidates = self.stream.next(ctx, stream::SB_CANDIDATES, count);
        Ok(Some(Planned::ScoreFirst(candidates)))
    }

    fn select(&mut self, ctx: &PlanContext<'_>, candidates: &[usize]) -> Result<StepPlan> {
        let mut rng = ctx.rng(stream::SB_KEEP);
        for &id in candidates {
            let loss = ctx.table.get(id).map_or(0.0, |r| r.last());
            let keep = self.keep_probability(loss);
            self.remember(loss);
            if rng.random::<f64>() < keep {
                self.queue.push_back(id);
            }
        }
        let train = self.full_batch(ctx).unwrap_or_default();
        let weights = vec![1.0; train.len()];
        StepPlan::new(train, weights, candidates.to_vec())
    }
}
