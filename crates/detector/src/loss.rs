//! FCOS losses, with per-image losses and class probabilities from the same
//! forward pass.
//!
//! Formulas (torchvision's definitions, docs/methods.md):
//! - sigmoid focal loss `ce · (1 − p_t)^γ · (α·t + (1 − α)(1 − t))`, α 0.25,
//!   γ 2, with `ce` the numerically stable BCE-with-logits
//!   `max(x, 0) − x·y + log(1 + e^(−|x|))`;
//! - GIoU loss `1 − GIoU` (eps 1e-7), weighted by the centre-ness target;
//! - centre-ness BCE-with-logits on positives.
//!
//! The training objective is FCOS's: focal and centre-ness sums divided by
//! the batch's positives (at least 1), the weighted GIoU sum divided by the
//! batch's sum of centre-ness targets. Each image's own loss uses the same
//! sums over its own locations divided by its own positives and centre-ness
//! sum, so `Σ_b raw_b / norm_batch` is the objective (see
//! [`LossOutput::raw`]).

use candle_core::{D, DType, Tensor};

use crate::assign::Targets;
use crate::error::{DetectorError, Result};
use crate::fcos::HeadOutput;

/// Focal loss α.
pub const FOCAL_ALPHA: f64 = 0.25;
/// Focal loss γ.
pub const FOCAL_GAMMA: f64 = 2.0;
const GIOU_EPS: f64 = 1e-7;

/// Elementwise stable BCE with logits: `max(x, 0) − x·y + log(1 + e^(−|x|))`.
pub fn bce_with_logits(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let softplus = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok(((x.relu()? - (x * y)?)? + softplus)?)
}

/// Elementwise sigmoid focal loss (torchvision `sigmoid_focal_loss`, no
/// reduction).
pub fn focal_loss(x: &Tensor, t: &Tensor, alpha: f64, gamma: f64) -> Result<Tensor> {
    let p = candle_nn::ops::sigmoid(x)?;
    let ce = bce_with_logits(x, t)?;
    let one_minus_t = t.affine(-1.0, 1.0)?;
    let p_t = ((&p * t)? + (p.affine(-1.0, 1.0)? * &one_minus_t)?)?;
    let modulator = p_t.affine(-1.0, 1.0)?.clamp(0.0, 1.0)?.powf(gamma)?;
    let alpha_t = (t.affine(alpha, 0.0)? + one_minus_t.affine(1.0 - alpha, 0.0)?)?;
    Ok(((ce * modulator)? * alpha_t)?)
}

/// GIoU loss `1 − GIoU` of boxes `[…, 4]` (x0, y0, x1, y1) against targets of
/// the same shape (torchvision `generalized_box_iou_loss`, no reduction).
pub fn giou_loss(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    let c = |t: &Tensor, i: usize| t.narrow(D::Minus1, i, 1).and_then(|v| v.squeeze(D::Minus1));
    let (x1, y1, x2, y2) = (c(pred, 0)?, c(pred, 1)?, c(pred, 2)?, c(pred, 3)?);
    let (x1g, y1g, x2g, y2g) = (c(target, 0)?, c(target, 1)?, c(target, 2)?, c(target, 3)?);
    let xk1 = x1.maximum(&x1g)?;
    let yk1 = y1.maximum(&y1g)?;
    let xk2 = x2.minimum(&x2g)?;
    let yk2 = y2.minimum(&y2g)?;
    let inter = ((&xk2 - &xk1)?.relu()? * (&yk2 - &yk1)?.relu()?)?;
    let area = ((&x2 - &x1)? * (&y2 - &y1)?)?;
    let area_g = ((&x2g - &x1g)? * (&y2g - &y1g)?)?;
    let union = ((area + area_g)? - &inter)?;
    let iou = (&inter / (&union + GIOU_EPS)?)?;
    let xc1 = x1.minimum(&x1g)?;
    let yc1 = y1.minimum(&y1g)?;
    let xc2 = x2.maximum(&x2g)?;
    let yc2 = y2.maximum(&y2g)?;
    let area_c = ((xc2 - xc1)? * (yc2 - yc1)?)?;
    let giou = (iou - ((&area_c - &union)? / (area_c + GIOU_EPS)?)?)?;
    Ok(giou.affine(-1.0, 1.0)?)
}

/// Everything one forward pass yields for training and scoring.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// The (weighted) training objective, a scalar with its graph.
    pub objective: Tensor,
    /// Each image's own loss `[B]` (detached): the sum of classification,
    /// regression and centre-ness, each normalised by the image's own
    /// positives (or centre-ness sum).
    pub per_image: Vec<f32>,
    /// Each image's loss parts `[B][cls, reg, ctr]` (detached).
    pub parts: Vec<[f32; 3]>,
    /// Each image's un-normalised sums `[B][cls, reg, ctr]` (detached).
    pub raw: Vec<[f32; 3]>,
    /// The batch normalisers `[positives, centre-ness sum]`.
    pub batch_norm: [f32; 2],
    /// Positives per image.
    pub positives: Vec<usize>,
    /// Class probabilities at every location `[B, L, C]` (detached).
    pub probs: Tensor,
    /// 1 at locations that count (not ignored), 0 elsewhere, `[B, L]`.
    pub location_mask: Tensor,
}

/// The FCOS loss of a batch. `weights` (one per image, e.g. importance
/// weights) scale each image's share of the objective; `None` is FCOS.
pub fn fcos_loss(
    out: &HeadOutput,
    targets: &Targets,
    weights: Option<&[f32]>,
) -> Result<LossOutput> {
    let (b, l, c) = out.cls_logits.dims3()?;
    if targets.batch != b || targets.locations != l {
        return Err(DetectorError::Input(format!(
            "targets for [{}, {}] locations, outputs [{b}, {l}]",
            targets.batch, targets.locations
        )));
    }
    let dev = out.cls_logits.device();
    let mut onehot = vec![0f32; b * l * c];
    let mut valid = vec![1f32; b * l];
    let mut pos = vec![0f32; b * l];
    let mut reg_target = vec![1f32; b * l * 4];
    for i in 0..b * l {
        match targets.labels[i] {
            k if k >= 0 => {
                onehot[i * c + k as usize] = 1.0;
                pos[i] = 1.0;
                let t = &targets.ltrb[i * 4..i * 4 + 4];
                reg_target[i * 4..i * 4 + 4].copy_from_slice(&[-t[0], -t[1], t[2], t[3]]);
            }
            crate::assign::IGNORE => valid[i] = 0.0,
            _ => {}
        }
    }
    let onehot = Tensor::from_vec(onehot, (b, l, c), dev)?;
    let valid = Tensor::from_vec(valid, (b, l), dev)?;
    let pos_t = Tensor::from_vec(pos.clone(), (b, l), dev)?;
    let ctr_target = Tensor::from_vec(targets.centerness.clone(), (b, l), dev)?;

    let focal = focal_loss(&out.cls_logits, &onehot, FOCAL_ALPHA, FOCAL_GAMMA)?;
    let cls_raw = focal.sum(D::Minus1)?.mul(&valid)?.sum(1)?;

    let pred_box = Tensor::cat(
        &[out.ltrb.narrow(2, 0, 2)?.neg()?, out.ltrb.narrow(2, 2, 2)?],
        2,
    )?;
    let target_box = Tensor::from_vec(reg_target, (b, l, 4), dev)?;
    let reg_w = ctr_target.mul(&pos_t)?;
    let reg_raw = giou_loss(&pred_box, &target_box)?.mul(&reg_w)?.sum(1)?;

    let ctr_raw = bce_with_logits(&out.ctr_logits, &ctr_target)?
        .mul(&pos_t)?
        .sum(1)?;

    let positives: Vec<usize> = (0..b).map(|i| targets.num_positives(i)).collect();
    let ctr_sums: Vec<f32> = (0..b)
        .map(|i| targets.centerness[i * l..(i + 1) * l].iter().sum())
        .collect();
    let n_pos = (positives.iter().sum::<usize>() as f32).max(1.0);
    let n_ctr = ctr_sums.iter().sum::<f32>().max(1e-6);

    let w = match weights {
        Some(w) if w.len() == b => Tensor::from_slice(w, b, dev)?,
        Some(w) => {
            return Err(DetectorError::Input(format!(
                "{} weights for a batch of {b}",
                w.len()
            )));
        }
        None => Tensor::ones(b, DType::F32, dev)?,
    };
    let objective = ((cls_raw.mul(&w)?.sum_all()? / n_pos as f64)?
        + (reg_raw.mul(&w)?.sum_all()? / n_ctr as f64)?
        + (ctr_raw.mul(&w)?.sum_all()? / n_pos as f64)?)?;

    let cls_v = cls_raw.to_vec1::<f32>()?;
    let reg_v = reg_raw.to_vec1::<f32>()?;
    let ctr_v = ctr_raw.to_vec1::<f32>()?;
    let mut per_image = Vec::with_capacity(b);
    let mut parts = Vec::with_capacity(b);
    let mut raw = Vec::with_capacity(b);
    for i in 0..b {
        let np = (positives[i] as f32).max(1.0);
        let p = [
            cls_v[i] / np,
            reg_v[i] / ctr_sums[i].max(1e-6),
            ctr_v[i] / np,
        ];
        per_image.push(p.iter().sum());
        parts.push(p);
        raw.push([cls_v[i], reg_v[i], ctr_v[i]]);
    }
    Ok(LossOutput {
        objective,
        per_image,
        parts,
        raw,
        batch_norm: [n_pos, n_ctr],
        positives,
        probs: candle_nn::ops::sigmoid(&out.cls_logits.detach())?,
        location_mask: valid,
    })
}
