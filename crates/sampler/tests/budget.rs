//! Budget accounting: exact counts of optimiser steps, forward and backward
//! passes and images; no overspending.

mod common;

use common::drive;
use isdet_sampler::{
    BudgetAccountant, PassCost, Presampling, PresamplingConfig, Sampler, SamplerError, Schedule,
    ScoreTable, StepPlan, Uniform,
};

#[test]
fn a_fraction_of_the_full_schedule_is_exact() {
    for (full, fraction, limit) in [
        (100, 0.3, 30),
        (1000, 0.2, 200),
        (10, 0.7, 7),
        (77, 1.0, 77),
        (9, 0.5, 4),
    ] {
        assert_eq!(
            BudgetAccountant::fraction_of(full, fraction)
                .unwrap()
                .limit(),
            limit,
            "{fraction} of {full}"
        );
    }
    for bad in [0.0, -0.3, 1.01, f64::NAN] {
        assert!(matches!(
            BudgetAccountant::fraction_of(100, bad),
            Err(SamplerError::InvalidParameter(
                isdet_sampler::InvalidParameter { name: "budget", .. }
            ))
        ));
    }
}

#[test]
fn charges_add_up_and_overspending_is_refused() {
    let mut budget = BudgetAccountant::new(3);
    let step = PassCost {
        forward: 10,
        backward: 4,
        images: 9,
        optimiser_steps: 1,
    };
    let scoring = PassCost {
        forward: 7,
        backward: 0,
        images: 7,
        optimiser_steps: 0,
    };
    for cost in [step, scoring, step, step] {
        budget.charge(&cost).unwrap();
    }
    let spent = PassCost {
        forward: 37,
        backward: 12,
        images: 34,
        optimiser_steps: 3,
    };
    assert_eq!(budget.spent(), spent);
    assert!(budget.is_spent());
    assert_eq!(
        budget.charge(&step),
        Err(SamplerError::BudgetExceeded {
            limit: 3,
            spent: 3,
            requested: 1
        })
    );
    assert_eq!(budget.spent(), spent, "a refused charge changes nothing");
    budget.charge(&scoring).unwrap();
    assert_eq!(
        budget.forward_passes(),
        44,
        "forward-only passes are still counted"
    );
}

#[test]
fn schedule_steps_follow_the_budget() {
    let s = Schedule::new(1280, 128, 10, 0.3).unwrap();
    assert_eq!(
        (
            s.samples_per_epoch(),
            s.steps_per_epoch(),
            s.budget_steps(),
            s.full_steps()
        ),
        (384, 3, 30, 100)
    );
    let full = Schedule::new(1000, 32, 3, 1.0).unwrap();
    assert_eq!(full.budget_steps(), full.full_steps());
    let partial = Schedule::new(1000, 32, 3, 0.3).unwrap();
    assert_eq!(
        (partial.samples_per_epoch(), partial.budget_steps()),
        (300, 30)
    );
    assert_eq!(
        partial.slot(9).unwrap().range,
        288..300,
        "the last batch of an epoch is partial"
    );
    assert_eq!(partial.slot(10).unwrap().epoch, 1);
}

#[test]
fn a_uniform_run_spends_exactly_its_schedule() {
    let schedule = Schedule::new(1000, 32, 3, 0.3).unwrap();
    let mut sampler =
        Sampler::new(ScoreTable::new(1000).unwrap(), schedule, Uniform::new(), 5).unwrap();
    let plans = drive(&mut sampler, 1000, |_, _| 1.0);
    assert_eq!(plans.len(), 30);
    let budget = sampler.budget();
    assert_eq!(budget.optimiser_steps(), 30);
    assert_eq!(
        (
            budget.forward_passes(),
            budget.backward_passes(),
            budget.images_seen()
        ),
        (900, 900, 900)
    );
    assert!(budget.is_spent());
    assert!(sampler.plan().unwrap().is_none());
}

#[test]
fn two_phase_steps_charge_scoring_and_training_passes() {
    // τ_th = 0: on from the second step (the EMA of τ ≥ 1 starts at 0).
    let config = PresamplingConfig {
        tau_threshold: Some(0.0),
        ..PresamplingConfig::default()
    };
    // 0.16 · 4000 = 640 samples: 20 steps, and the 1,856 candidates all
    // come from one pass over the data, so none repeats.
    let schedule = Schedule::new(4000, 32, 1, 0.16).unwrap();
    let strategy = Presampling::new(config).unwrap();
    let mut sampler = Sampler::new(ScoreTable::new(4000).unwrap(), schedule, strategy, 5).unwrap();
    let plans = drive(&mut sampler, 100, |id, _| 1.0 + (id % 3) as f32);
    assert_eq!(plans.len(), 20);
    let budget = sampler.budget();
    // Step 1: 32 uniform. Steps 2–20: 96 candidates forwarded, 32 of them
    // forwarded again and backpropagated; images are the 96 candidates.
    assert_eq!(budget.optimiser_steps(), 20);
    assert_eq!(budget.backward_passes(), 20 * 32);
    assert_eq!(budget.forward_passes(), 32 + 19 * (96 + 32));
    assert_eq!(budget.images_seen(), 32 + 19 * 96);
}

#[test]
fn plan_costs_count_passes_per_image() {
    let plan = StepPlan::new(vec![3, 3, 5], vec![1.0, 1.0, 2.0], vec![5, 6, 7, 8]).unwrap();
    assert_eq!(
        plan.cost(),
        PassCost {
            forward: 7,
            backward: 3,
            images: 5,
            optimiser_steps: 1
        }
    );
    let scoring_only = StepPlan::new(vec![], vec![], vec![1, 2]).unwrap();
    assert_eq!(
        scoring_only.cost(),
        PassCost {
            forward: 2,
            backward: 0,
            images: 2,
            optimiser_steps: 0
        }
    );
}
