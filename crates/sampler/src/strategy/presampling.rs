//! Presampling with the variance-reduction switch (Katharopoulos & Fleuret
//! 2018).

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{CandidateStream, PlanContext, Strategy};
use crate::diagnostics::{StrategyDiagnostics, variance_reduction};
use crate::error::{Result, SamplerError, require};
use crate::plan::{Planned, StepPlan};
use crate::seed::stream;
use crate::table::ScoreTable;

/// Parameters of [`Presampling`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresamplingConfig {
    /// Candidates per training sample, r = B / b (≥ 1; 3 by default).
    pub ratio: usize,
    /// Momentum of the EMA of the estimated variance reduction τ, in
    /// [0, 1) (0.9).
    pub tau_momentum: f64,
    /// The switch threshold τ_th (finite, ≥ 0); `None` takes
    /// (B + 3b) / (3b) = (r + 3) / 3.
    pub tau_threshold: Option<f64>,
}

impl Default for PresamplingConfig {
    fn default() -> Self {
        Self {
            ratio: 3,
            tau_momentum: 0.9,
            tau_threshold: None,
        }
    }
}

impl PresamplingConfig {
    /// Checks r, the momentum and the threshold.
    pub fn validate(&self) -> Result<()> {
        require::<SamplerError>(
            self.ratio >= 1,
            "ratio",
            self.ratio as f64,
            "at least 1 candidate per sample",
        )?;
        require::<SamplerError>(
            (0.0..1.0).contains(&self.tau_momentum),
            "tau_momentum",
            self.tau_momentum,
            "a momentum in [0, 1)",
        )?;
        let threshold = self.threshold();
        require(
            threshold.is_finite() && threshold >= 0.0,
            "tau_threshold",
            threshold,
            "a finite threshold >= 0",
        )
    }

    /// τ_th: the configured threshold, or (B + 3b) / (3b) with B = r·b.
    pub fn threshold(&self) -> f64 {
        self.tau_threshold
            .unwrap_or((self.ratio as f64 + 3.0) / 3.0)
    }
}

/// Presampling with a variance-reduction switch (Katharopoulos & Fleuret,
/// "Not All Samples Are Created Equal: Deep Learning with Importance
/// Sampling", ICML 2018, Algorithm 1).
///
/// While off, a step trains on b uniformly chosen ids with weight 1 and
/// their recorded scores update τ. Once an EMA (momentum 0.9, from 0) of τ
/// exceeds τ_th = (B + 3b)/(3b), a step is two calls: [`Strategy::plan`]
/// hands out B = r·b uniform candidates ([`Planned::ScoreFirst`]); after
/// their scores are recorded, [`Strategy::select`] draws b of them with
/// replacement with `g_i = s_i / Σ s` and weights `1 / (B · g_i)`, and the
/// candidates' scores update τ. The EMA is updated lazily, at the start of
/// the next plan, from the scores recorded for the previous step's ids (so
/// a loop may record them in any number of calls). Candidates come from
/// successive seeded shuffles of the dataset (the paper draws them
/// uniformly with replacement).
#[derive(Clone, Debug)]
pub struct Presampling {
    config: PresamplingConfig,
    stream: CandidateStream,
    tau: f64,
    scored: Option<(u64, Vec<usize>)>,
}

impl Presampling {
    /// The strategy, after checking `config`.
    pub fn new(config: PresamplingConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            stream: CandidateStream::default(),
            tau: 0.0,
            scored: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PresamplingConfig {
        &self.config
    }

    /// The EMA of the estimated variance reduction, as of the last plan.
    pub fn tau(&self) -> f64 {
        self.tau
    }

    /// Whether importance sampling is on (τ's EMA above τ_th).
    pub fn is_on(&self) -> bool {
        self.tau > self.config.threshold()
    }

    fn update_tau(&mut self, table: &ScoreTable) {
        let Some((step, ids)) = self.scored.take() else {
            return;
        };
        let scores: Vec<f64> = ids
            .iter()
            .filter_map(|&id| table.get(id))
            .filter(|r| r.last_step() == Some(step))
            .map(|r| f64::from(r.last()))
            .collect();
        if !scores.is_empty() {
            let m = self.config.tau_momentum;
            self.tau = m * self.tau + (1.0 - m) * variance_reduction(&scores);
        }
    }
}

impl Strategy for Presampling {
    fn name(&self) -> &'static str {
        "presampling"
    }

    fn diagnostics(&self) -> StrategyDiagnostics {
        StrategyDiagnostics {
            importance_on: Some(self.is_on()),
            tau_ema: Some(self.tau),
            tau_threshold: Some(self.config.threshold()),
        }
    }

    fn plan(&mut self, ctx: &PlanContext<'_>) -> Result<Option<Planned>> {
        self.update_tau(ctx.table);
        let Some(slot) = ctx.schedule.slot(ctx.optimiser_step) else {
            return Ok(None);
        };
        let batch = slot.range.len();
        let on = self.is_on();
        let count = if on { self.config.ratio * batch } else { batch };
        let ids = self.stream.next(ctx, stream::PRESAMPLE_CANDIDATES, count);
        self.scored = Some((ctx.step, ids.clone()));
        Ok(Some(if on {
            Planned::ScoreFirst(ids)
        } else {
            Planned::Train(StepPlan::unweighted(ids))
        }))
    }

    fn select(&mut self, ctx: &PlanContext<'_>, candidates: &[usize]) -> Result<StepPlan> {
        if candidates.is_empty() {
            return Ok(StepPlan::unweighted(Vec::new()));
        }
        let batch = ctx
            .schedule
            .slot(ctx.optimiser_step)
            .map_or(candidates.len() / self.config.ratio, |s| s.range.len());
        let scores: Vec<f64> = candidates
            .iter()
            .map(|&id| ctx.table.get(id).map_or(0.0, |r| f64::from(r.last())))
            .collect();
        let total: f64 = scores.iter().sum();
        let big_b = candidates.len() as f64;
        let g: Vec<f64> = match total > 0.0 {
            true => scores.iter().map(|s| s / total).collect(),
            false => vec![1.0 / big_b; candidates.len()],
        };
        let cumulative: Vec<f64> = g
            .iter()
            .scan(0.0, |acc, gi| {
                *acc += gi;
                Some(*acc)
            })
            .collect();
        let mut rng = ctx.rng(stream::PRESAMPLE_DRAW);
        let picks: Vec<usize> = (0..batch)
            .map(|_| pick(&cumulative, &g, rng.random::<f64>()))
            .collect();
        let train = picks.iter().map(|&k| candidates[k]).collect();
        let weights = picks
            .iter()
            .map(|&k| (1.0 / (big_b * g[k])) as f32)
            .collect();
        StepPlan::new(train, weights, candidates.to_vec())
    }
}

/// The index whose cumulative range holds `u · total`, never one of
/// probability 0.
fn pick(cumulative: &[f64], g: &[f64], u: f64) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    let target = u * total;
    let k = cumulative
        .partition_point(|&c| c <= target)
        .min(g.len() - 1);
    if g[k] > 0.0 {
        k
    } else {
        g.iter().rposition(|&x| x > 0.0).unwrap_or(k)
    }
}
