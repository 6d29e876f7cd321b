//! InfoBatch (Qin et al., ICLR 2024): unbiased dynamic pruning.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::{PlanContext, Strategy};
use crate::error::{Result, SamplerError, require};
use crate::plan::{Planned, StepPlan};
use crate::seed::stream;

/// Parameters of [`InfoBatch`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InfoBatchConfig {
    /// Probability r that a low-loss sample is pruned, in [0, 1) (0.5).
    pub prune_ratio: f64,
    /// Fraction δ of the epochs during which pruning may happen, in [0, 1]
    /// (0.875): the last (1 − δ) of the epochs train on everything.
    pub delta: f64,
    /// Go on drawing after the schedule's last epoch (whole, unpruned
    /// epochs) until the optimiser-step budget is spent (true, the
    /// default), so that InfoBatch spends the same steps as every other
    /// method; false ends with the schedule's epochs, as InfoBatch itself
    /// does, leaving the steps its pruning saved unspent.
    pub fill_budget: bool,
}

impl Default for InfoBatchConfig {
    fn default() -> Self {
        Self {
            prune_ratio: 0.5,
            delta: 0.875,
            fill_budget: true,
        }
    }
}

impl InfoBatchConfig {
    /// Checks r and δ.
    pub fn validate(&self) -> Result<()> {
        require::<SamplerError>(
            (0.0..1.0).contains(&self.prune_ratio),
            "prune_ratio",
            self.prune_ratio,
            "a probability in [0, 1)",
        )?;
        require(
            (0.0..=1.0).contains(&self.delta),
            "delta",
            self.delta,
            "a fraction of the epochs in [0, 1]",
        )
    }

    /// Whether epoch `epoch` of `epochs` prunes: never the first, never the
    /// last (1 − δ) of the epochs (the annealing).
    pub fn prunes_in(&self, epoch: u32, epochs: u32) -> bool {
        epoch > 0 && f64::from(epoch) < self.delta * f64::from(epochs)
    }
}

/// InfoBatch (Qin et al., "InfoBatch: Lossless Training Speed Up by
/// Unbiased Dynamic Data Pruning", ICLR 2024).
///
/// At each epoch's start, every sample whose last loss is below the mean
/// last loss (over scored samples) is pruned with probability r; the kept
/// ones get loss weight 1/(1 − r), so that the expected gradient of the
/// low-loss group is unchanged; everything else keeps weight 1. Nothing is
/// pruned in the first epoch, nor in the last (1 − δ) of the epochs
/// (annealing). Unscored samples are never pruned. The remaining ids are
/// shuffled (seeded) and trained on in batches of `batch_size`; under a
/// budget below 1 each epoch takes `round(budget · kept)` of them (at budget
/// 1 this is InfoBatch itself). Epochs therefore have varying lengths, so
/// the schedule's epochs end before the optimiser-step budget is spent.
/// With [`InfoBatchConfig::fill_budget`] (the default) the strategy then
/// goes on with further epochs, unpruned like the annealing ones, until the
/// sampler's budget stops it: every method of a comparison spends the same
/// optimiser steps. Without it the strategy ends with the schedule's last
/// epoch and the saved steps stay unspent, which is InfoBatch's own point.
///
/// Pruning is a Bernoulli(r) draw per low-loss sample, as docs/methods.md states;
/// the reference code keeps exactly ⌊(1 − r)·L⌋ of the L low-loss samples,
/// which has the same expectation up to rounding.
#[derive(Clone, Debug)]
pub struct InfoBatch {
    config: InfoBatchConfig,
    epoch: Option<u32>,
    ids: Vec<u32>,
    weights: Vec<f32>,
    cursor: usize,
    pruned: usize,
}

impl InfoBatch {
    /// The strategy, after checking `config`.
    pub fn new(config: InfoBatchConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            epoch: None,
            ids: Vec::new(),
            weights: Vec::new(),
            cursor: 0,
            pruned: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &InfoBatchConfig {
        &self.config
    }

    /// The epoch being trained on, `None` before the first plan.
    pub fn epoch(&self) -> Option<u32> {
        self.epoch
    }

    /// How many samples the current epoch pruned.
    pub fn pruned(&self) -> usize {
        self.pruned
    }

    fn start_epoch(&mut self, ctx: &PlanContext<'_>, epoch: u32) {
        let mut rng = ctx.epoch_rng(stream::INFOBATCH, epoch.into());
        let prune = self.config.prunes_in(epoch, ctx.schedule.epochs());
        let threshold = mean_last_score(ctx);
        let rescaled = (1.0 / (1.0 - self.config.prune_ratio)) as f32;
        let mut kept: Vec<(u32, f32)> = Vec::with_capacity(ctx.table.len());
        for (id, record) in ctx.table.records().iter().enumerate() {
            let low = prune && record.is_seen() && f64::from(record.last()) < threshold;
            if !low {
                kept.push((id as u32, 1.0));
            } else if rng.random::<f64>() >= self.config.prune_ratio {
                kept.push((id as u32, rescaled));
            }
        }
        self.pruned = ctx.table.len() - kept.len();
        kept.shuffle(&mut rng);
        let budgeted = (ctx.schedule.budget() * kept.len() as f64).round() as usize;
        kept.truncate(budgeted.clamp(1, kept.len().max(1)));
        (self.ids, self.weights) = kept.into_iter().unzip();
        self.cursor = 0;
        self.epoch = Some(epoch);
    }
}

/// The mean last score over scored samples (∞ when none is scored, so that
/// nothing counts as low).
fn mean_last_score(ctx: &PlanContext<'_>) -> f64 {
    let (sum, count) = ctx
        .table
        .records()
        .iter()
        .filter(|r| r.is_seen())
        .fold((0.0, 0usize), |(s, c), r| (s + f64::from(r.last()), c + 1));
    if count == 0 {
        f64::INFINITY
    } else {
        sum / count as f64
    }
}

impl Strategy for InfoBatch {
    fn name(&self) -> &'static str {
        "infobatch"
    }

    fn plan(&mut self, ctx: &PlanContext<'_>) -> Result<Option<Planned>> {
        while self.epoch.is_none() || self.cursor >= self.ids.len() {
            let next = self.epoch.map_or(0, |e| e + 1);
            if next >= ctx.schedule.epochs() && !self.config.fill_budget {
                return Ok(None);
            }
            self.start_epoch(ctx, next);
        }
        let end = (self.cursor + ctx.schedule.batch_size()).min(self.ids.len());
        let ids = self.ids[self.cursor..end]
            .iter()
            .map(|&id| id as usize)
            .collect();
        let weights = self.weights[self.cursor..end].to_vec();
        self.cursor = end;
        StepPlan::new(ids, weights, Vec::new()).map(|plan| Some(Planned::Train(plan)))
    }
}
