//! Every heuristic on a whole batch, against scores computed by hand.

mod common;

use candle_core::{Device, Tensor};
use common::{assert_close, classification, detection};
use isdet_heuristics::{
    Aggregation, ForwardOutputs, Heuristic, LossPart, Scorer, ScoringConfig, Targets, score_batch,
};

fn with(heuristic: Heuristic, aggregation: Aggregation) -> ScoringConfig {
    ScoringConfig {
        heuristic,
        aggregation,
    }
}

#[test]
fn loss_reads_the_total_or_one_part() {
    let d = detection();
    let out = ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask);
    let cases = [
        (LossPart::Total, [1.5, 0.7]),
        (LossPart::Classification, [1.0, 0.4]),
        (LossPart::Regression, [0.3, 0.2]),
        (LossPart::Centerness, [0.2, 0.1]),
    ];
    for (part, want) in cases {
        let got = score_batch(&ScoringConfig::new(Heuristic::Loss { part }), &out).unwrap();
        assert_close(&got, &want, &format!("{part:?}"));
    }
}

#[test]
fn uniform_scores_one() {
    let d = detection();
    let out = ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask);
    let got = score_batch(&ScoringConfig::new(Heuristic::Uniform), &out).unwrap();
    assert_eq!(got, vec![1.0, 1.0]);
}

#[test]
fn detection_least_confidence_under_every_aggregation() {
    // Per location 1 − max(p_max, 1 − p_max):
    // image 0: 0.5, 0.1, 0.02; image 1: 0.4, 0 (its 0.01 is masked out).
    let d = detection();
    let out = ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask);
    let cases = [
        // (0.5 + 0.1 + 0.02) / 3 and (0.4 + 0) / 2; with the masked location
        // image 1 would be 0.41 / 3.
        (Aggregation::Mean, [0.62 / 3.0, 0.2]),
        (Aggregation::Max, [0.5, 0.4]),
        (Aggregation::Sum, [0.62, 0.4]),
        // (0.5 + 0.1) / 2 and (0.4 + 0) / 2.
        (Aggregation::TopKMean { k: 2 }, [0.3, 0.2]),
        // k above the counted locations: the mean of all of them.
        (Aggregation::TopKMean { k: 10 }, [0.62 / 3.0, 0.2]),
    ];
    for (aggregation, want) in cases {
        let got = score_batch(&with(Heuristic::LeastConfidence, aggregation), &out).unwrap();
        assert_close(&got, &want, &format!("{aggregation:?}"));
    }
}

#[test]
fn detection_entropy_and_margin() {
    let d = detection();
    let out = ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask);
    // Entropy per location Σ_c H(p_c): image 0 location 0 is
    // H(0.5) + H(0.1) = 0.693147 + 0.325083; image 1 location 0 is
    // H(0.3) + H(0.6) = 0.610864 + 0.673012.
    let got = score_batch(&with(Heuristic::Entropy, Aggregation::Max), &out).unwrap();
    assert_close(&got, &[1.018_230_2, 1.283_876_0], "entropy max");
    // Margin over {scores, 1 − p_max}: image 0: {0.5, 0.1, 0.5} → 1,
    // {0.9, 0.05, 0.1} → 0.2, {0.02, 0.01, 0.98} → 0.04; image 1:
    // {0.3, 0.6, 0.4} → 0.8, {0, 0, 1} → 0.
    let got = score_batch(&with(Heuristic::Margin, Aggregation::Sum), &out).unwrap();
    assert_close(&got, &[1.24, 0.8], "margin sum");
}

#[test]
fn detection_threshold_closeness_around_the_score_threshold() {
    let d = detection();
    let out = ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask);
    // Top scores image 0: 0.5, 0.9, 0.02 → u = 0.736842, 0.947368, 0.2 →
    // closeness 0.193906, 0.049861, 0.16. Image 1: 0.6, 0 → u = 0.789474, 0
    // → 0.166205, 0.
    let got = score_batch(
        &with(Heuristic::THRESHOLD_CLOSENESS, Aggregation::Mean),
        &out,
    )
    .unwrap();
    assert_close(
        &got,
        &[(0.193_905_8 + 0.049_861_5 + 0.16) / 3.0, 0.166_205_0 / 2.0],
        "mean",
    );
    // A threshold of ½ moves the peak: image 1's 0.6 now scores 0.6 · 0.4.
    let half = Heuristic::ThresholdCloseness {
        score_threshold: 0.5,
    };
    let got = score_batch(&with(half, Aggregation::Max), &out).unwrap();
    assert_close(&got, &[0.25, 0.24], "tau one half, max");
}

#[test]
fn detection_grad_norm_bound_is_focal_gradient_norm_over_positives() {
    let d = detection();
    let out = ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask)
        .with_targets(Targets::LocationLabels(&d.labels));
    // Image 1: location 0 is a positive of class 1 (p = 0.6 → 0.0405196) and
    // a negative of class 0 (p = 0.3 → 0.0539558); location 1 is certain
    // background (0, 0); location 2 is masked. One positive:
    // √(0.0539558² + 0.0405196²) / 1 = 0.0674764.
    // Image 0: √(Σ g²) over its six values (0.0745717, 0.0021724,
    // 0.0007241, 0.0002765, 0.0000179, 0.0000022) / 2 positives.
    let got = score_batch(&ScoringConfig::new(Heuristic::GRAD_NORM_BOUND), &out).unwrap();
    assert_close(&got, &[0.037_303_68, 0.067_476_42], "focal bound");
}

#[test]
fn classification_heuristics() {
    let (probs, losses, classes) = classification();
    let out =
        ForwardOutputs::classification(&losses, &probs).with_targets(Targets::Classes(&classes));
    let score = |h| score_batch(&ScoringConfig::new(h), &out).unwrap();
    assert_close(&score(Heuristic::LOSS), &[0.36, 1.2, 1.39], "loss");
    // −Σ p ln p of each row.
    assert_close(
        &score(Heuristic::Entropy),
        &[0.801_818_6, 1.029_653_0, 1.039_720_8],
        "entropy",
    );
    // 1 − (0.7 − 0.2), 1 − (0.5 − 0.3), 1 − (0.5 − 0.25).
    assert_close(&score(Heuristic::Margin), &[0.5, 0.8, 0.75], "margin");
    // 1 − 0.7, 1 − 0.5, 1 − 0.5.
    assert_close(
        &score(Heuristic::LeastConfidence),
        &[0.3, 0.5, 0.5],
        "least confidence",
    );
    // ‖p − y‖: (−0.3, 0.2, 0.1), (0.2, 0.5, −0.7), (0.25, −0.75, 0.5).
    assert_close(
        &score(Heuristic::GRAD_NORM_BOUND),
        &[0.14f64.sqrt(), 0.78f64.sqrt(), 0.875f64.sqrt()],
        "grad norm bound",
    );
    // 1 − p_true with p_true 0.7, 0.3, 0.25.
    assert_close(&score(Heuristic::PSgd), &[0.3, 0.7, 0.75], "p-SGD");
    assert_close(&score(Heuristic::Uniform), &[1.0, 1.0, 1.0], "uniform");
}

#[test]
fn soft_targets_give_the_same_scores_as_hard_ones_when_one_hot() {
    let (probs, losses, classes) = classification();
    let onehot = Tensor::new(
        &[[1f32, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]],
        &Device::Cpu,
    )
    .unwrap();
    for h in [Heuristic::GRAD_NORM_BOUND, Heuristic::PSgd] {
        let hard = ForwardOutputs::classification(&losses, &probs)
            .with_targets(Targets::Classes(&classes));
        let soft =
            ForwardOutputs::classification(&losses, &probs).with_targets(Targets::Soft(&onehot));
        let config = ScoringConfig::new(h);
        assert_eq!(
            score_batch(&config, &hard).unwrap(),
            score_batch(&config, &soft).unwrap(),
            "{h:?}"
        );
    }
}

#[test]
fn mixed_targets_use_the_overlap_and_p_minus_y() {
    // One 70/30 mix of classes 0 and 1, predicted (0.6, 0.3, 0.1).
    let dev = Device::Cpu;
    let probs = Tensor::new(&[[0.6f32, 0.3, 0.1]], &dev).unwrap();
    let w = Tensor::new(&[[0.7f32, 0.3, 0.0]], &dev).unwrap();
    let out = ForwardOutputs::classification(&[0.9], &probs).with_targets(Targets::Soft(&w));
    // Overlap min(0.6, 0.7) + min(0.3, 0.3) + 0 = 0.9, so p-SGD scores 0.1.
    let got = score_batch(&ScoringConfig::new(Heuristic::PSgd), &out).unwrap();
    assert_close(&got, &[0.1], "p-SGD");
    // p − y = (−0.1, 0, 0.1): √0.02.
    let got = score_batch(&ScoringConfig::new(Heuristic::GRAD_NORM_BOUND), &out).unwrap();
    assert_close(&got, &[0.02f64.sqrt()], "grad norm bound");
}

#[test]
fn active_bias_uses_the_running_mean_over_visits() {
    let (probs, losses, classes) = classification();
    let mut scorer = Scorer::new(ScoringConfig::new(Heuristic::THRESHOLD_CLOSENESS), 5).unwrap();
    let out =
        ForwardOutputs::classification(&losses, &probs).with_targets(Targets::Classes(&classes));
    // First visits: p̄ = 0.7, 0.3, 0.25 → 0.21, 0.21, 0.1875.
    let got = scorer.score(&[4, 0, 2], &out).unwrap();
    assert_close(&got, &[0.21, 0.21, 0.1875], "first visit");

    // Second visit of id 4 with p_true 0.9: p̄ = (0.7 + 0.9) / 2 = 0.8 → 0.16,
    // where the last visit alone would give 0.09.
    let p2 = Tensor::new(&[[0.9f32, 0.05, 0.05]], &Device::Cpu).unwrap();
    let out2 = ForwardOutputs::classification(&[0.1], &p2).with_targets(Targets::Classes(&[0]));
    let got = scorer.score(&[4], &out2).unwrap();
    assert_close(&got, &[0.16], "second visit");
    let state = scorer.state().unwrap();
    assert_close(&[state.mean(4).unwrap()], &[0.8], "p̄ of id 4");
    assert_eq!(state.weight(4), 2.0);
    // Id 1 was never visited.
    assert_eq!(state.mean(1), None);
}

#[test]
fn mixed_images_credit_every_source_by_its_weight() {
    let dev = Device::Cpu;
    let mut scorer = Scorer::new(ScoringConfig::new(Heuristic::THRESHOLD_CLOSENESS), 3).unwrap();
    // Id 0 seen once, plainly, at p_true 0.5.
    let p = Tensor::new(&[[0.5f32, 0.5, 0.0]], &dev).unwrap();
    let plain = ForwardOutputs::classification(&[0.7], &p).with_targets(Targets::Classes(&[0]));
    scorer.score(&[0], &plain).unwrap();
    // Then mixed 70/30 with id 1: prediction (0.6, 0.3, 0.1) against target
    // (0.7, 0.3, 0) overlaps by 0.9. Id 0: p̄ = 0.5 + (0.7 / 1.7)(0.9 − 0.5)
    // = 0.664706 → 0.222872. Id 1 (first visit, weight 0.3): p̄ = 0.9 → 0.09.
    let p = Tensor::new(&[[0.6f32, 0.3, 0.1]], &dev).unwrap();
    let w = Tensor::new(&[[0.7f32, 0.3, 0.0]], &dev).unwrap();
    let mixed = ForwardOutputs::classification(&[0.9], &p).with_targets(Targets::Soft(&w));
    let got = scorer
        .score_mixed(&[&[(0, 0.7), (1, 0.3)]], &mixed)
        .unwrap();
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![0, 1]);
    let scores: Vec<f32> = got.iter().map(|g| g.1).collect();
    assert_close(&scores, &[0.222_872_0, 0.09], "credited closeness");
    let state = scorer.state().unwrap();
    assert_close(&[state.weight(0), state.weight(1)], &[1.7, 0.3], "weights");
}

#[test]
fn mixed_images_pass_stateless_scores_to_their_sources() {
    let (probs, _, _) = classification();
    let probs = probs.narrow(0, 0, 2).unwrap();
    let out = ForwardOutputs::classification(&[1.0, 2.0], &probs);
    let mut scorer = Scorer::new(ScoringConfig::new(Heuristic::LOSS), 3).unwrap();
    // Id 0 is only in image 0 (loss 1); id 1 is in both, with weights ½ and
    // 1: (½ · 1 + 1 · 2) / 1.5; id 2 has weight 0 and is not scored.
    let got = scorer
        .score_mixed(&[&[(0, 0.5), (1, 0.5)], &[(1, 1.0), (2, 0.0)]], &out)
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].0, got[1].0), (0, 1));
    assert_close(&[got[0].1, got[1].1], &[1.0, 2.5 / 1.5], "scores");
}

#[test]
fn scorer_without_state_matches_score_batch() {
    let d = detection();
    let out = ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask)
        .with_targets(Targets::LocationLabels(&d.labels));
    for h in Heuristic::ALL.into_iter().filter(|h| *h != Heuristic::PSgd) {
        let config = ScoringConfig::new(h);
        let mut scorer = Scorer::new(config, 10).unwrap();
        assert_eq!(
            scorer.score(&[3, 7], &out).unwrap(),
            score_batch(&config, &out).unwrap(),
            "{h:?}"
        );
    }
}

#[test]
fn every_score_is_finite_and_non_negative_at_the_extremes() {
    // Saturated probabilities (exact 0 and 1) are where ln 0 would bite.
    let dev = Device::Cpu;
    let probs = Tensor::new(&[[[1f32, 0.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 1.0]]], &dev).unwrap();
    let mask = Tensor::ones((2, 2), candle_core::DType::F32, &dev).unwrap();
    let labels = [1, -1, 0, 0];
    let (losses, parts) = ([0.0f32, 3.0], [[0.0f32; 3], [1.0, 1.0, 1.0]]);
    let out = ForwardOutputs::detection(&losses, &parts, &probs, &mask)
        .with_targets(Targets::LocationLabels(&labels));
    for h in Heuristic::ALL.into_iter().filter(|h| *h != Heuristic::PSgd) {
        for aggregation in [
            Aggregation::Mean,
            Aggregation::Max,
            Aggregation::Sum,
            Aggregation::DETECTION_DEFAULT,
        ] {
            let got = score_batch(&with(h, aggregation), &out).unwrap();
            assert!(
                got.iter().all(|s| s.is_finite() && *s >= 0.0),
                "{h:?} {aggregation:?}: {got:?}"
            );
        }
    }
}

/// The running means survive a checkpoint: stored as tensors and read
/// back, they are the same state, and a missing tensor is named.
#[test]
fn running_means_round_trip_through_tensors() {
    let mut state = isdet_heuristics::RunningTrueClassMean::new(4).unwrap();
    state.record(0, 0.25, 1.0).unwrap();
    state.record(0, 0.75, 2.0).unwrap();
    state.record(2, 0.5, 0.5).unwrap();
    let tensors = state.to_tensors().unwrap();
    let back = isdet_heuristics::RunningTrueClassMean::from_tensors(&tensors).unwrap();
    assert_eq!(back, state);
    let mut partial = tensors.clone();
    partial.remove("weight");
    let err = isdet_heuristics::RunningTrueClassMean::from_tensors(&partial).unwrap_err();
    assert!(err.to_string().contains("weight"), "{err}");
}
