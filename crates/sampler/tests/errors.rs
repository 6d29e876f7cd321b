//! Bad parameters, bad scores and protocol mistakes are errors that name
//! what is wrong, never panics.

use isdet_sampler::{
    InfoBatchConfig, OnlineBatchConfig, PlanContext, Planned, PresamplingConfig, Sampler,
    SamplerError, Schedule, ScoreTable, SelectiveBackprop, SelectiveBackpropConfig, StepPlan,
    Strategy, StrategyConfig, Uniform, WeightedConfig,
};

fn assert_invalid(result: Result<Box<dyn Strategy>, SamplerError>, name: &str) {
    match result {
        Err(
            err @ SamplerError::InvalidParameter(isdet_sampler::InvalidParameter {
                name: got, ..
            }),
        ) => {
            assert_eq!(got, name);
            assert!(err.to_string().contains(name), "{err}");
        }
        Err(other) => panic!("{name}: unexpected error {other}"),
        Ok(_) => panic!("{name}: accepted"),
    }
}

#[test]
fn invalid_weighted_parameters_are_errors() {
    for epsilon in [-0.1, 1.1, f64::NAN] {
        let config = WeightedConfig {
            epsilon,
            ..WeightedConfig::default()
        };
        assert_invalid(
            StrategyConfig::WeightedWithReplacement(config).build(),
            "epsilon",
        );
        assert_invalid(
            StrategyConfig::WeightedWithoutReplacement(config).build(),
            "epsilon",
        );
    }
    for alpha in [-1.0, f64::NAN, f64::INFINITY] {
        let config = WeightedConfig {
            alpha,
            ..WeightedConfig::default()
        };
        assert_invalid(
            StrategyConfig::WeightedWithReplacement(config).build(),
            "alpha",
        );
    }
    let bad = WeightedConfig {
        alpha: -0.5,
        ..WeightedConfig::default()
    };
    assert!(bad.probabilities(&ScoreTable::new(3).unwrap()).is_err());
}

#[test]
fn invalid_strategy_parameters_are_errors() {
    let sb = |beta, history, candidates| {
        StrategyConfig::SelectiveBackprop(SelectiveBackpropConfig {
            beta,
            history,
            candidates,
        })
        .build()
    };
    assert_invalid(sb(-1.0, 1024, None), "beta");
    assert_invalid(sb(f64::NAN, 1024, None), "beta");
    assert_invalid(sb(3.0, 0, None), "history");
    assert_invalid(sb(3.0, 1024, Some(0)), "candidates");
    let ps = |ratio, tau_momentum, tau_threshold| {
        StrategyConfig::Presampling(PresamplingConfig {
            ratio,
            tau_momentum,
            tau_threshold,
        })
        .build()
    };
    assert_invalid(ps(0, 0.9, None), "ratio");
    assert_invalid(ps(3, 1.0, None), "tau_momentum");
    assert_invalid(ps(3, 0.9, Some(-1.0)), "tau_threshold");
    let ib = |prune_ratio, delta| {
        StrategyConfig::InfoBatch(InfoBatchConfig {
            prune_ratio,
            delta,
            ..InfoBatchConfig::default()
        })
        .build()
    };
    assert_invalid(ib(1.0, 0.875), "prune_ratio");
    assert_invalid(ib(-0.1, 0.875), "prune_ratio");
    assert_invalid(ib(0.5, 1.5), "delta");
    let obs = |selection_pressure| {
        StrategyConfig::OnlineBatchSelection(OnlineBatchConfig {
            selection_pressure,
            warmup_epochs: 0,
        })
        .build()
    };
    assert_invalid(obs(0.5), "selection_pressure");
    assert_invalid(obs(f64::INFINITY), "selection_pressure");
}

#[test]
fn invalid_schedules_are_errors() {
    let name_of = |r: Result<Schedule, SamplerError>| match r {
        Err(SamplerError::InvalidParameter(isdet_sampler::InvalidParameter { name, .. })) => name,
        other => panic!("accepted: {other:?}"),
    };
    for budget in [0.0, -0.5, 1.01, f64::NAN] {
        assert_eq!(name_of(Schedule::new(100, 8, 2, budget)), "budget");
    }
    assert_eq!(name_of(Schedule::new(0, 8, 2, 0.5)), "len");
    assert_eq!(name_of(Schedule::new(100, 0, 2, 0.5)), "batch_size");
    assert_eq!(name_of(Schedule::new(100, 8, 0, 0.5)), "epochs");
}

#[test]
fn the_table_must_match_the_schedule() {
    let schedule = Schedule::new(100, 8, 2, 0.5).unwrap();
    let result = Sampler::new(ScoreTable::new(99).unwrap(), schedule, Uniform::new(), 1);
    assert!(matches!(
        result,
        Err(SamplerError::LengthMismatch {
            expected: 100,
            found: 99,
            ..
        })
    ));
}

#[test]
fn bad_scores_name_the_sample_and_change_nothing() {
    let schedule = Schedule::new(10, 4, 2, 1.0).unwrap();
    let mut sampler =
        Sampler::new(ScoreTable::new(10).unwrap(), schedule, Uniform::new(), 1).unwrap();
    let Some(Planned::Train(plan)) = sampler.plan().unwrap() else {
        panic!()
    };
    let ids = plan.train();
    let mut scores = vec![1.0; ids.len()];
    scores[2] = f32::NAN;
    let err = sampler.record(ids, &scores).unwrap_err();
    assert!(
        matches!(err, SamplerError::InvalidScore { id, score } if id == ids[2] && score.is_nan())
    );
    assert_eq!(sampler.table().seen(), 0);
    assert_eq!(
        sampler.record(&[10], &[1.0]),
        Err(SamplerError::IdOutOfRange { id: 10, len: 10 })
    );
    scores[2] = -1.0;
    assert_eq!(
        sampler.record(ids, &scores),
        Err(SamplerError::InvalidScore {
            id: ids[2],
            score: -1.0
        })
    );
}

#[test]
fn protocol_mistakes_are_errors() {
    let schedule = Schedule::new(50, 5, 2, 1.0).unwrap();
    let strategy = SelectiveBackprop::new(SelectiveBackpropConfig::default()).unwrap();
    let mut sampler = Sampler::new(ScoreTable::new(50).unwrap(), schedule, strategy, 1).unwrap();
    assert_eq!(sampler.select(), Err(SamplerError::NothingToSelect));
    let Some(Planned::ScoreFirst(candidates)) = sampler.plan().unwrap() else {
        panic!()
    };
    assert_eq!(
        sampler.plan(),
        Err(SamplerError::SelectionPending { step: 0 })
    );
    sampler.record(&candidates[..2], &[1.0, 2.0]).unwrap();
    assert_eq!(
        sampler.select(),
        Err(SamplerError::MissingScore {
            id: candidates[2],
            step: 0
        })
    );
    sampler
        .record(&candidates[2..], &vec![1.0; candidates.len() - 2])
        .unwrap();
    let plan = sampler.select().unwrap();
    assert_eq!(plan.score_only(), &candidates[..]);
    assert!(
        sampler.plan().unwrap().is_some(),
        "planning resumes after select"
    );
}

#[test]
fn one_phase_strategies_refuse_to_select() {
    let table = ScoreTable::new(10).unwrap();
    let schedule = Schedule::new(10, 2, 1, 1.0).unwrap();
    let ctx = PlanContext {
        table: &table,
        schedule: &schedule,
        step: 0,
        optimiser_step: 0,
        seed: 1,
    };
    assert_eq!(
        Uniform::new().select(&ctx, &[1, 2]),
        Err(SamplerError::SelectionUnsupported {
            strategy: "uniform"
        })
    );
}

#[test]
fn invalid_plans_are_errors() {
    assert!(matches!(
        StepPlan::new(vec![1, 2], vec![1.0], vec![]),
        Err(SamplerError::LengthMismatch { .. })
    ));
    for bad in [-1.0, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            StepPlan::new(vec![1, 2], vec![1.0, bad], vec![]),
            Err(SamplerError::InvalidWeight { position: 1, .. })
        ));
    }
}
