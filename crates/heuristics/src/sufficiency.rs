//! AFSS's learning sufficiency (Xie et al., arXiv 2603.17684, 2026): how
//! well the detector has learnt one image, as min(precision, recall) of
//! its detections against the image's ground-truth boxes.
//!
//! The matching is the usual one of detection metrics (COCO's, at one IoU
//! threshold): detections scoring at least the score threshold are taken
//! in descending score order, and each one matches the unmatched
//! ground-truth box of its own class with which it has the largest IoU,
//! provided that IoU is at least the IoU threshold. Every ground-truth
//! box is matched at most once, so a duplicate detection of a found object
//! is a false positive.

use crate::error::{HeuristicsError, Result};

/// An axis-aligned box `[x0, y0, x1, y1]` in pixels (any one coordinate
/// system shared by the detections and the ground truth).
pub type Xyxy = [f32; 4];

/// One detection of an image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoredBox {
    /// The box.
    pub bbox: Xyxy,
    /// The class index.
    pub class: u32,
    /// The detection's confidence, in [0, 1].
    pub score: f32,
}

/// One ground-truth object of an image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TruthBox {
    /// The box.
    pub bbox: Xyxy,
    /// The class index.
    pub class: u32,
}

/// One image's detections and ground truth, in the same coordinates: what
/// [`Heuristic::Sufficiency`](crate::Heuristic::Sufficiency) scores.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImageBoxes<'a> {
    /// The detector's detections (any order, any score: the score
    /// threshold is applied here).
    pub detections: &'a [ScoredBox],
    /// The ground-truth objects.
    pub truth: &'a [TruthBox],
}

/// The counts of one image's matching.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Matches {
    /// Detections matched to a ground-truth box.
    pub true_positives: usize,
    /// Detections at or above the score threshold.
    pub detections: usize,
    /// Ground-truth boxes.
    pub truth: usize,
}

impl Matches {
    /// `TP / detections`; 1 when there is no detection (nothing was
    /// claimed wrongly).
    pub fn precision(&self) -> f32 {
        ratio(self.true_positives, self.detections)
    }

    /// `TP / ground truth`; 1 when there is no ground truth (nothing was
    /// missed).
    pub fn recall(&self) -> f32 {
        ratio(self.true_positives, self.truth)
    }

    /// min(precision, recall), in [0, 1]. An image without objects scores
    /// 1 when nothing is detected on it and 0 when anything is (precision
    /// 0); an image with objects and no detection scores 0 (recall 0).
    pub fn sufficiency(&self) -> f32 {
        self.precision().min(self.recall())
    }
}

fn ratio(part: usize, whole: usize) -> f32 {
    if whole == 0 {
        1.0
    } else {
        (part as f64 / whole as f64) as f32
    }
}

/// The IoU of two boxes, in f64; 0 when the union is empty (degenerate
/// boxes). An inverted box (x1 < x0) has no area.
pub fn iou(a: &Xyxy, b: &Xyxy) -> f64 {
    let side = |lo: f32, hi: f32| (f64::from(hi) - f64::from(lo)).max(0.0);
    let area = |r: &Xyxy| side(r[0], r[2]) * side(r[1], r[3]);
    let inter = side(a[0].max(b[0]), a[2].min(b[2])) * side(a[1].max(b[1]), a[3].min(b[3]));
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// Matches one image's detections to its ground truth (see the module
/// docs): detections below `score_threshold` are left out; a match needs
/// the same class and an IoU of at least `iou_threshold`. Ties in score
/// keep the detections' order, ties in IoU the ground truth's.
pub fn match_boxes(image: &ImageBoxes<'_>, iou_threshold: f32, score_threshold: f32) -> Matches {
    let mut kept: Vec<&ScoredBox> = image
        .detections
        .iter()
        .filter(|d| d.score >= score_threshold)
        .collect();
    // A stable sort: equal scores keep their given order.
    kept.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut taken = vec![false; image.truth.len()];
    let mut true_positives = 0;
    for d in &kept {
        let best = image
            .truth
            .iter()
            .enumerate()
            .filter(|(g, t)| !taken[*g] && t.class == d.class)
            .map(|(g, t)| (g, iou(&d.bbox, &t.bbox)))
            .filter(|&(_, o)| o >= f64::from(iou_threshold))
            .fold(None, |best: Option<(usize, f64)>, (g, o)| match best {
                Some((_, b)) if b >= o => best,
                _ => Some((g, o)),
            });
        if let Some((g, _)) = best {
            taken[g] = true;
            true_positives += 1;
        }
    }
    Matches {
        true_positives,
        detections: kept.len(),
        truth: image.truth.len(),
    }
}

/// One image's learning sufficiency: [`match_boxes`], then
/// [`Matches::sufficiency`].
pub fn sufficiency(image: &ImageBoxes<'_>, iou_threshold: f32, score_threshold: f32) -> f32 {
    match_boxes(image, iou_threshold, score_threshold).sufficiency()
}

/// Each image's sufficiency, after checking that every coordinate is
/// finite and every detection score lies in [0, 1].
pub(crate) fn score_images(
    images: &[ImageBoxes<'_>],
    iou_threshold: f32,
    score_threshold: f32,
) -> Result<Vec<f32>> {
    for (index, image) in images.iter().enumerate() {
        let boxes = image
            .detections
            .iter()
            .map(|d| &d.bbox)
            .chain(image.truth.iter().map(|t| &t.bbox));
        if let Some(&v) = boxes.flatten().find(|v| !v.is_finite()) {
            return Err(invalid(index, v, "finite box coordinates"));
        }
        if let Some(d) = image
            .detections
            .iter()
            .find(|d| !(0.0..=1.0).contains(&d.score))
        {
            return Err(invalid(index, d.score, "detection scores in [0, 1]"));
        }
    }
    Ok(images
        .iter()
        .map(|image| sufficiency(image, iou_threshold, score_threshold))
        .collect())
}

/// A bad value of image `index`'s boxes.
fn invalid(index: usize, value: f32, expected: &'static str) -> HeuristicsError {
    HeuristicsError::InvalidValue {
        field: "boxes",
        index,
        value: f64::from(value),
        expected,
    }
}
