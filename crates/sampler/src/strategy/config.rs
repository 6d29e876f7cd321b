//! One serialisable configuration for every built-in strategy.

use serde::{Deserialize, Serialize};

use super::inputs::{check_irreducible, check_irreducible_len};
use super::{
    Afss, AfssConfig, InfoBatch, InfoBatchConfig, OnlineBatchConfig, OnlineBatchSelection,
    Presampling, PresamplingConfig, RhoLoss, RhoLossConfig, SelectiveBackprop,
    SelectiveBackpropConfig, Strategy, StrategyInputs, Uniform, UniformWithReplacement,
    WeightedConfig, WeightedWithReplacement, WeightedWithoutReplacement,
};
use crate::error::{Result, SamplerError};

/// Which built-in strategy to run, with its parameters: what a run's
/// configuration file names (`kind = "selective_backprop"`, `beta = 3.0`).
///
/// ```
/// use isdet_sampler::{Strategy, StrategyConfig, StrategyInputs, WeightedConfig};
///
/// let config = StrategyConfig::WeightedWithoutReplacement(WeightedConfig {
///     epsilon: 0.1,
///     ..WeightedConfig::default()
/// });
/// assert_eq!(config.build()?.name(), "weighted_without_replacement");
/// let bad = StrategyConfig::WeightedWithReplacement(WeightedConfig {
///     alpha: -1.0,
///     ..WeightedConfig::default()
/// });
/// assert!(bad.build().is_err());
/// // RHO-LOSS needs the irreducible losses, which no configuration holds.
/// let rho: StrategyConfig = serde_json::from_str(r#"{"kind": "rho_loss", "ratio": 10}"#).unwrap();
/// assert!(rho.validate().is_ok() && rho.build().is_err());
/// let inputs = StrategyInputs::with_irreducible_losses(vec![0.5; 100]);
/// assert_eq!(rho.build_with(&inputs)?.name(), "rho_loss");
/// # Ok::<(), isdet_sampler::SamplerError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StrategyConfig {
    /// [`Uniform`]: the baseline.
    Uniform,
    /// [`UniformWithReplacement`]: the control for draws with replacement.
    UniformWithReplacement,
    /// [`WeightedWithReplacement`].
    WeightedWithReplacement(WeightedConfig),
    /// [`WeightedWithoutReplacement`].
    WeightedWithoutReplacement(WeightedConfig),
    /// [`SelectiveBackprop`].
    SelectiveBackprop(SelectiveBackpropConfig),
    /// [`Presampling`].
    Presampling(PresamplingConfig),
    /// [`InfoBatch`].
    InfoBatch(InfoBatchConfig),
    /// [`OnlineBatchSelection`].
    OnlineBatchSelection(OnlineBatchConfig),
    /// [`RhoLoss`]: needs [`StrategyInputs::irreducible_losses`].
    RhoLoss(RhoLossConfig),
    /// [`Afss`]: reads the learning sufficiency (heuristic `sufficiency`).
    Afss(AfssConfig),
}

impl StrategyConfig {
    /// The strategy, after checking its parameters; for strategies that
    /// need [`StrategyInputs`] (RHO-LOSS) an error saying what is missing.
    pub fn build(&self) -> Result<Box<dyn Strategy>> {
        self.build_with(&StrategyInputs::default())
    }

    /// The strategy, after checking its parameters and the inputs it needs
    /// (inputs it does not need are ignored).
    pub fn build_with(&self, inputs: &StrategyInputs) -> Result<Box<dyn Strategy>> {
        Ok(match *self {
            Self::Uniform => Box::new(Uniform::new()),
            Self::UniformWithReplacement => Box::new(UniformWithReplacement::new()),
            Self::WeightedWithReplacement(c) => Box::new(WeightedWithReplacement::new(c)?),
            Self::WeightedWithoutReplacement(c) => Box::new(WeightedWithoutReplacement::new(c)?),
            Self::SelectiveBackprop(c) => Box::new(SelectiveBackprop::new(c)?),
            Self::Presampling(c) => Box::new(Presampling::new(c)?),
            Self::InfoBatch(c) => Box::new(InfoBatch::new(c)?),
            Self::OnlineBatchSelection(c) => Box::new(OnlineBatchSelection::new(c)?),
            Self::RhoLoss(c) => Box::new(RhoLoss::new(c, irreducible(inputs)?.to_vec())?),
            Self::Afss(c) => Box::new(Afss::new(c)?),
        })
    }

    /// Checks the parameters only, without the inputs a strategy needs (what
    /// a configuration file can be checked for before any model exists).
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Uniform | Self::UniformWithReplacement => Ok(()),
            Self::WeightedWithReplacement(c) | Self::WeightedWithoutReplacement(c) => c.validate(),
            Self::SelectiveBackprop(c) => c.validate(),
            Self::Presampling(c) => c.validate(),
            Self::InfoBatch(c) => c.validate(),
            Self::OnlineBatchSelection(c) => c.validate(),
            Self::RhoLoss(c) => c.validate(),
            Self::Afss(c) => c.validate(),
        }
    }

    /// Whether the strategy needs the irreducible losses (RHO-LOSS).
    pub fn needs_irreducible_losses(&self) -> bool {
        matches!(self, Self::RhoLoss(_))
    }

    /// Checks that the inputs fit a dataset of `samples` training samples
    /// (one finite, non-negative irreducible loss each, where the strategy
    /// needs them).
    pub fn check_inputs(&self, inputs: &StrategyInputs, samples: usize) -> Result<()> {
        if self.needs_irreducible_losses() {
            let losses = irreducible(inputs)?;
            check_irreducible_len(losses, samples)?;
            check_irreducible(losses)?;
        }
        Ok(())
    }
}

/// The irreducible losses, or the error saying RHO-LOSS needs them.
fn irreducible(inputs: &StrategyInputs) -> Result<&[f32]> {
    inputs
        .irreducible_losses
        .as_deref()
        .ok_or(SamplerError::MissingInput {
            strategy: "rho_loss",
            input: "the irreducible loss of every training sample (from the irreducible-loss model)",
        })
}
