//! Online batch selection by rank (Loshchilov & Hutter 2016).

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{PlanContext, Strategy, Uniform};
use crate::error::{Result, require};
use crate::plan::{Planned, StepPlan};
use crate::seed::stream;

/// Parameters of [`OnlineBatchSelection`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnlineBatchConfig {
    /// The selection pressure s_e: how much likelier the highest-loss
    /// sample is than the lowest (finite, ≥ 1; 100 by default; 1 is
    /// uniform).
    pub selection_pressure: f64,
    /// Epochs of uniform sampling first (the plans of [`Uniform`]).
    pub warmup_epochs: u32,
}

impl Default for OnlineBatchConfig {
    fn default() -> Self {
        Self {
            selection_pressure: 100.0,
            warmup_epochs: 0,
        }
    }
}

impl OnlineBatchConfig {
    /// Checks s_e.
    pub fn validate(&self) -> Result<()> {
        require(
            self.selection_pressure.is_finite() && self.selection_pressure >= 1.0,
            "selection_pressure",
            self.selection_pressure,
            "a finite ratio >= 1",
        )
    }
}

/// Online batch selection (Loshchilov & Hutter, "Online Batch Selection for
/// Faster Training of Neural Networks", ICLR workshop 2016).
///
/// Samples are ranked by last loss, highest first (rank 0; unscored samples
/// rank above all scored ones, in seeded random order, as are ties), and a
/// sample of rank k is drawn with probability ∝ exp(−ln(s_e) · k / N), so
/// the highest-loss sample is s_e^((N−1)/N) ≈ s_e times likelier than the
/// lowest (the rule of the reference implementation in Katharopoulos &
/// Fleuret's code). The ranking is recomputed at each epoch's first step
/// (the paper re-sorts periodically). Each draw inverts the truncated
/// geometric distribution of ranks in O(1); draws are with replacement and
/// weights are 1.
#[derive(Clone, Debug)]
pub struct OnlineBatchSelection {
    config: OnlineBatchConfig,
    warmup: Uniform,
    epoch: Option<u32>,
    ranked: Vec<u32>,
}

impl OnlineBatchSelection {
    /// The strategy, after checking `config`.
    pub fn new(config: OnlineBatchConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            warmup: Uniform::new(),
            epoch: None,
            ranked: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OnlineBatchConfig {
        &self.config
    }

    fn rank(&mut self, ctx: &PlanContext<'_>, epoch: u32) {
        let mut rng = ctx.epoch_rng(stream::RANK_EPOCH, epoch.into());
        let mut keys: Vec<(f32, u64, u32)> = ctx
            .table
            .records()
            .iter()
            .enumerate()
            .map(|(id, r)| {
                let loss = if r.is_seen() { r.last() } else { f32::INFINITY };
                (loss, rng.random::<u64>(), id as u32)
            })
            .collect();
        keys.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        self.ranked = keys.into_iter().map(|(_, _, id)| id).collect();
        self.epoch = Some(epoch);
    }

    /// The rank drawn by `u` in [0, 1): `⌊−ln(1 − u·c) / λ⌋` with
    /// λ = ln(s_e)/N and c = 1 − e^(−λN), the inverse of the truncated
    /// geometric distribution of ranks.
    fn rank_for(&self, u: f64, n: usize) -> usize {
        let lambda = self.config.selection_pressure.ln() / n as f64;
        if lambda <= 0.0 {
            return ((u * n as f64) as usize).min(n - 1);
        }
        let c = -(-lambda * n as f64).exp_m1();
        let k = -(-u * c).ln_1p() / lambda;
        (k.max(0.0) as usize).min(n - 1)
    }
}

impl Strategy for OnlineBatchSelection {
    fn name(&self) -> &'static str {
        "online_batch_selection"
    }

    fn plan(&mut self, ctx: &PlanContext<'_>) -> Result<Option<Planned>> {
        let Some(slot) = ctx.schedule.slot(ctx.optimiser_step) else {
            return Ok(None);
        };
        if slot.epoch < self.config.warmup_epochs {
            return self.warmup.plan(ctx);
        }
        if self.epoch != Some(slot.epoch) || self.ranked.len() != ctx.table.len() {
            self.rank(ctx, slot.epoch);
        }
        let mut rng = ctx.rng(stream::RANK_DRAW);
        let n = self.ranked.len();
        let ids = slot
            .range
            .map(|_| self.ranked[self.rank_for(rng.random::<f64>(), n)] as usize)
            .collect();
        Ok(Some(Planned::Train(StepPlan::unweighted(ids))))
    }
}
