//! Classification: the pre-activation ResNet on MNIST-style images, scored
//! by top-1 accuracy — the track that re-tests the budgeted-training study
//! (Arazo et al., BMVC 2021) on the same engine.

use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use isdet_data::{ClassificationPipeline, ClsAugment, ClsTarget, Dataset, Mixing};
use isdet_detector::{
    Classifier, ClassifierConfig, Kernels, ParamStore, class_probabilities, soft_cross_entropy,
};
use isdet_heuristics::{ForwardOutputs, Scorer, Targets};

use crate::config::{AugmentConfig, RunConfig, Task};
use crate::data;
use crate::error::{Result, TrainerError};
use crate::records::PhaseTimes;
use crate::task::{Evaluation, Forward, TaskRunner, load_batch};

type ClassificationSet = crate::data::ClassificationData;

/// What scoring needs from the last forward pass.
struct LastBatch {
    losses: Vec<f32>,
    probs: Tensor,
    soft: Tensor,
    sources: Vec<Vec<(usize, f32)>>,
}

pub(crate) struct ClassificationTask {
    device: Device,
    model: Classifier,
    classes: usize,
    train: ClassificationPipeline<ClassificationSet>,
    /// The training images un-augmented (RHO-LOSS's irreducible losses).
    train_plain: ClassificationPipeline<ClassificationSet>,
    val: ClassificationPipeline<ClassificationSet>,
    train_len: usize,
    val_len: usize,
    eval_batch: usize,
    last: Option<LastBatch>,
}

/// The augmentation recipe of `config` (Arazo et al.'s settings: mixup
/// α = 0.3, RICAP β = 0.3; CutMix α = 1 as in Yun et al.; cutout of half
/// the image side; RandAugment N = 2, M = 4), each with the standard crop
/// + flip.
pub(crate) fn cls_augment(
    config: AugmentConfig,
    size: usize,
    channels: usize,
) -> Result<ClsAugment> {
    let standard = ClsAugment::standard(size, channels);
    let mixed = |mixing| ClsAugment {
        mixing,
        mix_prob: 1.0,
        ..standard.clone()
    };
    Ok(match config {
        AugmentConfig::None => ClsAugment::eval(size, channels),
        AugmentConfig::Standard => standard,
        AugmentConfig::Mixup => mixed(Mixing::Mixup { alpha: 0.3 }),
        AugmentConfig::Cutmix => mixed(Mixing::Cutmix { alpha: 1.0 }),
        AugmentConfig::Ricap => mixed(Mixing::Ricap { beta: 0.3 }),
        AugmentConfig::Cutout => ClsAugment {
            cutout: size / 2,
            ..standard
        },
        AugmentConfig::RandAugment => ClsAugment {
            rand_augment: Some(isdet_data::RandAugment::ARAZO),
            ..standard
        },
        // Refused at load; a configuration built in code gets the same error.
        other => return Err(other.misfit(Task::Classification)),
    })
}

impl ClassificationTask {
    pub(crate) fn new(config: &RunConfig, device: &Device, kernels: Kernels) -> Result<Self> {
        // Refused before any data is read, not at the first scored batch.
        if config.heuristic.needs_boxes() {
            return Err(TrainerError::Config(format!(
                "heuristic: `{}` is min(precision, recall) of detected boxes, a detection \
                 heuristic; a classifier has no boxes (use loss, p_sgd or threshold_closeness)",
                config.heuristic.name()
            )));
        }
        let (train, val) = data::open_classification(&config.data)?;
        let classes = train.class_names().len();
        let size = config.model.input_size;
        let channels = train.get(0)?.image.channels;
        // The preset was checked at load (only `small` is a classifier).
        let model_config = ClassifierConfig::small(channels, classes);
        let model = Classifier::new(model_config, config.seed, device)?.with_kernels(kernels);
        let augment = cls_augment(config.augment, size, channels)?;
        let eval = ClsAugment::eval(size, channels);
        let train_plain = ClassificationPipeline::new(train.clone(), eval, config.seed)?;
        Ok(ClassificationTask {
            device: device.clone(),
            model,
            classes,
            train_len: train.len(),
            val_len: val.len(),
            train: ClassificationPipeline::new(train, augment, config.seed)?,
            train_plain,
            val: ClassificationPipeline::new(val, ClsAugment::eval(size, channels), config.seed)?,
            eval_batch: config.eval.batch_size,
            last: None,
        })
    }

    fn soft_labels(&self, targets: &[ClsTarget]) -> Result<Tensor> {
        let rows: Vec<f32> = targets
            .iter()
            .flat_map(|t| t.soft_label(self.classes))
            .collect();
        Ok(Tensor::from_vec(
            rows,
            (targets.len(), self.classes),
            &self.device,
        )?)
    }

    /// Loads `ids` of `epoch` (augmented for training, centred only for a
    /// measurement) and runs the forward pass and the loss in training or
    /// evaluation mode; remembers what scoring needs.
    fn forward_with(
        &mut self,
        ids: &[usize],
        epoch: u64,
        weights: Option<&[f32]>,
        train: bool,
        time: &mut PhaseTimes,
    ) -> Result<Forward> {
        let t = Instant::now();
        let pipeline = if train {
            &self.train
        } else {
            &self.train_plain
        };
        let (images, targets) = load_batch(pipeline, ids, epoch, &self.device)?;
        let soft = self.soft_labels(&targets)?;
        time.data += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let logits = self.model.forward(&images, train)?;
        let per_sample = soft_cross_entropy(&logits, &soft)?;
        let b = ids.len();
        let w = match weights {
            Some(w) => Tensor::from_slice(w, b, &self.device)?,
            None => Tensor::ones(b, candle_core::DType::F32, &self.device)?,
        };
        // The weighted mean over the batch; weights have mean 1 (or are 1).
        let objective = (per_sample.mul(&w)?.sum_all()? / b as f64)?;
        let losses = per_sample.detach().to_vec1::<f32>()?;
        let probs = class_probabilities(&logits)?;
        time.forward += t.elapsed().as_secs_f64();
        let sources = targets
            .iter()
            .map(|t| t.parts.iter().map(|p| (p.sample, p.weight)).collect())
            .collect();
        self.last = Some(LastBatch {
            losses: losses.clone(),
            probs,
            soft,
            sources,
        });
        Ok(Forward {
            objective,
            per_sample: losses,
        })
    }
}

impl TaskRunner for ClassificationTask {
    fn params(&self) -> &ParamStore {
        self.model.params()
    }

    fn train_len(&self) -> usize {
        self.train_len
    }

    fn forward(
        &mut self,
        ids: &[usize],
        epoch: u64,
        weights: Option<&[f32]>,
        time: &mut PhaseTimes,
    ) -> Result<Forward> {
        self.forward_with(ids, epoch, weights, true, time)
    }

    fn forward_plain(&mut self, ids: &[usize], time: &mut PhaseTimes) -> Result<Forward> {
        self.forward_with(ids, 0, None, false, time)
    }

    fn score(&mut self, scorer: &mut Scorer, _ids: &[usize]) -> Result<(Vec<usize>, Vec<f32>)> {
        let last = self
            .last
            .as_ref()
            .ok_or_else(|| TrainerError::Config("scoring before any forward pass".into()))?;
        let outputs = ForwardOutputs::classification(&last.losses, &last.probs)
            .with_targets(Targets::Soft(&last.soft));
        let sources: Vec<&[(usize, f32)]> = last.sources.iter().map(|s| &s[..]).collect();
        // A mixed image is credited to each of its sources by mixing weight
        // (docs/methods.md), not to the id it was loaded under.
        let credited = scorer.score_mixed(&sources, &outputs)?;
        Ok(credited.into_iter().unzip())
    }

    fn evaluate(&mut self) -> Result<Evaluation> {
        let mut scores = Vec::with_capacity(self.val_len * self.classes);
        let mut labels = Vec::with_capacity(self.val_len);
        let ids: Vec<usize> = (0..self.val_len).collect();
        for chunk in ids.chunks(self.eval_batch) {
            let (images, targets) = load_batch(&self.val, chunk, 0, &self.device)?;
            let logits = self.model.forward(&images, false)?;
            scores.extend(logits.flatten_all()?.to_vec1::<f32>()?);
            labels.extend(targets.iter().map(|t| t.parts[0].label));
        }
        let top1 = isdet_eval::top1_accuracy(&scores, self.classes, &labels)?;
        Ok(Evaluation {
            metrics: [("top1".to_string(), top1)].into_iter().collect(),
            detections: None,
        })
    }

    fn primary_metric(&self) -> &'static str {
        "top1"
    }

    fn name(&self) -> &'static str {
        "classification"
    }

    fn save_model(&self, weights: &Path, config: &Path) -> Result<()> {
        Ok(isdet_detector::checkpoint::save(
            self.model.params(),
            self.model.config(),
            weights,
            config,
        )?)
    }

    fn eval_losses(&mut self, ids: &[usize]) -> Result<Vec<f32>> {
        let mut losses = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(self.eval_batch) {
            let (images, targets) = load_batch(&self.train_plain, chunk, 0, &self.device)?;
            let soft = self.soft_labels(&targets)?;
            let logits = self.model.forward(&images, false)?;
            losses.extend(soft_cross_entropy(&logits, &soft)?.to_vec1::<f32>()?);
        }
        Ok(losses)
    }
}
