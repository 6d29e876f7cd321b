//! InfoBatch: prune low-loss samples with probability r, rescale the kept
//! ones by 1/(1 − r), never in the first epoch nor in the last (1 − δ).

mod common;

use common::scored_table;
use isdet_sampler::{InfoBatch, InfoBatchConfig, Planned, Sampler, Schedule};

const N: usize = 1000;
const EPOCHS: u32 = 8; // δ = 0.875: epochs 1–6 prune, 0 and 7 do not

/// Losses: ids below 400 have loss 0.1, the rest 1.0 (mean 0.64), so 400
/// samples are "low-loss".
fn loss(id: usize) -> f32 {
    if id < 400 { 0.1 } else { 1.0 }
}

/// Every epoch's (id, weight) pairs, without recording (scores stay fixed).
fn epochs(seed: u64, budget: f64) -> Vec<Vec<(usize, f32)>> {
    epochs_with(seed, budget, InfoBatchConfig::default()).0
}

/// Every epoch's (id, weight) pairs under `config`, and the optimiser
/// steps planned and the budget's steps.
fn epochs_with(
    seed: u64,
    budget: f64,
    config: InfoBatchConfig,
) -> (Vec<Vec<(usize, f32)>>, u64, u64) {
    let schedule = Schedule::new(N, 64, EPOCHS, budget).unwrap();
    let budget_steps = schedule.budget_steps();
    let strategy = InfoBatch::new(config).unwrap();
    let mut sampler = Sampler::new(scored_table(N, loss), schedule, strategy, seed).unwrap();
    let mut epochs: Vec<Vec<(usize, f32)>> = vec![Vec::new(); EPOCHS as usize];
    let mut steps = 0;
    while let Some(Planned::Train(plan)) = sampler.plan().unwrap() {
        steps += 1;
        let epoch = sampler.strategy().epoch().unwrap() as usize;
        if epoch >= epochs.len() {
            epochs.resize(epoch + 1, Vec::new());
        }
        epochs[epoch].extend(
            plan.train()
                .iter()
                .copied()
                .zip(plan.weights().iter().copied()),
        );
    }
    (epochs, steps, budget_steps)
}

#[test]
fn nothing_is_pruned_in_the_first_and_final_epochs() {
    let config = InfoBatchConfig::default();
    let pruning: Vec<bool> = (0..EPOCHS).map(|e| config.prunes_in(e, EPOCHS)).collect();
    assert_eq!(pruning, [false, true, true, true, true, true, true, false]);
    let epochs = epochs(1, 1.0);
    for e in [0, 7] {
        let mut ids: Vec<usize> = epochs[e].iter().map(|&(id, _)| id).collect();
        ids.sort_unstable();
        assert_eq!(
            ids,
            (0..N).collect::<Vec<_>>(),
            "epoch {e} trains on everything"
        );
        assert!(epochs[e].iter().all(|&(_, w)| w == 1.0));
    }
}

#[test]
fn pruning_epochs_keep_high_loss_samples_and_rescale_kept_low_loss_ones() {
    let epochs = epochs(2, 1.0);
    for epoch in &epochs[1..7] {
        let mut ids: Vec<usize> = epoch.iter().map(|&(id, _)| id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), epoch.len(), "no id twice in an epoch");
        assert!(
            (400..N).all(|id| ids.binary_search(&id).is_ok()),
            "high-loss samples are never pruned"
        );
        for &(id, w) in epoch {
            assert_eq!(w, if id < 400 { 2.0 } else { 1.0 }, "id {id}");
        }
        let low = ids.iter().filter(|&&id| id < 400).count();
        assert!(
            (140..260).contains(&low),
            "about half of the 400 low-loss samples kept: {low}"
        );
    }
}

#[test]
fn expected_gradient_scale_of_low_loss_samples_is_preserved() {
    // E[Σ weights of kept low-loss samples] = 400 · (1 − r) / (1 − r) = 400.
    let seeds = 200;
    let total: f64 = (0..seeds)
        .map(|seed| {
            let epoch = &epochs(seed, 1.0)[1];
            epoch
                .iter()
                .filter(|&&(id, _)| id < 400)
                .map(|&(_, w)| f64::from(w))
                .sum::<f64>()
        })
        .sum();
    let mean = total / seeds as f64;
    // Each low-loss sample adds 2·Bernoulli(½): variance 1, so the mean over
    // 200 seeds has standard deviation √(400/200) ≈ 1.41.
    assert!((mean - 400.0).abs() < 6.0, "mean scale {mean}");
}

#[test]
fn a_budget_below_one_takes_that_fraction_of_the_kept_samples() {
    let full = epochs(3, 1.0);
    let half = epochs(3, 0.5);
    for e in 0..EPOCHS as usize {
        let expected = (0.5 * full[e].len() as f64).round() as usize;
        assert_eq!(half[e].len(), expected, "epoch {e}");
    }
}

/// Pruning shortens the schedule's epochs; by default the strategy then
/// draws further, unpruned epochs until the step budget is spent, so it
/// spends exactly the optimiser steps of every other method. Without
/// `fill_budget` it stops with the schedule, steps unspent.
#[test]
fn the_step_budget_is_spent_unless_told_to_stop_with_the_schedule() {
    for budget in [1.0, 0.5] {
        let (epochs, steps, budget_steps) = epochs_with(4, budget, InfoBatchConfig::default());
        assert_eq!(steps, budget_steps, "budget {budget}");
        assert!(
            epochs.len() > EPOCHS as usize,
            "budget {budget}: no extra epoch"
        );
        for (e, epoch) in epochs.iter().enumerate().skip(EPOCHS as usize) {
            assert!(
                epoch.iter().all(|&(_, w)| w == 1.0),
                "epoch {e} is unpruned"
            );
        }
        let stop = InfoBatchConfig {
            fill_budget: false,
            ..InfoBatchConfig::default()
        };
        let (epochs, steps, budget_steps) = epochs_with(4, budget, stop);
        assert_eq!(epochs.len(), EPOCHS as usize);
        assert!(
            steps < budget_steps,
            "budget {budget}: {steps} of {budget_steps}"
        );
    }
}
