//! The one error type of isdet-eval.

use std::path::PathBuf;

/// Everything that can go wrong while evaluating.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A JSON file is not what it should be.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line and column where known.
        message: String,
    },
    /// The COCO evaluator refused the input.
    #[error("COCO evaluation: {0}")]
    Coco(String),
    /// A detection or ground-truth record is invalid.
    #[error("{what}: {message}")]
    Invalid {
        /// Which record (e.g. "detection 17", "image 4").
        what: String,
        /// What is wrong with it.
        message: String,
    },
    /// Inputs whose lengths must agree do not.
    #[error("{what}: expected {expected}, found {found}")]
    LengthMismatch {
        /// What was counted.
        what: &'static str,
        /// The length expected.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// A statistic needs more data than it was given.
    #[error("{0}")]
    NotEnoughData(String),
}

/// The result type of isdet-eval.
pub type Result<T> = std::result::Result<T, EvalError>;
