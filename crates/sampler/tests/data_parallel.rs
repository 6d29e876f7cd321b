//! Data parallelism with a global sampler, for every strategy: W ranks,
//! each with the same sampler, draw the same global plans; their shares
//! partition each plan, and concatenated in rank order they are the plan
//! a single process draws for the same seed; recording the all-gathered
//! scores on every rank keeps the ranks' tables bit-identical with each
//! other and with the single process's, step after step.

use isdet_sampler::{
    InfoBatchConfig, OnlineBatchConfig, Planned, PresamplingConfig, Rank, Sampler, Schedule,
    SelectiveBackpropConfig, StepPlan, Strategy, StrategyConfig, WeightedConfig,
};

const LEN: usize = 97;
const BATCH: usize = 10;

fn strategies() -> Vec<(&'static str, StrategyConfig)> {
    vec![
        ("uniform", StrategyConfig::Uniform),
        (
            "weighted with replacement",
            StrategyConfig::WeightedWithReplacement(WeightedConfig::default()),
        ),
        (
            "weighted without replacement",
            StrategyConfig::WeightedWithoutReplacement(WeightedConfig::default()),
        ),
        (
            "selective backprop",
            StrategyConfig::SelectiveBackprop(SelectiveBackpropConfig::default()),
        ),
        (
            "presampling",
            StrategyConfig::Presampling(PresamplingConfig::default()),
        ),
        (
            "infobatch",
            StrategyConfig::InfoBatch(InfoBatchConfig::default()),
        ),
        (
            "online batch selection",
            StrategyConfig::OnlineBatchSelection(OnlineBatchConfig::default()),
        ),
    ]
}

fn sampler(config: &StrategyConfig) -> Sampler<Box<dyn Strategy>> {
    let schedule = Schedule::new(LEN, BATCH, 4, 1.0).unwrap();
    Sampler::configured(schedule, config, 11).unwrap()
}

/// The score a rank's forward pass gives `id` at `step` (any deterministic
/// function of the two stands in for a model).
fn score(id: usize, step: u64) -> f32 {
    ((id * 37 + step as usize * 11) % 23) as f32 / 7.0 + 0.01
}

/// Each rank scores its share of `ids`; the all-gather concatenates the
/// shares in rank order.
fn all_gather(ids: &[usize], ranks: &[Rank], step: u64) -> Vec<f32> {
    ranks
        .iter()
        .flat_map(|r| {
            ids[r.share(ids.len())]
                .iter()
                .map(move |&id| score(id, step))
        })
        .collect()
}

/// The ranks' shares of `plan` concatenated in rank order give it back.
fn check_partition(plan: &StepPlan, ranks: &[Rank], what: &str) {
    let shares: Vec<_> = ranks.iter().map(|&r| plan.share(r)).collect();
    let train: Vec<usize> = shares.iter().flat_map(|s| s.train.clone()).collect();
    let weights: Vec<f32> = shares.iter().flat_map(|s| s.weights.clone()).collect();
    let score_only: Vec<usize> = shares.iter().flat_map(|s| s.score_only.clone()).collect();
    assert_eq!(train, plan.train(), "{what}: training ids");
    assert_eq!(weights, plan.weights(), "{what}: weights");
    assert_eq!(score_only, plan.score_only(), "{what}: scoring-only ids");
    let sizes: Vec<usize> = shares.iter().map(|s| s.train.len()).collect();
    let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(hi - lo <= 1, "{what}: uneven shares {sizes:?}");
    assert!(
        shares
            .iter()
            .all(|s| s.global_train_len == plan.train().len())
    );
}

#[test]
fn ranks_share_every_global_plan_and_keep_identical_tables() {
    for world in [2, 3] {
        let ranks: Vec<Rank> = (0..world).map(|r| Rank::new(r, world).unwrap()).collect();
        for (name, config) in strategies() {
            let what = format!("{name}, world {world}");
            let mut single = sampler(&config);
            let mut parallel: Vec<_> = ranks.iter().map(|_| sampler(&config)).collect();
            let mut steps = 0;
            while let Some(planned) = single.plan().unwrap() {
                let step = single.current_step();
                for p in &mut parallel {
                    assert_eq!(
                        p.plan().unwrap().as_ref(),
                        Some(&planned),
                        "{what}: step {step}"
                    );
                }
                let plan = match planned {
                    Planned::Train(plan) => {
                        let scores = all_gather(plan.train(), &ranks, step);
                        single.record(plan.train(), &scores).unwrap();
                        for p in &mut parallel {
                            p.record(plan.train(), &scores).unwrap();
                        }
                        plan
                    }
                    Planned::ScoreFirst(candidates) => {
                        let scores = all_gather(&candidates, &ranks, step);
                        single.record(&candidates, &scores).unwrap();
                        let plan = single.select().unwrap();
                        for p in &mut parallel {
                            p.record(&candidates, &scores).unwrap();
                            assert_eq!(p.select().unwrap(), plan, "{what}: selection, step {step}");
                        }
                        plan
                    }
                };
                check_partition(&plan, &ranks, &format!("{what}, step {step}"));
                for p in &parallel {
                    assert_eq!(p.table(), single.table(), "{what}: table after step {step}");
                    assert_eq!(
                        p.budget().backward_passes(),
                        single.budget().backward_passes(),
                        "{what}: global passes"
                    );
                }
                steps += 1;
            }
            assert!(steps > 10, "{what}: only {steps} steps");
        }
    }
}

#[test]
fn a_rank_must_be_below_the_world_size() {
    assert!(Rank::new(2, 2).is_err());
    assert!(Rank::new(0, 0).is_err());
    let r = Rank::new(1, 4).unwrap();
    assert_eq!((r.index(), r.world()), (1, 4));
    // 10 items over 4 ranks: 2, 3, 2, 3, contiguous and covering.
    let blocks: Vec<_> = (0..4).map(|i| Rank::new(i, 4).unwrap().share(10)).collect();
    assert_eq!(blocks, vec![0..2, 2..5, 5..7, 7..10]);
}
