//! Epoch plans without replacement: no repeats, exactly budget·N ids, and
//! Efraimidis–Spirakis draws with the requested probabilities.

mod common;

use common::{assert_fits, normalised, plans_without_recording, scored_table, train_counts};
use isdet_sampler::{
    Sampler, Schedule, ScoreTable, StepPlan, Strategy, Uniform, WeightedConfig,
    WeightedWithoutReplacement,
};

/// The training ids of each epoch of a run that records nothing.
fn epochs_of<S: Strategy>(
    table: ScoreTable,
    schedule: Schedule,
    strategy: S,
    epochs: usize,
) -> Vec<Vec<usize>> {
    let per_epoch = schedule.steps_per_epoch() as usize;
    let mut sampler = Sampler::new(table, schedule, strategy, 21).unwrap();
    let plans = plans_without_recording(&mut sampler, per_epoch * epochs);
    plans
        .chunks(per_epoch)
        .map(|epoch| {
            epoch
                .iter()
                .flat_map(|p: &StepPlan| p.train().to_vec())
                .collect()
        })
        .collect()
}

fn sorted(mut ids: Vec<usize>) -> Vec<usize> {
    ids.sort_unstable();
    ids
}

fn assert_distinct(ids: &[usize], what: &str) {
    let mut d = ids.to_vec();
    d.sort_unstable();
    d.dedup();
    assert_eq!(d.len(), ids.len(), "{what}: an id repeats within the epoch");
}

#[test]
fn uniform_epochs_are_permutations_at_full_budget() {
    let schedule = Schedule::new(100, 32, 4, 1.0).unwrap();
    let epochs = epochs_of(ScoreTable::new(100).unwrap(), schedule, Uniform::new(), 4);
    for ids in &epochs {
        assert_eq!(sorted(ids.clone()), (0..100).collect::<Vec<_>>());
    }
    assert_ne!(epochs[0], epochs[1], "each epoch is shuffled afresh");
}

#[test]
fn uniform_epochs_take_exactly_budget_n_distinct_ids() {
    let schedule = Schedule::new(1000, 64, 5, 0.3).unwrap();
    for ids in epochs_of(ScoreTable::new(1000).unwrap(), schedule, Uniform::new(), 5) {
        assert_eq!(ids.len(), 300);
        assert_distinct(&ids, "uniform");
    }
}

#[test]
fn weighted_epochs_take_exactly_budget_n_distinct_ids() {
    let table = scored_table(1000, |id| (id % 17) as f32);
    let schedule = Schedule::new(1000, 64, 5, 0.3).unwrap();
    let strategy = WeightedWithoutReplacement::new(WeightedConfig::default()).unwrap();
    let epochs = epochs_of(table, schedule, strategy, 5);
    for ids in &epochs {
        assert_eq!(ids.len(), 300);
        assert_distinct(ids, "weighted without replacement");
        assert!(
            ids.iter().all(|&id| id % 17 != 0),
            "score-0 ids are never drawn while others remain"
        );
    }
    assert_ne!(sorted(epochs[0].clone()), sorted(epochs[1].clone()));
}

#[test]
fn weighted_epochs_fill_up_with_zero_probability_ids_when_needed() {
    // Only 10 of 100 ids have positive scores, but 50 ids are due per epoch.
    let table = scored_table(100, |id| if id < 10 { 1.0 } else { 0.0 });
    let schedule = Schedule::new(100, 8, 2, 0.5).unwrap();
    let strategy = WeightedWithoutReplacement::new(WeightedConfig::default()).unwrap();
    for ids in epochs_of(table, schedule, strategy, 2) {
        assert_eq!(ids.len(), 50);
        assert_distinct(&ids, "filled epoch");
        assert!(
            (0..10).all(|id| ids.contains(&id)),
            "every positive-probability id comes first"
        );
    }
}

#[test]
fn one_id_epochs_follow_the_probabilities_chi_square() {
    // With budget·N = 1 an Efraimidis–Spirakis epoch is a single weighted
    // draw: its frequencies must be p_i exactly (here with a mixture).
    let scores = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 0.0];
    let config = WeightedConfig {
        epsilon: 0.1,
        ..WeightedConfig::default()
    };
    let table = scored_table(10, |id| scores[id]);
    let probs = config.probabilities(&table).unwrap();
    let expected: Vec<f64> = normalised(&scores.map(f64::from))
        .iter()
        .map(|p| 0.9 * p + 0.01)
        .collect();
    for (p, e) in probs.iter().zip(&expected) {
        assert!((p - e).abs() < 1e-12);
    }
    let schedule = Schedule::new(10, 1, 30_000, 0.1).unwrap();
    let strategy = WeightedWithoutReplacement::new(config).unwrap();
    let epochs = epochs_of(table, schedule, strategy, 30_000);
    let counts = train_counts(
        &epochs
            .into_iter()
            .map(StepPlan::unweighted)
            .collect::<Vec<_>>(),
        10,
    );
    assert_fits(&counts, &expected, "Efraimidis–Spirakis single draws");
}

#[test]
fn unseen_samples_are_in_the_first_weighted_epoch() {
    // Ids 960.. were never scored.
    let mut table = ScoreTable::new(1000).unwrap();
    let ids: Vec<usize> = (0..960).collect();
    let scores: Vec<f32> = ids.iter().map(|&id| (id % 5) as f32).collect();
    table.update(&ids, &scores, 0).unwrap();
    let schedule = Schedule::new(1000, 50, 1, 0.2).unwrap();
    let strategy = WeightedWithoutReplacement::new(WeightedConfig::default()).unwrap();
    let epoch = &epochs_of(table, schedule, strategy, 1)[0];
    assert_eq!(epoch.len(), 200);
    assert!((960..1000).all(|id| epoch.contains(&id)));
}
