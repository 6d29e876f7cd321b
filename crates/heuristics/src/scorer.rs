//! From one forward pass's outputs to one score per sample.

use crate::config::{Activation, Heuristic, LossPart, ScoringConfig};
use crate::error::{HeuristicsError, Result};
use crate::inputs::{ForwardOutputs, Targets, check_range, host};
use crate::rules;
use crate::running::RunningTrueClassMean;
use crate::sufficiency;

/// Probabilities a little outside [0, 1] from rounding are accepted (and
/// clamped by the rules); anything further out is a caller's bug.
const PROB_SLACK: f32 = 1e-5;

/// One score per sample of the batch, stateless: every heuristic except
/// threshold closeness on softmax outputs, whose running mean lives in a
/// [`Scorer`].
///
/// Scores are finite and non-negative (what `isdet-sampler` accepts); an
/// input that would break this is an error, never a panic.
pub fn score_batch(config: &ScoringConfig, outputs: &ForwardOutputs<'_>) -> Result<Vec<f32>> {
    config.validate()?;
    let (b, l, c) = outputs.dims()?;
    let heuristic = &config.heuristic;
    let name = heuristic.name();
    let act = outputs.activation;
    let scores = match *heuristic {
        Heuristic::Loss { part } => loss_scores(outputs, part)?,
        Heuristic::Uniform => vec![1.0; b],
        Heuristic::Entropy | Heuristic::Margin | Heuristic::LeastConfidence => {
            let rule: fn(&[f32], Activation) -> f32 = match heuristic {
                Heuristic::Entropy => rules::entropy,
                Heuristic::Margin => rules::margin,
                _ => rules::least_confidence,
            };
            per_location(outputs, (b, l, c), config, |p| rule(p, act))?
        }
        Heuristic::ThresholdCloseness { score_threshold } => match act {
            Activation::Sigmoid => per_location(outputs, (b, l, c), config, |p| {
                let s = p.iter().copied().fold(0.0, f32::max);
                rules::score_threshold_closeness(s, score_threshold)
            })?,
            Activation::Softmax => {
                return Err(HeuristicsError::MissingInput {
                    heuristic: name,
                    field: "state",
                    why: "on softmax outputs it is p̄(1 − p̄) of a running mean over visits: use a Scorer",
                });
            }
        },
        Heuristic::GradNormBound { alpha, gamma } => match act {
            Activation::Softmax => {
                let (p, y) = class_targets(outputs, (b, l, c), name)?;
                p.chunks_exact(c)
                    .zip(y.chunks_exact(c))
                    .map(|(p, y)| rules::softmax_ce_grad_norm(p, y))
                    .collect()
            }
            Activation::Sigmoid => focal_bound(outputs, (b, l, c), alpha, gamma, name)?,
        },
        Heuristic::PSgd => match act {
            Activation::Softmax => true_class(outputs, (b, l, c), name)?
                .into_iter()
                .map(|p| 1.0 - p)
                .collect(),
            Activation::Sigmoid => {
                return Err(HeuristicsError::Unsupported {
                    heuristic: name,
                    activation: act.name(),
                    why: "a detection image has no single true class; use loss or threshold_closeness",
                });
            }
        },
        Heuristic::Sufficiency {
            iou_threshold,
            score_threshold,
        } => sufficiency_scores(outputs, iou_threshold, score_threshold)?,
    };
    check_scores(&scores)?;
    Ok(scores)
}

/// A heuristic with the per-sample state it needs: what the trainer holds
/// for a run and calls once per forward pass.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use isdet_heuristics::{ForwardOutputs, Heuristic, Scorer, ScoringConfig, Targets};
///
/// let probs = Tensor::new(&[[0.5f32, 0.5], [0.9, 0.1]], &Device::Cpu)?;
/// let losses = [0.69, 0.11];
/// let outputs = ForwardOutputs::classification(&losses, &probs)
///     .with_targets(Targets::Classes(&[0, 0]));
/// let mut scorer = Scorer::new(ScoringConfig::new(Heuristic::THRESHOLD_CLOSENESS), 10)?;
/// let scores = scorer.score(&[3, 7], &outputs)?;
/// // First visits: p̄ = p_true, so 0.5·0.5 = 0.25 and 0.9·0.1 = 0.09.
/// assert!((scores[0] - 0.25).abs() < 1e-6 && (scores[1] - 0.09).abs() < 1e-6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Scorer {
    config: ScoringConfig,
    num_samples: usize,
    state: Option<RunningTrueClassMean>,
}

impl Scorer {
    /// A scorer for a dataset of `num_samples` samples. Only threshold
    /// closeness keeps state (8 bytes per sample); the others allocate
    /// nothing.
    pub fn new(config: ScoringConfig, num_samples: usize) -> Result<Self> {
        config.validate()?;
        let state = match config.heuristic {
            Heuristic::ThresholdCloseness { .. } => Some(RunningTrueClassMean::new(num_samples)?),
            _ => None,
        };
        Ok(Self {
            config,
            num_samples,
            state,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ScoringConfig {
        &self.config
    }

    /// The running true-class means (threshold closeness only).
    pub fn state(&self) -> Option<&RunningTrueClassMean> {
        self.state.as_ref()
    }

    /// Replaces the running true-class means, e.g. with those of a
    /// checkpoint, so that a resumed run scores as it would have. Refused
    /// when this heuristic keeps no state or the sizes differ.
    pub fn set_state(&mut self, state: RunningTrueClassMean) -> Result<()> {
        match &self.state {
            Some(own) if own.len() == state.len() => {
                self.state = Some(state);
                Ok(())
            }
            Some(own) => Err(HeuristicsError::ShapeMismatch {
                field: "state",
                expected: format!("[{}]", own.len()),
                found: format!("[{}]", state.len()),
            }),
            None => Err(HeuristicsError::Unsupported {
                heuristic: self.config.heuristic.name(),
                activation: "any",
                why: "it keeps no running state to restore",
            }),
        }
    }

    /// One score per sample; `ids[i]` is the dataset id of sample `i`.
    ///
    /// Threshold closeness on softmax outputs first records each sample's
    /// true-class probability ([`rules::true_class_overlap`] for soft
    /// targets) in its running mean, with weight 1, then scores
    /// `p̄(1 − p̄)`: the current visit counts. Every other heuristic is
    /// [`score_batch`].
    pub fn score(&mut self, ids: &[usize], outputs: &ForwardOutputs<'_>) -> Result<Vec<f32>> {
        if ids.len() != outputs.batch() {
            return Err(HeuristicsError::ShapeMismatch {
                field: "ids",
                expected: format!("[{}] (B from losses)", outputs.batch()),
                found: format!("[{}]", ids.len()),
            });
        }
        if let Some(&id) = ids.iter().find(|&&id| id >= self.num_samples) {
            return Err(HeuristicsError::IdOutOfRange {
                id,
                len: self.num_samples,
            });
        }
        if self.state.is_none() || outputs.activation != Activation::Softmax {
            return score_batch(&self.config, outputs);
        }
        let sources: Vec<[(usize, f32); 1]> = ids.iter().map(|&id| [(id, 1.0)]).collect();
        let sources: Vec<&[(usize, f32)]> = sources.iter().map(|s| &s[..]).collect();
        self.score_mixed(&sources, outputs)?;
        // Each id's closeness after the batch (an id twice in a batch gets
        // its mean over both visits).
        Ok(match &self.state {
            Some(state) => ids
                .iter()
                .map(|&id| state.closeness(id).unwrap_or(0.0))
                .collect(),
            None => Vec::new(),
        })
    }

    /// Scores a batch of mixed images (mixup, CutMix, RICAP): `sources[i]`
    /// lists the dataset ids image `i` was made from with their mixing
    /// weights (λ and 1 − λ, or area shares). Returns one `(id, score)` for
    /// every distinct id of positive weight, in order of first appearance:
    /// what the sampler records.
    ///
    /// The crediting rule: threshold closeness (softmax) records the
    /// image's true-class probability — the overlap of the prediction and
    /// the mixed target — into each source's running mean with the
    /// source's weight, and returns each id's `p̄(1 − p̄)`. Every other
    /// heuristic gives each source the score of its image (the
    /// weight-weighted mean when an id appears in several images).
    pub fn score_mixed(
        &mut self,
        sources: &[&[(usize, f32)]],
        outputs: &ForwardOutputs<'_>,
    ) -> Result<Vec<(usize, f32)>> {
        let (b, l, c) = outputs.dims()?;
        if sources.len() != b {
            return Err(HeuristicsError::ShapeMismatch {
                field: "sources",
                expected: format!("[{b}] (B from losses)"),
                found: format!("[{}]", sources.len()),
            });
        }
        // Ids and weights are checked before any state changes, so that a
        // rejected batch leaves the running means as they were.
        let mut order: Vec<usize> = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for (index, &(id, w)) in sources.iter().flat_map(|s| s.iter()).enumerate() {
            if id >= self.num_samples {
                return Err(HeuristicsError::IdOutOfRange {
                    id,
                    len: self.num_samples,
                });
            }
            if !(w.is_finite() && w >= 0.0) {
                return Err(HeuristicsError::InvalidValue {
                    field: "sources",
                    index,
                    value: f64::from(w),
                    expected: "a finite mixing weight >= 0",
                });
            }
            if w > 0.0 && seen.insert(id, (0.0f64, 0.0f64)).is_none() {
                order.push(id);
            }
        }
        let stateful = outputs.activation == Activation::Softmax;
        if let (Some(state), true) = (self.state.as_mut(), stateful) {
            let p_true = true_class(outputs, (b, l, c), self.config.heuristic.name())?;
            for (image, &p) in sources.iter().zip(&p_true) {
                for &(id, w) in image.iter() {
                    state.record(id, p, w)?;
                }
            }
            return Ok(order
                .into_iter()
                .map(|id| (id, state.closeness(id).unwrap_or(0.0)))
                .collect());
        }
        let scores = score_batch(&self.config, outputs)?;
        for (image, &s) in sources.iter().zip(&scores) {
            for &(id, w) in image.iter().filter(|(_, w)| *w > 0.0) {
                if let Some(e) = seen.get_mut(&id) {
                    e.0 += f64::from(w) * f64::from(s);
                    e.1 += f64::from(w);
                }
            }
        }
        Ok(order
            .into_iter()
            .map(|id| {
                let (sum, w) = seen[&id];
                (id, (sum / w) as f32)
            })
            .collect())
    }
}

fn loss_scores(outputs: &ForwardOutputs<'_>, part: LossPart) -> Result<Vec<f32>> {
    let (field, values): (&'static str, Vec<f32>) = match part {
        LossPart::Total => ("losses", outputs.losses.to_vec()),
        part => {
            let parts = outputs.parts.ok_or(HeuristicsError::MissingInput {
                heuristic: "loss",
                field: "parts",
                why: "a loss part other than the total reads the per-sample loss parts",
            })?;
            let k = match part {
                LossPart::Classification => 0,
                LossPart::Regression => 1,
                _ => 2,
            };
            let values: Vec<f32> = parts.iter().map(|p| p[k]).collect();
            // The index of a bad part is its flat index in `parts` (image · 3
            // + part), so that the message points at the value itself.
            return match check_range("parts", &values, 0.0, f32::MAX, "a finite loss >= 0") {
                Err(HeuristicsError::InvalidValue {
                    field,
                    index,
                    value,
                    expected,
                }) => Err(HeuristicsError::InvalidValue {
                    field,
                    index: index * 3 + k,
                    value,
                    expected,
                }),
                other => other.map(|()| values),
            };
        }
    };
    check_range(field, &values, 0.0, f32::MAX, "a finite loss >= 0")?;
    Ok(values)
}

/// Per-location values of the counted locations, aggregated per image.
fn per_location(
    outputs: &ForwardOutputs<'_>,
    (b, l, c): (usize, usize, usize),
    config: &ScoringConfig,
    rule: impl Fn(&[f32]) -> f32,
) -> Result<Vec<f32>> {
    let probs = probabilities(outputs)?;
    let mask = mask(outputs)?;
    let mut values = Vec::with_capacity(l);
    Ok((0..b)
        .map(|i| {
            values.clear();
            for j in 0..l {
                if mask.as_ref().is_none_or(|m| m[i * l + j] > 0.0) {
                    let at = (i * l + j) * c;
                    values.push(rule(&probs[at..at + c]));
                }
            }
            config.aggregation.apply(&values)
        })
        .collect())
}

fn probabilities(outputs: &ForwardOutputs<'_>) -> Result<Vec<f32>> {
    let p = host("probs", outputs.probs)?;
    check_range(
        "probs",
        &p,
        -PROB_SLACK,
        1.0 + PROB_SLACK,
        "a probability in [0, 1]",
    )?;
    Ok(p)
}

fn mask(outputs: &ForwardOutputs<'_>) -> Result<Option<Vec<f32>>> {
    let Some(m) = outputs.mask else {
        return Ok(None);
    };
    let m = host("mask", m)?;
    check_range("mask", &m, 0.0, 1.0, "1 (counts) or 0 (ignored)")?;
    Ok(Some(m))
}

/// The softmax probabilities `[B·C]` and target weights `[B·C]` of a
/// classification batch.
fn class_targets(
    outputs: &ForwardOutputs<'_>,
    (b, l, c): (usize, usize, usize),
    name: &'static str,
) -> Result<(Vec<f32>, Vec<f32>)> {
    if l != 1 {
        return Err(HeuristicsError::ShapeMismatch {
            field: "probs",
            expected: format!("[{b}, {c}] or [{b}, 1, {c}]: one class distribution per sample"),
            found: format!("{:?}", outputs.probs.dims()),
        });
    }
    let y = match outputs.targets {
        Some(Targets::Classes(classes)) => {
            let mut y = vec![0.0; b * c];
            for (i, &k) in classes.iter().enumerate() {
                if k as usize >= c {
                    return Err(HeuristicsError::InvalidValue {
                        field: "targets",
                        index: i,
                        value: f64::from(k),
                        expected: "a class index below C",
                    });
                }
                y[i * c + k as usize] = 1.0;
            }
            y
        }
        Some(Targets::Soft(t)) => {
            let y = host("targets", t)?;
            check_range("targets", &y, 0.0, f32::MAX, "a finite class weight >= 0")?;
            y
        }
        _ => {
            return Err(HeuristicsError::MissingInput {
                heuristic: name,
                field: "targets",
                why: "softmax outputs need Targets::Classes or Targets::Soft",
            });
        }
    };
    Ok((probabilities(outputs)?, y))
}

/// Each sample's true-class probability (the overlap with a soft target).
fn true_class(
    outputs: &ForwardOutputs<'_>,
    dims: (usize, usize, usize),
    name: &'static str,
) -> Result<Vec<f32>> {
    let c = dims.2;
    let (p, y) = class_targets(outputs, dims, name)?;
    Ok(p.chunks_exact(c)
        .zip(y.chunks_exact(c))
        .map(|(p, y)| rules::true_class_overlap(p, y))
        .collect())
}

/// The focal-loss gradient norm of each image over its counted locations
/// and classes, divided by its positives (at least 1).
fn focal_bound(
    outputs: &ForwardOutputs<'_>,
    (b, l, c): (usize, usize, usize),
    alpha: f32,
    gamma: f32,
    name: &'static str,
) -> Result<Vec<f32>> {
    let Some(Targets::LocationLabels(labels)) = outputs.targets else {
        return Err(HeuristicsError::MissingInput {
            heuristic: name,
            field: "targets",
            why: "sigmoid outputs need Targets::LocationLabels (each location's class, negative for background)",
        });
    };
    if let Some(index) = labels.iter().position(|&k| k >= c as i64) {
        return Err(HeuristicsError::InvalidValue {
            field: "targets",
            index,
            value: labels[index] as f64,
            expected: "a class index below C, or negative for background",
        });
    }
    let probs = probabilities(outputs)?;
    let mask = mask(outputs)?;
    Ok((0..b)
        .map(|i| {
            let mut sq = 0.0f64;
            let mut positives = 0usize;
            for j in 0..l {
                let at = i * l + j;
                if mask.as_ref().is_some_and(|m| m[at] <= 0.0) {
                    continue;
                }
                let label = labels[at];
                positives += usize::from(label >= 0);
                for (k, &p) in probs[at * c..(at + 1) * c].iter().enumerate() {
                    let g = rules::focal_grad(p, label == k as i64, alpha, gamma);
                    sq += f64::from(g).powi(2);
                }
            }
            (sq.sqrt() / positives.max(1) as f64) as f32
        })
        .collect())
}

/// Learning sufficiency of each detection image from its boxes.
fn sufficiency_scores(
    outputs: &ForwardOutputs<'_>,
    iou_threshold: f32,
    score_threshold: f32,
) -> Result<Vec<f32>> {
    if outputs.activation == Activation::Softmax {
        return Err(HeuristicsError::Unsupported {
            heuristic: "sufficiency",
            activation: outputs.activation.name(),
            why: "it is min(precision, recall) of detected boxes against ground-truth boxes, \
                  which a classifier has not; it is a detection heuristic",
        });
    }
    let boxes = outputs.boxes.ok_or(HeuristicsError::MissingInput {
        heuristic: "sufficiency",
        field: "boxes",
        why: "it matches each image's decoded detections to its ground-truth boxes",
    })?;
    sufficiency::score_images(boxes, iou_threshold, score_threshold)
}

fn check_scores(scores: &[f32]) -> Result<()> {
    check_range(
        "score",
        scores,
        0.0,
        f32::MAX,
        "a finite score >= 0 (the aggregated inputs overflowed)",
    )
}
