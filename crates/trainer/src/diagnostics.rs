//! What importance sampling could do in this run, whatever its strategy:
//! each training image's last loss and last gradient-norm bound, kept
//! beside the sampler's own table, and how unevenly the training draws have
//! spread. At every evaluation they become a [`Diagnostics`] record:
//! τ of each table (presampling's formula, over every image scored so far)
//! and the Gini of the draws.
//!
//! The two tables are scored from the same forward passes as the run's
//! heuristic (no extra pass) and change nothing the run trains on; they
//! are saved with each checkpoint so that a resumed run logs what an
//! uninterrupted one would.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use isdet_detector::checkpoint::{load_tensors, save_tensors};
use isdet_heuristics::{Heuristic, LossPart, Scorer, ScoringConfig};
use isdet_sampler::{StrategyDiagnostics, gini, variance_reduction};

use crate::error::{Result, TrainerError};
use crate::records::Diagnostics;
use crate::task::TaskRunner;

/// The per-image tables behind [`Diagnostics`].
pub(crate) struct DiagnosticTables {
    /// Scores the total loss of each image (stateless).
    loss_scorer: Scorer,
    /// Scores the gradient-norm bound of each image (stateless).
    grad_scorer: Scorer,
    /// Each image's last loss; NaN until it is scored.
    loss: Vec<f32>,
    /// Each image's last gradient-norm bound; NaN until it is scored.
    grad_norm: Vec<f32>,
    /// Training draws per image (a repeated id in one batch counts twice).
    draws: Vec<u32>,
}

impl DiagnosticTables {
    /// Empty tables over `n` training images; the scorers aggregate
    /// per-location values as the run's heuristic does.
    pub(crate) fn new(n: usize, scoring: &ScoringConfig) -> Result<Self> {
        let with = |heuristic| {
            Scorer::new(
                ScoringConfig {
                    heuristic,
                    aggregation: scoring.aggregation,
                },
                n,
            )
        };
        Ok(Self {
            loss_scorer: with(Heuristic::Loss {
                part: LossPart::Total,
            })?,
            grad_scorer: with(Heuristic::GRAD_NORM_BOUND)?,
            loss: vec![f32::NAN; n],
            grad_norm: vec![f32::NAN; n],
            draws: vec![0; n],
        })
    }

    /// Scores the task's last forward pass into both tables.
    pub(crate) fn score(&mut self, task: &mut dyn TaskRunner, ids: &[usize]) -> Result<()> {
        let (scored, losses) = task.score(&mut self.loss_scorer, ids)?;
        set(&mut self.loss, &scored, &losses);
        let (scored, bounds) = task.score(&mut self.grad_scorer, ids)?;
        set(&mut self.grad_norm, &scored, &bounds);
        Ok(())
    }

    /// Counts one training draw of each id of a plan.
    pub(crate) fn drawn(&mut self, ids: &[usize]) {
        for &id in ids {
            if let Some(d) = self.draws.get_mut(id) {
                *d += 1;
            }
        }
    }

    /// The record of this moment of the run.
    pub(crate) fn record(&self, strategy: StrategyDiagnostics) -> Diagnostics {
        Diagnostics {
            tau_loss: tau(&self.loss),
            tau_grad_norm: tau(&self.grad_norm),
            scored: self.loss.iter().filter(|v| !v.is_nan()).count() as u64,
            draw_gini: gini(&self.draws),
            importance_on: strategy.importance_on,
            strategy_tau: strategy.tau_ema,
            tau_threshold: strategy.tau_threshold,
        }
    }

    /// Writes both score tables (the draws are rebuilt from the journal).
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let n = self.loss.len();
        let tensors = HashMap::from([
            (
                "loss".to_string(),
                Tensor::from_slice(&self.loss, n, &Device::Cpu)?,
            ),
            (
                "grad_norm".to_string(),
                Tensor::from_slice(&self.grad_norm, n, &Device::Cpu)?,
            ),
        ]);
        Ok(save_tensors(&tensors, path)?)
    }

    /// Reads both score tables back; the error names the file.
    pub(crate) fn load(&mut self, path: &Path) -> Result<()> {
        let tensors = load_tensors(path, &Device::Cpu)?;
        let n = self.loss.len();
        let read = |name: &str| -> Result<Vec<f32>> {
            let values = tensors
                .get(name)
                .map(|t| t.to_vec1::<f32>())
                .transpose()?
                .unwrap_or_default();
            if values.len() != n {
                return Err(TrainerError::Malformed {
                    path: path.to_path_buf(),
                    message: format!(
                        "`{name}` holds {} scores, the run has {n} training images",
                        values.len()
                    ),
                });
            }
            Ok(values)
        };
        self.loss = read("loss")?;
        self.grad_norm = read("grad_norm")?;
        Ok(())
    }
}

fn set(table: &mut [f32], ids: &[usize], scores: &[f32]) {
    for (&id, &s) in ids.iter().zip(scores) {
        if let Some(slot) = table.get_mut(id) {
            *slot = s;
        }
    }
}

/// τ over the scored entries of `table`; `None` before any is scored.
fn tau(table: &[f32]) -> Option<f64> {
    let scores: Vec<f64> = table
        .iter()
        .filter(|v| !v.is_nan())
        .map(|&v| f64::from(v))
        .collect();
    (!scores.is_empty()).then(|| variance_reduction(&scores))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tau_skips_unscored_images_and_is_scale_free() {
        assert_eq!(tau(&[f32::NAN, f32::NAN]), None);
        let even = tau(&[2.0, 2.0, f32::NAN]).unwrap();
        assert!((even - 1.0).abs() < 1e-12);
        // mean(s²)/mean(s)² for (1, 3): 5 / 4.
        let spread = tau(&[1.0, f32::NAN, 3.0]).unwrap();
        assert!((spread - 1.25f64.sqrt()).abs() < 1e-12, "{spread}");
        assert!((tau(&[10.0, 30.0]).unwrap() - spread).abs() < 1e-12);
    }
}
