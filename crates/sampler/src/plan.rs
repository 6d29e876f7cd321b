//! Step plans: what a training step does, and what it costs.

use crate::budget::PassCost;
use crate::error::{Result, SamplerError};

/// What one training step does: the ids to train on with a weight each, the
/// ids that were (or are to be) forwarded only to be scored, and what the
/// step costs.
///
/// Training ids are forwarded with gradients and backpropagated; the loss of
/// id `train()[k]` is multiplied by `weights()[k]` before the batch mean
/// (1.0 when sampling is biased). A plan with no training ids takes no
/// optimiser step (selective backprop while its batch fills up).
#[derive(Clone, Debug, PartialEq)]
pub struct StepPlan {
    train: Vec<usize>,
    weights: Vec<f32>,
    score_only: Vec<usize>,
    cost: PassCost,
}

impl StepPlan {
    /// A plan training on `train` with `weights` (one each, finite and
    /// non-negative) after forwarding `score_only` without gradients.
    pub fn new(train: Vec<usize>, weights: Vec<f32>, score_only: Vec<usize>) -> Result<Self> {
        if weights.len() != train.len() {
            return Err(SamplerError::LengthMismatch {
                what: "weights for the training ids",
                expected: train.len(),
                found: weights.len(),
            });
        }
        if let Some((position, &weight)) = weights
            .iter()
            .enumerate()
            .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
        {
            return Err(SamplerError::InvalidWeight { position, weight });
        }
        let cost = cost_of(&train, &score_only);
        Ok(Self {
            train,
            weights,
            score_only,
            cost,
        })
    }

    /// A plan training on `train` with weight 1 each, nothing score-only.
    pub fn unweighted(train: Vec<usize>) -> Self {
        let weights = vec![1.0; train.len()];
        let cost = cost_of(&train, &[]);
        Self {
            train,
            weights,
            score_only: Vec::new(),
            cost,
        }
    }

    /// The ids to train on (forward with gradients, then backward).
    pub fn train(&self) -> &[usize] {
        &self.train
    }

    /// One loss weight per training id.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// The ids forwarded without gradients, to be scored only.
    pub fn score_only(&self) -> &[usize] {
        &self.score_only
    }

    /// What the whole step costs.
    pub fn cost(&self) -> PassCost {
        self.cost
    }

    /// Whether the step backpropagates and steps the optimiser.
    pub fn is_optimiser_step(&self) -> bool {
        !self.train.is_empty()
    }
}

fn cost_of(train: &[usize], score_only: &[usize]) -> PassCost {
    let mut loaded: Vec<usize> = train.iter().chain(score_only).copied().collect();
    loaded.sort_unstable();
    loaded.dedup();
    PassCost {
        forward: (train.len() + score_only.len()) as u64,
        backward: train.len() as u64,
        images: loaded.len() as u64,
        optimiser_steps: u64::from(!train.is_empty()),
    }
}

/// What a strategy hands out for one step.
#[derive(Clone, Debug, PartialEq)]
pub enum Planned {
    /// Train now: forward the plan's ids with gradients, record their scores
    /// (`Sampler::record`), backpropagate the weighted losses, step the
    /// optimiser.
    Train(StepPlan),
    /// Score these candidate ids first: forward them without gradients,
    /// record their scores (`Sampler::record`), then call `Sampler::select`
    /// for the plan to train on. The training forward of the selected ids
    /// is not recorded again: their scores of this step are already in.
    ScoreFirst(Vec<usize>),
}

/// Scales `weights` so that their mean is 1 (left unchanged when they sum
/// to 0).
pub(crate) fn normalise_mean_one(weights: &mut [f32]) {
    let sum: f64 = weights.iter().map(|&w| f64::from(w)).sum();
    if sum > 0.0 && sum.is_finite() {
        let scale = weights.len() as f64 / sum;
        for w in weights.iter_mut() {
            *w = (f64::from(*w) * scale) as f32;
        }
    }
}
