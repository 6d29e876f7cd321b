//! What a run's budget was spent on: per training image, how often it was
//! trained on and forwarded, its last score, and how the score
//! distribution moved — rebuilt from the journal by replaying the sampler,
//! so that it is exact for every strategy (selective backprop and
//! presampling choose their batches from scores the journal holds) and can
//! be written for any run whose journal is still there.

use std::path::Path;

use isdet_eval::write_json_atomic;
use isdet_sampler::{Sampler, Strategy, StrategyInputs};

use crate::config::{RunConfig, Task};
use crate::error::Result;
use crate::journal::{JournalEntry, read_all, replay};
use crate::records::{SCORE_QUANTILES, SamplingRecord, ScoreSnapshot, files};
use crate::rundir::read_json;

/// The sampling record of a run over `n` training samples whose journal
/// (at `path`) holds `entries`, replayed with the strategy's `inputs`; the
/// score distribution is taken at every evaluation step of `config` and at
/// the end.
fn sampling_record(
    config: &RunConfig,
    n: usize,
    inputs: &StrategyInputs,
    entries: &[JournalEntry],
    path: &Path,
) -> Result<SamplingRecord> {
    let mut sampler = config.new_sampler(n, inputs)?;
    let every = config.eval.every.max(1);
    let mut trained = vec![0u32; n];
    let mut forwarded = vec![0u32; n];
    let mut snapshots = Vec::new();
    replay(&mut sampler, entries, path, |sampler, plan| {
        for &id in plan.train() {
            trained[id] += 1;
            forwarded[id] += 1;
        }
        for &id in plan.score_only() {
            forwarded[id] += 1;
        }
        let step = sampler.budget().optimiser_steps();
        if plan.is_optimiser_step() && step.is_multiple_of(every) {
            snapshots.extend(snapshot(sampler, step));
        }
    })?;
    let step = sampler.budget().optimiser_steps();
    if snapshots
        .last()
        .is_none_or(|s: &ScoreSnapshot| s.step != step)
    {
        snapshots.extend(snapshot(&sampler, step));
    }
    let last_score = sampler
        .table()
        .records()
        .iter()
        .map(|r| r.is_seen().then(|| round4(r.last())))
        .collect();
    Ok(SamplingRecord {
        trained,
        forwarded,
        last_score,
        scores_over_run: snapshots,
    })
}

/// Writes `sampling.json` for the finished or running run in `dir` from
/// its configuration and journal; returns the record.
pub fn write_sampling_record(dir: &Path) -> Result<SamplingRecord> {
    let config: RunConfig = read_json(&dir.join(files::CONFIG))?;
    write_record(dir, &config, train_len(&config)?)
}

/// Replays the journal in `dir` of a run of `config` over `n` training
/// samples and writes the record to `sampling.json`.
pub(crate) fn write_record(dir: &Path, config: &RunConfig, n: usize) -> Result<SamplingRecord> {
    let journal = dir.join(files::JOURNAL);
    // RHO-LOSS replays with the irreducible losses the run sampled with.
    let inputs = crate::irreducible::inputs(config, dir, n)?;
    let record = sampling_record(config, n, &inputs, &read_all(&journal)?, &journal)?;
    write_json_atomic(&dir.join(files::SAMPLING), &record)?;
    Ok(record)
}

/// The number of training samples of `config`'s data, without building a
/// model.
fn train_len(config: &RunConfig) -> Result<usize> {
    Ok(match config.task {
        Task::Detection => crate::data::open(&config.data)?.0.len(),
        Task::Classification => crate::data::open_classification(&config.data)?.0.len(),
    })
}

/// The distribution of the last scores of the scored samples at `step`;
/// `None` before any sample is scored.
fn snapshot<S: Strategy>(sampler: &Sampler<S>, step: u64) -> Option<ScoreSnapshot> {
    let mut scores: Vec<f32> = sampler
        .table()
        .records()
        .iter()
        .filter(|r| r.is_seen())
        .map(|r| r.last())
        .collect();
    if scores.is_empty() {
        return None;
    }
    scores.sort_by(f32::total_cmp);
    let at = |q: f64| scores[((scores.len() - 1) as f64 * q).round() as usize];
    Some(ScoreSnapshot {
        step,
        scored: scores.len(),
        quantiles: SCORE_QUANTILES.map(|q| round4(at(q))),
    })
}

/// `x` to four significant digits: scores are heuristics, and the record
/// of a 10,000-image run stays small.
fn round4(x: f32) -> f32 {
    format!("{x:.3e}").parse().unwrap_or(x)
}
