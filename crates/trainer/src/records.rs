//! What a run writes: evaluation records, the checkpoint state and the
//! summary (the formats of docs/run-directory.md).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The file names of a run directory: the one definition that the trainer
/// writes and every reader (the report) reads.
pub mod files {
    /// The run's configuration, as resolved.
    pub const CONFIG: &str = "config.json";
    /// One [`MetricsRecord`](super::MetricsRecord) per line.
    pub const METRICS: &str = "metrics.jsonl";
    /// The [`Summary`](super::Summary) of a finished run.
    pub const SUMMARY: &str = "summary.json";
    /// The journal of plans and recorded scores.
    pub const JOURNAL: &str = "journal.bin";
    /// The checkpoint folder.
    pub const CHECKPOINT_DIR: &str = "checkpoint";
    /// The [`CheckpointState`](super::CheckpointState) in the checkpoint folder.
    pub const STATE: &str = "state.json";
    /// The advisory lock held while a process trains in the directory.
    pub const LOCK: &str = "run.lock";
    /// The checkpoint before it, kept until the next one is committed.
    pub const PREVIOUS_STATE: &str = "state-previous.json";
    /// The validation ground truth the detection metrics are scored against.
    pub const VAL_ANNOTATIONS: &str = "val_annotations.json";
    /// The final model's weights (safetensors).
    pub const MODEL_WEIGHTS: &str = "model.safetensors";
    /// The model's configuration, beside its weights (and in the
    /// checkpoint folder).
    pub const MODEL_CONFIG: &str = "model.json";
    /// The final validation predictions of a detection run (COCO results).
    pub const PREDICTIONS: &str = "predictions.json";
    /// The [`SamplingRecord`](super::SamplingRecord) of a finished run.
    pub const SAMPLING: &str = "sampling.json";
    /// The run directory of a RHO-LOSS run's irreducible-loss model.
    pub const IRREDUCIBLE_DIR: &str = "irreducible";
    /// The [`IrreducibleLosses`](super::IrreducibleLosses) of a RHO-LOSS run.
    pub const IRREDUCIBLE_LOSSES: &str = "irreducible_losses.json";
}

/// Cumulative wall-clock seconds per phase of training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// Loading, augmenting and collating batches, and assigning targets.
    pub data: f64,
    /// Forward passes and losses (training and scoring-only).
    pub forward: f64,
    /// Backward passes and optimiser steps.
    pub backward: f64,
    /// Turning outputs into importance scores.
    pub scoring: f64,
    /// Planning, recording scores and journaling.
    pub sampling: f64,
    /// Evaluation on the validation set.
    pub eval: f64,
    /// Scoring the diagnostic tables (τ of the loss and gradient-norm
    /// bound): instrumentation, not a cost of the run's method, so not in
    /// [`PhaseTimes::training`] (absent before it was recorded).
    #[serde(default)]
    pub diagnostics: f64,
}

impl PhaseTimes {
    /// Seconds spent training: every phase but evaluation.
    pub fn training(&self) -> f64 {
        self.data + self.forward + self.backward + self.scoring + self.sampling
    }
}

/// One line of `metrics.jsonl`: an evaluation and every cost counter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsRecord {
    /// Optimiser steps taken.
    pub step: u64,
    /// Plans handed out by the sampler.
    pub sampler_step: u64,
    /// The epoch of the schedule the run is in.
    pub epoch: u64,
    /// Per-sample forward passes so far (training and scoring-only).
    pub forward: u64,
    /// Per-sample backward passes so far.
    pub backward: u64,
    /// Images loaded so far.
    pub images: u64,
    /// Seconds of training so far (evaluation excluded).
    pub seconds: f64,
    /// The learning rate of the last step.
    pub lr: f64,
    /// Mean training objective since the previous evaluation (absent when
    /// no step was taken, as at step 0).
    pub train_loss: Option<f64>,
    /// Batches skipped for a non-finite loss so far.
    pub skipped_batches: u64,
    /// The metrics (`AP`, `AP50`, … and `AP/<class>`).
    pub metrics: BTreeMap<String, f64>,
    /// Cumulative seconds per phase.
    pub time: PhaseTimes,
    /// What importance sampling could do and what the draws did, as of
    /// this evaluation (absent in runs written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Diagnostics>,
}

/// The sampling diagnostics of one evaluation: the variance reduction τ
/// that importance sampling by the current score tables would bring
/// (Katharopoulos & Fleuret 2018, presampling's own formula
/// `τ = sqrt(mean(s²)) / mean(s)` over every training image scored so
/// far), whatever the run's strategy, and how unevenly the training draws
/// have spread over the images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// τ of the images' last losses (absent before any image is scored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau_loss: Option<f64>,
    /// τ of the images' last gradient-norm bounds (absent before any
    /// image is scored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau_grad_norm: Option<f64>,
    /// Images scored so far (those τ is taken over).
    pub scored: u64,
    /// Gini coefficient of the training draws per image so far (0: every
    /// image drawn equally often).
    pub draw_gini: f64,
    /// Whether the strategy's importance phase is on (presampling only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importance_on: Option<bool>,
    /// The strategy's own running estimate of τ (presampling's EMA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy_tau: Option<f64>,
    /// The τ above which the strategy switches importance sampling on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau_threshold: Option<f64>,
}

/// `checkpoint/state.json`: everything besides weights and optimiser state
/// that a resumed run needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Plans handed out.
    pub sampler_steps: u64,
    /// Optimiser steps taken.
    pub optimiser_steps: u64,
    /// Bytes of `journal.bin` at the checkpoint.
    pub journal_len: u64,
    /// Bytes of `metrics.jsonl` at the checkpoint.
    pub metrics_len: u64,
    /// Phase times at the checkpoint.
    pub time: PhaseTimes,
    /// Sum of training objectives since the last evaluation.
    pub loss_sum: f64,
    /// Steps in that sum.
    pub loss_count: u64,
    /// Batches skipped so far.
    pub skipped_batches: u64,
    /// Optimiser step of the last evaluation.
    pub last_eval_step: Option<u64>,
    /// The learning rate of the last step.
    pub lr: f64,
    /// The weights file in `checkpoint/`.
    pub weights: String,
    /// The optimiser-state file in `checkpoint/`.
    pub optimizer: String,
    /// The scorer-state file in `checkpoint/` (running means of threshold
    /// closeness), when the heuristic keeps one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorer: Option<String>,
    /// The diagnostic score tables' file in `checkpoint/` (absent in
    /// checkpoints written before they were kept: a resumed run's τ then
    /// covers the images scored after the resume only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
    /// The CPU threads the run trained with: the kernels split their sums
    /// by thread, so a run resumed with another count rounds differently
    /// from then on (absent in checkpoints written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
}

/// `summary.json`: the final metrics and costs of a finished run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The run's label.
    pub method: String,
    /// The sampler strategy's name.
    pub strategy: String,
    /// The heuristic, as configured.
    pub heuristic: String,
    /// The budget fraction.
    pub budget: f64,
    /// The run seed.
    pub seed: u64,
    /// `detection` or `classification`.
    pub task: String,
    /// The metric reports compare (`AP` or `top1`).
    pub primary_metric: String,
    /// The final metrics, under their names (`AP`, `AP50`, …).
    #[serde(flatten)]
    pub metrics: BTreeMap<String, f64>,
    /// The COCO ground-truth file the metrics were scored against
    /// (detection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_annotations: Option<PathBuf>,
    /// Optimiser steps.
    pub steps: u64,
    /// Plans handed out.
    pub sampler_steps: u64,
    /// Per-sample forward passes.
    pub forward: u64,
    /// Per-sample backward passes.
    pub backward: u64,
    /// Images loaded.
    pub images: u64,
    /// Seconds of training (evaluation excluded).
    pub seconds: f64,
    /// Seconds of evaluation.
    pub eval_seconds: f64,
    /// Batches skipped for a non-finite loss.
    pub skipped_batches: u64,
    /// What RHO-LOSS's irreducible-loss model cost, besides the costs
    /// above (RHO-LOSS runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub irreducible: Option<IrreducibleCost>,
}

/// What RHO-LOSS's irreducible-loss (IL) model cost: its training run (in
/// `irreducible/`) and the forward passes that scored the training set
/// with it. None of it is in the run's own counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IrreducibleCost {
    /// Labelled holdout images the IL model trained on: data the method
    /// used besides the training set.
    pub holdout_images: u64,
    /// The IL run's optimiser steps.
    pub steps: u64,
    /// The IL run's per-sample forward passes.
    pub forward: u64,
    /// The IL run's per-sample backward passes.
    pub backward: u64,
    /// Images the IL run loaded.
    pub images: u64,
    /// The IL run's seconds of training (evaluation excluded).
    pub seconds: f64,
    /// The IL run's seconds of evaluation.
    pub eval_seconds: f64,
    /// Forward passes without gradients that computed the IL of the
    /// training images: one per image.
    pub loss_forward: u64,
    /// Seconds those took (building the scoring model and loading
    /// included).
    pub loss_seconds: f64,
    /// The IL model's final primary metric on the run's validation set
    /// (`AP` or `top1`): how good the model is whose losses RHO-LOSS
    /// subtracts. A weak one makes training loss − IL negative wherever
    /// the run's model already does better, and the selection then
    /// favours images on which both losses are small (empty frames).
    #[serde(default)]
    pub metric: f64,
}

/// `irreducible_losses.json`: a RHO-LOSS run's irreducible losses, written
/// once before its first step; every rebuild of its sampler (resume,
/// `sampling.json`) reads them from here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IrreducibleLosses {
    /// What computing them cost.
    pub cost: IrreducibleCost,
    /// IL(x, y) of every training image, by sample id: the IL model's loss
    /// on the un-augmented image in evaluation mode.
    pub losses: Vec<f32>,
}

/// The quantiles of a [`ScoreSnapshot`]: minimum, 10%, 25%, median, 75%,
/// 90%, maximum.
pub const SCORE_QUANTILES: [f64; 7] = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0];

/// `sampling.json`: what a finished run's budget was spent on, per
/// training image (indexed as the training set is), rebuilt from the
/// journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingRecord {
    /// Times each image was trained on (backward passes); they sum to the
    /// summary's `backward`.
    pub trained: Vec<u32>,
    /// Forward passes of each image, training and scoring-only; they sum
    /// to the summary's `forward`.
    pub forwarded: Vec<u32>,
    /// Each image's last recorded score (four significant digits), `null`
    /// when it was never scored.
    pub last_score: Vec<Option<f32>>,
    /// The distribution of the last scores, at every evaluation step and
    /// at the end.
    pub scores_over_run: Vec<ScoreSnapshot>,
}

impl SamplingRecord {
    /// Why this record cannot be the one of the run that `summary`
    /// describes: arrays of different lengths, or counts that do not add
    /// up to the summary's backward and forward passes; `None` when it
    /// agrees.
    pub fn disagreement(&self, summary: &Summary) -> Option<String> {
        let n = self.trained.len();
        if self.forwarded.len() != n || self.last_score.len() != n {
            return Some(format!(
                "{n} train counts but {} forward counts and {} scores",
                self.forwarded.len(),
                self.last_score.len()
            ));
        }
        let sum = |v: &[u32]| v.iter().map(|&c| u64::from(c)).sum::<u64>();
        let (backward, forward) = (sum(&self.trained), sum(&self.forwarded));
        ((backward, forward) != (summary.backward, summary.forward)).then(|| {
            format!(
                "counts add up to {backward} backward and {forward} forward passes, \
                 the summary says {} and {}",
                summary.backward, summary.forward
            )
        })
    }
}

/// The distribution of the last scores of the scored images at one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreSnapshot {
    /// The optimiser step.
    pub step: u64,
    /// Images scored at least once by then.
    pub scored: usize,
    /// Their last scores at [`SCORE_QUANTILES`].
    pub quantiles: [f32; 7],
}
