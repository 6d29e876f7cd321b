//! The one error type of `isdet-detector`.

use std::path::PathBuf;

/// Everything that can go wrong while building, running, training or
/// saving a model.
#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    /// A tensor operation failed (shape mismatch, device error, …).
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// A model or optimiser configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint does not fit the model it is loaded into.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What does not fit (names the tensor and both shapes).
        message: String,
    },
    /// Data handed to the model is invalid (e.g. a box with a class index
    /// beyond the model's classes).
    #[error("invalid input: {0}")]
    Input(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = DetectorError> = std::result::Result<T, E>;
