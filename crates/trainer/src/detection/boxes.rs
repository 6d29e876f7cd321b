//! What AFSS's learning sufficiency needs of a training batch: the head
//! outputs and each image's objects, kept by the forward pass only in a
//! run whose heuristic reads boxes, and decoded into detections only when
//! such a heuristic scores (so the decode is charged to scoring time).

use isdet_data::{Annotation, DetTarget, Letterbox};
use isdet_detector::{DecodeConfig, Fcos, HeadOutput};
use isdet_heuristics::{Heuristic, ImageBoxes, ScoredBox, TruthBox};

use crate::error::{Result, TrainerError};

/// The last training batch as a box-reading heuristic needs it.
pub(super) struct KeptBoxes {
    /// The head outputs, detached: this copy never needs the graph, and
    /// holding it must not keep the graph alive after the backward pass.
    head: HeadOutput,
    /// Each image's objects in model-input pixels, as augmented (the same
    /// space the detections are decoded in).
    truth: Vec<Vec<TruthBox>>,
}

impl KeptBoxes {
    /// Keeps `head` (detached) and the objects of `targets`.
    pub(super) fn new(head: &HeadOutput, targets: &[DetTarget]) -> Self {
        Self {
            head: HeadOutput {
                cls_logits: head.cls_logits.detach(),
                ltrb: head.ltrb.detach(),
                ctr_logits: head.ctr_logits.detach(),
            },
            truth: targets.iter().map(|t| truth(&t.annotations)).collect(),
        }
    }
}

/// Crowd regions are left out: COCO neither rewards nor requires finding
/// them, and the sets isdet makes hold none.
fn truth(annotations: &[Annotation]) -> Vec<TruthBox> {
    annotations
        .iter()
        .filter(|a| !a.crowd)
        .map(|a| TruthBox {
            bbox: [a.bbox.x0, a.bbox.y0, a.bbox.x1, a.bbox.y1],
            class: a.class,
        })
        .collect()
}

/// A batch's detections beside its kept objects.
pub(super) struct Decoded<'a> {
    detections: Vec<Vec<ScoredBox>>,
    truth: &'a [Vec<TruthBox>],
}

impl Decoded<'_> {
    /// Each image's detections and objects, for `ForwardOutputs::with_boxes`.
    pub(super) fn images(&self) -> Vec<ImageBoxes<'_>> {
        self.detections
            .iter()
            .zip(self.truth)
            .map(|(detections, truth)| ImageBoxes { detections, truth })
            .collect()
    }
}

/// The detections `heuristic` reads, decoded from `kept` by `model`;
/// `None` for a heuristic that reads no boxes.
///
/// Decoding is the detector's own (as in evaluation: per-level top-k,
/// per-class NMS at 0.6, at most 100 per image) in model-input pixels: an
/// identity letterbox, boxes clipped to the input square. Its class
/// probability cut is lowered to τ² for a confidence threshold τ below
/// √0.05, because a detection's score √(cls · ctr) reaches τ only when
/// cls ≥ τ²: no detection the heuristic would count is cut early.
pub(super) fn decode_for<'a>(
    heuristic: &Heuristic,
    kept: Option<&'a KeptBoxes>,
    model: &Fcos,
) -> Result<Option<Decoded<'a>>> {
    let Heuristic::Sufficiency {
        score_threshold, ..
    } = *heuristic
    else {
        return Ok(None);
    };
    let kept = kept.ok_or_else(|| {
        TrainerError::Config(format!(
            "heuristic: `{}` reads the detections of each batch, which this run's \
             forward passes did not keep (the run's heuristic is another)",
            heuristic.name()
        ))
    })?;
    let defaults = DecodeConfig::default();
    let config = DecodeConfig {
        score_threshold: defaults
            .score_threshold
            .min(score_threshold * score_threshold),
        ..defaults
    };
    let size = model.config().input_size;
    let images = kept.truth.len();
    let identity = Letterbox {
        scale: 1.0,
        pad_x: 0.0,
        pad_y: 0.0,
    };
    let found = model.detect(
        &kept.head,
        &vec![identity; images],
        &vec![(size, size); images],
        &config,
    )?;
    let detections = found
        .iter()
        .map(|image| {
            image
                .iter()
                .map(|d| ScoredBox {
                    bbox: [d.bbox.x0, d.bbox.y0, d.bbox.x1, d.bbox.y1],
                    class: d.class,
                    score: d.score,
                })
                .collect()
        })
        .collect();
    Ok(Some(Decoded {
        detections,
        truth: &kept.truth,
    }))
}
