//! The gradient-norm bound (Katharopoulos & Fleuret 2018) against candle's
//! autograd on a small model: a linear layer whose outputs are the logits.
//!
//! The bound is the norm of the loss gradient with respect to the last
//! layer's pre-activation outputs, so the logits are made a leaf variable
//! (candle keeps gradients of leaves only), the loss is built from them
//! with candle ops, and `backward` gives the reference gradient.

use candle_core::{D, DType, Device, Tensor, Var};
use isdet_heuristics::{ForwardOutputs, Heuristic, ScoringConfig, Targets, score_batch};

const REL_TOL: f64 = 1e-4;

/// Deterministic values in (−amp, amp): no random generator needed.
fn values(n: usize, seed: f64, amp: f64) -> Vec<f64> {
    (0..n)
        .map(|i| amp * (seed + 1.37 * i as f64).sin() * (0.5 + 0.5 * (0.71 * i as f64).cos()))
        .collect()
}

fn assert_rel(got: &[f32], want: &[f64], what: &str) {
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let rel = (f64::from(g) - w).abs() / w.abs().max(1e-12);
        assert!(
            rel <= REL_TOL,
            "{what}[{i}]: bound {g}, autograd {w} (rel {rel:e})"
        );
    }
}

/// Per-row L2 norms of `t` reshaped to `[rows, rest]`.
fn row_norms(t: &Tensor, rows: usize) -> Vec<f64> {
    t.reshape((rows, ()))
        .unwrap()
        .sqr()
        .unwrap()
        .sum(1)
        .unwrap()
        .sqrt()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// Softmax cross-entropy: the bound is ‖p − y‖ per sample, and for a linear
/// last layer the per-sample weight gradient is exactly ‖p − y‖ · ‖x‖.
#[test]
fn softmax_cross_entropy_bound_matches_autograd() {
    let dev = Device::Cpu;
    let (b, d, c) = (6, 5, 4);
    let x = Tensor::from_vec(values(b * d, 0.3, 1.5), (b, d), &dev).unwrap();
    let w = Var::from_tensor(&Tensor::from_vec(values(c * d, 1.1, 1.0), (c, d), &dev).unwrap())
        .unwrap();
    let logits = x.matmul(&w.as_tensor().t().unwrap()).unwrap();
    // Hard targets for the first half, a 60/40 mix for the rest.
    let classes = [0u32, 3, 1, 2, 0, 1];
    let mut y = vec![0f64; b * c];
    for (i, &k) in classes.iter().enumerate() {
        if i < 3 {
            y[i * c + k as usize] = 1.0;
        } else {
            y[i * c + k as usize] = 0.6;
            y[i * c + (k as usize + 1) % c] = 0.4;
        }
    }
    let y = Tensor::from_vec(y, (b, c), &dev).unwrap();
    let ce = |z: &Tensor| -> Tensor {
        let logp = candle_nn::ops::log_softmax(z, D::Minus1).unwrap();
        (logp * &y).unwrap().sum(D::Minus1).unwrap().neg().unwrap()
    };

    // Reference: the gradient of Σ_i CE_i with respect to the logits; row i
    // is sample i's own gradient because samples do not interact.
    let z = Var::from_tensor(&logits.detach()).unwrap();
    let grads = ce(z.as_tensor()).sum_all().unwrap().backward().unwrap();
    let want = row_norms(grads.get(z.as_tensor()).unwrap(), b);

    let probs = candle_nn::ops::softmax(&logits.detach(), D::Minus1).unwrap();
    let losses: Vec<f32> = ce(&logits.detach())
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec1()
        .unwrap();
    let out = ForwardOutputs::classification(&losses, &probs).with_targets(Targets::Soft(&y));
    let got = score_batch(&ScoringConfig::new(Heuristic::GRAD_NORM_BOUND), &out).unwrap();
    assert_rel(&got, &want, "softmax CE");

    // Through the model: ‖∇_W CE_i‖_F = ‖p_i − y_i‖ · ‖x_i‖, one backward per
    // sample.
    let x_norms = row_norms(&x, b);
    for i in 0..b {
        let grads = ce(&logits)
            .narrow(0, i, 1)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gw = grads.get(w.as_tensor()).unwrap();
        let norm = gw
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .sqrt()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let predicted = f64::from(got[i]) * x_norms[i];
        assert!(
            (norm - predicted).abs() <= REL_TOL * norm,
            "sample {i}: ‖∇W‖ = {norm}, bound · ‖x‖ = {predicted}"
        );
    }
}

/// torchvision's sigmoid focal loss, elementwise, written with candle ops
/// from docs/methods.md: `ce · (1 − p_t)^γ · (α·t + (1 − α)(1 − t))`.
fn focal(x: &Tensor, t: &Tensor, alpha: f64, gamma: f64) -> Tensor {
    let p = candle_nn::ops::sigmoid(x).unwrap();
    let softplus = (x.abs().unwrap().neg().unwrap().exp().unwrap() + 1.0)
        .unwrap()
        .log()
        .unwrap();
    let ce = ((x.relu().unwrap() - (x * t).unwrap()).unwrap() + softplus).unwrap();
    let one_minus_t = t.affine(-1.0, 1.0).unwrap();
    let p_t = ((&p * t).unwrap() + (p.affine(-1.0, 1.0).unwrap() * &one_minus_t).unwrap()).unwrap();
    let modulator = p_t.affine(-1.0, 1.0).unwrap().powf(gamma).unwrap();
    let alpha_t =
        (t.affine(alpha, 0.0).unwrap() + one_minus_t.affine(1.0 - alpha, 0.0).unwrap()).unwrap();
    ((ce * modulator).unwrap() * alpha_t).unwrap()
}

/// Sigmoid focal loss over an image's counted locations and classes, divided
/// by its positives (at least 1): the bound is the norm of the gradient with
/// respect to the image's logits `[L, C]`.
fn check_focal(alpha: f32, gamma: f32) {
    let dev = Device::Cpu;
    let (b, l, d, c) = (3, 7, 4, 3);
    let feats = Tensor::from_vec(values(b * l * d, 0.9, 1.2), (b * l, d), &dev).unwrap();
    let w = Tensor::from_vec(values(c * d, 2.3, 1.0), (c, d), &dev).unwrap();
    let bias = -1.0; // Most locations start as confident-ish background, as in FCOS.
    let logits = (feats.matmul(&w.t().unwrap()).unwrap() + bias)
        .unwrap()
        .reshape((b, l, c))
        .unwrap();
    // Image 0: two positives; image 1: one positive and two ignored
    // locations; image 2: no positive (divided by 1).
    let labels: Vec<i64> = vec![
        0, -1, 2, -1, -1, -1, -1, //
        -1, 1, -2, -1, -2, -1, -1, //
        -1, -1, -1, -1, -1, -1, -1,
    ];
    let mask: Vec<f64> = labels
        .iter()
        .map(|&k| if k == -2 { 0.0 } else { 1.0 })
        .collect();
    let mut onehot = vec![0f64; b * l * c];
    for (i, &k) in labels.iter().enumerate() {
        if k >= 0 {
            onehot[i * c + k as usize] = 1.0;
        }
    }
    let positives: Vec<f64> = labels
        .chunks(l)
        .map(|img| (img.iter().filter(|&&k| k >= 0).count() as f64).max(1.0))
        .collect();
    let t = Tensor::from_vec(onehot, (b, l, c), &dev).unwrap();
    let m = Tensor::from_vec(mask, (b, l), &dev).unwrap();
    let norm = Tensor::from_vec(positives, b, &dev).unwrap();

    let z = Var::from_tensor(&logits).unwrap();
    let per_image = focal(z.as_tensor(), &t, f64::from(alpha), f64::from(gamma))
        .sum(D::Minus1)
        .unwrap()
        .mul(&m)
        .unwrap()
        .sum(1)
        .unwrap()
        .div(&norm)
        .unwrap();
    let grads = per_image.sum_all().unwrap().backward().unwrap();
    let want = row_norms(grads.get(z.as_tensor()).unwrap(), b);

    let probs = candle_nn::ops::sigmoid(&logits).unwrap();
    let losses: Vec<f32> = per_image.to_dtype(DType::F32).unwrap().to_vec1().unwrap();
    let parts: Vec<[f32; 3]> = losses.iter().map(|&v| [v, 0.0, 0.0]).collect();
    let out = ForwardOutputs::detection(&losses, &parts, &probs, &m)
        .with_targets(Targets::LocationLabels(&labels));
    let config = ScoringConfig::new(Heuristic::GradNormBound { alpha, gamma });
    let got = score_batch(&config, &out).unwrap();
    assert_rel(&got, &want, &format!("focal α {alpha} γ {gamma}"));
    // The masked locations must not count: the same outputs without the
    // mask give a different bound for image 1, which has ignored locations.
    let unmasked = ForwardOutputs { mask: None, ..out };
    let all = score_batch(&config, &unmasked).unwrap();
    assert!(
        (all[1] - got[1]).abs() > 1e-3 * got[1],
        "mask ignored: {all:?} vs {got:?}"
    );
    assert_eq!(all[0], got[0]);
}

#[test]
fn focal_bound_matches_autograd_with_fcos_parameters() {
    check_focal(0.25, 2.0);
}

#[test]
fn focal_bound_matches_autograd_with_other_parameters() {
    check_focal(0.6, 1.5);
    check_focal(0.5, 0.0);
}
