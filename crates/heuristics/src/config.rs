//! What to score and how: the serialisable choices a run's configuration
//! names.

use serde::{Deserialize, Serialize};

use crate::error::{HeuristicsError, Result, require};

/// The focal loss α of FCOS (torchvision's default), used by
/// [`Heuristic::GradNormBound`] on sigmoid outputs unless told otherwise.
pub const FOCAL_ALPHA: f32 = 0.25;
/// The focal loss γ of FCOS (torchvision's default).
pub const FOCAL_GAMMA: f32 = 2.0;
/// FCOS's inference score threshold (docs/methods.md, "Inference: keep
/// sigmoid(cls) > 0.05"), the default centre of the detection form of
/// [`Heuristic::ThresholdCloseness`].
pub const SCORE_THRESHOLD: f32 = 0.05;
/// `k` of the default detection aggregation, [`Aggregation::DETECTION_DEFAULT`].
pub const DETECTION_TOP_K: usize = 10;
/// The IoU at which a detection matches a ground-truth box for
/// [`Heuristic::Sufficiency`]: 0.5, the threshold of PASCAL VOC and of the
/// precision and recall YOLO trainers report.
pub const SUFFICIENCY_IOU: f32 = 0.5;
/// The confidence from which a detection counts for
/// [`Heuristic::Sufficiency`]: 0.25, Ultralytics' default prediction
/// confidence (what a YOLO user sees as "the detections").
pub const SUFFICIENCY_SCORE: f32 = 0.25;

/// How the class probabilities of the outputs were made; it decides what
/// "uncertainty" and "threshold" mean at a location.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Each location's probabilities are one categorical distribution (a
    /// classifier's softmax): they sum to 1.
    Softmax,
    /// Each class is an independent yes/no (a detector's sigmoid): the
    /// location's probabilities need not sum to 1.
    Sigmoid,
}

impl Activation {
    /// `softmax` or `sigmoid`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Softmax => "softmax",
            Self::Sigmoid => "sigmoid",
        }
    }
}

/// Which part of a sample's loss [`Heuristic::Loss`] reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossPart {
    /// The sample's whole loss (`ForwardOutputs::losses`).
    #[default]
    Total,
    /// The detection classification (focal) part, `parts[i][0]`.
    Classification,
    /// The detection regression (GIoU) part, `parts[i][1]`.
    Regression,
    /// The detection centre-ness part, `parts[i][2]`.
    Centerness,
}

/// One importance heuristic: how a sample's forward-pass outputs become its
/// score (docs/methods.md, "Scoring a training sample"). A configuration names it
/// by `kind`, e.g. `{"kind": "loss", "part": "classification"}` or
/// `kind = "entropy"`.
///
/// Per-location values (entropy, margin, least confidence, detection
/// threshold closeness) are reduced to one image score by an
/// [`Aggregation`]; the other heuristics give one value per sample directly.
/// See [`crate::rules`] for each formula on one location.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Heuristic {
    /// The sample's own loss (docs/methods.md "loss"): total, or for detection
    /// one of the classification / regression / centre-ness parts.
    Loss {
        /// Which part of the loss.
        #[serde(default)]
        part: LossPart,
    },
    /// Entropy of the class probabilities, in nats (docs/methods.md
    /// "uncertainty"); see [`crate::rules::entropy`].
    Entropy,
    /// Margin `1 − (p₁ − p₂)` of the two largest outcomes (docs/methods.md
    /// "uncertainty"); see [`crate::rules::margin`].
    Margin,
    /// Least confidence `1 − p_max` (docs/methods.md "uncertainty"); see
    /// [`crate::rules::least_confidence`].
    LeastConfidence,
    /// Threshold closeness (Chang et al. 2017, "Active Bias").
    ///
    /// Softmax outputs: `p̄(1 − p̄)` with `p̄` the running mean of the
    /// true-class probability over the sample's visits, kept by a
    /// [`Scorer`](crate::Scorer)'s [`RunningTrueClassMean`](crate::RunningTrueClassMean).
    /// Sigmoid (detection) outputs: per location, the closeness of the top
    /// class score to `score_threshold`
    /// ([`crate::rules::score_threshold_closeness`]), aggregated.
    ThresholdCloseness {
        /// The detection score threshold τ (sigmoid outputs only), in (0, 1).
        #[serde(default = "default_score_threshold")]
        score_threshold: f32,
    },
    /// Upper bound of the per-sample gradient norm (Katharopoulos & Fleuret
    /// 2018): the norm of the loss gradient with respect to the last
    /// layer's pre-activation outputs, in closed form. Softmax outputs:
    /// softmax cross-entropy, `‖p·Σy − y‖₂` ([`crate::rules::softmax_ce_grad_norm`]).
    /// Sigmoid outputs: sigmoid focal loss on the classification logits,
    /// `√(Σ_{l,c} g_lc²) / max(positives, 1)` over the image's counted
    /// locations ([`crate::rules::focal_grad`]); the division matches the
    /// image's own loss normalisation.
    GradNormBound {
        /// Focal α (sigmoid outputs only), in [0, 1].
        #[serde(default = "default_alpha")]
        alpha: f32,
        /// Focal γ (sigmoid outputs only), ≥ 0.
        #[serde(default = "default_gamma")]
        gamma: f32,
    },
    /// The per-visit p-SGD score of Arazo et al. (2021): `1 − p_true`
    /// (softmax outputs only). The p-SGD priority is its running mean over
    /// visits with unseen samples at the current maximum: record these
    /// scores in `isdet-sampler`'s `ScoreTable` and sample by
    /// `ScoreField::Mean` with `UnseenPolicy::MaxScore`.
    PSgd,
    /// Every sample scores 1: uniform sampling's scores, the baseline.
    Uniform,
    /// AFSS's learning sufficiency (Xie et al., arXiv 2603.17684, 2026):
    /// min(precision, recall) of the image's detections against its
    /// ground-truth boxes, in [0, 1] (detection only; see
    /// [`crate::sufficiency`] for the matching and the edge cases). High
    /// means learnt: it is the score `isdet-sampler`'s `Afss` strategy
    /// tiers images by, not a priority to sample in proportion to. It
    /// needs the decoded detections
    /// ([`ForwardOutputs::boxes`](crate::ForwardOutputs::boxes)).
    Sufficiency {
        /// A detection matches a ground-truth box of its class at an IoU
        /// of at least this, in (0, 1].
        #[serde(default = "default_sufficiency_iou")]
        iou_threshold: f32,
        /// Detections scoring below this are left out, in [0, 1].
        #[serde(default = "default_sufficiency_score")]
        score_threshold: f32,
    },
}

fn default_score_threshold() -> f32 {
    SCORE_THRESHOLD
}
fn default_alpha() -> f32 {
    FOCAL_ALPHA
}
fn default_gamma() -> f32 {
    FOCAL_GAMMA
}
fn default_sufficiency_iou() -> f32 {
    SUFFICIENCY_IOU
}
fn default_sufficiency_score() -> f32 {
    SUFFICIENCY_SCORE
}

impl Heuristic {
    /// Threshold closeness around FCOS's score threshold.
    pub const THRESHOLD_CLOSENESS: Self = Self::ThresholdCloseness {
        score_threshold: SCORE_THRESHOLD,
    };
    /// The gradient-norm bound with FCOS's focal α and γ.
    pub const GRAD_NORM_BOUND: Self = Self::GradNormBound {
        alpha: FOCAL_ALPHA,
        gamma: FOCAL_GAMMA,
    };
    /// The total loss.
    pub const LOSS: Self = Self::Loss {
        part: LossPart::Total,
    };
    /// Learning sufficiency at IoU 0.5 and confidence 0.25.
    pub const SUFFICIENCY: Self = Self::Sufficiency {
        iou_threshold: SUFFICIENCY_IOU,
        score_threshold: SUFFICIENCY_SCORE,
    };

    /// Every heuristic that scores from the forward pass's tensors alone,
    /// with its default parameters, loss parts included: what the bench
    /// times. [`Heuristic::Sufficiency`] is not among them: it needs the
    /// pass's decoded detections ([`Heuristic::needs_boxes`]).
    pub const ALL: [Self; 11] = [
        Self::LOSS,
        Self::Loss {
            part: LossPart::Classification,
        },
        Self::Loss {
            part: LossPart::Regression,
        },
        Self::Loss {
            part: LossPart::Centerness,
        },
        Self::Entropy,
        Self::Margin,
        Self::LeastConfidence,
        Self::THRESHOLD_CLOSENESS,
        Self::GRAD_NORM_BOUND,
        Self::PSgd,
        Self::Uniform,
    ];

    /// The heuristic's configuration name (`loss`, `entropy`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Loss { .. } => "loss",
            Self::Entropy => "entropy",
            Self::Margin => "margin",
            Self::LeastConfidence => "least_confidence",
            Self::ThresholdCloseness { .. } => "threshold_closeness",
            Self::GradNormBound { .. } => "grad_norm_bound",
            Self::PSgd => "p_sgd",
            Self::Uniform => "uniform",
            Self::Sufficiency { .. } => "sufficiency",
        }
    }

    /// A name that also tells loss parts apart (`loss_classification`).
    pub fn label(&self) -> String {
        match self {
            Self::Loss {
                part: LossPart::Total,
            } => "loss".into(),
            Self::Loss { part } => format!(
                "loss_{}",
                match part {
                    LossPart::Total => "total",
                    LossPart::Classification => "classification",
                    LossPart::Regression => "regression",
                    LossPart::Centerness => "centerness",
                }
            ),
            other => other.name().into(),
        }
    }

    /// Whether the heuristic reduces per-location values with an
    /// [`Aggregation`] (on sigmoid outputs; on softmax outputs with one
    /// location every aggregation gives the same value).
    pub fn aggregates(&self) -> bool {
        matches!(
            self,
            Self::Entropy | Self::Margin | Self::LeastConfidence | Self::ThresholdCloseness { .. }
        )
    }

    /// Whether the heuristic reads each image's decoded detections and
    /// ground-truth boxes ([`ForwardOutputs::boxes`](crate::ForwardOutputs::boxes)),
    /// which a trainer then has to keep and decode.
    pub fn needs_boxes(&self) -> bool {
        matches!(self, Self::Sufficiency { .. })
    }

    /// Checks the parameters: τ in (0, 1), α in [0, 1], γ finite and ≥ 0,
    /// the sufficiency IoU in (0, 1] and its confidence in [0, 1].
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::Sufficiency {
                iou_threshold,
                score_threshold,
            } => {
                require::<HeuristicsError>(
                    iou_threshold > 0.0 && iou_threshold <= 1.0,
                    "iou_threshold",
                    f64::from(iou_threshold),
                    "an IoU in (0, 1]",
                )?;
                require(
                    (0.0..=1.0).contains(&score_threshold),
                    "score_threshold",
                    f64::from(score_threshold),
                    "a confidence in [0, 1]",
                )
            }
            Self::ThresholdCloseness { score_threshold } => require(
                score_threshold > 0.0 && score_threshold < 1.0,
                "score_threshold",
                f64::from(score_threshold),
                "a probability strictly between 0 and 1",
            ),
            Self::GradNormBound { alpha, gamma } => {
                require::<HeuristicsError>(
                    (0.0..=1.0).contains(&alpha),
                    "alpha",
                    f64::from(alpha),
                    "a weight in [0, 1]",
                )?;
                require(
                    gamma.is_finite() && gamma >= 0.0,
                    "gamma",
                    f64::from(gamma),
                    "a finite exponent >= 0",
                )
            }
            _ => Ok(()),
        }
    }
}

/// How per-location (or per-box) values become one image score. Only
/// locations whose mask is 1 take part; an image without any such location
/// scores 0.
///
/// The detection default is [`Aggregation::DETECTION_DEFAULT`], the mean of
/// the top 10 values: the signal of an image sits at the few locations on
/// and around its objects (a 96 px synth scene has 189 locations at strides
/// 8/16/32 and 1–6 objects of a handful of positives each), so the mean
/// over all locations is diluted by confident background and varies mostly
/// with the object count, while the maximum rests on one location and is
/// noisy. Ten is about the positives of one or two objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Aggregation {
    /// The mean over counted locations.
    Mean,
    /// The largest value.
    Max,
    /// The sum over counted locations.
    Sum,
    /// The mean of the `k` largest values (of all of them when fewer than
    /// `k` count); `k ≥ 1`.
    TopKMean {
        /// How many of the largest values are averaged.
        k: usize,
    },
}

impl Aggregation {
    /// The documented detection default: the mean of the top
    /// [`DETECTION_TOP_K`] values.
    pub const DETECTION_DEFAULT: Self = Self::TopKMean { k: DETECTION_TOP_K };

    /// Checks `k ≥ 1` for [`Aggregation::TopKMean`].
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::TopKMean { k } => require(k >= 1, "k", k as f64, "at least 1"),
            _ => Ok(()),
        }
    }

    /// The image score of `values` (the counted locations' values). Empty
    /// input gives 0. `TopKMean { k: 0 }`, which [`Aggregation::validate`]
    /// rejects, is read as `k = 1` here rather than panicking.
    pub fn apply(&self, values: &[f32]) -> f32 {
        if values.is_empty() {
            return 0.0;
        }
        // Sums run in f64 so that a long sum of small values keeps its
        // precision.
        let sum = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>();
        match *self {
            Self::Mean => (sum(values) / values.len() as f64) as f32,
            Self::Max => values.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            Self::Sum => sum(values) as f32,
            Self::TopKMean { k } => {
                let k = k.clamp(1, values.len());
                let mut v = values.to_vec();
                // Partition so that the k largest come first; their order
                // does not matter for a mean.
                if k < v.len() {
                    v.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
                }
                (sum(&v[..k]) / k as f64) as f32
            }
        }
    }
}

impl Default for Aggregation {
    fn default() -> Self {
        Self::DETECTION_DEFAULT
    }
}

/// A heuristic and its aggregation: what a run's configuration holds, e.g.
/// `{"heuristic": {"kind": "entropy"}, "aggregation": {"kind": "max"}}`;
/// the aggregation may be left out for the detection default.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringConfig {
    /// The heuristic.
    pub heuristic: Heuristic,
    /// How per-location values become an image score.
    #[serde(default)]
    pub aggregation: Aggregation,
}

impl ScoringConfig {
    /// `heuristic` with the default aggregation.
    pub fn new(heuristic: Heuristic) -> Self {
        Self {
            heuristic,
            aggregation: Aggregation::default(),
        }
    }

    /// Checks the heuristic's and the aggregation's parameters.
    pub fn validate(&self) -> Result<()> {
        self.heuristic.validate()?;
        self.aggregation.validate()
    }
}
