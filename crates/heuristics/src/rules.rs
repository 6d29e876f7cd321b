//! Each heuristic's rule on one location (or one classified sample): plain
//! functions of probabilities, computed in `f64` and returned as `f32`.
//!
//! Probabilities are taken as given (the caller checks them); `0 · ln 0` is
//! read as 0, its limit.
//!
//! **Sigmoid (detection) outputs.** A detector's location gives C
//! independent class scores, not a distribution, and almost every location
//! is confident background with every score near 0. Reading the scores as a
//! categorical distribution would call each background location maximally
//! uncertain (`1 − p_max ≈ 1`). So a location's outcomes are its C class
//! scores and the background score `1 − p_max`, and:
//! - entropy is the entropy of the C independent yes/no outcomes,
//!   `Σ_c H(p_c)` with `H(p) = −p ln p − (1 − p) ln(1 − p)`;
//! - least confidence is `1 − max(p_max, 1 − p_max)`;
//! - margin is `1 − (o₁ − o₂)` for the two largest outcomes `o₁ ≥ o₂` of
//!   `{p_1, …, p_C, 1 − p_max}`, which is high both when the location is
//!   unsure whether an object is there and when two classes compete.
//!
//! All three are near 0 at confident background and at confident
//! detections.

use crate::config::Activation;

fn xlnx(x: f64) -> f64 {
    if x > 0.0 { x * x.ln() } else { 0.0 }
}

fn binary_entropy(p: f64) -> f64 {
    -xlnx(p) - xlnx(1.0 - p)
}

/// The largest and second largest of `values` (−∞ where missing).
fn top_two(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::NEG_INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        if x > a {
            (x, a)
        } else if x > b {
            (a, x)
        } else {
            (a, b)
        }
    })
}

fn top_two_or_zero(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (a, b) = top_two(values);
    (
        if a.is_finite() { a } else { 0.0 },
        if b.is_finite() { b } else { 0.0 },
    )
}

fn max_of(p: &[f32]) -> f64 {
    p.iter().map(|&x| f64::from(x)).fold(0.0, f64::max)
}

/// Entropy in nats. Softmax: `−Σ_c p_c ln p_c`. Sigmoid: `Σ_c H(p_c)`, the
/// entropy of C independent yes/no outcomes.
pub fn entropy(p: &[f32], activation: Activation) -> f32 {
    let e: f64 = match activation {
        Activation::Softmax => p.iter().map(|&x| -xlnx(f64::from(x))).sum(),
        Activation::Sigmoid => p.iter().map(|&x| binary_entropy(f64::from(x))).sum(),
    };
    e.max(0.0) as f32
}

/// Margin score `1 − (o₁ − o₂)` of the two largest outcomes. Softmax: the
/// outcomes are the classes (`o₂ = 0` with a single class). Sigmoid: the
/// class scores and the background score `1 − p_max`.
pub fn margin(p: &[f32], activation: Activation) -> f32 {
    let classes = p.iter().map(|&x| f64::from(x));
    let (o1, o2) = match activation {
        Activation::Softmax => top_two_or_zero(classes),
        Activation::Sigmoid => {
            let background = 1.0 - max_of(p);
            top_two_or_zero(classes.chain(std::iter::once(background)))
        }
    };
    (1.0 - (o1 - o2)).clamp(0.0, 1.0) as f32
}

/// Least confidence `1 − o₁` of the largest outcome. Softmax: `1 − p_max`.
/// Sigmoid: `1 − max(p_max, 1 − p_max)`.
pub fn least_confidence(p: &[f32], activation: Activation) -> f32 {
    let p_max = max_of(p);
    let top = match activation {
        Activation::Softmax => p_max,
        Activation::Sigmoid => p_max.max(1.0 - p_max),
    };
    (1.0 - top).clamp(0.0, 1.0) as f32
}

/// Active Bias's threshold closeness `p̄(1 − p̄)` (Chang et al. 2017): 0 for
/// a sample always predicted with certainty either way, ¼ at `p̄ = ½`.
pub fn threshold_closeness(p_bar: f32) -> f32 {
    let p = f64::from(p_bar).clamp(0.0, 1.0);
    (p * (1.0 - p)) as f32
}

/// The detection form of threshold closeness: how close a location's score
/// `s` (its top class probability) lies to the score threshold `τ`.
///
/// Active Bias's `p(1 − p)` peaks at the binary decision threshold ½. For a
/// threshold τ the score is first warped piecewise-linearly so that τ maps
/// to ½ (`u = s / 2τ` below τ, `u = ½ + (s − τ) / 2(1 − τ)` above), then
/// `closeness = u(1 − u)`: ¼ at `s = τ`, 0 at `s = 0` and `s = 1`, and
/// exactly `s(1 − s)` when `τ = ½`. The warp keeps the scale fair on both
/// sides of an off-centre τ: with τ = 0.05 a background location at
/// `s = 0.01` scores 0.09, at `s = 0.001` 0.0099, a detection at `s = 0.9`
/// 0.0499.
pub fn score_threshold_closeness(s: f32, tau: f32) -> f32 {
    let (s, tau) = (f64::from(s).clamp(0.0, 1.0), f64::from(tau));
    if !(tau > 0.0 && tau < 1.0) {
        return 0.0;
    }
    let u = if s <= tau {
        s / (2.0 * tau)
    } else {
        0.5 + (s - tau) / (2.0 * (1.0 - tau))
    };
    (u * (1.0 - u)).max(0.0) as f32
}

/// The true-class probability of a (possibly mixed) target: the overlap
/// `Σ_k min(p_k, w_k) = 1 − ½‖p − w‖₁` of the predicted distribution `p`
/// and the target weights `w` (which sum to 1).
///
/// For a one-hot target of class `y` this is `p_y`. For a mixed target
/// (mixup, CutMix, RICAP: weights λ and 1 − λ, or area shares) it is 1
/// exactly when the prediction matches the mixture, which the weighted sum
/// `Σ_k w_k p_k` is not (a perfect prediction of a 50/50 mix gives ½ there).
pub fn true_class_overlap(p: &[f32], w: &[f32]) -> f32 {
    let o: f64 = p
        .iter()
        .zip(w)
        .map(|(&a, &b)| f64::from(a).min(f64::from(b)))
        .sum();
    o.clamp(0.0, 1.0) as f32
}

/// The gradient norm of softmax cross-entropy `−Σ_k y_k ln softmax(x)_k`
/// with respect to the logits `x`: the gradient is `p·Σ_k y_k − y`, which is
/// `p − y` for a target that sums to 1 (Katharopoulos & Fleuret 2018).
pub fn softmax_ce_grad_norm(p: &[f32], y: &[f32]) -> f32 {
    let total: f64 = y.iter().map(|&v| f64::from(v)).sum();
    let sq: f64 = p
        .iter()
        .zip(y)
        .map(|(&pk, &yk)| (f64::from(pk) * total - f64::from(yk)).powi(2))
        .sum();
    sq.sqrt() as f32
}

/// The magnitude of `∂FL/∂x` for torchvision's sigmoid focal loss
/// `FL = α_t (1 − p_t)^γ · CE` on one logit `x` with probability
/// `p = σ(x)` and binary target `t` (`positive`), in closed form:
///
/// `|∂FL/∂x| = α_t (1 − p_t)^γ · ((1 − p_t) − γ p_t ln p_t)`,
///
/// with `p_t = p, α_t = α` for a positive and `p_t = 1 − p, α_t = 1 − α`
/// for a negative (the sign is that of `p − t`). With γ = 0 and α_t = 1 it
/// is BCE's `|p − t|`.
pub fn focal_grad(p: f32, positive: bool, alpha: f32, gamma: f32) -> f32 {
    let p = f64::from(p).clamp(0.0, 1.0);
    let (q, one_minus_q, alpha_t) = if positive {
        (p, 1.0 - p, f64::from(alpha))
    } else {
        (1.0 - p, p, 1.0 - f64::from(alpha))
    };
    let gamma = f64::from(gamma);
    let modulator = if gamma == 0.0 {
        1.0
    } else {
        one_minus_q.powf(gamma)
    };
    (alpha_t * modulator * (one_minus_q - gamma * xlnx(q))).max(0.0) as f32
}
