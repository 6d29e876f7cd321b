//! What some strategies need besides their configuration: vectors with one
//! value per training sample, computed by the training loop.

use crate::error::{Result, SamplerError};

/// Inputs a strategy may need that a configuration file cannot hold.
///
/// Only RHO-LOSS needs one today: the irreducible losses, which come from a
/// model the trainer trains on a holdout set. Strategies that need nothing
/// ignore these inputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StrategyInputs {
    /// The irreducible loss of every training sample, indexed by id (one
    /// finite, non-negative value each): RHO-LOSS's IL(x, y).
    pub irreducible_losses: Option<Vec<f32>>,
}

impl StrategyInputs {
    /// Inputs holding the irreducible losses.
    pub fn with_irreducible_losses(losses: Vec<f32>) -> Self {
        Self {
            irreducible_losses: Some(losses),
        }
    }
}

/// Checks that `losses` are finite and non-negative, naming the first
/// sample that is not.
pub(crate) fn check_irreducible(losses: &[f32]) -> Result<()> {
    match losses.iter().position(|&l| !(l.is_finite() && l >= 0.0)) {
        Some(id) => Err(SamplerError::InvalidInput {
            what: "the irreducible loss",
            id,
            value: losses[id],
        }),
        None => Ok(()),
    }
}

/// Checks that there is one irreducible loss per training sample.
pub(crate) fn check_irreducible_len(losses: &[f32], samples: usize) -> Result<()> {
    if losses.len() == samples {
        Ok(())
    } else {
        Err(SamplerError::LengthMismatch {
            what: "irreducible losses for the training samples",
            expected: samples,
            found: losses.len(),
        })
    }
}
