//! Online batch selection: the probability of a sample decays
//! exponentially with the rank of its last loss.

mod common;

use common::{assert_fits, normalised, plans_without_recording, sampler_over, train_counts};
use isdet_sampler::{OnlineBatchConfig, OnlineBatchSelection, Sampler, Schedule, ScoreTable};

const N: usize = 30;

/// p(rank k) ∝ exp(−ln(s_e) · k / N), rank 0 = highest loss.
fn rank_probabilities(pressure: f64) -> Vec<f64> {
    normalised(
        &(0..N)
            .map(|k| (-pressure.ln() * k as f64 / N as f64).exp())
            .collect::<Vec<_>>(),
    )
}

fn counts_by_rank(pressure: f64) -> Vec<u64> {
    let config = OnlineBatchConfig {
        selection_pressure: pressure,
        ..OnlineBatchConfig::default()
    };
    // Loss = id: the rank of id is N − 1 − id in every epoch (the scores
    // stay fixed and cannot tie), so all draws are i.i.d. One step of N
    // draws per epoch, 10,000 epochs.
    let mut sampler = sampler_over(N, N, OnlineBatchSelection::new(config).unwrap(), 4, |id| {
        id as f32
    });
    let counts = train_counts(&plans_without_recording(&mut sampler, 10_000), N);
    (0..N).map(|rank| counts[N - 1 - rank]).collect()
}

#[test]
fn draws_decay_exponentially_with_rank() {
    let probs = rank_probabilities(100.0);
    let ratio = probs[0] / probs[N - 1];
    assert!((ratio - 100f64.powf((N - 1) as f64 / N as f64)).abs() < 1e-9);
    assert_fits(&counts_by_rank(100.0), &probs, "s_e = 100");
    assert_fits(&counts_by_rank(10.0), &rank_probabilities(10.0), "s_e = 10");
}

#[test]
fn pressure_one_is_uniform() {
    assert_fits(&counts_by_rank(1.0), &vec![1.0 / N as f64; N], "s_e = 1");
}

#[test]
fn unseen_samples_rank_first() {
    let mut table = ScoreTable::new(N).unwrap();
    let seen: Vec<usize> = (0..N - 1).collect();
    table.update(&seen, &[1e6; N - 1], 0).unwrap();
    let schedule = Schedule::new(N, N, 1000, 1.0).unwrap();
    let config = OnlineBatchConfig {
        selection_pressure: 1e6,
        ..OnlineBatchConfig::default()
    };
    let mut sampler = Sampler::new(
        table,
        schedule,
        OnlineBatchSelection::new(config).unwrap(),
        2,
    )
    .unwrap();
    let counts = train_counts(&plans_without_recording(&mut sampler, 300), N);
    let top = counts.iter().copied().max().unwrap();
    assert_eq!(counts[N - 1], top, "the unseen sample is drawn most");
}
