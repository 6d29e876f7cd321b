//! Weighted sampling with replacement: p ∝ s after power, smoothing and
//! mixture; unbiased weights; unseen samples.

mod common;

use common::{assert_fits, drive, normalised, plans_without_recording, sampler_over, train_counts};
use isdet_sampler::{
    Sampler, Schedule, ScoreTable, UnseenPolicy, WeightedConfig, WeightedWithReplacement, Weighting,
};

const N: usize = 40;

fn score(id: usize) -> f32 {
    (id % 10) as f32 * 0.5 // ids 0, 10, 20, 30 score 0
}

fn draws(config: WeightedConfig, steps: usize) -> (Vec<u64>, Sampler<WeightedWithReplacement>) {
    let strategy = WeightedWithReplacement::new(config).unwrap();
    let mut sampler = sampler_over(N, 100, strategy, 11, score);
    let plans = plans_without_recording(&mut sampler, steps);
    (train_counts(&plans, N), sampler)
}

fn scores() -> Vec<f64> {
    (0..N).map(|id| f64::from(score(id))).collect()
}

/// Chi-square over the ids of positive probability, asserting that ids of
/// probability 0 are never drawn.
fn assert_draws_follow(counts: &[u64], probs: &[f64], what: &str) {
    let (kept, p): (Vec<u64>, Vec<f64>) = counts
        .iter()
        .zip(probs)
        .filter_map(|(&c, &p)| {
            assert!(
                p > 0.0 || c == 0,
                "{what}: an id of probability 0 was drawn"
            );
            (p > 0.0).then_some((c, p))
        })
        .unzip();
    assert_fits(&kept, &p, what);
}

#[test]
fn draws_are_proportional_to_scores() {
    let (counts, _) = draws(WeightedConfig::default(), 2_000);
    assert_draws_follow(&counts, &normalised(&scores()), "p ∝ s");
}

#[test]
fn mixture_with_uniform_keeps_the_epsilon_floor() {
    let epsilon = 0.2;
    let config = WeightedConfig {
        epsilon,
        ..WeightedConfig::default()
    };
    let (counts, sampler) = draws(config, 2_000);
    let expected: Vec<f64> = normalised(&scores())
        .iter()
        .map(|p| (1.0 - epsilon) * p + epsilon / N as f64)
        .collect();
    for (id, &p) in expected.iter().enumerate() {
        let got = sampler.strategy().probability(id).unwrap();
        assert!((got - p).abs() < 1e-12, "id {id}: {got} vs {p}");
        assert!(
            got >= epsilon / N as f64 - 1e-15,
            "id {id}: {got} below the floor"
        );
    }
    assert!(
        counts[0] > 0 && counts[10] > 0,
        "zero-score ids are drawn through the floor"
    );
    assert_draws_follow(&counts, &expected, "mixture ε = 0.2");
}

#[test]
fn power_alpha_tempers_the_scores() {
    let config = WeightedConfig {
        alpha: 0.5,
        ..WeightedConfig::default()
    };
    let (counts, _) = draws(config, 2_000);
    let tempered: Vec<f64> = scores().iter().map(|s| s.sqrt()).collect();
    assert_draws_follow(&counts, &normalised(&tempered), "p ∝ s^0.5");
    let uniform = WeightedConfig {
        alpha: 0.0,
        ..WeightedConfig::default()
    };
    let (counts, _) = draws(uniform, 1_000);
    assert_draws_follow(&counts, &vec![1.0 / N as f64; N], "α = 0 is uniform");
}

#[test]
fn adding_the_mean_score_smooths_like_an_even_mixture() {
    let config = WeightedConfig {
        add_mean: true,
        ..WeightedConfig::default()
    };
    let (counts, _) = draws(config, 2_000);
    let s = scores();
    let mean = s.iter().sum::<f64>() / N as f64;
    let smoothed: Vec<f64> = s.iter().map(|x| x + mean).collect();
    assert_draws_follow(&counts, &normalised(&smoothed), "s + mean(s)");
}

#[test]
fn tree_probabilities_stay_equal_to_the_full_distribution() {
    let config = WeightedConfig {
        alpha: 0.7,
        epsilon: 0.05,
        unseen: UnseenPolicy::MaxScore,
        score: isdet_sampler::ScoreField::Ema,
        ..WeightedConfig::default()
    };
    let schedule = Schedule::new(500, 16, 1000, 1.0).unwrap();
    let strategy = WeightedWithReplacement::new(config).unwrap();
    let mut sampler = Sampler::new(ScoreTable::new(500).unwrap(), schedule, strategy, 5).unwrap();
    drive(&mut sampler, 300, |id, step| {
        ((id * 31 + step as usize * 7) % 13) as f32
    });
    let full = config.probabilities(sampler.table()).unwrap();
    assert!((full.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    for (id, p) in full.iter().enumerate() {
        let tree = sampler.strategy().probability(id).unwrap();
        assert!((tree - p).abs() < 1e-12, "id {id}: tree {tree} vs full {p}");
    }
}

#[test]
fn unbiased_weights_are_inverse_probabilities_with_mean_one() {
    let config = WeightedConfig {
        epsilon: 0.1,
        weighting: Weighting::Unbiased,
        ..WeightedConfig::default()
    };
    let (_, mut sampler) = draws(config, 1);
    for plan in plans_without_recording(&mut sampler, 50) {
        let w = plan.weights();
        let mean = w.iter().map(|&x| f64::from(x)).sum::<f64>() / w.len() as f64;
        assert!((mean - 1.0).abs() < 1e-5, "batch mean weight {mean}");
        // w_i ∝ 1 / (N p_i): w_i · p_i is the same for every id of the batch.
        let products: Vec<f64> = plan
            .train()
            .iter()
            .zip(w)
            .map(|(&id, &wi)| f64::from(wi) * sampler.strategy().probability(id).unwrap())
            .collect();
        for p in &products {
            assert!((p / products[0] - 1.0).abs() < 1e-5);
        }
    }
}

#[test]
fn biased_weights_are_one() {
    let (_, mut sampler) = draws(WeightedConfig::default(), 1);
    for plan in plans_without_recording(&mut sampler, 20) {
        assert!(plan.weights().iter().all(|&w| w == 1.0));
    }
}

#[test]
fn unseen_samples_are_explored_first() {
    let mut table = ScoreTable::new(100).unwrap();
    let seen: Vec<usize> = (0..70).collect();
    table.update(&seen, &vec![5.0; 70], 0).unwrap();
    let schedule = Schedule::new(100, 10, 100, 1.0).unwrap();
    let strategy = WeightedWithReplacement::new(WeightedConfig::default()).unwrap();
    let mut sampler = Sampler::new(table, schedule, strategy, 3).unwrap();
    let plans = drive(&mut sampler, 4, |_, _| 1.0);
    let explored: Vec<usize> = plans[..3].iter().flat_map(|p| p.train().to_vec()).collect();
    let mut distinct = explored.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct,
        (70..100).collect::<Vec<_>>(),
        "the first 3 batches explore all 30 unseen"
    );
    assert_eq!(sampler.table().seen(), 100);
}

#[test]
fn unseen_samples_weigh_the_highest_priority_under_max_score() {
    let mut table = ScoreTable::new(10).unwrap();
    table.update(&[0, 1, 2], &[1.0, 4.0, 2.0], 0).unwrap();
    let config = WeightedConfig {
        unseen: UnseenPolicy::MaxScore,
        ..WeightedConfig::default()
    };
    let schedule = Schedule::new(10, 4, 10, 1.0).unwrap();
    let mut sampler = Sampler::new(
        table,
        schedule,
        WeightedWithReplacement::new(config).unwrap(),
        1,
    )
    .unwrap();
    sampler.plan().unwrap();
    let strategy = sampler.strategy();
    // mass: 1 + 4 + 2 + 7 unseen × 4 = 35
    assert!((strategy.probability(1).unwrap() - 4.0 / 35.0).abs() < 1e-12);
    assert!((strategy.probability(9).unwrap() - 4.0 / 35.0).abs() < 1e-12);
    assert!((strategy.probability(0).unwrap() - 1.0 / 35.0).abs() < 1e-12);
}
