//! The one error type of isdet-report.

use std::path::PathBuf;

/// What can go wrong reading runs, writing a report or running a sweep.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A sweep specification or its base configuration is not valid.
    #[error("{}: {message}", path.display())]
    Spec {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The runs cannot be reported on as asked.
    #[error("{0}")]
    Runs(String),
    /// A plot could not be drawn or encoded.
    #[error("drawing {what}: {message}")]
    Plot {
        /// The plot.
        what: String,
        /// Why.
        message: String,
    },
    /// A statistic could not be computed.
    #[error("{what}: {source}")]
    Eval {
        /// The statistic.
        what: String,
        /// Why.
        source: isdet_eval::EvalError,
    },
    /// A sweep specification or its base configuration could not be read
    /// (the trainer's error names the file).
    #[error(transparent)]
    Config(#[from] isdet_trainer::TrainerError),
    /// A run of a sweep failed.
    #[error("{}: {source}", dir.display())]
    Train {
        /// The run directory.
        dir: PathBuf,
        /// The trainer's error.
        source: isdet_trainer::TrainerError,
    },
}

/// The result type of isdet-report.
pub type Result<T> = std::result::Result<T, ReportError>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}
