//! The IL model's run: its configuration, derived from the RHO-LOSS run's.

use isdet_heuristics::Heuristic;
use isdet_sampler::{Schedule, StrategyConfig};

use crate::config::{DataConfig, RunConfig, Task};
use crate::error::Result;

/// The share of the run's reference schedule (its optimiser steps at
/// budget 1) the IL model trains for when `irreducible.epochs` is absent:
/// short, as the paper allows, and a cost bounded whatever the holdout's
/// size.
pub(super) const DEFAULT_SHARE: f64 = 0.25;

/// The seed stream of the IL run: its weights, draws and augmentation are
/// independent of the run's.
const SEED_STREAM: u64 = 0x494c;

/// The number of training samples of `data` for `task`, without building a
/// model.
pub(super) fn train_len(task: Task, data: &DataConfig) -> Result<usize> {
    Ok(match task {
        Task::Detection => crate::data::open_or_make(data)?.0.len(),
        Task::Classification => crate::data::open_classification(data)?.0.len(),
    })
}

/// The IL run of `run`, on `data` (the holdout of `holdout` images trains,
/// the run's validation set scores) for a run over `n` training images: an
/// ordinary run with uniform sampling at budget 1, the IL section's preset,
/// epochs, batch size and learning rate, and everything else the run's.
pub(super) fn il_run_config(
    run: &RunConfig,
    data: DataConfig,
    n: usize,
    holdout: usize,
) -> Result<RunConfig> {
    let il = run.irreducible.clone().unwrap_or_default();
    let mut config = run.clone();
    config.method = format!("{}-irreducible", run.method);
    config.data = data;
    config.model.preset = il.preset.unwrap_or(run.model.preset);
    config.strategy = StrategyConfig::Uniform;
    config.heuristic = Heuristic::LOSS;
    config.budget = 1.0;
    config.batch_size = il.batch_size.unwrap_or(run.batch_size);
    config.lr.base = il.lr.unwrap_or(run.lr.base);
    config.seed = isdet_data::seed::key(&[run.seed, SEED_STREAM]);
    config.fault = None;
    config.irreducible = None;
    config.epochs = match il.epochs {
        Some(epochs) => epochs,
        None => default_epochs(run, config.batch_size, n, holdout)?,
    };
    Ok(config)
}

/// The whole epochs over `holdout` images in batches of `batch` nearest to
/// [`DEFAULT_SHARE`] of `run`'s reference schedule over `n` images; at
/// least one.
fn default_epochs(run: &RunConfig, batch: usize, n: usize, holdout: usize) -> Result<u32> {
    let reference = Schedule::new(n, run.batch_size, run.epochs, 1.0)?.budget_steps();
    let per_epoch = Schedule::new(holdout, batch, 1, 1.0)?
        .steps_per_epoch()
        .max(1);
    let epochs = (DEFAULT_SHARE * reference as f64 / per_epoch as f64).round();
    Ok((epochs as u32).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_epochs_make_a_quarter_of_the_reference_schedule() {
        // (train images, batch, epochs, holdout, IL batch) → IL epochs.
        let cases = [
            ((32, 4, 2, 8, 4), 2),        // 16 steps → 4 = 2 epochs of 2
            ((1000, 10, 8, 100, 10), 20), // 800 → 200 = 20 epochs of 10
            ((1000, 10, 8, 1000, 10), 2), // a holdout as large: 2 epochs
            ((100, 10, 1, 1000, 10), 1),  // under one epoch: one
            ((1000, 10, 8, 100, 20), 40), // IL batch 20: 5 steps an epoch
        ];
        for ((n, b, epochs, holdout, il_batch), expected) in cases {
            let run = RunConfig {
                batch_size: b,
                epochs,
                ..RunConfig::default()
            };
            let got = default_epochs(&run, il_batch, n, holdout).unwrap();
            assert_eq!(got, expected, "{:?}", (n, b, epochs, holdout, il_batch));
        }
    }
}
