//! Uniform sampling with replacement: uniform counts (χ²), the same steps
//! and batch sizes as the uniform baseline, and repeats within an epoch at
//! the rate a draw with replacement gives.

mod common;

use common::{assert_fits, plans_without_recording, train_counts};
use isdet_sampler::{Sampler, Schedule, ScoreTable, Strategy, Uniform, UniformWithReplacement};

const N: usize = 40;

fn plans_of<S: Strategy>(schedule: Schedule, strategy: S, seed: u64) -> Vec<Vec<usize>> {
    let mut sampler = Sampler::new(
        ScoreTable::new(schedule.len()).unwrap(),
        schedule,
        strategy,
        seed,
    )
    .unwrap();
    let steps = schedule.budget_steps() as usize;
    let plans = plans_without_recording(&mut sampler, steps);
    assert!(sampler.plan().unwrap().is_none(), "stops at the budget");
    plans.iter().map(|p| p.train().to_vec()).collect()
}

#[test]
fn draws_are_uniform_over_all_ids() {
    let schedule = Schedule::new(N, 16, 1_000, 1.0).unwrap();
    let mut sampler = Sampler::new(
        ScoreTable::new(N).unwrap(),
        schedule,
        UniformWithReplacement::new(),
        3,
    )
    .unwrap();
    let plans = plans_without_recording(&mut sampler, 500);
    assert!(plans.iter().all(|p| p.weights().iter().all(|&w| w == 1.0)));
    assert_fits(
        &train_counts(&plans, N),
        &[1.0 / N as f64; N],
        "uniform with replacement",
    );
}

#[test]
fn steps_and_batch_sizes_are_those_of_uniform_at_every_budget() {
    for (len, batch, epochs, budget) in [(100, 16, 3, 1.0), (1000, 32, 3, 0.3), (77, 10, 4, 0.5)] {
        let schedule = Schedule::new(len, batch, epochs, budget).unwrap();
        let sizes = |plans: Vec<Vec<usize>>| plans.iter().map(Vec::len).collect::<Vec<_>>();
        let control = sizes(plans_of(schedule, UniformWithReplacement::new(), 1));
        let baseline = sizes(plans_of(schedule, Uniform::new(), 1));
        assert_eq!(
            control, baseline,
            "{len} samples, batch {batch}, budget {budget}"
        );
    }
}

/// The mean number of distinct ids per epoch of N draws: N(1 − (1 − 1/N)^N)
/// with replacement (about 63% of N), N without.
#[test]
fn ids_repeat_within_an_epoch_as_often_as_a_draw_with_replacement_gives() {
    let (epochs, batch) = (200, 10);
    let schedule = Schedule::new(N, batch, epochs, 1.0).unwrap();
    let plans = plans_of(schedule, UniformWithReplacement::new(), 9);
    let per_epoch = N.div_ceil(batch);
    let distinct: Vec<f64> = plans
        .chunks(per_epoch)
        .map(|epoch| {
            let mut ids: Vec<usize> = epoch.concat();
            ids.sort_unstable();
            ids.dedup();
            ids.len() as f64
        })
        .collect();
    let mean = distinct.iter().sum::<f64>() / distinct.len() as f64;
    let expected = N as f64 * (1.0 - (1.0 - 1.0 / N as f64).powi(N as i32));
    // The per-epoch count has a standard deviation near 2 at N = 40, so
    // the mean of 200 epochs has one near 0.14: 0.6 is over 4 σ, while a
    // draw without replacement per epoch gives 40 distinct ids.
    assert!(
        (mean - expected).abs() < 0.6,
        "mean distinct ids per epoch {mean:.2}, expected {expected:.2}"
    );
}

#[test]
fn another_seed_draws_other_ids() {
    let schedule = Schedule::new(N, 8, 5, 1.0).unwrap();
    assert_ne!(
        plans_of(schedule, UniformWithReplacement::new(), 1),
        plans_of(schedule, UniformWithReplacement::new(), 2)
    );
    assert_eq!(
        plans_of(schedule, UniformWithReplacement::new(), 1),
        plans_of(schedule, UniformWithReplacement::new(), 1)
    );
}
