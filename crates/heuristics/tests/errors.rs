//! Bad input is an error naming the field and both shapes, never a panic.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{classification, detection};
use isdet_heuristics::{
    ForwardOutputs, Heuristic, HeuristicsError, LossPart, RunningTrueClassMean, Scorer,
    ScoringConfig, Targets, score_batch,
};

fn entropy() -> ScoringConfig {
    ScoringConfig::new(Heuristic::Entropy)
}

/// Asserts a `ShapeMismatch` on `field` whose message holds both shapes.
fn assert_shape(result: Result<Vec<f32>, HeuristicsError>, field: &str, shapes: [&str; 2]) {
    match result {
        Err(e @ HeuristicsError::ShapeMismatch { .. }) => {
            let message = e.to_string();
            assert!(message.starts_with(field), "{message}");
            for s in shapes {
                assert!(message.contains(s), "{message} lacks {s}");
            }
        }
        other => panic!("expected a shape mismatch on {field}, got {other:?}"),
    }
}

#[test]
fn shape_mismatches_name_the_field_and_both_shapes() {
    let d = detection();
    // Three losses for a batch of two.
    let losses = [1.0f32, 1.0, 1.0];
    let out = ForwardOutputs::detection(&losses, &d.parts, &d.probs, &d.mask);
    assert_shape(
        score_batch(&entropy(), &out),
        "probs",
        ["[3, L, C]", "[2, 3, 2]"],
    );

    let wide = Tensor::ones((2, 4), DType::F32, &Device::Cpu).unwrap();
    let out = ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &wide);
    assert_shape(score_batch(&entropy(), &out), "mask", ["[2, 3]", "[2, 4]"]);

    let out = ForwardOutputs::detection(&d.losses, &d.parts[..1], &d.probs, &d.mask);
    assert_shape(score_batch(&entropy(), &out), "parts", ["[2, 3]", "[1, 3]"]);

    let out = ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask)
        .with_targets(Targets::LocationLabels(&d.labels[..5]));
    assert_shape(
        score_batch(&ScoringConfig::new(Heuristic::GRAD_NORM_BOUND), &out),
        "targets",
        ["[6]", "[5]"],
    );

    let flat = Tensor::ones(2, DType::F32, &Device::Cpu).unwrap();
    let out = ForwardOutputs::classification(&d.losses, &flat);
    assert_shape(score_batch(&entropy(), &out), "probs", ["[2, C]", "[2]"]);

    let (probs, losses, classes) = classification();
    let out = ForwardOutputs::classification(&losses, &probs)
        .with_targets(Targets::Classes(&classes[..2]));
    assert_shape(
        score_batch(&ScoringConfig::new(Heuristic::PSgd), &out),
        "targets",
        ["[3]", "[2]"],
    );
    let soft = Tensor::ones((3, 2), DType::F32, &Device::Cpu).unwrap();
    let out = ForwardOutputs::classification(&losses, &probs).with_targets(Targets::Soft(&soft));
    assert_shape(
        score_batch(&ScoringConfig::new(Heuristic::PSgd), &out),
        "targets",
        ["[3, 3]", "[3, 2]"],
    );

    // Class targets need one distribution per sample, not per location.
    let out = ForwardOutputs {
        activation: isdet_heuristics::Activation::Softmax,
        ..ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask)
    }
    .with_targets(Targets::Classes(&[0, 1]));
    assert_shape(
        score_batch(&ScoringConfig::new(Heuristic::PSgd), &out),
        "probs",
        ["[2, 2]", "[2, 3, 2]"],
    );

    let out = ForwardOutputs::classification(&losses, &probs);
    let mut scorer = Scorer::new(entropy(), 10).unwrap();
    assert_shape(scorer.score(&[0, 1], &out), "ids", ["[3]", "[2]"]);
}

fn invalid_field(result: Result<Vec<f32>, HeuristicsError>) -> (&'static str, usize) {
    match result {
        Err(HeuristicsError::InvalidValue { field, index, .. }) => (field, index),
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

#[test]
fn invalid_values_are_named_with_their_index() {
    let d = detection();
    let dev = Device::Cpu;
    let nan = Tensor::new(&[[[0.5f32, 0.1], [f32::NAN, 0.0]]], &dev).unwrap();
    let losses = [1.0f32];
    let out = ForwardOutputs::classification(&losses, &nan);
    assert_eq!(invalid_field(score_batch(&entropy(), &out)), ("probs", 2));

    let above = Tensor::new(&[[1.5f32, 0.1]], &dev).unwrap();
    let out = ForwardOutputs::classification(&losses, &above);
    assert_eq!(invalid_field(score_batch(&entropy(), &out)), ("probs", 0));

    let losses = [1.0f32, -0.5];
    let out = ForwardOutputs::detection(&losses, &d.parts, &d.probs, &d.mask);
    assert_eq!(
        invalid_field(score_batch(&ScoringConfig::new(Heuristic::LOSS), &out)),
        ("losses", 1)
    );

    let parts = [[1.0f32, f32::INFINITY, 0.0], [0.0; 3]];
    let out = ForwardOutputs::detection(&d.losses, &parts, &d.probs, &d.mask);
    let regression = ScoringConfig::new(Heuristic::Loss {
        part: LossPart::Regression,
    });
    assert_eq!(invalid_field(score_batch(&regression, &out)), ("parts", 1));

    let half = Tensor::new(&[[1f32, 2.0, 1.0], [1.0, 1.0, 1.0]], &dev).unwrap();
    let out = ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &half);
    assert_eq!(invalid_field(score_batch(&entropy(), &out)), ("mask", 1));

    let labels = [0, 0, 2, 1, -1, -2];
    let out = ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask)
        .with_targets(Targets::LocationLabels(&labels));
    let bound = ScoringConfig::new(Heuristic::GRAD_NORM_BOUND);
    assert_eq!(invalid_field(score_batch(&bound, &out)), ("targets", 2));

    let (probs, losses, _) = classification();
    let out =
        ForwardOutputs::classification(&losses, &probs).with_targets(Targets::Classes(&[0, 3, 1]));
    assert_eq!(invalid_field(score_batch(&bound, &out)), ("targets", 1));
}

#[test]
fn missing_inputs_and_unsupported_combinations() {
    let d = detection();
    let no_parts = ForwardOutputs {
        parts: None,
        ..ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask)
    };
    let classification_part = ScoringConfig::new(Heuristic::Loss {
        part: LossPart::Classification,
    });
    assert!(matches!(
        score_batch(&classification_part, &no_parts),
        Err(HeuristicsError::MissingInput { field: "parts", .. })
    ));
    // The total loss needs no parts.
    assert!(score_batch(&ScoringConfig::new(Heuristic::LOSS), &no_parts).is_ok());

    let det = ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask);
    assert!(matches!(
        score_batch(&ScoringConfig::new(Heuristic::GRAD_NORM_BOUND), &det),
        Err(HeuristicsError::MissingInput {
            field: "targets",
            ..
        })
    ));
    // Class targets are the wrong kind for a detector.
    let wrong = det.with_targets(Targets::Classes(&[0, 1]));
    assert!(matches!(
        score_batch(&ScoringConfig::new(Heuristic::GRAD_NORM_BOUND), &wrong),
        Err(HeuristicsError::MissingInput {
            field: "targets",
            ..
        })
    ));
    assert!(matches!(
        score_batch(&ScoringConfig::new(Heuristic::PSgd), &det),
        Err(HeuristicsError::Unsupported {
            activation: "sigmoid",
            ..
        })
    ));

    let (probs, losses, classes) = classification();
    let out =
        ForwardOutputs::classification(&losses, &probs).with_targets(Targets::Classes(&classes));
    assert!(matches!(
        score_batch(&ScoringConfig::new(Heuristic::THRESHOLD_CLOSENESS), &out),
        Err(HeuristicsError::MissingInput { field: "state", .. })
    ));
    let untargeted = ForwardOutputs::classification(&losses, &probs);
    let mut scorer = Scorer::new(ScoringConfig::new(Heuristic::THRESHOLD_CLOSENESS), 3).unwrap();
    assert!(matches!(
        scorer.score(&[0, 1, 2], &untargeted),
        Err(HeuristicsError::MissingInput {
            field: "targets",
            ..
        })
    ));
}

#[test]
fn a_rejected_batch_leaves_the_running_means_unchanged() {
    let (probs, losses, classes) = classification();
    let out =
        ForwardOutputs::classification(&losses, &probs).with_targets(Targets::Classes(&classes));
    let mut scorer = Scorer::new(ScoringConfig::new(Heuristic::THRESHOLD_CLOSENESS), 3).unwrap();
    scorer.score(&[0, 1, 2], &out).unwrap();
    let before = scorer.state().unwrap().clone();
    assert!(matches!(
        scorer.score(&[0, 1, 3], &out),
        Err(HeuristicsError::IdOutOfRange { id: 3, len: 3 })
    ));
    let bad_weight = scorer.score_mixed(&[&[(0, 1.0)], &[(1, 1.0)], &[(2, f32::NAN)]], &out);
    assert!(matches!(
        bad_weight,
        Err(HeuristicsError::InvalidValue {
            field: "sources",
            ..
        })
    ));
    assert_eq!(scorer.state().unwrap(), &before);

    let mut state = RunningTrueClassMean::new(2).unwrap();
    assert!(matches!(
        state.record(2, 0.5, 1.0),
        Err(HeuristicsError::IdOutOfRange { id: 2, len: 2 })
    ));
    assert!(state.record(0, 1.5, 1.0).is_err());
    assert!(state.record(0, 0.5, -1.0).is_err());
    // Weight 0 records nothing.
    state.record(0, 0.5, 0.0).unwrap();
    assert_eq!(state.mean(0), None);
}

#[test]
fn other_float_dtypes_are_read_as_f32() {
    let d = detection();
    let probs = d.probs.to_dtype(DType::F64).unwrap();
    let mask = d.mask.to_dtype(DType::F64).unwrap();
    let a = score_batch(
        &entropy(),
        &ForwardOutputs::detection(&d.losses, &d.parts, &probs, &mask),
    )
    .unwrap();
    let b = score_batch(
        &entropy(),
        &ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask),
    )
    .unwrap();
    assert_eq!(a, b);
}
