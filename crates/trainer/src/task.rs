//! What differs between tasks: the model, its batches, its losses, how its
//! outputs become scores, and how it is evaluated. The loop in `run.rs`
//! drives a [`TaskRunner`] and knows nothing of boxes or labels.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use isdet_data::{BatchRequest, Pipeline, collate};
use isdet_detector::ParamStore;
use isdet_eval::CocoResult;
use isdet_heuristics::Scorer;

use crate::error::Result;
use crate::records::PhaseTimes;

/// One training forward pass.
pub(crate) struct Forward {
    /// The (weighted) training objective, with its graph.
    pub objective: Tensor,
    /// Each batch item's own loss (detached).
    pub per_sample: Vec<f32>,
}

/// One evaluation on the validation set.
pub(crate) struct Evaluation {
    /// The metrics under their names (`AP`, `AP50`, … or `top1`).
    pub metrics: BTreeMap<String, f64>,
    /// Detections for `predictions.json` (detection only).
    pub detections: Option<Vec<CocoResult>>,
}

/// A task's model and data behind the loop's few needs.
pub(crate) trait TaskRunner {
    /// The model's parameters (trained ones and buffers).
    fn params(&self) -> &ParamStore;

    /// Training samples.
    fn train_len(&self) -> usize;

    /// Loads `ids` for `epoch` and runs the training forward pass with
    /// per-item loss `weights`; remembers what scoring needs.
    fn forward(
        &mut self,
        ids: &[usize],
        epoch: u64,
        weights: Option<&[f32]>,
        time: &mut PhaseTimes,
    ) -> Result<Forward>;

    /// Loads `ids` as validation sees them (no augmentation) and runs the
    /// forward pass and the loss in evaluation mode: a measurement that
    /// leaves the model's state as it was (a sufficiency refresh).
    fn forward_plain(&mut self, ids: &[usize], time: &mut PhaseTimes) -> Result<Forward>;

    /// The scores of the last forward pass, as (sample ids, scores) to
    /// record: one per batch item, or, for mixed images, one per source
    /// sample credited by its mixing weight.
    fn score(&mut self, scorer: &mut Scorer, ids: &[usize]) -> Result<(Vec<usize>, Vec<f32>)>;

    /// Scores the model on the validation set.
    fn evaluate(&mut self) -> Result<Evaluation>;

    /// The metric reports compare (`AP` or `top1`).
    fn primary_metric(&self) -> &'static str;

    /// The task's name in summaries.
    fn name(&self) -> &'static str;

    /// Writes the weights and the model configuration.
    fn save_model(&self, weights: &Path, config: &Path) -> Result<()>;

    /// The loss of each training sample of `ids` under the model in
    /// evaluation mode (running normalisation statistics), on the
    /// un-augmented image (letterboxed or centred only), without a
    /// gradient: RHO-LOSS's irreducible loss when the model is its
    /// irreducible-loss model.
    fn eval_losses(&mut self, ids: &[usize]) -> Result<Vec<f32>>;
}

/// Loads `ids` of `epoch` through `pipeline` (augmentation, mixing) into
/// an NCHW tensor on `device`, with their targets.
pub(crate) fn load_batch<P: Pipeline>(
    pipeline: &P,
    ids: &[usize],
    epoch: u64,
    device: &Device,
) -> Result<(Tensor, Vec<P::Target>)> {
    let request = BatchRequest {
        epoch,
        ids: ids.to_vec(),
    };
    let batch = collate(pipeline, 0, &request)?;
    let images = Tensor::from_vec(batch.images, batch.shape.to_vec(), device)?;
    Ok((images, batch.targets))
}
