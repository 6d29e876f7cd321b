//! Diagnostics for every strategy: τ of a score table, the Gini of draws,
//! and each strategy's own state (presampling's switch).

use isdet_sampler::{
    Planned, Presampling, PresamplingConfig, Sampler, Schedule, ScoreTable, Strategy,
    StrategyConfig, StrategyDiagnostics, Uniform, gini, variance_reduction,
};

#[test]
fn gini_of_known_distributions() {
    let n = |k: usize| k as f64;
    let cases: Vec<(Vec<u32>, f64)> = vec![
        (vec![], 0.0),
        (vec![0, 0, 0], 0.0),
        (vec![5], 0.0),
        (vec![7, 7, 7, 7], 0.0),
        (vec![0, 0, 0, 4], 0.75),
        (vec![4, 0, 0, 0], 0.75),
        (vec![1, 2, 3, 4], 0.25),
        (vec![0, 1], 0.5),
        (vec![1, 3], 0.25),
        // One id with every draw among 1,000: (n − 1) / n.
        (
            (0..1000).map(|k| u32::from(k == 17) * 9).collect(),
            n(999) / n(1000),
        ),
        // Large counts do not overflow.
        (vec![u32::MAX, 0], 0.5),
    ];
    for (counts, expected) in cases {
        let got = gini(&counts);
        assert!(
            (got - expected).abs() < 1e-12,
            "{counts:?}: {got} vs {expected}"
        );
    }
}

#[test]
fn gini_matches_the_mean_absolute_difference() {
    let counts: Vec<u32> = (0..57).map(|k| (k * 7919 % 23) as u32).collect();
    let (n, mean) = (
        counts.len() as f64,
        counts.iter().map(|&c| f64::from(c)).sum::<f64>() / counts.len() as f64,
    );
    let pairs: f64 = counts
        .iter()
        .flat_map(|&a| {
            counts
                .iter()
                .map(move |&b| (f64::from(a) - f64::from(b)).abs())
        })
        .sum();
    let expected = pairs / (2.0 * n * n * mean);
    assert!((gini(&counts) - expected).abs() < 1e-12);
}

#[test]
fn variance_reduction_of_known_scores() {
    let cases: [(&[f64], f64); 6] = [
        (&[], 1.0),
        (&[0.0, 0.0], 1.0),
        (&[3.0, 3.0, 3.0, 3.0], 1.0),
        (&[0.0, 0.0, 0.0, 9.0], 2.0),
        (&[1.0, 3.0], (2.0f64 * (0.0625 + 0.5625)).sqrt()),
        (
            &[0.0; 99]
                .as_slice()
                .iter()
                .chain(&[1.0])
                .copied()
                .collect::<Vec<_>>(),
            10.0,
        ),
    ];
    for (scores, expected) in cases {
        let got = variance_reduction(scores);
        assert!(
            (got - expected).abs() < 1e-12,
            "{scores:?}: {got} vs {expected}"
        );
    }
}

#[test]
fn presampling_reports_its_switch_and_others_report_nothing() {
    let schedule = Schedule::new(600, 10, 100, 1.0).unwrap();
    let config = PresamplingConfig {
        tau_threshold: Some(1.5),
        ..PresamplingConfig::default()
    };
    let boxed: Box<dyn Strategy> = StrategyConfig::Presampling(config).build().unwrap();
    let mut sampler = Sampler::new(ScoreTable::new(600).unwrap(), schedule, boxed, 1).unwrap();
    let off = sampler.strategy_diagnostics();
    assert_eq!(
        off,
        StrategyDiagnostics {
            importance_on: Some(false),
            tau_ema: Some(0.0),
            tau_threshold: Some(1.5)
        }
    );
    // Scores where one id in ten holds the mass: τ ≈ sqrt(10) > 1.5.
    for _ in 0..40 {
        let planned = sampler.plan().unwrap().unwrap();
        let ids = match &planned {
            Planned::Train(plan) => plan.train().to_vec(),
            Planned::ScoreFirst(ids) => ids.clone(),
        };
        let scores: Vec<f32> = ids
            .iter()
            .map(|&id| f32::from(u8::from(id.is_multiple_of(10))))
            .collect();
        sampler.record(&ids, &scores).unwrap();
        if let Planned::ScoreFirst(_) = planned {
            sampler.select().unwrap();
        }
    }
    let on = sampler.strategy_diagnostics();
    assert_eq!(on.importance_on, Some(true));
    assert!(on.tau_ema.unwrap() > 1.5);
    let strategy = Presampling::new(config).unwrap();
    assert_eq!(strategy.diagnostics().tau_threshold, Some(1.5));

    let uniform: Box<dyn Strategy> = Box::new(Uniform::new());
    assert_eq!(uniform.diagnostics(), StrategyDiagnostics::default());
    let json = serde_json::to_string(&on).unwrap();
    assert_eq!(
        serde_json::from_str::<StrategyDiagnostics>(&json).unwrap(),
        on
    );
    assert!(json.contains("\"importance_on\":true"), "{json}");
}
