//! From head outputs to detections: score threshold, top-k per level,
//! per-class NMS, and boxes mapped back to the original image.

use isdet_data::{BBox, ClassNames, CocoResult, Letterbox};

use crate::assign::Locations;
use crate::error::Result;
use crate::fcos::HeadOutput;

/// Decoding settings (FCOS's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeConfig {
    /// Keep locations whose class probability exceeds this.
    pub score_threshold: f32,
    /// Candidates kept per level, by `cls · ctr`.
    pub top_k_per_level: usize,
    /// IoU above which a lower-scored box of the same class is suppressed.
    pub nms_iou: f32,
    /// Detections kept per image.
    pub max_detections: usize,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            score_threshold: 0.05,
            top_k_per_level: 1000,
            nms_iou: 0.6,
            max_detections: 100,
        }
    }
}

/// One detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Box in original image pixels.
    pub bbox: BBox,
    /// `sqrt(cls · ctr)`.
    pub score: f32,
    /// Class index.
    pub class: u32,
}

/// Greedy per-class non-maximum suppression; returns the kept indices in
/// descending score order.
pub fn nms(boxes: &[BBox], scores: &[f32], classes: &[u32], iou: f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut keep: Vec<usize> = Vec::new();
    for i in order {
        if keep
            .iter()
            .all(|&k| classes[k] != classes[i] || boxes[k].iou(&boxes[i]) <= iou)
        {
            keep.push(i);
        }
    }
    keep
}

/// Decodes a batch. `letterboxes[b]` and `sizes[b]` (width, height) map
/// image `b`'s boxes back to its original pixels; boxes are clipped to the
/// original image.
pub fn decode(
    out: &HeadOutput,
    locs: &Locations,
    letterboxes: &[Letterbox],
    sizes: &[(usize, usize)],
    config: &DecodeConfig,
) -> Result<Vec<Vec<Detection>>> {
    let probs = candle_nn::ops::sigmoid(&out.cls_logits)?.to_vec3::<f32>()?;
    let ctr = candle_nn::ops::sigmoid(&out.ctr_logits)?.to_vec2::<f32>()?;
    let ltrb = out.ltrb.to_vec3::<f32>()?;
    let mut all = Vec::with_capacity(probs.len());
    for b in 0..probs.len() {
        // (score for ranking, location, class)
        let mut cands: Vec<(f32, usize, usize)> = Vec::new();
        let mut start = 0;
        for level in locs.levels() {
            let n = level.height * level.width;
            let mut lvl: Vec<(f32, usize, usize)> = Vec::new();
            for i in start..start + n {
                for (k, &p) in probs[b][i].iter().enumerate() {
                    if p > config.score_threshold {
                        lvl.push((p * ctr[b][i], i, k));
                    }
                }
            }
            lvl.sort_by(|x, y| y.0.total_cmp(&x.0));
            lvl.truncate(config.top_k_per_level);
            cands.extend(lvl);
            start += n;
        }
        let (w, h) = (sizes[b].0 as f32, sizes[b].1 as f32);
        let boxes: Vec<BBox> = cands
            .iter()
            .map(|&(_, i, _)| {
                let p = locs.point(i);
                let s = locs.stride(i);
                let d = &ltrb[b][i];
                let input = BBox::new(
                    p[0] - d[0] * s,
                    p[1] - d[1] * s,
                    p[0] + d[2] * s,
                    p[1] + d[3] * s,
                );
                letterboxes[b].to_original(input).clip(w, h)
            })
            .collect();
        let scores: Vec<f32> = cands.iter().map(|c| c.0.max(0.0).sqrt()).collect();
        let classes: Vec<u32> = cands.iter().map(|c| c.2 as u32).collect();
        let mut dets: Vec<Detection> = nms(&boxes, &scores, &classes, config.nms_iou)
            .into_iter()
            .filter(|&i| boxes[i].width() > 0.0 && boxes[i].height() > 0.0)
            .map(|i| Detection {
                bbox: boxes[i],
                score: scores[i],
                class: classes[i],
            })
            .collect();
        dets.truncate(config.max_detections);
        all.push(dets);
    }
    Ok(all)
}

/// COCO results records of one image's detections (category ids through
/// `classes`; detections of unknown classes are skipped).
pub fn to_coco_results(image_id: u64, dets: &[Detection], classes: &ClassNames) -> Vec<CocoResult> {
    dets.iter()
        .filter_map(|d| {
            Some(CocoResult {
                image_id,
                category_id: classes.category_of(d.class)?,
                bbox: d.bbox.to_xywh(),
                score: d.score as f64,
            })
        })
        .collect()
}
