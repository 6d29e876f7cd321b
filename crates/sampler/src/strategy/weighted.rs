//! Weighted sampling: with replacement (sum tree, per step) and without
//! replacement (Efraimidis–Spirakis keys, per epoch), with smoothing, power,
//! warm-up, exploration of unseen samples and optional unbiased weights.

use std::cmp::Ordering;

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::unseen::UnseenSet;
use super::{PlanContext, Strategy, Uniform};
use crate::error::{Result, SamplerError, require};
use crate::plan::{Planned, StepPlan, normalise_mean_one};
use crate::schedule::Slot;
use crate::seed::stream;
use crate::sum_tree::{MaxTree, SumTree};
use crate::table::{ScoreField, ScoreRecord, ScoreTable};

/// Priorities saturate here, so that sums over 2³² samples stay finite
/// whatever the scores and the power α.
const PRIORITY_CAP: f64 = 1e290;

/// What happens to samples that have never been scored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnseenPolicy {
    /// Unseen samples are trained on before any weighted draw: each batch
    /// (with replacement) or each epoch (without) takes unseen ids first,
    /// uniformly at random, until none is left.
    #[default]
    ExploreFirst,
    /// Unseen samples weigh as much as the current highest priority, so
    /// that they are explored (the p-SGD rule of Arazo et al.'s code).
    MaxScore,
}

/// How training losses are weighted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weighting {
    /// Weight 1: sampling is biased and the objective is left unchanged (the
    /// detection study's choice).
    #[default]
    Biased,
    /// `w_i = 1 / (N · p_i)`, normalised to mean 1 over the batch: the
    /// importance-sampling correction that keeps the gradient unbiased up
    /// to the normalisation.
    Unbiased,
}

/// The sampling distribution of the weighted strategies, after METHODS
/// ("Turning scores into a sampling plan") and Arazo et al. (BMVC 2021).
///
/// From each sample's score `s_i` (the [`ScoreField`] chosen):
/// 1. the priority is `a_i = s_i^α` (α ≥ 0: α = 1 samples ∝ score, α = 0 is
///    uniform, values between temper the bias); unseen samples get 0, or
///    the highest priority under [`UnseenPolicy::MaxScore`];
/// 2. `add_mean` adds the mean priority to every priority before
///    normalising (the smoothing of Arazo et al.'s code);
/// 3. the result is mixed with uniform: `p_i = (1 − ε) · p̃_i + ε / N`, so
///    that every sample keeps probability at least `ε / N`.
///
/// Adding the mean priority `ā` gives `(a_i + ā) / (2 · N · ā) = ½ a_i/Σa +
/// ½ / N`, a mixture with uniform itself, so both smoothings combine into
/// one uniform share `η = 1 − (1 − ε)(1 − ½·add_mean)` and
/// `p_i = (1 − η) · a_i / Σa + η / N` (uniform when Σa = 0). That is what
/// lets a draw cost O(log N): with probability η draw uniformly, otherwise
/// from the sum tree of priorities.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeightedConfig {
    /// Which statistic of the score table is the score.
    pub score: ScoreField,
    /// The power α applied to scores (finite, ≥ 0).
    pub alpha: f64,
    /// Add the mean priority to every priority (Arazo et al.'s smoothing).
    pub add_mean: bool,
    /// The uniform share ε of the mixture, in [0, 1].
    pub epsilon: f64,
    /// Epochs of uniform sampling before the weighted draws start (the
    /// plans of [`Uniform`] with the same seed).
    pub warmup_epochs: u32,
    /// What happens to samples never scored.
    pub unseen: UnseenPolicy,
    /// Biased (weight 1) or unbiased (1 / (N·p), normalised) losses.
    pub weighting: Weighting,
}

impl Default for WeightedConfig {
    fn default() -> Self {
        Self {
            score: ScoreField::Last,
            alpha: 1.0,
            add_mean: false,
            epsilon: 0.0,
            warmup_epochs: 0,
            unseen: UnseenPolicy::ExploreFirst,
            weighting: Weighting::Biased,
        }
    }
}

impl WeightedConfig {
    /// Checks α (finite, ≥ 0) and ε (in [0, 1]).
    pub fn validate(&self) -> Result<()> {
        require::<SamplerError>(
            self.alpha.is_finite() && self.alpha >= 0.0,
            "alpha",
            self.alpha,
            "a finite power >= 0",
        )?;
        require(
            (0.0..=1.0).contains(&self.epsilon),
            "epsilon",
            self.epsilon,
            "a uniform share in [0, 1]",
        )
    }

    /// The combined uniform share η of smoothing and mixture.
    pub fn uniform_share(&self) -> f64 {
        let kept_by_mean = if self.add_mean { 0.5 } else { 1.0 };
        1.0 - (1.0 - self.epsilon) * kept_by_mean
    }

    /// The priority `s^α` of a scored sample (0 when never scored).
    pub fn priority(&self, record: &ScoreRecord) -> f64 {
        if !record.is_seen() {
            return 0.0;
        }
        let score = f64::from(record.get(self.score));
        let priority = if self.alpha == 1.0 {
            score
        } else {
            score.powf(self.alpha)
        };
        priority.min(PRIORITY_CAP)
    }

    /// Every sample's draw probability, computed in O(N) from the table:
    /// the reference the O(log N) draws are tested against. Under
    /// [`UnseenPolicy::ExploreFirst`] it is the distribution of the draws
    /// that follow the exploration of unseen samples.
    pub fn probabilities(&self, table: &ScoreTable) -> Result<Vec<f64>> {
        self.validate()?;
        let mut mass: Vec<f64> = table.records().iter().map(|r| self.priority(r)).collect();
        if self.unseen == UnseenPolicy::MaxScore {
            let highest = mass.iter().copied().fold(0.0, f64::max);
            for (m, record) in mass.iter_mut().zip(table.records()) {
                if !record.is_seen() {
                    *m = highest;
                }
            }
        }
        let total: f64 = mass.iter().sum();
        let (eta, n) = (self.uniform_share(), table.len() as f64);
        Ok(mass
            .into_iter()
            .map(|m| {
                let weighted = if total > 0.0 { m / total } else { 1.0 / n };
                (1.0 - eta) * weighted + eta / n
            })
            .collect())
    }
}

/// Loss weights for drawn ids: all 1 when biased; when unbiased
/// `1 / (N · p_i)` (1 for ids with no probability of their own: explored or
/// zero-probability picks), normalised to mean 1.
fn loss_weights(weighting: Weighting, raw: impl Iterator<Item = f64>) -> Vec<f32> {
    let mut weights: Vec<f32> = raw.map(|w| w as f32).collect();
    match weighting {
        Weighting::Biased => weights.fill(1.0),
        Weighting::Unbiased => normalise_mean_one(&mut weights),
    }
    weights
}

/// `1 / (N · p)`, or 1 when `p` is 0 (an id with no probability of its own).
fn inverse_share(p: f64, n: usize) -> f64 {
    if p > 0.0 { 1.0 / (n as f64 * p) } else { 1.0 }
}

/// Weighted sampling with replacement, `p_i ∝ s_i` after smoothing, power
/// and mixture ([`WeightedConfig`]; METHODS "weighted, with replacement",
/// Arazo et al. BMVC 2021, Katharopoulos & Fleuret ICML 2018).
///
/// Priorities live in a [`SumTree`] kept in sync by
/// [`Strategy::observe`]: drawing a batch of b costs O(b log N) and
/// recording b scores O(b log N), never O(N). Each step draws its slot of
/// the [`Schedule`](crate::Schedule) (`batch_size` ids, fewer at the end of
/// an epoch); ids may repeat within a batch.
#[derive(Clone, Debug)]
pub struct WeightedWithReplacement {
    config: WeightedConfig,
    warmup: Uniform,
    state: Option<DrawState>,
}

/// The O(log N) structures: priorities of scored samples, their maximum
/// (for [`UnseenPolicy::MaxScore`]) and the unseen samples.
#[derive(Clone, Debug)]
struct DrawState {
    tree: SumTree,
    highest: Option<MaxTree>,
    unseen: UnseenSet,
}

impl WeightedWithReplacement {
    /// The strategy, after checking `config`.
    pub fn new(config: WeightedConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            warmup: Uniform::new(),
            state: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &WeightedConfig {
        &self.config
    }

    /// The probability that one weighted draw picks `id`, from the scores
    /// observed so far; `None` before the strategy has seen its table (the
    /// first plan or record) or for an id out of range. Under
    /// [`UnseenPolicy::ExploreFirst`] it is the distribution of the draws
    /// that follow the exploration of unseen samples.
    pub fn probability(&self, id: usize) -> Option<f64> {
        let state = self.state.as_ref()?;
        let n = state.tree.len();
        (id < n).then(|| self.probability_in(state, id))
    }

    fn probability_in(&self, state: &DrawState, id: usize) -> f64 {
        let (eta, n) = (self.config.uniform_share(), state.tree.len() as f64);
        let total = self.total_mass(state);
        let weighted = if total > 0.0 {
            self.mass(state, id) / total
        } else {
            1.0 / n
        };
        (1.0 - eta) * weighted + eta / n
    }

    fn unseen_mass_each(&self, state: &DrawState) -> f64 {
        state.highest.as_ref().map_or(0.0, MaxTree::max)
    }

    fn total_mass(&self, state: &DrawState) -> f64 {
        state.tree.total() + state.unseen.len() as f64 * self.unseen_mass_each(state)
    }

    fn mass(&self, state: &DrawState, id: usize) -> f64 {
        if state.unseen.contains(id) {
            self.unseen_mass_each(state)
        } else {
            state.tree.weight(id).unwrap_or(0.0)
        }
    }

    fn sync(&mut self, table: &ScoreTable) {
        if self
            .state
            .as_ref()
            .is_none_or(|s| s.tree.len() != table.len())
        {
            self.state = Some(self.build(table));
        }
    }

    fn build(&self, table: &ScoreTable) -> DrawState {
        let priorities: Vec<f64> = table
            .records()
            .iter()
            .map(|r| self.config.priority(r))
            .collect();
        let highest = (self.config.unseen == UnseenPolicy::MaxScore)
            .then(|| MaxTree::from_values(priorities.iter().copied()));
        let tree = SumTree::from_weights(&priorities).unwrap_or_else(|_| SumTree::new(table.len()));
        DrawState {
            tree,
            highest,
            unseen: UnseenSet::from_table(table),
        }
    }

    fn plan_slot(&self, ctx: &PlanContext<'_>, slot: &Slot) -> Result<StepPlan> {
        let Some(state) = self.state.as_ref() else {
            return Ok(StepPlan::unweighted(Vec::new()));
        };
        let mut rng = ctx.rng(stream::WEIGHTED_DRAW);
        let count = slot.range.len();
        let explored = match self.config.unseen {
            UnseenPolicy::ExploreFirst => state.unseen.sample_distinct(&mut rng, count),
            UnseenPolicy::MaxScore => Vec::new(),
        };
        let drawn = self.draw(state, &mut rng, count - explored.len());
        let raw = explored.iter().map(|_| 1.0).chain(
            drawn
                .iter()
                .map(|&id| inverse_share(self.probability_in(state, id), state.tree.len())),
        );
        let weights = loss_weights(self.config.weighting, raw);
        let mut ids = explored;
        ids.extend(drawn);
        StepPlan::new(ids, weights, Vec::new())
    }

    /// `count` weighted draws: uniform with probability η, otherwise ∝ mass
    /// (sum-tree descents batched together, unseen ids by index).
    fn draw<R: Rng>(&self, state: &DrawState, rng: &mut R, count: usize) -> Vec<usize> {
        let eta = self.config.uniform_share();
        let n = state.tree.len();
        let (tree_total, each) = (state.tree.total(), self.unseen_mass_each(state));
        let total = self.total_mass(state);
        let mut ids = vec![0; count];
        let (mut targets, mut slots) = (Vec::with_capacity(count), Vec::with_capacity(count));
        for (slot, id) in ids.iter_mut().enumerate() {
            let (u, v): (f64, f64) = (rng.random(), rng.random());
            if u < eta || total <= 0.0 {
                *id = ((v * n as f64) as usize).min(n - 1);
                continue;
            }
            let target = v * total;
            if target < tree_total || each <= 0.0 || state.unseen.len() == 0 {
                targets.push(target);
                slots.push(slot);
            } else {
                let index = ((target - tree_total) / each) as usize;
                *id = state.unseen.get(index.min(state.unseen.len() - 1));
            }
        }
        let mut found = Vec::with_capacity(targets.len());
        state.tree.find_many(&targets, &mut found);
        for (slot, id) in slots.into_iter().zip(found) {
            ids[slot] = id;
        }
        ids
    }
}

impl Strategy for WeightedWithReplacement {
    fn name(&self) -> &'static str {
        "weighted_with_replacement"
    }

    fn plan(&mut self, ctx: &PlanContext<'_>) -> Result<Option<Planned>> {
        let Some(slot) = ctx.schedule.slot(ctx.optimiser_step) else {
            return Ok(None);
        };
        if slot.epoch < self.config.warmup_epochs {
            return self.warmup.plan(ctx);
        }
        self.sync(ctx.table);
        self.plan_slot(ctx, &slot)
            .map(|plan| Some(Planned::Train(plan)))
    }

    fn observe(&mut self, table: &ScoreTable, ids: &[usize]) {
        let config = self.config;
        let Some(state) = self.state.as_mut().filter(|s| s.tree.len() == table.len()) else {
            return;
        };
        let ids: Vec<usize> = ids.iter().copied().filter(|&id| id < table.len()).collect();
        let priorities: Vec<f64> = ids
            .iter()
            .map(|&id| config.priority(&table.records()[id]))
            .collect();
        for (&id, &priority) in ids.iter().zip(&priorities) {
            state.unseen.remove(id);
            if let Some(highest) = state.highest.as_mut() {
                highest.set(id, priority);
            }
        }
        state.tree.write_many(&ids, &priorities);
    }
}

/// Weighted sampling without replacement per epoch (METHODS "weighted,
/// without replacement per epoch"; the p-SGD sampler of Arazo et al., BMVC
/// 2021): at each epoch's first step, exactly `budget · N` distinct ids are
/// drawn with probabilities `p_i` ([`WeightedConfig`]) by Efraimidis &
/// Spirakis's keys (Information Processing Letters, 2006: key
/// `u_i^(1/p_i)`, keep the largest), then shuffled and trained on in
/// batches over the epoch.
///
/// The probabilities are those of the table at the epoch's start, so the
/// epoch's ids are a pure function of (seed, epoch, table state): the same
/// seed gives the same ids on every run. One epoch costs O(N) plus a
/// selection, never a draw per id over the full distribution.
#[derive(Clone, Debug)]
pub struct WeightedWithoutReplacement {
    config: WeightedConfig,
    warmup: Uniform,
    epoch: Option<u32>,
    ids: Vec<u32>,
    raw_weights: Vec<f64>,
}

/// An Efraimidis–Spirakis key: class 2 (unseen, explored first) above
/// class 1 (positive probability, value ln(u)/p) above class 0 (zero
/// probability, picked only to fill the epoch); ties by id.
#[derive(Clone, Copy, Debug)]
struct EsKey {
    class: u8,
    value: f64,
    id: u32,
}

fn best_first(a: &EsKey, b: &EsKey) -> Ordering {
    b.class
        .cmp(&a.class)
        .then(b.value.total_cmp(&a.value))
        .then(a.id.cmp(&b.id))
}

impl WeightedWithoutReplacement {
    /// The strategy, after checking `config`.
    pub fn new(config: WeightedConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            warmup: Uniform::new(),
            epoch: None,
            ids: Vec::new(),
            raw_weights: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &WeightedConfig {
        &self.config
    }

    fn draw_epoch(&mut self, ctx: &PlanContext<'_>, epoch: u32) -> Result<()> {
        let p = self.config.probabilities(ctx.table)?;
        let mut rng = ctx.epoch_rng(stream::WEIGHTED_EPOCH, epoch.into());
        let explore = self.config.unseen == UnseenPolicy::ExploreFirst;
        let mut keys: Vec<EsKey> = ctx
            .table
            .records()
            .iter()
            .zip(&p)
            .enumerate()
            .map(|(id, (record, &p))| {
                let u = 1.0 - rng.random::<f64>();
                let (class, value) = match () {
                    _ if explore && !record.is_seen() => (2, u),
                    _ if p > 0.0 => (1, u.ln() / p),
                    _ => (0, u),
                };
                EsKey {
                    class,
                    value,
                    id: id as u32,
                }
            })
            .collect();
        let k = ctx.schedule.samples_per_epoch();
        if k < keys.len() {
            keys.select_nth_unstable_by(k - 1, best_first);
            keys.truncate(k);
        }
        keys.sort_unstable_by_key(|key| key.id);
        keys.shuffle(&mut rng);
        let n = p.len();
        self.ids = keys.iter().map(|key| key.id).collect();
        self.raw_weights = keys
            .iter()
            .map(|key| match key.class {
                1 => inverse_share(p[key.id as usize], n),
                _ => 1.0,
            })
            .collect();
        self.epoch = Some(epoch);
        Ok(())
    }
}

impl Strategy for WeightedWithoutReplacement {
    fn name(&self) -> &'static str {
        "weighted_without_replacement"
    }

    fn plan(&mut self, ctx: &PlanContext<'_>) -> Result<Option<Planned>> {
        let Some(slot) = ctx.schedule.slot(ctx.optimiser_step) else {
            return Ok(None);
        };
        if slot.epoch < self.config.warmup_epochs {
            return self.warmup.plan(ctx);
        }
        if self.epoch != Some(slot.epoch) {
            self.draw_epoch(ctx, slot.epoch)?;
        }
        let range = slot.range.start.min(self.ids.len())..slot.range.end.min(self.ids.len());
        let ids = self.ids[range.clone()]
            .iter()
            .map(|&id| id as usize)
            .collect();
        let weights = loss_weights(
            self.config.weighting,
            self.raw_weights[range].iter().copied(),
        );
        StepPlan::new(ids, weights, Vec::new()).map(|plan| Some(Planned::Train(plan)))
    }
}
