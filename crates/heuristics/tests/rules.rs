//! Each rule on one location, against values computed by hand.

use isdet_heuristics::Activation::{Sigmoid, Softmax};
use isdet_heuristics::rules::{
    entropy, focal_grad, least_confidence, margin, score_threshold_closeness, softmax_ce_grad_norm,
    threshold_closeness, true_class_overlap,
};

fn close(got: f32, want: f64, what: &str) {
    assert!(
        (f64::from(got) - want).abs() <= 1e-6 + 1e-5 * want.abs(),
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn softmax_entropy_is_minus_sum_p_ln_p() {
    let cases: &[(&[f32], f64, &str)] = &[
        // −(½ ln ½ + 2·¼ ln ¼) = ½ ln 2 + ln 2 = 1.5 ln 2.
        (
            &[0.5, 0.25, 0.25],
            1.5 * std::f64::consts::LN_2,
            "half and two quarters",
        ),
        // Uniform over 4 classes: ln 4, the most a 4-class entropy can be.
        (&[0.25; 4], 4f64.ln(), "uniform"),
        // Certain: 0 (0 · ln 0 is read as 0, not NaN).
        (&[1.0, 0.0, 0.0], 0.0, "one-hot"),
        // −(0.7 ln 0.7 + 0.2 ln 0.2 + 0.1 ln 0.1) = 0.24967 + 0.32189 + 0.23026.
        (&[0.7, 0.2, 0.1], 0.801_818_6, "0.7/0.2/0.1"),
    ];
    for &(p, want, what) in cases {
        close(entropy(p, Softmax), want, what);
    }
}

#[test]
fn sigmoid_entropy_sums_binary_entropies() {
    let cases: &[(&[f32], f64, &str)] = &[
        // H(½) + H(0) = ln 2 + 0.
        (&[0.5, 0.0], std::f64::consts::LN_2, "one unsure class"),
        // Two independent coin flips: 2 ln 2.
        (
            &[0.5, 0.5],
            2.0 * std::f64::consts::LN_2,
            "two unsure classes",
        ),
        // H(0.1) = −0.1 ln 0.1 − 0.9 ln 0.9 = 0.230259 + 0.094824.
        (&[0.1], 0.325_083, "one class at 0.1"),
        // Confident background (every score 0) carries no uncertainty, where a
        // categorical reading of [0, 0] would be undefined.
        (&[0.0, 0.0, 0.0], 0.0, "background"),
    ];
    for &(p, want, what) in cases {
        close(entropy(p, Sigmoid), want, what);
    }
}

#[test]
fn softmax_margin_is_one_minus_top_two_gap() {
    let cases: &[(&[f32], f64, &str)] = &[
        // 1 − (0.5 − 0.3).
        (&[0.5, 0.3, 0.2], 0.8, "clear winner"),
        // A tie between the top two: 1 − 0.
        (&[0.4, 0.4, 0.2], 1.0, "tie"),
        // Certain: 1 − (1 − 0).
        (&[0.0, 1.0], 0.0, "certain"),
        // One class: the missing second is 0, so 1 − (1 − 0).
        (&[1.0], 0.0, "single class"),
    ];
    for &(p, want, what) in cases {
        close(margin(p, Softmax), want, what);
    }
}

#[test]
fn sigmoid_margin_counts_background_as_an_outcome() {
    let cases: &[(&[f32], f64, &str)] = &[
        // Outcomes {0.6, 0.3, background 0.4}: 1 − (0.6 − 0.4).
        (&[0.6, 0.3], 0.8, "object or not"),
        // {0.01, 0.005, 0.99}: 1 − (0.99 − 0.01); confident background is
        // not uncertain.
        (&[0.01, 0.005], 0.02, "background"),
        // {0.9, 0.85, 0.1}: 1 − 0.05; two competing classes.
        (&[0.9, 0.85], 0.95, "class confusion"),
        // {0.5, 0.01, 0.5}: 1 − 0.
        (&[0.5, 0.01], 1.0, "at one half"),
    ];
    for &(p, want, what) in cases {
        close(margin(p, Sigmoid), want, what);
    }
}

#[test]
fn least_confidence_is_one_minus_top_outcome() {
    // Softmax: 1 − 0.7.
    close(least_confidence(&[0.7, 0.2, 0.1], Softmax), 0.3, "softmax");
    // Sigmoid: 1 − max(0.7, 1 − 0.7).
    close(
        least_confidence(&[0.7, 0.2], Sigmoid),
        0.3,
        "sigmoid object",
    );
    // Sigmoid background: 1 − max(0.1, 0.9) = 0.1, not 1 − 0.1.
    close(
        least_confidence(&[0.1, 0.05], Sigmoid),
        0.1,
        "sigmoid background",
    );
    close(
        least_confidence(&[0.0, 0.0], Sigmoid),
        0.0,
        "sigmoid certain background",
    );
    // Softmax unsure over 4: 1 − ¼.
    close(
        least_confidence(&[0.25; 4], Softmax),
        0.75,
        "softmax uniform",
    );
}

#[test]
fn active_bias_closeness_is_p_times_one_minus_p() {
    close(threshold_closeness(0.5), 0.25, "at the threshold");
    close(threshold_closeness(0.9), 0.09, "0.9 · 0.1");
    close(threshold_closeness(0.0), 0.0, "always wrong");
    close(threshold_closeness(1.0), 0.0, "always right");
}

#[test]
fn score_threshold_closeness_peaks_at_tau() {
    let cases: &[(f32, f32, f64, &str)] = &[
        // s = τ maps to u = ½: ½ · ½.
        (0.05, 0.05, 0.25, "at τ"),
        // Below τ: u = 0.01 / 0.1 = 0.1, 0.1 · 0.9.
        (0.01, 0.05, 0.09, "background at 0.01"),
        // Below τ: u = 0.02 / 0.1 = 0.2, 0.2 · 0.8.
        (0.02, 0.05, 0.16, "background at 0.02"),
        // Above τ: u = ½ + 0.85 / 1.9 = 0.947368, u(1 − u) = 0.0498615.
        (0.9, 0.05, 0.049_861_5, "detection at 0.9"),
        // Above τ: u = ½ + 0.45 / 1.9 = 0.736842, u(1 − u) = 0.193906.
        (0.5, 0.05, 0.193_905_8, "at one half"),
        (0.0, 0.05, 0.0, "zero"),
        (1.0, 0.05, 0.0, "one"),
        // τ = ½ is Active Bias's s(1 − s): 0.3 · 0.7.
        (0.3, 0.5, 0.21, "tau one half"),
    ];
    for &(s, tau, want, what) in cases {
        close(score_threshold_closeness(s, tau), want, what);
    }
}

#[test]
fn true_class_overlap_generalises_the_true_class_probability() {
    // One-hot class 1: p₁ = 0.2.
    close(
        true_class_overlap(&[0.7, 0.2, 0.1], &[0.0, 1.0, 0.0]),
        0.2,
        "one-hot",
    );
    // A perfect prediction of a 50/50 mix overlaps fully (Σ w·p would say ½).
    close(
        true_class_overlap(&[0.5, 0.5, 0.0], &[0.5, 0.5, 0.0]),
        1.0,
        "perfect mix",
    );
    // min(0.7, 0.5) + min(0.2, 0.5) + min(0.1, 0) = 0.7.
    close(
        true_class_overlap(&[0.7, 0.2, 0.1], &[0.5, 0.5, 0.0]),
        0.7,
        "mixed",
    );
}

#[test]
fn softmax_ce_gradient_is_p_minus_y() {
    // (0.7 − 1, 0.2, 0.1): √(0.09 + 0.04 + 0.01) = √0.14.
    close(
        softmax_ce_grad_norm(&[0.7, 0.2, 0.1], &[1.0, 0.0, 0.0]),
        0.14f64.sqrt(),
        "hard",
    );
    // (0.7 − 0.5, 0.2 − 0.5, 0.1): √(0.04 + 0.09 + 0.01).
    close(
        softmax_ce_grad_norm(&[0.7, 0.2, 0.1], &[0.5, 0.5, 0.0]),
        0.14f64.sqrt(),
        "soft",
    );
    // A target of total weight 2 doubles the loss: p·2 − y = (0.4, 1.6 − 2).
    close(
        softmax_ce_grad_norm(&[0.2, 0.8], &[0.0, 2.0]),
        0.32f64.sqrt(),
        "weight 2",
    );
    close(
        softmax_ce_grad_norm(&[0.0, 1.0], &[0.0, 1.0]),
        0.0,
        "perfect",
    );
}

#[test]
fn focal_gradient_matches_the_closed_form() {
    let cases: &[(f32, bool, f32, f32, f64, &str)] = &[
        // Positive at ½: α (1 − ½)² (½ − 2 · ½ ln ½) = 0.25 · 0.25 · 1.193147.
        (0.5, true, 0.25, 2.0, 0.074_571_7, "positive at one half"),
        // Negative at ½: (1 − α) instead of α: 0.75 · 0.25 · 1.193147.
        (0.5, false, 0.25, 2.0, 0.223_715_1, "negative at one half"),
        // Positive at 0.6: 0.25 · 0.4² · (0.4 − 1.2 ln 0.6) = 0.04 · 1.012991.
        (0.6, true, 0.25, 2.0, 0.040_519_6, "positive at 0.6"),
        // Negative at 0.3: p_t = 0.7, 0.75 · 0.3² · (0.3 − 1.4 ln 0.7) = 0.0675 · 0.799343.
        (0.3, false, 0.25, 2.0, 0.053_955_8, "negative at 0.3"),
        // γ = 0 and α_t = 1 is plain BCE: |p − t|.
        (0.3, true, 1.0, 0.0, 0.7, "BCE positive"),
        (0.3, false, 0.0, 0.0, 0.3, "BCE negative"),
        // Right and certain: nothing to learn.
        (1.0, true, 0.25, 2.0, 0.0, "certain positive"),
        (0.0, false, 0.25, 2.0, 0.0, "certain negative"),
        // Certain and wrong: the limit α · 1 · (1 − 0), where p_t ln p_t → 0.
        (0.0, true, 0.25, 2.0, 0.25, "wrong positive"),
    ];
    for &(p, positive, alpha, gamma, want, what) in cases {
        close(focal_grad(p, positive, alpha, gamma), want, what);
    }
}
