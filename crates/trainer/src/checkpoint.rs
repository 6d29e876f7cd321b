//! The checkpointer, kept apart from the training loop: which files a
//! checkpoint is made of, the order that makes it safe to be killed at any
//! moment, and reading it back.
//!
//! A checkpoint is the model's weights, the optimiser's state, the scorer's
//! running means (when its heuristic keeps them) and `state.json`, which
//! names them. `state.json` is the commit point: the files it names are
//! complete before it is renamed into place.
//!
//! The checkpoint before it is kept too, as `state-previous.json` and the
//! files it names, until the next one is committed: a latest checkpoint
//! that cannot be read (a file cut short or overwritten after it was
//! written) costs one checkpoint interval, not the run. Resuming tries the
//! latest, then, with a warning naming the bad file, the previous one.

use std::path::{Path, PathBuf};

use candle_core::Device;
use isdet_detector::Optimizer;
use isdet_detector::checkpoint::{load_tensors, load_weights, save_tensors};
use isdet_eval::write_json_atomic;
use isdet_heuristics::{RunningTrueClassMean, Scorer};

use crate::diagnostics::DiagnosticTables;
use crate::error::{Result, TrainerError, io_err};
use crate::records::{CheckpointState, files};
use crate::rundir::read_json;
use crate::task::TaskRunner;

/// The file-name prefixes of the parts of a checkpoint.
const PARTS: [&str; 4] = ["model-", "optimizer-", "scorer-", "diagnostics-"];

/// The names of one checkpoint's files in the checkpoint folder.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CheckpointFiles {
    pub weights: String,
    pub optimizer: String,
    pub scorer: Option<String>,
    pub diagnostics: Option<String>,
}

impl CheckpointFiles {
    /// Whether `name` is one of these files.
    fn names(&self, name: &str) -> bool {
        name == self.weights
            || name == self.optimizer
            || self.scorer.as_deref() == Some(name)
            || self.diagnostics.as_deref() == Some(name)
    }
}

impl CheckpointState {
    /// The files this state names.
    fn files(&self) -> CheckpointFiles {
        CheckpointFiles {
            weights: self.weights.clone(),
            optimizer: self.optimizer.clone(),
            scorer: self.scorer.clone(),
            diagnostics: self.diagnostics.clone(),
        }
    }
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

    fn previous_path(&self) -> PathBuf {
        self.dir.join(files::PREVIOUS_STATE)
    }

    /// Whether a checkpoint has been committed.
    pub fn exists(&self) -> bool {
        self.state_path().exists() || self.previous_path().exists()
    }

    /// The checkpoint folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the model, optimiser and scorer state and the diagnostic
    /// tables of plan `tag`, then commits `state(files)` and removes the
    /// previous checkpoint's files.
    pub fn save(
        &self,
        tag: u64,
        task: &dyn TaskRunner,
        optimizer: &dyn Optimizer,
        scorer: &Scorer,
        diagnostics: &DiagnosticTables,
        state: impl FnOnce(CheckpointFiles) -> CheckpointState,
    ) -> Result<()> {
        let dir = &self.dir;
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let tag = format!("{tag:08}");
        let names = CheckpointFiles {
            weights: format!("model-{tag}.safetensors"),
            optimizer: format!("optimizer-{tag}.safetensors"),
            scorer: scorer.state().map(|_| format!("scorer-{tag}.safetensors")),
            diagnostics: Some(format!("diagnostics-{tag}.safetensors")),
        };
        task.save_model(&dir.join(&names.weights), &dir.join(files::MODEL_CONFIG))?;
        save_tensors(&optimizer.state()?, &dir.join(&names.optimizer))?;
        if let (Some(state), Some(name)) = (scorer.state(), &names.scorer) {
            save_tensors(&state.to_tensors()?, &dir.join(name))?;
        }
        if let Some(name) = &names.diagnostics {
            diagnostics.save(&dir.join(name))?;
        }
        let mut keep = vec![names.clone()];
        // The committed checkpoint becomes the previous one before the new
        // one is committed, so at every moment one state names complete
        // files.
        let latest = self.state_path();
        if latest.exists() {
            let bytes = std::fs::read(&latest).map_err(io_err(&latest))?;
            isdet_data::io::write_atomic(&self.previous_path(), &bytes)?;
            if let Ok(previous) = serde_json::from_slice::<CheckpointState>(&bytes) {
                keep.push(previous.files());
            }
        }
        write_json_atomic(&latest, &state(names))?;
        self.remove_all_but(&keep)
    }

    /// Removes the parts of every checkpoint but those of `keep`.
    fn remove_all_but(&self, keep: &[CheckpointFiles]) -> Result<()> {
        let dir = &self.dir;
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale =
                PARTS.iter().any(|p| name.starts_with(p)) && !keep.iter().any(|k| k.names(&name));
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// The committed checkpoint's state, with the model, optimiser and
    /// scorer restored from the files it names; when the latest checkpoint
    /// cannot be read, the one before it, with a warning naming the bad
    /// file. Only when neither can be read is it an error, naming both.
    pub fn restore(
        &self,
        task: &dyn TaskRunner,
        optimizer: &mut dyn Optimizer,
        scorer: &mut Scorer,
        device: &Device,
    ) -> Result<CheckpointState> {
        let latest = match self.restore_from(&self.state_path(), task, optimizer, scorer, device) {
            Ok(state) => return Ok(state),
            Err(e) => e,
        };
        let previous = self.previous_path();
        if !previous.exists() {
            return Err(latest);
        }
        log::warn!(
            "the latest checkpoint cannot be read ({latest}); resuming from the one before it"
        );
        self.restore_from(&previous, task, optimizer, scorer, device)
            .map_err(|earlier| TrainerError::Malformed {
                path: self.dir.clone(),
                message: format!(
                    "no checkpoint can be read: the latest: {latest}; the one before it: {earlier}"
                ),
            })
    }

    fn restore_from(
        &self,
        state_path: &Path,
        task: &dyn TaskRunner,
        optimizer: &mut dyn Optimizer,
        scorer: &mut Scorer,
        device: &Device,
    ) -> Result<CheckpointState> {
        let state: CheckpointState = read_json(state_path)?;
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
