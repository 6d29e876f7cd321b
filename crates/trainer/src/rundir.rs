//! The run directory: its files (names from [`crate::records::files`]),
//! the configuration check that keeps one directory to one configuration,
//! and the append-only and truncating writes of its logs.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use isdet_eval::write_json_atomic;

use crate::config::RunConfig;
use crate::error::{Result, TrainerError, io_err};
use crate::records::files;

/// The files of a run directory.
pub(crate) struct RunFiles {
    pub(crate) dir: PathBuf,
}

impl RunFiles {
    pub(crate) fn config(&self) -> PathBuf {
        self.dir.join(files::CONFIG)
    }
    pub(crate) fn metrics(&self) -> PathBuf {
        self.dir.join(files::METRICS)
    }
    pub(crate) fn journal(&self) -> PathBuf {
        self.dir.join(files::JOURNAL)
    }
    pub(crate) fn summary(&self) -> PathBuf {
        self.dir.join(files::SUMMARY)
    }
    pub(crate) fn val_annotations(&self) -> PathBuf {
        self.dir.join(files::VAL_ANNOTATIONS)
    }
}

/// Writes the configuration into a new run directory, or checks that an
/// existing one was made by the same configuration (naming the first field
/// that differs).
pub(crate) fn check_config(files: &RunFiles, config: &RunConfig) -> Result<()> {
    let path = files.config();
    if path.exists() {
        let old: serde_json::Value = read_json(&path)?;
        // Through text, as the file was: f32 fields then compare equal.
        let new: serde_json::Value = serde_json::to_string(config)
            .and_then(|t| serde_json::from_str(&t))
            .map_err(|e| TrainerError::Config(e.to_string()))?;
        if old != new {
            let field = match (old.as_object(), new.as_object()) {
                (Some(a), Some(b)) => b
                    .iter()
                    .find(|(k, v)| a.get(*k) != Some(v))
                    .map(|(k, _)| k.clone())
                    .or_else(|| a.keys().find(|k| !b.contains_key(*k)).cloned())
                    .unwrap_or_default(),
                _ => String::new(),
            };
            return Err(TrainerError::ConfigChanged {
                dir: files.dir.clone(),
                field,
            });
        }
    } else {
        write_json_atomic(&path, config)?;
    }
    Ok(())
}

/// Reads and parses a JSON file of the run directory.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text).map_err(|e| TrainerError::Malformed {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Cuts `path` to `len` bytes (creating it when missing).
pub(crate) fn truncate(path: &Path, len: u64) -> Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)
        .map_err(io_err(path))?;
    file.set_len(len).map_err(io_err(path))
}

/// Appends one JSON line and flushes it to disk.
pub(crate) fn append_line<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut line = serde_json::to_vec(value).map_err(|e| TrainerError::Malformed {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(path))?;
    file.write_all(&line).map_err(io_err(path))?;
    file.sync_data().map_err(io_err(path))
}
