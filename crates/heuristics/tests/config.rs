//! Configuration: every heuristic and aggregation by name, defaults and
//! parameter checks.

use isdet_heuristics::{
    Aggregation, FOCAL_ALPHA, FOCAL_GAMMA, Heuristic, HeuristicsError, LossPart, SCORE_THRESHOLD,
    Scorer, ScoringConfig,
};

#[test]
fn every_heuristic_reads_from_json_by_kind() {
    let cases = [
        (r#"{"kind": "loss"}"#, Heuristic::LOSS),
        (
            r#"{"kind": "loss", "part": "regression"}"#,
            Heuristic::Loss {
                part: LossPart::Regression,
            },
        ),
        (r#"{"kind": "entropy"}"#, Heuristic::Entropy),
        (r#"{"kind": "margin"}"#, Heuristic::Margin),
        (
            r#"{"kind": "least_confidence"}"#,
            Heuristic::LeastConfidence,
        ),
        (
            r#"{"kind": "threshold_closeness"}"#,
            Heuristic::ThresholdCloseness {
                score_threshold: SCORE_THRESHOLD,
            },
        ),
        (
            r#"{"kind": "threshold_closeness", "score_threshold": 0.3}"#,
            Heuristic::ThresholdCloseness {
                score_threshold: 0.3,
            },
        ),
        (
            r#"{"kind": "grad_norm_bound"}"#,
            Heuristic::GradNormBound {
                alpha: FOCAL_ALPHA,
                gamma: FOCAL_GAMMA,
            },
        ),
        (r#"{"kind": "p_sgd"}"#, Heuristic::PSgd),
        (r#"{"kind": "uniform"}"#, Heuristic::Uniform),
    ];
    for (json, want) in cases {
        let got: Heuristic = serde_json::from_str(json).unwrap();
        assert_eq!(got, want, "{json}");
        assert_eq!(
            got.name(),
            json.split('"').nth(3).unwrap(),
            "name of {json}"
        );
        let back: Heuristic = serde_json::from_str(&serde_json::to_string(&got).unwrap()).unwrap();
        assert_eq!(back, got, "round trip of {json}");
    }
}

#[test]
fn scoring_config_from_toml_with_the_default_aggregation() {
    let config: ScoringConfig = toml::from_str(
        r#"
        heuristic = { kind = "entropy" }
        "#,
    )
    .unwrap();
    assert_eq!(config.heuristic, Heuristic::Entropy);
    assert_eq!(config.aggregation, Aggregation::DETECTION_DEFAULT);
    let config: ScoringConfig = toml::from_str(
        r#"
        heuristic = { kind = "margin" }
        aggregation = { kind = "top_k_mean", k = 4 }
        "#,
    )
    .unwrap();
    assert_eq!(config.aggregation, Aggregation::TopKMean { k: 4 });
    let max: Aggregation = serde_json::from_str(r#"{"kind": "max"}"#).unwrap();
    assert_eq!(max, Aggregation::Max);
    // A misspelt field is an error, not silently the default.
    assert!(
        toml::from_str::<ScoringConfig>("heuristic = { kind = \"entropy\" }\naggregate = 1")
            .is_err()
    );
    assert!(serde_json::from_str::<Heuristic>(r#"{"kind": "entropie"}"#).is_err());
}

#[test]
fn labels_tell_loss_parts_apart() {
    let labels: Vec<String> = Heuristic::ALL.iter().map(Heuristic::label).collect();
    assert_eq!(
        labels,
        [
            "loss",
            "loss_classification",
            "loss_regression",
            "loss_centerness",
            "entropy",
            "margin",
            "least_confidence",
            "threshold_closeness",
            "grad_norm_bound",
            "p_sgd",
            "uniform"
        ]
    );
    assert!(Heuristic::Entropy.aggregates() && !Heuristic::LOSS.aggregates());
}

#[test]
fn parameters_out_of_range_are_rejected_by_name() {
    let bad = [
        (
            Heuristic::ThresholdCloseness {
                score_threshold: 0.0,
            },
            "score_threshold",
        ),
        (
            Heuristic::ThresholdCloseness {
                score_threshold: 1.0,
            },
            "score_threshold",
        ),
        (
            Heuristic::ThresholdCloseness {
                score_threshold: f32::NAN,
            },
            "score_threshold",
        ),
        (
            Heuristic::GradNormBound {
                alpha: 1.5,
                gamma: 2.0,
            },
            "alpha",
        ),
        (
            Heuristic::GradNormBound {
                alpha: 0.25,
                gamma: -1.0,
            },
            "gamma",
        ),
        (
            Heuristic::GradNormBound {
                alpha: 0.25,
                gamma: f32::INFINITY,
            },
            "gamma",
        ),
    ];
    for (h, field) in bad {
        match Scorer::new(ScoringConfig::new(h), 4) {
            Err(HeuristicsError::InvalidParameter(isdet_heuristics::InvalidParameter {
                name,
                ..
            })) => assert_eq!(name, field),
            other => panic!("{h:?}: expected InvalidParameter {field}, got {other:?}"),
        }
    }
    let zero_k = ScoringConfig {
        heuristic: Heuristic::Entropy,
        aggregation: Aggregation::TopKMean { k: 0 },
    };
    assert!(matches!(
        zero_k.validate(),
        Err(HeuristicsError::InvalidParameter(
            isdet_heuristics::InvalidParameter { name: "k", .. }
        ))
    ));
    assert!(matches!(
        Scorer::new(ScoringConfig::new(Heuristic::THRESHOLD_CLOSENESS), 0),
        Err(HeuristicsError::InvalidParameter(
            isdet_heuristics::InvalidParameter {
                name: "num_samples",
                ..
            }
        ))
    ));
}
