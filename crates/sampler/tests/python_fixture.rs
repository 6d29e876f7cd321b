//! The plans the Python package must reproduce: for every strategy, the
//! plans of a short run whose scores follow a fixed rule, written as
//! `python/tests/fixtures/plans.json`, which the package's pytest suite
//! replays through `isdet.Sampler`. This test fails when the sampler's
//! plans change and the fixture was not written again
//! (`ISDET_BLESS=1 cargo test --workspace -- python_fixture`).

use isdet_sampler::{Planned, Sampler, Schedule, StepPlan, StrategyConfig};
use serde_json::{Value, json};

/// The scores recorded: exact in f32 and in Python's floats alike.
fn score(id: usize, step: u64) -> f32 {
    ((id * 37 + step as usize * 11) % 23) as f32 * 0.125 + 0.125
}

fn strategies() -> Vec<Value> {
    vec![
        json!({"kind": "uniform"}),
        json!({"kind": "weighted_with_replacement"}),
        json!({"kind": "weighted_without_replacement", "epsilon": 0.1}),
        json!({"kind": "weighted_without_replacement", "weighting": "unbiased", "warmup_epochs": 1}),
        json!({"kind": "selective_backprop"}),
        json!({"kind": "presampling"}),
        json!({"kind": "info_batch"}),
        json!({"kind": "online_batch_selection"}),
    ]
}

fn plan_json(kind: &str, plan: &StepPlan) -> Value {
    json!({"kind": kind, "ids": plan.train(), "weights": plan.weights(), "score_only": plan.score_only()})
}

/// The run of `strategy`: every plan (and, after candidates, the
/// selection), with the budget's counters at the end.
fn run(strategy: &Value) -> Value {
    let (n, batch, epochs, budget, seed) = (53, 8, 3, 0.7, 5);
    let config: StrategyConfig = serde_json::from_value(strategy.clone()).unwrap();
    let schedule = Schedule::new(n, batch, epochs, budget).unwrap();
    let mut sampler = Sampler::configured(schedule, &config, seed).unwrap();
    let mut steps = Vec::new();
    while let Some(planned) = sampler.plan().unwrap() {
        let step = sampler.steps_planned();
        let scores = |ids: &[usize]| ids.iter().map(|&id| score(id, step)).collect::<Vec<f32>>();
        steps.push(match planned {
            Planned::Train(plan) => {
                sampler.record(plan.train(), &scores(plan.train())).unwrap();
                json!({"plan": plan_json("train", &plan)})
            }
            Planned::ScoreFirst(ids) => {
                sampler.record(&ids, &scores(&ids)).unwrap();
                let selected = sampler.select().unwrap();
                json!({"plan": {"kind": "score_first", "ids": ids, "weights": [], "score_only": []},
                       "selected": plan_json("train", &selected)})
            }
        });
    }
    let b = sampler.budget();
    json!({
        "n": n, "batch_size": batch, "epochs": epochs, "budget": budget, "seed": seed,
        "strategy": strategy, "steps": steps,
        "counters": {"optimiser_steps": b.optimiser_steps(), "forward_passes": b.forward_passes(),
                     "backward_passes": b.backward_passes()}
    })
}

#[test]
fn python_fixture_holds_the_samplers_plans() {
    let fixture = json!({
        "score_rule": "((id * 37 + step * 11) % 23) * 0.125 + 0.125, step = plans handed out so far",
        "runs": strategies().iter().map(run).collect::<Vec<_>>(),
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../python/tests/fixtures/plans.json");
    let text = serde_json::to_string(&fixture).unwrap() + "\n";
    if std::env::var_os("ISDET_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} is not the sampler's current plans; write it again with \
         ISDET_BLESS=1 cargo test --workspace -- python_fixture",
        path.display()
    );
}
