//! The checkpointer, kept apart from the training loop: which files a
//! checkpoint is made of, the order that makes it safe to be killed at any
//! moment, and reading it back.
//!
//! A checkpoint is the model's weights, the optimiser's state, the scorer's
//! running means (when its heuristic keeps them) and `state.json`, which
//! names them. `state.json` is the commit point: the files it names are
//! complete before it is renamed into place, and the previous checkpoint's
//! files are removed only after.

use std::path::{Path, PathBuf};

use candle_core::Device;
use isdet_detector::Optimizer;
use isdet_detector::checkpoint::{load_tensors, load_weights, save_tensors};
use isdet_eval::write_json_atomic;
use isdet_heuristics::{RunningTrueClassMean, Scorer};

use crate::error::{Result, TrainerError, io_err};
use crate::records::{CheckpointState, files};
use crate::rundir::read_json;
use crate::task::TaskRunner;

/// The file-name prefixes of the parts of a checkpoint.
const PARTS: [&str; 3] = ["model-", "optimizer-", "scorer-"];

/// The names of one checkpoint's files in the checkpoint folder.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CheckpointFiles {
    pub weights: String,
    pub optimizer: String,
    pub scorer: Option<String>,
}

/// Writes and reads the checkpoints of one run directory.
pub(crate) struct Checkpointer {
    dir: PathBuf,
}

impl Checkpointer {
    /// The checkpointer of run directory `run_dir`.
    pub fn new(run_dir: &Path) -> Self {
        Checkpointer {
            dir: run_dir.join(files::CHECKPOINT_DIR),
        }
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join(files::STATE)
    }

    /// Whether a checkpoint has been committed.
    pub fn exists(&self) -> bool {
        self.state_path().exists()
    }

    /// Writes the model, optimiser and scorer state of plan `tag`, then
    /// commits `state(files)` and removes the previous checkpoint's files.
    pub fn save(
        &self,
        tag: u64,
        task: &dyn TaskRunner,
        optimizer: &dyn Optimizer,
        scorer: &Scorer,
        state: impl FnOnce(CheckpointFiles) -> CheckpointState,
    ) -> Result<()> {
        let dir = &self.dir;
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let tag = format!("{tag:08}");
        let names = CheckpointFiles {
            weights: format!("model-{tag}.safetensors"),
            optimizer: format!("optimizer-{tag}.safetensors"),
            scorer: scorer.state().map(|_| format!("scorer-{tag}.safetensors")),
        };
        task.save_model(&dir.join(&names.weights), &dir.join("model.json"))?;
        save_tensors(&optimizer.state()?, &dir.join(&names.optimizer))?;
        if let (Some(state), Some(name)) = (scorer.state(), &names.scorer) {
            save_tensors(&state.to_tensors()?, &dir.join(name))?;
        }
        let keep = names.clone();
        write_json_atomic(&self.state_path(), &state(names))?;
        self.remove_all_but(&keep)
    }

    /// Removes the parts of every checkpoint but `keep`.
    fn remove_all_but(&self, keep: &CheckpointFiles) -> Result<()> {
        let dir = &self.dir;
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = PARTS.iter().any(|p| name.starts_with(p))
                && name != keep.weights
                && name != keep.optimizer
                && Some(&name) != keep.scorer.as_ref();
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// The committed checkpoint's state, with the model, optimiser and
    /// scorer restored from the files it names.
    pub fn restore(
        &self,
        task: &dyn TaskRunner,
        optimizer: &mut dyn Optimizer,
        scorer: &mut Scorer,
        device: &Device,
    ) -> Result<CheckpointState> {
        let state: CheckpointState = read_json(&self.state_path())?;
        let dir = &self.dir;
        load_weights(task.params(), &dir.join(&state.weights))?;
        optimizer.load_state(&load_tensors(&dir.join(&state.optimizer), device)?)?;
        if let Some(name) = &state.scorer {
            let path = dir.join(name);
            let tensors = load_tensors(&path, &Device::Cpu)?;
            let running = RunningTrueClassMean::from_tensors(&tensors).map_err(|e| {
                TrainerError::Malformed {
                    path: path.clone(),
                    message: e.to_string(),
                }
            })?;
            scorer.set_state(running)?;
        }
        Ok(state)
    }
}
