//! RHO-LOSS: the n_b candidates with the largest reducible loss
//! (training loss − irreducible loss) are trained on, the step budget is
//! held exactly, and candidates cost forward passes.

mod common;

use common::drive;
use isdet_sampler::{
    Planned, RhoLoss, RhoLossConfig, Sampler, SamplerError, Schedule, ScoreTable, Strategy,
    StrategyConfig, StrategyInputs,
};

const N: usize = 500;

/// A hand-made irreducible loss: high for every 7th id (noisy), else small.
fn irreducible(id: usize) -> f32 {
    if id.is_multiple_of(7) {
        5.0
    } else {
        (id % 5) as f32 * 0.1
    }
}

/// A hand-made training loss that changes with the step.
fn loss(id: usize, step: u64) -> f32 {
    ((id * 37 + step as usize * 11) % 23) as f32 * 0.25
}

fn sampler(len: usize, batch: usize, epochs: u32, budget: f64, ratio: usize) -> Sampler<RhoLoss> {
    let schedule = Schedule::new(len, batch, epochs, budget).unwrap();
    let il = (0..len).map(irreducible).collect();
    let strategy = RhoLoss::new(RhoLossConfig { ratio }, il).unwrap();
    Sampler::new(ScoreTable::new(len).unwrap(), schedule, strategy, 4).unwrap()
}

/// The expected selection: distinct candidates by reducible loss, largest
/// first, ties by position.
fn top_by_reducible(candidates: &[usize], step: u64, n_b: usize) -> Vec<usize> {
    let mut seen = std::collections::HashSet::new();
    let mut ranked: Vec<(f64, usize, usize)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, id)| seen.insert(**id))
        .map(|(k, &id)| {
            (
                f64::from(loss(id, step)) - f64::from(irreducible(id)),
                k,
                id,
            )
        })
        .collect();
    ranked.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
    ranked.iter().take(n_b).map(|r| r.2).collect()
}

#[test]
fn trains_on_the_largest_reducible_losses() {
    let batch = 8;
    let mut rho = sampler(N, batch, 100, 1.0, 10);
    for _ in 0..40 {
        let Some(Planned::ScoreFirst(candidates)) = rho.plan().unwrap() else {
            panic!("RHO-LOSS always scores candidates first");
        };
        assert_eq!(candidates.len(), 10 * batch);
        let step = rho.current_step();
        let losses: Vec<f32> = candidates.iter().map(|&id| loss(id, step)).collect();
        rho.record(&candidates, &losses).unwrap();
        let plan = rho.select().unwrap();
        assert_eq!(plan.train(), top_by_reducible(&candidates, step, batch));
        assert_eq!(plan.score_only(), &candidates[..]);
        assert!(plan.weights().iter().all(|&w| w == 1.0));
        assert!(
            plan.train().iter().all(|id| !id.is_multiple_of(7)),
            "noisy ids (IL 5 above every loss) are never chosen when others are left"
        );
    }
}

#[test]
fn ties_go_to_the_earlier_candidate() {
    let schedule = Schedule::new(50, 4, 10, 1.0).unwrap();
    let strategy = RhoLoss::new(RhoLossConfig { ratio: 5 }, vec![0.0; 50]).unwrap();
    let mut rho = Sampler::new(ScoreTable::new(50).unwrap(), schedule, strategy, 2).unwrap();
    let Some(Planned::ScoreFirst(candidates)) = rho.plan().unwrap() else {
        panic!("candidates first");
    };
    rho.record(&candidates, &vec![1.0; candidates.len()])
        .unwrap();
    assert_eq!(rho.select().unwrap().train(), &candidates[..4]);
}

#[test]
fn holds_the_step_budget_and_counts_every_pass() {
    for (len, batch, epochs, budget, ratio) in [(1000, 32, 3, 0.3, 10), (300, 16, 2, 1.0, 4)] {
        let mut rho = sampler(len, batch, epochs, budget, ratio);
        let limit = rho.schedule().budget_steps();
        let plans = drive(&mut rho, 100_000, loss);
        assert!(rho.plan().unwrap().is_none(), "nothing after the budget");
        assert_eq!(plans.len() as u64, limit, "one optimiser step per plan");
        let slots: Vec<usize> = (0..limit)
            .map(|s| rho.schedule().slot(s).unwrap().range.len())
            .collect();
        let trained: Vec<usize> = plans.iter().map(|p| p.train().len()).collect();
        assert_eq!(trained, slots, "n_b is each slot's batch size");
        let n_b: u64 = slots.iter().map(|&b| b as u64).sum();
        let n_big_b: u64 = slots.iter().map(|&b| (ratio * b).min(len) as u64).sum();
        let spent = rho.budget();
        assert_eq!(spent.optimiser_steps(), limit);
        assert_eq!(spent.backward_passes(), n_b);
        assert_eq!(
            spent.forward_passes(),
            n_big_b + n_b,
            "candidates forward once without gradients, the selected again with"
        );
    }
}

fn repeats(ids: &[usize]) -> usize {
    let mut distinct = ids.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    ids.len() - distinct.len()
}

#[test]
fn candidates_never_exceed_the_dataset() {
    let mut rho = sampler(30, 8, 50, 1.0, 10);
    for plan in drive(&mut rho, 60, loss) {
        assert_eq!(plan.score_only().len(), 30, "n_B = min(10 · b, N)");
        assert_eq!(
            repeats(plan.score_only()),
            0,
            "a batch of N is one whole shuffle"
        );
    }
}

#[test]
fn an_id_repeated_among_candidates_is_trained_once() {
    let mut rho = sampler(30, 8, 50, 1.0, 3);
    let plans = drive(&mut rho, 200, loss);
    for (step, plan) in plans.iter().enumerate() {
        let slot = rho.schedule().slot(step as u64).unwrap().range.len();
        assert_eq!(plan.score_only().len(), 3 * slot);
        assert_eq!(plan.train().len(), slot);
        assert_eq!(repeats(plan.train()), 0, "step {step}: an id trained twice");
    }
    assert!(
        plans.iter().filter(|p| repeats(p.score_only()) > 0).count() > 20,
        "candidate batches that span two shuffles repeat ids"
    );
}

#[test]
fn the_irreducible_losses_are_required_and_checked() {
    let config = StrategyConfig::RhoLoss(RhoLossConfig::default());
    assert!(config.validate().is_ok());
    match config.build() {
        Err(
            err @ SamplerError::MissingInput {
                strategy: "rho_loss",
                ..
            },
        ) => {
            assert!(err.to_string().contains("irreducible loss"), "{err}");
        }
        other => panic!(
            "built without irreducible losses: {:?}",
            other.map(|s| s.name())
        ),
    }
    for (value, position) in [(f32::NAN, 3), (-0.5, 0), (f32::INFINITY, 9)] {
        let mut losses = vec![0.25; 10];
        losses[position] = value;
        let inputs = StrategyInputs::with_irreducible_losses(losses);
        match config.build_with(&inputs) {
            Err(err @ SamplerError::InvalidInput { id, .. }) => {
                assert_eq!(id, position);
                assert!(err.to_string().contains("irreducible loss"), "{err}");
            }
            other => panic!("{value} accepted: {:?}", other.map(|s| s.name())),
        }
    }
    let schedule = Schedule::new(10, 2, 1, 1.0).unwrap();
    let short = StrategyInputs::with_irreducible_losses(vec![0.25; 9]);
    assert!(matches!(
        Sampler::configured_with(schedule, &config, &short, 0),
        Err(SamplerError::LengthMismatch {
            expected: 10,
            found: 9,
            ..
        })
    ));
    let strategy = RhoLoss::new(RhoLossConfig::default(), vec![0.25; 9]).unwrap();
    let mut direct = Sampler::new(ScoreTable::new(10).unwrap(), schedule, strategy, 0).unwrap();
    assert!(matches!(
        direct.plan(),
        Err(SamplerError::LengthMismatch { .. })
    ));
    let full = StrategyInputs::with_irreducible_losses(vec![0.25; 10]);
    let sampler = Sampler::configured_with(schedule, &config, &full, 0).unwrap();
    assert_eq!(sampler.strategy().name(), "rho_loss");
    assert!(RhoLoss::new(RhoLossConfig { ratio: 0 }, vec![]).is_err());
}
