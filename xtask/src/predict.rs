//! `cargo xtask predict`: a trained detector on new images.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use isdet_data::{CocoDataset, CocoOptions, Dataset, DetectionSample, ImageFiles};
use isdet_eval::{GroundTruth, GtImage, write_json_atomic};
use isdet_report::draw::{Canvas, Mark};
use isdet_trainer::{DeviceConfig, PredictOptions, Predictions, Predictor};

/// `cargo xtask predict`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("model").required(true).args(["run", "checkpoint"])))]
#[command(group(clap::ArgGroup::new("input").required(true).args(["images", "coco"])))]
pub struct PredictArgs {
    /// A run directory: its final model, or its last checkpoint while it
    /// is unfinished.
    #[arg(long)]
    run: Option<PathBuf>,
    /// A folder holding `model.safetensors` and `model.json` (a run's
    /// `checkpoint/` folder works too).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Image files, or folders of them (their PNG and JPEG files).
    #[arg(long, num_args = 1..)]
    images: Vec<PathBuf>,
    /// A COCO file naming the images (their ids are kept, so the results
    /// can be scored against it with `cargo xtask eval`).
    #[arg(long, requires = "image_dir")]
    coco: Option<PathBuf>,
    /// The folder of the COCO file's images.
    #[arg(long, requires = "coco")]
    image_dir: Option<PathBuf>,
    /// The COCO results file to write.
    #[arg(long, default_value = "predictions.json")]
    out: PathBuf,
    /// Also draw each image with its boxes into this folder (PNG).
    #[arg(long)]
    draw: Option<PathBuf>,
    /// Draw only boxes scoring at least this.
    #[arg(long, default_value_t = 0.3)]
    score_thresh: f64,
    /// Fail on the first unreadable image instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Threads decoding images.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: DeviceConfig,
}

pub fn run(args: PredictArgs) -> anyhow::Result<ExitCode> {
    if !(args.score_thresh.is_finite() && (0.0..=1.0).contains(&args.score_thresh)) {
        bail!("--score-thresh: {} is not in [0, 1]", args.score_thresh);
    }
    let model_dir = args
        .run
        .as_ref()
        .or(args.checkpoint.as_ref())
        .context("no model")?;
    let device = args.device.open()?;
    let coco = match (&args.coco, &args.image_dir) {
        (Some(json), Some(dir)) => Some(CocoDataset::open(json, dir, CocoOptions::default())?),
        _ => None,
    };
    let predictor = Predictor::open(
        model_dir,
        coco.as_ref().map(|c| c.class_names()),
        &device,
        crate::kernels_from_env(),
    )?;
    let options = PredictOptions {
        batch_size: args.batch_size.max(1),
        workers: args.workers.max(1),
        ..PredictOptions::default()
    };
    let (found, names) = match coco {
        Some(set) => {
            let names: Vec<PathBuf> = (0..set.len()).filter_map(|i| set.image_path(i)).collect();
            let found = predict(&predictor, set, &options, args.strict)?;
            (found, names)
        }
        None => {
            let set = ImageFiles::new(&args.images, predictor.classes().clone())?;
            let names: Vec<PathBuf> = (0..set.len())
                .filter_map(|i| set.path(i).map(Path::to_path_buf))
                .collect();
            let found = predict(&predictor, set, &options, args.strict)?;
            write_image_list(&args.out, &found, &names, &predictor)?;
            (found, names)
        }
    };
    isdet_eval::write_results(&args.out, &found.results)?;
    if let Some(dir) = &args.draw {
        draw_all(dir, &found, &names, &predictor, args.score_thresh)?;
    }
    eprintln!(
        "{} images predicted, {} skipped; {} detections in {}{}",
        found.images.len(),
        found.skipped.len(),
        found.results.len(),
        args.out.display(),
        args.draw
            .as_ref()
            .map(|d| format!("; drawings in {}", d.display()))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

fn predict<D>(
    predictor: &Predictor,
    set: D,
    options: &PredictOptions,
    strict: bool,
) -> anyhow::Result<Predictions>
where
    D: Dataset<Sample = DetectionSample> + 'static,
{
    let bar = crate::data::progress(set.len() as u64, "predict");
    let found = predictor.predict(set, options, &mut |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    // The loader's message names the file.
    for (_, why) in &found.skipped {
        if strict {
            bail!("{why} (--strict)");
        }
        eprintln!("skipped: {why}");
    }
    Ok(found)
}

/// `<out>.images.json`: the predicted images as a COCO file without
/// annotations (ids, file names, sizes, and the training set's
/// categories), so the results' image ids can be read back to files and
/// scored by any COCO tool.
fn write_image_list(
    out: &Path,
    found: &Predictions,
    names: &[PathBuf],
    predictor: &Predictor,
) -> anyhow::Result<()> {
    let classes = predictor.classes();
    let mut list = GroundTruth::new(
        classes
            .category_ids()
            .iter()
            .copied()
            .zip(classes.names().iter().cloned()),
    );
    for image in &found.images {
        list.images.push(GtImage {
            id: image.image_id,
            width: image.size.0 as u32,
            height: image.size.1 as u32,
            file_name: names[image.index].display().to_string(),
        });
    }
    let path = out.with_extension("images.json");
    write_json_atomic(&path, &list)?;
    Ok(())
}

/// One PNG per predicted image, named after its file, with the boxes
/// scoring at least `threshold`.
fn draw_all(
    dir: &Path,
    found: &Predictions,
    names: &[PathBuf],
    predictor: &Predictor,
    threshold: f64,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let classes = predictor.classes();
    let mut used = HashSet::new();
    for image in &found.images {
        let source = &names[image.index];
        let pixels = isdet_data::io::read_image(source)?;
        let marks: Vec<Mark> = found
            .results
            .iter()
            .filter(|r| r.image_id == image.image_id && r.score >= threshold)
            .map(|r| Mark::detection(r, classes))
            .collect();
        let mut canvas = Canvas::from_image(&pixels);
        canvas.draw(&marks)?;
        let stem = source
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| image.image_id.to_string());
        let name = if used.insert(stem.clone()) {
            format!("{stem}.png")
        } else {
            format!("{stem}-{}.png", image.image_id)
        };
        canvas.save(&dir.join(&name))?;
    }
    Ok(())
}
