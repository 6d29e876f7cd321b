//! Scoring the training set with the trained IL model.

use std::path::Path;

use isdet_detector::Kernels;

use crate::classification::ClassificationTask;
use crate::config::{RunConfig, Task};
use crate::detection::DetectionTask;
use crate::error::{Result, TrainerError};
use crate::records::files;
use crate::task::TaskRunner;

/// IL(x, y) of every training image of `run` (in `dir`): the loss of the
/// model trained by `il` (in `dir/irreducible/`) on each un-augmented
/// training image, in evaluation mode, without gradients.
pub(super) fn compute(
    run: &RunConfig,
    il: &RunConfig,
    dir: &Path,
    kernels: Kernels,
) -> Result<Vec<f32>> {
    // The run's training set, seen by a model of the IL run's shape.
    let mut config = run.clone();
    config.model = il.model.clone();
    let device = config.device.open()?;
    let mut task: Box<dyn TaskRunner> = match config.task {
        Task::Detection => Box::new(DetectionTask::new(
            &config,
            &device,
            kernels,
            &dir.join(files::VAL_ANNOTATIONS),
        )?),
        Task::Classification => Box::new(ClassificationTask::new(&config, &device, kernels)?),
    };
    let weights = dir.join(files::IRREDUCIBLE_DIR).join(files::MODEL_WEIGHTS);
    isdet_detector::checkpoint::load_weights(task.params(), &weights)?;
    let ids: Vec<usize> = (0..task.train_len()).collect();
    let losses = task.eval_losses(&ids)?;
    match losses.iter().position(|l| !l.is_finite()) {
        Some(id) => Err(TrainerError::Config(format!(
            "irreducible: the irreducible-loss model's loss on training image {id} is {}; \
             train it longer or with a lower irreducible.lr",
            losses[id]
        ))),
        None => Ok(losses),
    }
}
