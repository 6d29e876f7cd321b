//! The one error type of isdet-trainer.

use std::path::PathBuf;

/// Everything that can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    /// The configuration is invalid; names the field.
    #[error("configuration: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file of the run directory is malformed.
    #[error("{path}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The loss became NaN or infinite.
    #[error(
        "non-finite loss at step {step} (optimiser step {optimiser_step}): samples {ids:?}, non-finite for {bad:?}"
    )]
    NonFiniteLoss {
        /// The sampler step (plans handed out before it).
        step: u64,
        /// Optimiser steps taken before it.
        optimiser_step: u64,
        /// The batch's sample ids.
        ids: Vec<usize>,
        /// The ids whose own loss is not finite.
        bad: Vec<usize>,
    },
    /// The run directory belongs to another configuration.
    #[error(
        "{dir}: holds a run with another configuration ({field} differs); use another directory"
    )]
    ConfigChanged {
        /// The run directory.
        dir: PathBuf,
        /// The first top-level field that differs.
        field: String,
    },
    /// Another process is training in the run directory (it holds
    /// `run.lock`).
    #[error(
        "{dir}: another process is training this run ({holder}); wait for it to end or stop it"
    )]
    Busy {
        /// The run directory.
        dir: PathBuf,
        /// Who holds it: `pid N on HOST`.
        holder: String,
    },
    /// Resuming found a journal that does not replay.
    #[error("{path}: {message}")]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// What did not match.
        message: String,
    },
    /// Data loading failed.
    #[error(transparent)]
    Data(#[from] isdet_data::DataError),
    /// The model failed.
    #[error(transparent)]
    Detector(#[from] isdet_detector::DetectorError),
    /// The sampler refused.
    #[error("sampler: {0}")]
    Sampler(#[from] isdet_sampler::SamplerError),
    /// Evaluation failed.
    #[error(transparent)]
    Eval(#[from] isdet_eval::EvalError),
    /// Scoring failed.
    #[error(transparent)]
    Heuristics(#[from] isdet_heuristics::HeuristicsError),
    /// A tensor operation failed.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// The result type of isdet-trainer.
pub type Result<T> = std::result::Result<T, TrainerError>;

pub(crate) fn io_err(path: &std::path::Path) -> impl Fn(std::io::Error) -> TrainerError + '_ {
    move |source| TrainerError::Io {
        path: path.to_path_buf(),
        source,
    }
}
