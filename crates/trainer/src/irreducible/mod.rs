//! RHO-LOSS's irreducible losses (Mindermann et al., ICML 2022): before a
//! RHO-LOSS run's first step, its irreducible-loss (IL) model is trained as
//! an ordinary run in `<run>/irreducible/` (so it checkpoints, resumes and
//! writes its own metrics and summary), then scores every training image
//! once; the losses and what they cost are stored in
//! `irreducible_losses.json`, which every rebuild of the run's sampler
//! reads.

mod losses;
mod schedule;

use std::path::Path;
use std::time::Instant;

use isdet_detector::Kernels;
use isdet_eval::write_json_atomic;
use isdet_sampler::StrategyInputs;

use crate::checkpoint::Checkpointer;
use crate::config::RunConfig;
use crate::error::{Result, TrainerError};
use crate::records::{IrreducibleCost, IrreducibleLosses, Summary, files};
use crate::rundir::read_json;

/// Makes sure a RHO-LOSS run in `dir` has its irreducible losses stored
/// before its first step: trains the IL model through `train_il` (its
/// configuration and run directory in, its summary out, or `None` when it
/// stopped on request), scores the training set with it and writes
/// `irreducible_losses.json` atomically. Returns `false` when the IL run
/// stopped. Other runs, and runs whose losses are stored, return `true` at
/// once: a resumed run reads what it stored.
pub(crate) fn prepare(
    config: &RunConfig,
    dir: &Path,
    kernels: Kernels,
    train_il: impl FnOnce(&RunConfig, &Path) -> Result<Option<Summary>>,
) -> Result<bool> {
    let Some(il) = &config.irreducible else {
        return Ok(true);
    };
    let path = dir.join(files::IRREDUCIBLE_LOSSES);
    if path.exists() {
        return Ok(true);
    }
    if Checkpointer::new(dir).exists() {
        // Recomputing them could give other losses than the run trained with.
        return Err(TrainerError::Malformed {
            path,
            message: format!(
                "missing, but the run has a checkpoint that sampled with it; delete {} to \
                 train the run again",
                dir.display()
            ),
        });
    }
    // Opening the training set first also makes a generated set (and its
    // holdout split) on first use.
    let n = schedule::train_len(config.task, &config.data)?;
    let data = il.data(&config.data)?;
    let holdout = schedule::train_len(config.task, &data)?;
    let il_config = schedule::il_run_config(config, data, n, holdout)?;
    let Some(summary) = train_il(&il_config, &dir.join(files::IRREDUCIBLE_DIR))? else {
        return Ok(false);
    };
    let t = Instant::now();
    let losses = losses::compute(config, &il_config, dir, kernels)?;
    let cost = IrreducibleCost {
        holdout_images: holdout as u64,
        steps: summary.steps,
        forward: summary.forward,
        backward: summary.backward,
        images: summary.images,
        seconds: summary.seconds,
        eval_seconds: summary.eval_seconds,
        loss_forward: losses.len() as u64,
        loss_seconds: t.elapsed().as_secs_f64(),
        metric: summary
            .metrics
            .get(&summary.primary_metric)
            .copied()
            .unwrap_or(f64::NAN),
    };
    write_json_atomic(&path, &IrreducibleLosses { cost, losses })?;
    Ok(true)
}

/// The inputs the sampler of `config`'s run in `dir` over `n` training
/// samples needs: for RHO-LOSS the stored irreducible losses, checked
/// against the training set; nothing for other strategies.
pub(crate) fn inputs(config: &RunConfig, dir: &Path, n: usize) -> Result<StrategyInputs> {
    if !config.strategy.needs_irreducible_losses() {
        return Ok(StrategyInputs::default());
    }
    let path = dir.join(files::IRREDUCIBLE_LOSSES);
    let record: IrreducibleLosses = read_json(&path)?;
    let inputs = StrategyInputs::with_irreducible_losses(record.losses);
    // The sampler's own check, with the file named.
    config
        .strategy
        .check_inputs(&inputs, n)
        .map_err(|e| TrainerError::Malformed {
            path,
            message: e.to_string(),
        })?;
    Ok(inputs)
}

/// What the IL model of `config`'s run in `dir` cost (`None` for runs
/// without one).
pub(crate) fn cost(config: &RunConfig, dir: &Path) -> Result<Option<IrreducibleCost>> {
    if config.irreducible.is_none() {
        return Ok(None);
    }
    let record: IrreducibleLosses = read_json(&dir.join(files::IRREDUCIBLE_LOSSES))?;
    Ok(Some(record.cost))
}
