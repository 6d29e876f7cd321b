//! One serialisable configuration for every built-in strategy.

use serde::{Deserialize, Serialize};

use super::{
    InfoBatch, InfoBatchConfig, OnlineBatchConfig, OnlineBatchSelection, Presampling,
    PresamplingConfig, SelectiveBackprop, SelectiveBackpropConfig, Strategy, Uniform,
    WeightedConfig, WeightedWithReplacement, WeightedWithoutReplacement,
};
use crate::error::Result;

/// Which built-in strategy to run, with its parameters: what a run's
/// configuration file names (`kind = "selective_backprop"`, `beta = 3.0`).
///
/// ```
/// use isdet_sampler::{Strategy, StrategyConfig, WeightedConfig};
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
/// # Ok::<(), isdet_sampler::SamplerError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StrategyConfig {
    /// [`Uniform`]: the baseline.
    Uniform,
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
}

impl StrategyConfig {
    /// The strategy, after checking its parameters.
    pub fn build(&self) -> Result<Box<dyn Strategy>> {
        Ok(match *self {
            Self::Uniform => Box::new(Uniform::new()),
            Self::WeightedWithReplacement(c) => Box::new(WeightedWithReplacement::new(c)?),
            Self::WeightedWithoutReplacement(c) => Box::new(WeightedWithoutReplacement::new(c)?),
            Self::SelectiveBackprop(c) => Box::new(SelectiveBackprop::new(c)?),
            Self::Presampling(c) => Box::new(Presampling::new(c)?),
            Self::InfoBatch(c) => Box::new(InfoBatch::new(c)?),
            Self::OnlineBatchSelection(c) => Box::new(OnlineBatchSelection::new(c)?),
        })
    }
}
