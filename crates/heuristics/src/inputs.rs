//! The inputs of scoring: one forward pass's outputs, as plain slices and
//! tensors.

use candle_core::{DType, Tensor};

use crate::config::Activation;
use crate::error::{HeuristicsError, Result};
use crate::sufficiency::ImageBoxes;

/// What the heuristics need to know about the targets of a batch.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    /// Classification: the true class of each sample, `[B]`.
    Classes(&'a [u32]),
    /// Classification with mixed labels (mixup, CutMix, RICAP): each
    /// sample's class weights `[B, C]`, non-negative and summing to 1.
    Soft(&'a Tensor),
    /// Detection: each location's label `[B·L]` (row-major, image by
    /// image), the class index of a positive and any negative number for
    /// background. Ignored locations are left out by the mask, not the
    /// label.
    LocationLabels(&'a [i64]),
}

/// One forward pass's outputs for a batch of `B` samples.
///
/// `probs` holds `[B, L, C]` class probabilities (`L` locations, `C`
/// classes; a classifier's `[B, C]` is read as `L = 1`). For a detector
/// these are `LossOutput::per_image`, `parts`, `probs` and `location_mask`
/// of `isdet-detector`; for a classifier the per-sample losses and the
/// softmax of the logits.
#[derive(Clone, Copy, Debug)]
pub struct ForwardOutputs<'a> {
    /// Each sample's own loss, `[B]`, finite and non-negative.
    pub losses: &'a [f32],
    /// Each detection image's loss parts `[B][classification, regression,
    /// centre-ness]`, for [`LossPart`](crate::LossPart)s other than the total.
    pub parts: Option<&'a [[f32; 3]]>,
    /// Class probabilities, `[B, L, C]` or `[B, C]`, any float dtype, any
    /// device (they are copied to the host as `f32`).
    pub probs: &'a Tensor,
    /// How `probs` were made.
    pub activation: Activation,
    /// `[B, L]`: 1 where a location counts, 0 where it is ignored; `None`
    /// counts every location.
    pub mask: Option<&'a Tensor>,
    /// The batch's targets, for the heuristics that need them (threshold
    /// closeness on softmax outputs, the gradient-norm bound, p-SGD).
    pub targets: Option<Targets<'a>>,
    /// Each detection image's decoded detections and ground-truth boxes,
    /// `[B]`, for the heuristics that need them
    /// ([`Heuristic::needs_boxes`](crate::Heuristic::needs_boxes):
    /// learning sufficiency). Decoding costs time, so a caller gives them
    /// only to such a heuristic.
    pub boxes: Option<&'a [ImageBoxes<'a>]>,
}

impl<'a> ForwardOutputs<'a> {
    /// A classifier's outputs: per-sample losses and softmax probabilities
    /// `[B, C]`.
    pub fn classification(losses: &'a [f32], probs: &'a Tensor) -> Self {
        Self {
            losses,
            parts: None,
            probs,
            activation: Activation::Softmax,
            mask: None,
            targets: None,
            boxes: None,
        }
    }

    /// A detector's outputs: per-image losses and parts, sigmoid class
    /// probabilities `[B, L, C]` and the location mask `[B, L]`.
    pub fn detection(
        losses: &'a [f32],
        parts: &'a [[f32; 3]],
        probs: &'a Tensor,
        mask: &'a Tensor,
    ) -> Self {
        Self {
            losses,
            parts: Some(parts),
            probs,
            activation: Activation::Sigmoid,
            mask: Some(mask),
            targets: None,
            boxes: None,
        }
    }

    /// The same outputs with `targets`.
    pub fn with_targets(self, targets: Targets<'a>) -> Self {
        Self {
            targets: Some(targets),
            ..self
        }
    }

    /// The same outputs with each image's detections and ground truth.
    pub fn with_boxes(self, boxes: &'a [ImageBoxes<'a>]) -> Self {
        Self {
            boxes: Some(boxes),
            ..self
        }
    }

    /// The batch size `B` (the number of losses).
    pub fn batch(&self) -> usize {
        self.losses.len()
    }

    /// `(B, L, C)` after checking that `probs`, `mask`, `parts` and the
    /// targets agree with `B = losses.len()`.
    pub(crate) fn dims(&self) -> Result<(usize, usize, usize)> {
        let b = self.batch();
        let (pb, l, c) = match self.probs.dims() {
            &[pb, c] => (pb, 1, c),
            &[pb, l, c] => (pb, l, c),
            other => {
                return Err(mismatch("probs", format!("[{b}, L, C] or [{b}, C]"), other));
            }
        };
        if pb != b || c == 0 {
            return Err(mismatch(
                "probs",
                format!("[{b}, L, C] with C >= 1 (B from losses)"),
                self.probs.dims(),
            ));
        }
        if let Some(mask) = self.mask
            && mask.dims() != [b, l]
        {
            return Err(mismatch("mask", format!("[{b}, {l}]"), mask.dims()));
        }
        if let Some(parts) = self.parts
            && parts.len() != b
        {
            return Err(mismatch("parts", format!("[{b}, 3]"), &[parts.len(), 3]));
        }
        if let Some(boxes) = self.boxes
            && boxes.len() != b
        {
            return Err(mismatch("boxes", format!("[{b}]"), &[boxes.len()]));
        }
        match self.targets {
            Some(Targets::Classes(t)) if t.len() != b => {
                return Err(mismatch("targets", format!("[{b}]"), &[t.len()]));
            }
            Some(Targets::Soft(t)) if t.dims() != [b, c] => {
                return Err(mismatch("targets", format!("[{b}, {c}]"), t.dims()));
            }
            Some(Targets::LocationLabels(t)) if t.len() != b * l => {
                return Err(mismatch(
                    "targets",
                    format!("[{}] (B·L = {b}·{l})", b * l),
                    &[t.len()],
                ));
            }
            _ => {}
        }
        Ok((b, l, c))
    }
}

fn mismatch(field: &'static str, expected: String, found: &[usize]) -> HeuristicsError {
    HeuristicsError::ShapeMismatch {
        field,
        expected,
        found: format!("{found:?}"),
    }
}

/// A tensor's values on the host as `f32`, row-major.
pub(crate) fn host(field: &'static str, t: &Tensor) -> Result<Vec<f32>> {
    let read = || -> candle_core::Result<Vec<f32>> {
        let t = if t.dtype() == DType::F32 {
            t.clone()
        } else {
            t.to_dtype(DType::F32)?
        };
        t.flatten_all()?.to_vec1::<f32>()
    };
    read().map_err(|source| HeuristicsError::Tensor { field, source })
}

/// Checks that every value lies in `[lo, hi]` (NaN never does).
pub(crate) fn check_range(
    field: &'static str,
    values: &[f32],
    lo: f32,
    hi: f32,
    expected: &'static str,
) -> Result<()> {
    match values.iter().position(|&v| !(v >= lo && v <= hi)) {
        None => Ok(()),
        Some(index) => Err(HeuristicsError::InvalidValue {
            field,
            index,
            value: f64::from(values[index]),
            expected,
        }),
    }
}
