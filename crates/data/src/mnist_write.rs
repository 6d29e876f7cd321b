//! A whole mnist-det set on disk: train, val and holdout splits as COCO,
//! and the regime's tags files, made on several threads with the same
//! bytes on any number of them.

use std::path::{Path, PathBuf};

use crate::coco::CocoWriter;
use crate::error::{DataError, Result};
use crate::idx::LabelledImages;
use crate::mnist::{MnistDetConfig, SPLIT_HOLDOUT, SPLIT_TRAIN, SPLIT_VAL, mnist_classes};
use crate::mnist_scene::mnist_det_scene;
use crate::regime_frames::RegimeFrames;
use crate::tags::tags_path;
use crate::types::DetectionSample;

/// The description in every mnist-det annotations file.
const DESCRIPTION: &str = "isdet mnist-det";

/// The files [`write_mnist_det`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MnistDetWritten {
    /// `instances_train.json` (images under `train/`).
    pub train: PathBuf,
    /// `instances_val.json` (images under `val/`).
    pub val: PathBuf,
    /// `instances_holdout.json` (images under `holdout/`), when the
    /// configuration asks for holdout frames.
    pub holdout: Option<PathBuf>,
    /// `instances_train.tags.json`, when a regime knob is on.
    pub train_tags: Option<PathBuf>,
    /// `instances_holdout.tags.json`, when a regime knob is on and there
    /// are holdout frames.
    pub holdout_tags: Option<PathBuf>,
}

/// Writes a mnist-det set under `out`: `config.train` frames under the
/// regime from `train_source`, `config.val` plain scenes from
/// `val_source` (the same whatever the regime), `config.holdout` frames
/// under the regime from `train_source` on their own random stream, and,
/// when a regime knob is on, a tags file beside the train and holdout
/// annotations (a stale one from an earlier regime is removed otherwise).
/// `progress(split, done)` reports the scenes of `split` written so far.
pub fn write_mnist_det(
    out: &Path,
    config: &MnistDetConfig,
    train_source: &LabelledImages,
    val_source: &LabelledImages,
    threads: usize,
    progress: impl Fn(&str, usize) + Sync,
) -> Result<MnistDetWritten> {
    config.validate()?;
    for (split, source) in [("train", train_source), ("val", val_source)] {
        if source.is_empty() {
            return Err(DataError::Config(format!(
                "mnist-det: no digits for the {split} split"
            )));
        }
    }
    let train = RegimeFrames::new(config, train_source, SPLIT_TRAIN, config.train, threads)?;
    let holdout = RegimeFrames::new(config, train_source, SPLIT_HOLDOUT, config.holdout, threads)?;
    let (train_json, train_tags) = write_frames(out, "train", &train, threads, &progress)?;
    let val_scene = |i: usize| Ok(mnist_det_scene(config, val_source, SPLIT_VAL, i as u64));
    let val_json = write_split(out, "val", config.val, threads, val_scene, &progress)?;
    let (holdout_json, holdout_tags) = if holdout.is_empty() {
        (None, None)
    } else {
        let (json, tags) = write_frames(out, "holdout", &holdout, threads, &progress)?;
        (Some(json), tags)
    };
    Ok(MnistDetWritten {
        train: train_json,
        val: val_json,
        holdout: holdout_json,
        train_tags,
        holdout_tags,
    })
}

/// Writes one regime split and, when a knob is on, its tags file.
fn write_frames(
    out: &Path,
    split: &str,
    frames: &RegimeFrames,
    threads: usize,
    progress: &(impl Fn(&str, usize) + Sync),
) -> Result<(PathBuf, Option<PathBuf>)> {
    let json = write_split(
        out,
        split,
        frames.len(),
        threads,
        |i| frames.frame(i),
        progress,
    )?;
    let tags = tags_path(&json);
    if frames.regime_is_off() {
        // A tags file left by an earlier regime would describe other data.
        match std::fs::remove_file(&tags) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(DataError::io(&tags, e));
            }
            _ => return Ok((json, None)),
        }
    }
    frames.tags()?.write(&tags)?;
    Ok((json, Some(tags)))
}

/// Generates `len` scenes on `threads` threads and writes them in order as
/// one COCO split; returns its annotations file.
fn write_split(
    out: &Path,
    split: &str,
    len: usize,
    threads: usize,
    make: impl Fn(usize) -> Result<DetectionSample> + Sync,
    progress: &(impl Fn(&str, usize) + Sync),
) -> Result<PathBuf> {
    let mut writer = CocoWriter::new(out, split, &mnist_classes(), DESCRIPTION)?;
    let mut done = 0;
    writer.add_generated(len, threads, make, |k| {
        done += k;
        progress(split, done);
    })?;
    writer.finish()
}
