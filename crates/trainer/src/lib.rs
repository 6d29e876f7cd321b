//! # isdet-trainer
//!
//! The budgeted training loop of isdet. One run is one [`RunConfig`] (a
//! JSON or TOML file plus overrides): task, data, model, sampling strategy,
//! heuristic, budget, schedule, optimiser, augmentation, evaluation, seed
//! and device. [`train`] runs it in a run directory:
//!
//! plan (sampler) → load (data) → forward with per-sample losses (detector)
//! → one score per sample from the same pass (heuristics) → record in the
//! score table → weighted backward → optimiser step → budget-aware learning
//! rate → periodic COCO evaluation (eval),
//!
//! with wall-clock split into data, forward, backward, scoring, sampling and
//! evaluation, every forward and backward pass counted, checkpoints that a
//! killed run resumes from exactly, and `summary.json` /
//! `predictions.json` / `val_annotations.json` that anyone can rescore with
//! pycocotools. The files are described in `docs/run-directory.md`.
//!
//! ```no_run
//! use isdet_trainer::{RunConfig, RunOutcome, TrainOptions, train};
//!
//! let config = RunConfig::load("specs/synth-uniform.toml".as_ref(), &["budget=0.3".into()])?;
//! match train(&config, "runs/uniform-30".as_ref(), &TrainOptions::default())? {
//!     RunOutcome::Finished(summary) | RunOutcome::AlreadyFinished(summary) => {
//!         println!("AP {}", summary.metrics["AP"]);
//!     }
//!     RunOutcome::Stopped { step } => println!("stopped at step {step}"),
//! }
//! # Ok::<(), isdet_trainer::TrainerError>(())
//! ```
#![deny(missing_docs)]

mod checkpoint;
mod classification;
mod config;
mod data;
mod detection;
mod diagnostics;
mod error;
mod irreducible;
mod journal;
mod lock;
mod lr;
mod mnist_det;
mod predict;
mod records;
mod run;
mod rundir;
mod spending;
mod task;

pub use config::{
    AugmentConfig, CocoFiles, DataConfig, DeviceConfig, EvalConfig, FaultInjection,
    IrreducibleConfig, LrConfig, LrSchedule, ModelConfig, NonFinitePolicy, OptimizerConfig, Preset,
    RunConfig, Task, read_config_value,
};
pub use data::{
    ClassificationData, DetectionSet, open as open_detection_data,
    open_classification as open_classification_data,
};
pub use error::{Result, TrainerError};
pub use lock::run_lock_holder;
pub use lr::learning_rate;
pub use predict::{PredictOptions, PredictedImage, Predictions, Predictor};
pub use records::{
    CheckpointState, Diagnostics, IrreducibleCost, IrreducibleLosses, MetricsRecord, PhaseTimes,
    SCORE_QUANTILES, SamplingRecord, ScoreSnapshot, Summary, files,
};
pub use run::{RunOutcome, TrainOptions, train};
pub use spending::write_sampling_record;
