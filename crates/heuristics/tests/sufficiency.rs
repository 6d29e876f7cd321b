//! AFSS's learning sufficiency on hand-made boxes: the matching rule, its
//! edge cases, and the heuristic's inputs, parameters and errors.

mod common;

use candle_core::{Device, Tensor};
use common::detection;
use isdet_heuristics::sufficiency::{iou, match_boxes, sufficiency};
use isdet_heuristics::{
    ForwardOutputs, Heuristic, HeuristicsError, ImageBoxes, Matches, ScoredBox, Scorer,
    ScoringConfig, TruthBox, score_batch,
};

fn det(bbox: [f32; 4], class: u32, score: f32) -> ScoredBox {
    ScoredBox { bbox, class, score }
}

fn gt(bbox: [f32; 4], class: u32) -> TruthBox {
    TruthBox { bbox, class }
}

/// The object most cases look at: a 10 × 10 box of class 0.
const A: [f32; 4] = [0.0, 0.0, 10.0, 10.0];
/// A second object, far from `A`.
const B: [f32; 4] = [20.0, 20.0, 30.0, 30.0];

struct Case {
    what: &'static str,
    detections: Vec<ScoredBox>,
    truth: Vec<TruthBox>,
    /// (IoU threshold, score threshold).
    thresholds: (f32, f32),
    /// (true positives, counted detections, ground truth).
    counts: (usize, usize, usize),
    sufficiency: f32,
}

fn cases() -> Vec<Case> {
    let default = (0.5, 0.25);
    let case = |what, detections, truth, counts, sufficiency| Case {
        what,
        detections,
        truth,
        thresholds: default,
        counts,
        sufficiency,
    };
    vec![
        case(
            "perfect",
            vec![det(A, 0, 0.9)],
            vec![gt(A, 0)],
            (1, 1, 1),
            1.0,
        ),
        case(
            "two objects, both found",
            vec![det(B, 1, 0.7), det(A, 0, 0.9)],
            vec![gt(A, 0), gt(B, 1)],
            (2, 2, 2),
            1.0,
        ),
        // Precision 1/2, recall 1.
        case(
            "a false positive",
            vec![det(A, 0, 0.9), det(B, 0, 0.8)],
            vec![gt(A, 0)],
            (1, 2, 1),
            0.5,
        ),
        // Precision 1, recall 1/2.
        case(
            "a miss",
            vec![det(A, 0, 0.9)],
            vec![gt(A, 0), gt(B, 1)],
            (1, 1, 2),
            0.5,
        ),
        case(
            "wrong class",
            vec![det(A, 1, 0.9)],
            vec![gt(A, 0)],
            (0, 1, 1),
            0.0,
        ),
        // [0, 0, 10, 4.9] inside A: IoU 0.49.
        case(
            "IoU just below the threshold",
            vec![det([0.0, 0.0, 10.0, 4.9], 0, 0.9)],
            vec![gt(A, 0)],
            (0, 1, 1),
            0.0,
        ),
        // IoU 0.51.
        case(
            "IoU just above the threshold",
            vec![det([0.0, 0.0, 10.0, 5.1], 0, 0.9)],
            vec![gt(A, 0)],
            (1, 1, 1),
            1.0,
        ),
        // IoU exactly 0.5 matches, as in COCO (IoU ≥ threshold).
        case(
            "IoU at the threshold",
            vec![det([0.0, 0.0, 10.0, 5.0], 0, 0.9)],
            vec![gt(A, 0)],
            (1, 1, 1),
            1.0,
        ),
        Case {
            thresholds: (0.4, 0.25),
            ..case(
                "IoU 0.49 at a threshold of 0.4",
                vec![det([0.0, 0.0, 10.0, 4.9], 0, 0.9)],
                vec![gt(A, 0)],
                (1, 1, 1),
                1.0,
            )
        },
        case("empty image, no detection", vec![], vec![], (0, 0, 0), 1.0),
        // Precision 0 (recall is 1: nothing to miss).
        case(
            "empty image with a detection",
            vec![det(A, 0, 0.3)],
            vec![],
            (0, 1, 0),
            0.0,
        ),
        case(
            "empty image, detection below the score threshold",
            vec![det(A, 0, 0.2)],
            vec![],
            (0, 0, 0),
            1.0,
        ),
        // Recall 0 (precision is 1: nothing claimed).
        case(
            "objects, no detection",
            vec![],
            vec![gt(A, 0)],
            (0, 0, 1),
            0.0,
        ),
        case(
            "the only detection below the score threshold",
            vec![det(A, 0, 0.2)],
            vec![gt(A, 0)],
            (0, 0, 1),
            0.0,
        ),
        case(
            "a detection at the score threshold counts",
            vec![det(A, 0, 0.25)],
            vec![gt(A, 0)],
            (1, 1, 1),
            1.0,
        ),
        // Each ground-truth box matches once: the second is a false positive.
        case(
            "duplicates",
            vec![det(A, 0, 0.8), det([0.0, 0.0, 10.0, 9.0], 0, 0.9)],
            vec![gt(A, 0)],
            (1, 2, 1),
            0.5,
        ),
        // Greedy by score, each detection to its best-IoU free box: the
        // 0.9 detection [0, 2, 10, 12] overlaps A by 0.667 and C =
        // [0, 5, 10, 15] by 0.538 and takes A, so the 0.6 detection on A
        // finds only C (IoU 0.333) and misses. Matching in ascending score
        // order, or to the first box above the threshold (C is listed
        // first), would match both.
        case(
            "greedy by score, best IoU first",
            vec![det(A, 0, 0.6), det([0.0, 2.0, 10.0, 12.0], 0, 0.9)],
            vec![gt([0.0, 5.0, 10.0, 15.0], 0), gt(A, 0)],
            (1, 2, 2),
            0.5,
        ),
        // Three of four found, one of four detections wrong: min(3/4, 3/4).
        case(
            "three of four",
            vec![
                det(A, 0, 0.9),
                det(B, 1, 0.8),
                det([40.0, 0.0, 50.0, 10.0], 2, 0.7),
                det([40.0, 40.0, 50.0, 50.0], 0, 0.6),
            ],
            vec![
                gt(A, 0),
                gt(B, 1),
                gt([40.0, 0.0, 50.0, 10.0], 2),
                gt([60.0, 60.0, 70.0, 70.0], 3),
            ],
            (3, 4, 4),
            0.75,
        ),
    ]
}

#[test]
fn sufficiency_follows_the_matching_rule() {
    for case in cases() {
        let image = ImageBoxes {
            detections: &case.detections,
            truth: &case.truth,
        };
        let (iou_t, score_t) = case.thresholds;
        let (true_positives, detections, truth) = case.counts;
        let want = Matches {
            true_positives,
            detections,
            truth,
        };
        assert_eq!(match_boxes(&image, iou_t, score_t), want, "{}", case.what);
        let got = sufficiency(&image, iou_t, score_t);
        assert!(
            (got - case.sufficiency).abs() < 1e-6,
            "{}: sufficiency {got}, want {}",
            case.what,
            case.sufficiency
        );
    }
}

#[test]
fn precision_and_recall_define_the_edge_cases() {
    // (TP, detections, truth) → (precision, recall, sufficiency).
    let cases = [
        ((0, 0, 0), (1.0, 1.0, 1.0)),
        ((0, 3, 0), (0.0, 1.0, 0.0)),
        ((0, 0, 2), (1.0, 0.0, 0.0)),
        ((1, 4, 2), (0.25, 0.5, 0.25)),
    ];
    for ((true_positives, detections, truth), (p, r, s)) in cases {
        let m = Matches {
            true_positives,
            detections,
            truth,
        };
        assert_eq!(
            (m.precision(), m.recall(), m.sufficiency()),
            (p, r, s),
            "{m:?}"
        );
    }
}

#[test]
fn iou_of_hand_made_boxes() {
    let cases = [
        (A, A, 1.0),
        (A, B, 0.0),
        (A, [0.0, 0.0, 10.0, 5.0], 0.5),
        (A, [5.0, 0.0, 15.0, 10.0], 50.0 / 150.0),
        // Degenerate and inverted boxes have no area, and no NaN.
        ([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], 0.0),
        ([10.0, 10.0, 0.0, 0.0], A, 0.0),
    ];
    for (a, b, want) in cases {
        assert!((iou(&a, &b) - want).abs() < 1e-12, "{a:?} {b:?}");
        assert!((iou(&b, &a) - want).abs() < 1e-12, "symmetric: {a:?} {b:?}");
    }
}

/// The two-image detection fixture with boxes: image 0 found, image 1 not.
fn scored(config: &ScoringConfig) -> Result<Vec<f32>, HeuristicsError> {
    let d = detection();
    let (found, truth) = ([det(A, 0, 0.9)], [gt(A, 0)]);
    let boxes = [
        ImageBoxes {
            detections: &found,
            truth: &truth,
        },
        ImageBoxes {
            detections: &[],
            truth: &truth,
        },
    ];
    let out = ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask).with_boxes(&boxes);
    score_batch(config, &out)
}

#[test]
fn the_heuristic_scores_each_image_of_a_batch() {
    let config = ScoringConfig::new(Heuristic::SUFFICIENCY);
    assert_eq!(scored(&config).unwrap(), vec![1.0, 0.0]);
    // The threshold reaches the matching: at 0.95 the detection is dropped.
    let strict = ScoringConfig::new(Heuristic::Sufficiency {
        iou_threshold: 0.5,
        score_threshold: 0.95,
    });
    assert_eq!(scored(&strict).unwrap(), vec![0.0, 0.0]);

    // A Scorer gives the same (the heuristic keeps no state).
    let d = detection();
    let truth = [gt(A, 0)];
    let boxes = [
        ImageBoxes::default(),
        ImageBoxes {
            detections: &[],
            truth: &truth,
        },
    ];
    let out = ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask).with_boxes(&boxes);
    let mut scorer = Scorer::new(config, 5).unwrap();
    assert!(scorer.state().is_none());
    assert_eq!(scorer.score(&[4, 2], &out).unwrap(), vec![1.0, 0.0]);
}

#[test]
fn missing_or_bad_boxes_are_named() {
    let d = detection();
    let config = ScoringConfig::new(Heuristic::SUFFICIENCY);
    let out = ForwardOutputs::detection(&d.losses, &d.parts, &d.probs, &d.mask);
    assert!(matches!(
        score_batch(&config, &out),
        Err(HeuristicsError::MissingInput {
            heuristic: "sufficiency",
            field: "boxes",
            ..
        })
    ));

    let one = [ImageBoxes::default()];
    let short = out.with_boxes(&one);
    match score_batch(&config, &short) {
        Err(HeuristicsError::ShapeMismatch {
            field: "boxes",
            expected,
            found,
        }) => assert_eq!((expected.as_str(), found.as_str()), ("[2]", "[1]")),
        other => panic!("expected a shape mismatch, got {other:?}"),
    }

    let nan = [det([0.0, f32::NAN, 1.0, 1.0], 0, 0.5)];
    let loud = [det(A, 0, 1.5)];
    let truth_inf = [gt([0.0, 0.0, f32::INFINITY, 1.0], 0)];
    let bad: [(ImageBoxes<'_>, f64); 3] = [
        (
            ImageBoxes {
                detections: &nan,
                truth: &[],
            },
            f64::NAN,
        ),
        (
            ImageBoxes {
                detections: &loud,
                truth: &[],
            },
            1.5,
        ),
        (
            ImageBoxes {
                detections: &[],
                truth: &truth_inf,
            },
            f64::INFINITY,
        ),
    ];
    for (image, want) in bad {
        // The bad image is the batch's second: the error names index 1.
        let boxes = [ImageBoxes::default(), image];
        match score_batch(&config, &out.with_boxes(&boxes)) {
            Err(HeuristicsError::InvalidValue {
                field: "boxes",
                index: 1,
                value,
                ..
            }) => assert!(
                value == want || (value.is_nan() && want.is_nan()),
                "{value}"
            ),
            other => panic!("expected an invalid box value, got {other:?}"),
        }
    }
}

#[test]
fn a_classifier_is_refused() {
    let probs = Tensor::new(&[[0.5f32, 0.5]], &Device::Cpu).unwrap();
    let losses = [0.7f32];
    let boxes = [ImageBoxes::default()];
    let out = ForwardOutputs::classification(&losses, &probs).with_boxes(&boxes);
    let err = score_batch(&ScoringConfig::new(Heuristic::SUFFICIENCY), &out).unwrap_err();
    assert!(
        matches!(
            err,
            HeuristicsError::Unsupported {
                heuristic: "sufficiency",
                activation: "softmax",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("detection heuristic"), "{err}");
}

#[test]
fn parameters_read_and_checked() {
    let parsed: Heuristic = serde_json::from_str(r#"{"kind": "sufficiency"}"#).unwrap();
    assert_eq!(parsed, Heuristic::SUFFICIENCY);
    assert_eq!(
        parsed,
        Heuristic::Sufficiency {
            iou_threshold: 0.5,
            score_threshold: 0.25
        }
    );
    let toml_form: ScoringConfig = toml::from_str(
        "heuristic = { kind = \"sufficiency\", iou_threshold = 0.7, score_threshold = 0.1 }",
    )
    .unwrap();
    assert_eq!(
        toml_form.heuristic,
        Heuristic::Sufficiency {
            iou_threshold: 0.7,
            score_threshold: 0.1
        }
    );
    assert_eq!(
        (parsed.name(), parsed.label(), parsed.aggregates()),
        ("sufficiency", "sufficiency".to_string(), false)
    );
    assert!(parsed.needs_boxes());
    assert!(Heuristic::ALL.iter().all(|h| !h.needs_boxes()));

    let valid = [(1.0, 0.0), (0.01, 1.0), (0.5, 0.25)];
    for (iou_threshold, score_threshold) in valid {
        let h = Heuristic::Sufficiency {
            iou_threshold,
            score_threshold,
        };
        assert!(h.validate().is_ok(), "{h:?}");
    }
    let invalid = [
        (0.0, 0.25, "iou_threshold"),
        (1.01, 0.25, "iou_threshold"),
        (f32::NAN, 0.25, "iou_threshold"),
        (0.5, -0.1, "score_threshold"),
        (0.5, 1.5, "score_threshold"),
        (0.5, f32::NAN, "score_threshold"),
    ];
    for (iou_threshold, score_threshold, field) in invalid {
        let h = Heuristic::Sufficiency {
            iou_threshold,
            score_threshold,
        };
        match h.validate() {
            Err(HeuristicsError::InvalidParameter(p)) => assert_eq!(p.name, field, "{h:?}"),
            other => panic!("{h:?}: expected an invalid {field}, got {other:?}"),
        }
        // Scoring checks the parameters first, too.
        assert!(scored(&ScoringConfig::new(h)).is_err(), "{h:?}");
    }
}
