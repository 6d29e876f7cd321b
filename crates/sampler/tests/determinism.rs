//! Every plan is a pure function of (seed, table state, step): two runs
//! with one seed hand out identical plans, another seed different ones.

mod common;

use common::drive;
use isdet_sampler::{
    AfssConfig, InfoBatchConfig, OnlineBatchConfig, PresamplingConfig, RhoLossConfig, Sampler,
    Schedule, SelectiveBackpropConfig, StepPlan, StrategyConfig, StrategyInputs, UnseenPolicy,
    WeightedConfig, Weighting,
};

fn configs() -> Vec<StrategyConfig> {
    let weighted = WeightedConfig {
        epsilon: 0.1,
        alpha: 0.8,
        warmup_epochs: 1,
        weighting: Weighting::Unbiased,
        ..WeightedConfig::default()
    };
    let max_score = WeightedConfig {
        unseen: UnseenPolicy::MaxScore,
        add_mean: true,
        ..weighted
    };
    vec![
        StrategyConfig::Uniform,
        StrategyConfig::UniformWithReplacement,
        StrategyConfig::WeightedWithReplacement(weighted),
        StrategyConfig::WeightedWithReplacement(max_score),
        StrategyConfig::WeightedWithoutReplacement(weighted),
        StrategyConfig::WeightedWithoutReplacement(max_score),
        StrategyConfig::SelectiveBackprop(SelectiveBackpropConfig::default()),
        StrategyConfig::Presampling(PresamplingConfig {
            tau_threshold: Some(1.2),
            ..PresamplingConfig::default()
        }),
        StrategyConfig::InfoBatch(InfoBatchConfig::default()),
        StrategyConfig::OnlineBatchSelection(OnlineBatchConfig {
            warmup_epochs: 1,
            ..OnlineBatchConfig::default()
        }),
    ]
}

/// A whole run with scores in [0, 10.08] that depend on the id and the
/// step (divided by 10.08 for strategies that read scores in [0, 1]).
fn run(config: StrategyConfig, seed: u64) -> Vec<StepPlan> {
    let scale = match config {
        StrategyConfig::Afss(_) => 1.0 / 10.08,
        _ => 1.0,
    };
    let inputs =
        StrategyInputs::with_irreducible_losses((0..600).map(|id| (id % 3) as f32).collect());
    let schedule = Schedule::new(600, 24, 6, 0.5).unwrap();
    let mut sampler = Sampler::configured_with(schedule, &config, &inputs, seed).unwrap();
    drive(&mut sampler, 10_000, |id, step| {
        ((id * 2654435761 + step as usize * 97) % 1009) as f32 / 100.0 * scale
    })
}

/// The strategies that need inputs or scores in [0, 1].
fn special_configs() -> Vec<StrategyConfig> {
    vec![
        StrategyConfig::RhoLoss(RhoLossConfig::default()),
        StrategyConfig::Afss(AfssConfig {
            refresh_every: 2,
            ..AfssConfig::default()
        }),
    ]
}

#[test]
fn same_seed_gives_identical_plans() {
    for config in configs().into_iter().chain(special_configs()) {
        let (a, b) = (run(config, 42), run(config, 42));
        assert!(a.len() > 50, "{config:?}: the run plans something");
        assert_eq!(a, b, "{config:?}");
    }
}

#[test]
fn another_seed_gives_different_plans() {
    for config in configs().into_iter().chain(special_configs()) {
        assert_ne!(run(config, 42), run(config, 43), "{config:?}");
    }
}
