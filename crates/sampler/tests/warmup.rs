//! Warm-up: the first E epochs of every score-based strategy are uniform.

mod common;

use common::{plans_without_recording, scored_table};
use isdet_sampler::{
    OnlineBatchConfig, OnlineBatchSelection, Sampler, Schedule, StepPlan, Strategy, Uniform,
    WeightedConfig, WeightedWithReplacement, WeightedWithoutReplacement,
};

const N: usize = 200;

fn plans<S: Strategy>(strategy: S, steps: usize) -> Vec<StepPlan> {
    // Very skewed scores: without warm-up, sample 0 would dominate.
    let table = scored_table(N, |id| if id == 0 { 1e6 } else { 1e-3 });
    let schedule = Schedule::new(N, 16, 4, 1.0).unwrap();
    let mut sampler = Sampler::new(table, schedule, strategy, 99).unwrap();
    plans_without_recording(&mut sampler, steps)
}

fn assert_warmup_is_uniform<S: Strategy>(strategy: S) {
    let per_epoch = N.div_ceil(16);
    let steps = 3 * per_epoch;
    let got = plans(strategy, steps);
    let uniform = plans(Uniform::new(), steps);
    assert_eq!(
        got[..2 * per_epoch],
        uniform[..2 * per_epoch],
        "warm-up epochs equal the uniform plans"
    );
    for epoch in got[..2 * per_epoch].chunks(per_epoch) {
        let mut ids: Vec<usize> = epoch.iter().flat_map(|p| p.train().to_vec()).collect();
        ids.sort_unstable();
        assert_eq!(
            ids,
            (0..N).collect::<Vec<_>>(),
            "each warm-up epoch visits every sample once"
        );
    }
    let after: usize = got[2 * per_epoch..]
        .iter()
        .map(|p| p.train().iter().filter(|&&id| id == 0).count())
        .sum();
    assert!(
        after > N / 2,
        "after warm-up the skewed scores take over ({after} draws of sample 0)"
    );
}

#[test]
fn weighted_with_replacement_warms_up_uniformly() {
    let config = WeightedConfig {
        warmup_epochs: 2,
        ..WeightedConfig::default()
    };
    assert_warmup_is_uniform(WeightedWithReplacement::new(config).unwrap());
}

#[test]
fn weighted_without_replacement_warms_up_uniformly() {
    let config = WeightedConfig {
        warmup_epochs: 2,
        epsilon: 0.0,
        ..WeightedConfig::default()
    };
    let strategy = WeightedWithoutReplacement::new(config).unwrap();
    let per_epoch = N.div_ceil(16);
    let got = plans(strategy, 3 * per_epoch);
    let uniform = plans(Uniform::new(), 3 * per_epoch);
    assert_eq!(got[..2 * per_epoch], uniform[..2 * per_epoch]);
    // Without replacement at budget 1 the third epoch is still every id once,
    // but in a different (weighted) order than the uniform plan's.
    assert_ne!(got[2 * per_epoch..], uniform[2 * per_epoch..]);
}

#[test]
fn online_batch_selection_warms_up_uniformly() {
    let config = OnlineBatchConfig {
        warmup_epochs: 2,
        ..OnlineBatchConfig::default()
    };
    let strategy = OnlineBatchSelection::new(config).unwrap();
    let per_epoch = N.div_ceil(16);
    let got = plans(strategy, 3 * per_epoch);
    let uniform = plans(Uniform::new(), 3 * per_epoch);
    assert_eq!(got[..2 * per_epoch], uniform[..2 * per_epoch]);
    assert_ne!(got[2 * per_epoch..], uniform[2 * per_epoch..]);
}
