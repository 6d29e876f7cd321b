//! Detection: the FCOS-style detector on a COCO-style dataset, scored by
//! COCO box AP.

use std::path::Path;
use std::time::Instant;

use candle_core::Device;
use isdet_data::{DetAugment, DetTarget, DetectionPipeline};
use isdet_detector::{DecodeConfig, Fcos, FcosConfig, Kernels, LossOutput, ParamStore, fcos_loss};
use isdet_eval::GroundTruth;
use isdet_heuristics::{ForwardOutputs, Scorer, Targets};

use crate::config::{AugmentConfig, RunConfig, Task};
use crate::data::{self, DetectionSet};
use crate::error::{Result, TrainerError};
use crate::records::PhaseTimes;
use crate::task::{Evaluation, Forward, TaskRunner, load_batch};

mod boxes;
use boxes::KeptBoxes;

pub(crate) struct DetectionTask {
    device: Device,
    model: Fcos,
    train: DetectionPipeline<DetectionSet>,
    val: DetectionPipeline<DetectionSet>,
    val_len: usize,
    train_len: usize,
    gt: GroundTruth,
    eval_batch: usize,
    last: Option<(LossOutput, Vec<i64>)>,
    /// Whether the run's heuristic reads boxes (sufficiency): only then
    /// does a forward pass keep `boxes`.
    keep_boxes: bool,
    /// The last batch's head outputs and objects, for decoding.
    boxes: Option<KeptBoxes>,
    /// The training images letterboxed only, as validation sees them: what
    /// a measurement (a sufficiency refresh) forwards.
    plain: DetectionPipeline<DetectionSet>,
}

impl DetectionTask {
    /// The task of `config`; writes the validation ground truth to
    /// `val_annotations`.
    pub(crate) fn new(
        config: &RunConfig,
        device: &Device,
        kernels: Kernels,
        val_annotations: &Path,
    ) -> Result<Self> {
        let (train, val) = data::open_or_make(&config.data)?;
        let classes = train.class_names().len();
        let size = config.model.input_size;
        let model = Fcos::new(
            FcosConfig::preset(config.model.preset.name(), classes, size)?,
            config.seed,
            device,
        )?
        .with_kernels(kernels);
        let augment = match config.augment {
            AugmentConfig::Train => DetAugment::train(size),
            AugmentConfig::Light => DetAugment {
                hflip: 0.5,
                colour_jitter: 0.2,
                ..DetAugment::eval(size)
            },
            AugmentConfig::None => DetAugment::eval(size),
            // Refused at load; a configuration built in code gets the same error.
            other => return Err(other.misfit(Task::Detection)),
        };
        let gt = data::ground_truth(&val)?;
        gt.write(val_annotations)?;
        Ok(DetectionTask {
            device: device.clone(),
            model,
            train_len: train.len(),
            val_len: val.len(),
            plain: DetectionPipeline::new(train.clone(), DetAugment::eval(size), config.seed)?,
            train: DetectionPipeline::new(train, augment, config.seed)?,
            val: DetectionPipeline::new(val, DetAugment::eval(size), config.seed)?,
            gt,
            eval_batch: config.eval.batch_size,
            last: None,
            keep_boxes: config.heuristic.needs_boxes(),
            boxes: None,
        })
    }

    /// Loads `ids` of `epoch` (augmented for training, letterboxed only
    /// for a measurement) and runs the forward pass and the loss, in
    /// training mode (BatchNorm on batch statistics, updating its running
    /// ones) or evaluation mode; remembers what scoring needs.
    fn forward_with(
        &mut self,
        ids: &[usize],
        epoch: u64,
        weights: Option<&[f32]>,
        train: bool,
        time: &mut PhaseTimes,
    ) -> Result<Forward> {
        let t = Instant::now();
        let pipeline = if train { &self.train } else { &self.plain };
        let (images, found) = load_batch(pipeline, ids, epoch, &self.device)?;
        let boxes: Vec<&[isdet_data::Annotation]> = found
            .iter()
            .map(|t: &DetTarget| &t.annotations[..])
            .collect();
        let targets = self.model.targets(&boxes)?;
        time.data += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let out = self.model.forward(&images, train)?;
        let loss = fcos_loss(&out, &targets, weights)?;
        time.forward += t.elapsed().as_secs_f64();
        let forward = Forward {
            objective: loss.objective.clone(),
            per_sample: loss.per_image.clone(),
        };
        self.last = Some((loss, targets.labels));
        if self.keep_boxes {
            self.boxes = Some(KeptBoxes::new(&out, &found));
        }
        Ok(forward)
    }
}

impl TaskRunner for DetectionTask {
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

    fn score(&mut self, scorer: &mut Scorer, ids: &[usize]) -> Result<(Vec<usize>, Vec<f32>)> {
        let (loss, labels) = self
            .last
            .as_ref()
            .ok_or_else(|| TrainerError::Config("scoring before any forward pass".into()))?;
        let mut outputs = ForwardOutputs::detection(
            &loss.per_image,
            &loss.parts,
            &loss.probs,
            &loss.location_mask,
        )
        .with_targets(Targets::LocationLabels(labels));
        let heuristic = scorer.config().heuristic;
        let decoded = boxes::decode_for(&heuristic, self.boxes.as_ref(), &self.model)?;
        let images = decoded.as_ref().map(|d| d.images());
        if let Some(images) = &images {
            outputs = outputs.with_boxes(images);
        }
        Ok((ids.to_vec(), scorer.score(ids, &outputs)?))
    }

    fn evaluate(&mut self) -> Result<Evaluation> {
        let classes = self.val.dataset().class_names().clone();
        let mut results = Vec::new();
        let ids: Vec<usize> = (0..self.val_len).collect();
        for chunk in ids.chunks(self.eval_batch) {
            let (images, targets) = load_batch(&self.val, chunk, 0, &self.device)?;
            let out = self.model.forward(&images, false)?;
            let ids: Vec<u64> = targets.iter().map(|t| t.image_id).collect();
            let letterboxes: Vec<_> = targets.iter().map(|t| t.letterbox).collect();
            let sizes: Vec<_> = targets.iter().map(|t| t.original_size).collect();
            let config = DecodeConfig::default();
            results.extend(self.model.detect_coco(
                &out,
                &ids,
                &letterboxes,
                &sizes,
                &config,
                &classes,
            )?);
        }
        let metrics = isdet_eval::evaluate_boxes(&self.gt, &results)?;
        Ok(Evaluation {
            metrics: metrics.to_map(),
            detections: Some(results),
        })
    }

    fn primary_metric(&self) -> &'static str {
        "AP"
    }

    fn name(&self) -> &'static str {
        "detection"
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
        // The training images as validation sees them: letterboxed only.
        let mut losses = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(self.eval_batch) {
            let (images, found) = load_batch(&self.plain, chunk, 0, &self.device)?;
            let boxes: Vec<&[isdet_data::Annotation]> =
                found.iter().map(|t| &t.annotations[..]).collect();
            let targets = self.model.targets(&boxes)?;
            let out = self.model.forward(&images, false)?;
            losses.extend(fcos_loss(&out, &targets, None)?.per_image);
        }
        Ok(losses)
    }
}
