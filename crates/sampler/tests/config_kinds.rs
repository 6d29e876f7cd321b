//! Strategy configurations as files spell them: the new kinds parse with
//! the published defaults, and the existing kinds read and write as before.

use isdet_sampler::{AfssConfig, RhoLossConfig, StrategyConfig, StrategyInputs};

fn parse(json: &str) -> StrategyConfig {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

#[test]
fn new_kinds_parse_with_their_defaults() {
    let cases = [
        (
            r#"{"kind": "uniform_with_replacement"}"#,
            StrategyConfig::UniformWithReplacement,
        ),
        (
            r#"{"kind": "rho_loss"}"#,
            StrategyConfig::RhoLoss(RhoLossConfig { ratio: 10 }),
        ),
        (
            r#"{"kind": "rho_loss", "ratio": 4}"#,
            StrategyConfig::RhoLoss(RhoLossConfig { ratio: 4 }),
        ),
        (
            r#"{"kind": "afss"}"#,
            StrategyConfig::Afss(AfssConfig::default()),
        ),
        (
            r#"{"kind": "afss", "refresh_every": 2, "easy_share": 0.05}"#,
            StrategyConfig::Afss(AfssConfig {
                refresh_every: 2,
                easy_share: 0.05,
                ..AfssConfig::default()
            }),
        ),
    ];
    for (json, expected) in cases {
        let config = parse(json);
        assert_eq!(config, expected, "{json}");
        let again = serde_json::to_string(&config).unwrap();
        assert_eq!(parse(&again), config, "{again}");
    }
    let afss = AfssConfig::default();
    assert_eq!(
        (
            afss.easy_threshold,
            afss.hard_threshold,
            afss.easy_share,
            afss.medium_share
        ),
        (0.85, 0.55, 0.02, 0.4)
    );
    assert_eq!(
        (
            afss.review_after,
            afss.review_cap,
            afss.cover_after,
            afss.refresh_every
        ),
        (10, 0.5, 3, 5)
    );
    for bad in [
        r#"{"kind": "rho_loss", "ratoi": 4}"#,
        r#"{"kind": "afss", "easy": 0.9}"#,
    ] {
        assert!(
            serde_json::from_str::<StrategyConfig>(bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn existing_kinds_serialise_as_before() {
    let cases = [
        r#"{"kind":"uniform"}"#,
        r#"{"kind":"selective_backprop","beta":3.0,"history":1024,"candidates":null}"#,
        r#"{"kind":"presampling","ratio":3,"tau_momentum":0.9,"tau_threshold":null}"#,
        r#"{"kind":"info_batch","prune_ratio":0.5,"delta":0.875,"fill_budget":true}"#,
        r#"{"kind":"online_batch_selection","selection_pressure":100.0,"warmup_epochs":0}"#,
    ];
    for json in cases {
        assert_eq!(serde_json::to_string(&parse(json)).unwrap(), json);
    }
}

#[test]
fn inputs_are_ignored_by_strategies_that_do_not_need_them() {
    let inputs = StrategyInputs::with_irreducible_losses(vec![1.0; 3]);
    for json in [r#"{"kind": "uniform"}"#, r#"{"kind": "afss"}"#] {
        let config = parse(json);
        assert!(!config.needs_irreducible_losses());
        assert!(config.check_inputs(&inputs, 1000).is_ok(), "{json}");
        assert!(config.build_with(&inputs).is_ok(), "{json}");
    }
    let rho = parse(r#"{"kind": "rho_loss"}"#);
    assert!(rho.needs_irreducible_losses());
    assert!(rho.check_inputs(&inputs, 1000).is_err());
    assert!(rho.check_inputs(&inputs, 3).is_ok());
    let nan = StrategyInputs::with_irreducible_losses(vec![1.0, f32::NAN, 1.0]);
    assert!(rho.check_inputs(&nan, 3).is_err());
}
