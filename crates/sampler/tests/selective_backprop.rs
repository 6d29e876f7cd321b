//! Selective backprop: keep probability percentile^β over the last 1,024
//! losses, forward-only candidates, and never more than the budget.

mod common;

use common::drive;
use isdet_sampler::{
    PassCost, Planned, Sampler, Schedule, ScoreTable, SelectiveBackprop, SelectiveBackpropConfig,
};

fn sampler(
    len: usize,
    batch: usize,
    epochs: u32,
    budget: f64,
    config: SelectiveBackpropConfig,
) -> Sampler<SelectiveBackprop> {
    let schedule = Schedule::new(len, batch, epochs, budget).unwrap();
    let strategy = SelectiveBackprop::new(config).unwrap();
    Sampler::new(ScoreTable::new(len).unwrap(), schedule, strategy, 17).unwrap()
}

#[test]
fn keep_probability_is_the_loss_percentile_cubed() {
    let mut sb = sampler(2048, 128, 1000, 1.0, SelectiveBackpropConfig::default());
    // Losses are the ids: all distinct. 10 steps of 128 candidates overfill
    // the history of 1,024.
    let plans = drive(&mut sb, 10, |id, _| id as f32);
    let candidates: Vec<f32> = plans
        .iter()
        .flat_map(|p| p.score_only().iter().map(|&id| id as f32))
        .collect();
    assert_eq!(candidates.len(), 1280);
    let history = &candidates[candidates.len() - 1024..];
    for x in [-1.0f32, 0.5, 100.5, 700.25, 1023.5, 1500.5, 5000.0] {
        // Once x joins the history the oldest loss leaves; x's percentile is
        // the share of the 1,024 losses at or below it.
        let window = history[1..].iter().chain(std::iter::once(&x));
        let percentile = window.filter(|&&h| h <= x).count() as f64 / 1024.0;
        let got = sb.strategy().keep_probability(x);
        assert!(
            (got - percentile.powi(3)).abs() < 1e-12,
            "loss {x}: {got} vs {}",
            percentile.powi(3)
        );
    }
    assert_eq!(sb.strategy().keep_probability(1e9), 1.0);
}

#[test]
fn keep_rate_follows_percentile_to_the_beta() {
    let n = 4096;
    let config = SelectiveBackpropConfig {
        candidates: Some(128),
        ..SelectiveBackpropConfig::default()
    };
    let mut sb = sampler(n, 16, 1000, 1.0, config);
    // Loss = id / n: uniform on [0, 1), so a loss's percentile is about itself.
    let plans = drive(&mut sb, 400, |id, _| id as f32 / n as f32);
    let decile = |id: usize| id * 10 / n;
    let (mut offered, mut kept) = ([0u64; 10], [0u64; 10]);
    for plan in &plans {
        plan.score_only()
            .iter()
            .for_each(|&id| offered[decile(id)] += 1);
        plan.train().iter().for_each(|&id| kept[decile(id)] += 1);
    }
    for d in 0..10 {
        let (a, b) = (d as f64 / 10.0, (d + 1) as f64 / 10.0);
        let expected = (b.powi(4) - a.powi(4)) / (4.0 * (b - a)); // mean of q³ over [a, b)
        let rate = kept[d] as f64 / offered[d] as f64;
        assert!(
            (rate - expected).abs() < 0.04,
            "decile {d}: keep rate {rate:.3}, expected {expected:.3}"
        );
    }
}

#[test]
fn never_exceeds_the_budget() {
    let mut sb = sampler(1000, 32, 3, 0.3, SelectiveBackpropConfig::default());
    let limit = sb.schedule().budget_steps();
    assert_eq!(limit, 30);
    let plans = drive(&mut sb, 100_000, |id, step| {
        ((id * 7 + step as usize) % 101) as f32
    });
    let training: Vec<_> = plans.iter().filter(|p| p.is_optimiser_step()).collect();
    assert_eq!(training.len() as u64, limit);
    assert!(
        training.iter().all(|p| p.train().len() == 32),
        "every batch is full"
    );
    let budget = sb.budget().clone();
    assert_eq!(budget.optimiser_steps(), limit);
    assert_eq!(budget.backward_passes(), 32 * limit);
    let forwards: usize = plans
        .iter()
        .map(|p| p.score_only().len() + p.train().len())
        .sum();
    assert_eq!(budget.forward_passes(), forwards as u64);
    assert!(
        budget.forward_passes() > 3 * budget.backward_passes(),
        "β = 3 keeps about a quarter"
    );
    assert!(
        sb.plan().unwrap().is_none(),
        "no plan once the budget is spent"
    );
    let mut accountant = budget;
    let one_more = PassCost {
        optimiser_steps: 1,
        backward: 32,
        forward: 32,
        images: 32,
    };
    assert!(accountant.charge(&one_more).is_err());
}

#[test]
fn candidates_are_forward_only_and_training_ids_come_from_them() {
    let mut sb = sampler(500, 16, 100, 1.0, SelectiveBackpropConfig::default());
    let mut forwarded = std::collections::HashSet::new();
    for _ in 0..60 {
        let Some(Planned::ScoreFirst(candidates)) = sb.plan().unwrap() else {
            panic!("selective backprop always scores candidates first");
        };
        let losses: Vec<f32> = candidates.iter().map(|&id| (id % 13) as f32).collect();
        sb.record(&candidates, &losses).unwrap();
        forwarded.extend(candidates.iter().copied());
        let plan = sb.select().unwrap();
        assert_eq!(plan.score_only(), &candidates[..]);
        assert!(plan.train().iter().all(|id| forwarded.contains(id)));
        let cost = plan.cost();
        assert_eq!(cost.forward, (candidates.len() + plan.train().len()) as u64);
        assert_eq!(cost.backward, plan.train().len() as u64);
        assert_eq!(cost.optimiser_steps, u64::from(!plan.train().is_empty()));
    }
}

#[test]
fn beta_zero_keeps_every_candidate() {
    let config = SelectiveBackpropConfig {
        beta: 0.0,
        ..SelectiveBackpropConfig::default()
    };
    let mut sb = sampler(300, 20, 100, 1.0, config);
    for plan in drive(&mut sb, 30, |id, _| id as f32) {
        assert_eq!(plan.train(), plan.score_only());
    }
}
