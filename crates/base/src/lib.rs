//! # isdet-base
//!
//! The few small pieces that several isdet crates need, kept once here so
//! that no crate copies them: seeded generators derived from a run seed and
//! the coordinates of a draw ([`seed`]), the range check of a configuration
//! parameter ([`require`]), and atomic file writes ([`write_atomic`]). It
//! depends on nothing else in the workspace.
//!
//! ```
//! use isdet_base::{require, seed};
//! use rand::Rng as _;
//!
//! // Same parts, same draws: a generator is a pure function of its parts.
//! let a: u32 = seed::rng_for(&[7, 1, 42]).random();
//! let b: u32 = seed::rng_for(&[7, 1, 42]).random();
//! assert_eq!(a, b);
//! let ok: Result<(), isdet_base::InvalidParameter> = require(0.3 > 0.0, "budget", 0.3, "(0, 1]");
//! assert!(ok.is_ok());
//! ```
#![deny(missing_docs)]

use std::io::Write;
use std::path::Path;

pub mod seed;

/// A configuration parameter outside its valid range.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[error("{name} = {value} is invalid: expected {expected}")]
pub struct InvalidParameter {
    /// The parameter's name, as spelled in the configuration.
    pub name: &'static str,
    /// The rejected value.
    pub value: f64,
    /// The valid range, in words.
    pub expected: &'static str,
}

/// `Err(InvalidParameter)` for `name` unless `valid` holds, as any error
/// type that holds an [`InvalidParameter`] (each crate's own enum).
pub fn require<E: From<InvalidParameter>>(
    valid: bool,
    name: &'static str,
    value: f64,
    expected: &'static str,
) -> Result<(), E> {
    if valid {
        Ok(())
    } else {
        Err(E::from(InvalidParameter {
            name,
            value,
            expected,
        }))
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory (created if missing), then renamed over the target. A reader
/// never sees a half-written file, and a killed process leaves the old file
/// (or none).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.flush()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.json"]);
        // A directory is not replaced by a file, and the temporary is gone.
        assert!(write_atomic(path.parent().unwrap(), b"x").is_err());
        assert!(path.parent().unwrap().is_dir());
        let strays: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(strays.is_empty(), "{strays:?}");
    }

    #[test]
    fn require_names_the_parameter() {
        let err: InvalidParameter =
            require(false, "budget", 1.5, "a fraction in (0, 1]").unwrap_err();
        assert_eq!(err.name, "budget");
        assert_eq!(
            err.to_string(),
            "budget = 1.5 is invalid: expected a fraction in (0, 1]"
        );
    }
}
