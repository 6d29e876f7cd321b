//! Running a trained detector on images: the model of a run directory or
//! a checkpoint folder, the images decoded and letterboxed on loader
//! workers exactly as validation images are in training, and COCO results
//! out. An image that cannot be read costs only itself: it is named and
//! counted, and the rest are predicted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};
use isdet_data::{
    BatchRequest, ClassNames, Dataset, DetAugment, DetTarget, DetectionPipeline, DetectionSample,
    Loader, LoaderConfig,
};
use isdet_detector::checkpoint::{load_config, load_weights};
use isdet_detector::{CocoResult, DecodeConfig, Fcos, FcosConfig, Kernels};

use crate::config::{DataConfig, RunConfig};
use crate::error::{Result, TrainerError};
use crate::records::{CheckpointState, files};
use crate::rundir::read_json;

/// A trained detector, ready to predict.
pub struct Predictor {
    model: Fcos,
    device: Device,
    classes: ClassNames,
}

/// How [`Predictor::predict`] runs.
#[derive(Clone, Debug)]
pub struct PredictOptions {
    /// Images per forward pass.
    pub batch_size: usize,
    /// Loader threads decoding and letterboxing images.
    pub workers: usize,
    /// Detections scoring below this are dropped (0.05, as in evaluation).
    pub score_threshold: f32,
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            batch_size: 16,
            workers: 2,
            score_threshold: DecodeConfig::default().score_threshold,
        }
    }
}

/// One image that was predicted.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictedImage {
    /// Its index in the input set.
    pub index: usize,
    /// The image id its results carry.
    pub image_id: u64,
    /// Width and height in pixels.
    pub size: (usize, usize),
}

/// What [`Predictor::predict`] found.
#[derive(Clone, Debug, Default)]
pub struct Predictions {
    /// Every detection, in image order, boxes in original image pixels.
    pub results: Vec<CocoResult>,
    /// The images predicted, in input order.
    pub images: Vec<PredictedImage>,
    /// The images that could not be read: index in the input set, and why
    /// (the message names the file).
    pub skipped: Vec<(usize, String)>,
}

impl Predictor {
    /// The model in `dir`: a run directory (its final model, or while it
    /// is unfinished its last checkpoint), a run's `checkpoint/` folder, or
    /// any folder holding `model.safetensors` and `model.json`.
    ///
    /// The class names and category ids are the training set's, from the
    /// run's `config.json` (in `dir` or the folder above it); `fallback`
    /// gives them when there is none (e.g. a COCO file's categories).
    pub fn open(
        dir: &Path,
        fallback: Option<&ClassNames>,
        device: &Device,
        kernels: Kernels,
    ) -> Result<Self> {
        let (weights, model_json) = model_files(dir)?;
        let config: FcosConfig = load_config(&model_json)?;
        let classes = match run_config_near(dir) {
            Some(path) => training_classes(&RunConfig::load(&path, &[])?)?,
            None => fallback.cloned().ok_or_else(|| {
                TrainerError::Config(format!(
                    "{}: no config.json beside the model to take the class names from; \
                     give the images as a COCO file, whose categories are used",
                    dir.display()
                ))
            })?,
        };
        if classes.len() != config.num_classes {
            return Err(TrainerError::Config(format!(
                "{}: the model has {} classes but its class names are {}",
                model_json.display(),
                config.num_classes,
                classes.len()
            )));
        }
        let model = Fcos::new(config, 0, device)?.with_kernels(kernels);
        load_weights(model.params(), &weights)?;
        Ok(Predictor {
            model,
            device: device.clone(),
            classes,
        })
    }

    /// The training set's class names and category ids.
    pub fn classes(&self) -> &ClassNames {
        &self.classes
    }

    /// Predicts every image of `images`, calling `progress` with the
    /// number of images handled (predicted or skipped) after each batch.
    pub fn predict<D>(
        &self,
        images: D,
        options: &PredictOptions,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Predictions>
    where
        D: Dataset<Sample = DetectionSample> + 'static,
    {
        let size = self.model.config().input_size;
        let len = images.len();
        let pipeline = Arc::new(DetectionPipeline::new(images, DetAugment::eval(size), 0)?);
        // One image per request, so that a bad file fails alone; the
        // forward pass batches the good ones.
        let requests = (0..len).map(|i| BatchRequest {
            epoch: 0,
            ids: vec![i],
        });
        let workers = options.workers.max(1);
        let loader = Loader::new(
            pipeline,
            requests,
            LoaderConfig {
                workers,
                depth: 2 * workers + options.batch_size,
            },
        );
        let decode = DecodeConfig {
            score_threshold: options.score_threshold,
            ..DecodeConfig::default()
        };
        let mut out = Predictions::default();
        let mut pending = Pending::default();
        for (index, batch) in loader.enumerate() {
            match batch {
                Ok(batch) => pending.push(index, batch.images, batch.targets),
                Err(e) => out.skipped.push((index, e.to_string())),
            }
            if pending.len() >= options.batch_size.max(1) || index + 1 == len {
                self.flush(&mut pending, size, &decode, &mut out)?;
                progress(index + 1);
            }
        }
        Ok(out)
    }

    fn flush(
        &self,
        pending: &mut Pending,
        size: usize,
        decode: &DecodeConfig,
        out: &mut Predictions,
    ) -> Result<()> {
        if pending.indices.is_empty() {
            return Ok(());
        }
        let n = pending.indices.len();
        let pixels = std::mem::take(&mut pending.pixels);
        let x = Tensor::from_vec(pixels, (n, 3, size, size), &self.device)?;
        let head = self.model.forward(&x, false)?;
        let ids: Vec<u64> = pending.targets.iter().map(|t| t.image_id).collect();
        let letterboxes: Vec<_> = pending.targets.iter().map(|t| t.letterbox).collect();
        let sizes: Vec<_> = pending.targets.iter().map(|t| t.original_size).collect();
        out.results.extend(self.model.detect_coco(
            &head,
            &ids,
            &letterboxes,
            &sizes,
            decode,
            &self.classes,
        )?);
        for (index, t) in pending.indices.drain(..).zip(pending.targets.drain(..)) {
            out.images.push(PredictedImage {
                index,
                image_id: t.image_id,
                size: t.original_size,
            });
        }
        Ok(())
    }
}

/// Letterboxed images waiting for a forward pass.
#[derive(Default)]
struct Pending {
    indices: Vec<usize>,
    pixels: Vec<f32>,
    targets: Vec<DetTarget>,
}

impl Pending {
    fn push(&mut self, index: usize, pixels: Vec<f32>, targets: Vec<DetTarget>) {
        self.indices.push(index);
        self.pixels.extend(pixels);
        self.targets.extend(targets);
    }

    fn len(&self) -> usize {
        self.indices.len()
    }
}

/// The weights and model configuration in `dir` (see [`Predictor::open`]).
fn model_files(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let final_model = (
        dir.join(files::MODEL_WEIGHTS),
        dir.join(files::MODEL_CONFIG),
    );
    if final_model.0.is_file() && final_model.1.is_file() {
        return Ok(final_model);
    }
    let checkpoint = if dir.join(files::STATE).is_file() {
        dir.to_path_buf()
    } else {
        dir.join(files::CHECKPOINT_DIR)
    };
    let state_path = checkpoint.join(files::STATE);
    if state_path.is_file() {
        let state: CheckpointState = read_json(&state_path)?;
        return Ok((
            checkpoint.join(state.weights),
            checkpoint.join(files::MODEL_CONFIG),
        ));
    }
    Err(TrainerError::Config(format!(
        "{}: no model here (neither model.safetensors with model.json, nor a checkpoint)",
        dir.display()
    )))
}

/// The run configuration in `dir` or, for a checkpoint folder, the run
/// directory above it.
fn run_config_near(dir: &Path) -> Option<PathBuf> {
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join(files::CONFIG))
        .find(|p| p.is_file())
}

/// The class names and category ids of a detection run's training set.
fn training_classes(config: &RunConfig) -> Result<ClassNames> {
    match &config.data {
        DataConfig::Synth { .. } => Ok(ClassNames::new(
            isdet_data::SYNTH_CLASSES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )),
        DataConfig::Coco {
            train_json,
            train_images,
            ..
        } => {
            let set = isdet_data::CocoDataset::open(
                train_json,
                train_images,
                isdet_data::CocoOptions::default(),
            )?;
            Ok(set.class_names().clone())
        }
        DataConfig::MnistDet { .. } => Ok(isdet_data::mnist_classes()),
        DataConfig::Idx { .. } => Err(TrainerError::Config(
            "data: a classification run has no detector to predict with".into(),
        )),
    }
}
