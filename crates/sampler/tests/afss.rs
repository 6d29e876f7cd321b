//! AFSS on hand-made sufficiency scores: tiers follow the thresholds, hard
//! images are trained in every epoch, medium ones are covered within
//! `cover_after` epochs, easy reviews go to the longest unused, refreshes
//! score every image once at the stated period, and the step budget holds.

use std::collections::{BTreeMap, HashSet};

use isdet_sampler::{
    Afss, AfssConfig, AfssEpoch, Planned, Sampler, SamplerError, Schedule, ScoreTable, Strategy,
    StrategyConfig, Tier,
};

/// What a run did: per AFSS epoch its statistics and the ids it trained
/// on; per refresh the epoch it preceded and the ids it scored, in order.
#[derive(Debug, Default, PartialEq)]
struct Trace {
    epochs: BTreeMap<u32, (AfssEpoch, Vec<usize>)>,
    refreshes: Vec<(u32, Vec<usize>)>,
}

fn afss_sampler(len: usize, batch: usize, budget_epochs: u32, seed: u64) -> Sampler<Afss> {
    let schedule = Schedule::new(len, batch, budget_epochs, 1.0).unwrap();
    let strategy = Afss::new(AfssConfig::default()).unwrap();
    Sampler::new(ScoreTable::new(len).unwrap(), schedule, strategy, seed).unwrap()
}

/// Follows the protocol until the sampler stops or AFSS epoch `until`
/// starts: a refresh records `sufficiency(id)`, a training step records
/// 0.99 (an augmented view that looks learnt, which must not move tiers).
fn run(sampler: &mut Sampler<Afss>, until: u32, sufficiency: impl Fn(usize) -> f32) -> Trace {
    let mut trace = Trace::default();
    let mut scored = Vec::new();
    while let Some(planned) = sampler.plan().unwrap() {
        match planned {
            Planned::Train(plan) => {
                let stats = *sampler.strategy().epoch().unwrap();
                if stats.epoch >= until {
                    break;
                }
                sampler
                    .record(plan.train(), &vec![0.99; plan.train().len()])
                    .unwrap();
                let entry = trace
                    .epochs
                    .entry(stats.epoch)
                    .or_insert((stats, Vec::new()));
                entry.1.extend_from_slice(plan.train());
            }
            Planned::ScoreFirst(ids) => {
                let scores: Vec<f32> = ids.iter().map(|&id| sufficiency(id)).collect();
                sampler.record(&ids, &scores).unwrap();
                scored.extend_from_slice(&ids);
                let before = sampler.strategy().refreshes();
                let plan = sampler.select().unwrap();
                assert!(plan.train().is_empty(), "a refresh trains on nothing");
                assert_eq!(plan.score_only(), &ids[..]);
                if sampler.strategy().refreshes() > before {
                    let epoch = sampler.strategy().epoch().unwrap().epoch;
                    trace.refreshes.push((epoch, std::mem::take(&mut scored)));
                }
            }
        }
    }
    trace
}

/// Sufficiency values around both thresholds, and the tier each must get.
const LEVELS: [(f32, Tier); 9] = [
    (0.0, Tier::Hard),
    (0.3, Tier::Hard),
    (0.5499, Tier::Hard),
    (0.55, Tier::Medium),
    (0.7, Tier::Medium),
    (0.85, Tier::Medium),
    (0.8501, Tier::Easy),
    (0.95, Tier::Easy),
    (1.0, Tier::Easy),
];

fn level(id: usize) -> f32 {
    LEVELS[id % LEVELS.len()].0
}

fn sorted(mut ids: Vec<usize>) -> Vec<usize> {
    ids.sort_unstable();
    ids
}

#[test]
fn tiers_follow_the_thresholds() {
    let config = AfssConfig::default();
    for (sufficiency, tier) in LEVELS {
        assert_eq!(config.tier(sufficiency), tier, "sufficiency {sufficiency}");
    }
    let n = 900;
    let mut sampler = afss_sampler(n, 32, 1000, 1);
    let trace = run(&mut sampler, 6, level);
    assert_eq!(trace.refreshes.len(), 1);
    for id in 0..n {
        let expected = LEVELS[id % LEVELS.len()].1;
        assert_eq!(sampler.strategy().tier(id), Some(expected), "id {id}");
    }
    let stats = trace.epochs[&5].0;
    assert_eq!((stats.hard, stats.medium, stats.easy), (300, 300, 300));
}

#[test]
fn the_warm_up_trains_every_image_once_per_epoch() {
    let n = 300;
    let mut sampler = afss_sampler(n, 16, 1000, 2);
    let trace = run(&mut sampler, 5, level);
    let refreshed_at: Vec<u32> = trace.refreshes.iter().map(|r| r.0).collect();
    assert_eq!(refreshed_at, [5], "the first refresh comes before epoch 5");
    assert_eq!(trace.epochs.len(), 5);
    for (epoch, (stats, ids)) in &trace.epochs {
        assert_eq!(
            sorted(ids.clone()),
            (0..n).collect::<Vec<_>>(),
            "epoch {epoch}"
        );
        assert_eq!(stats.hard, n, "unscored images count as hard");
    }
}

#[test]
fn hard_images_are_trained_in_every_epoch_and_medium_ones_within_cover_after() {
    let n = 900;
    let mut sampler = afss_sampler(n, 32, 1000, 3);
    let trace = run(&mut sampler, 40, level);
    let tier = |id: usize| LEVELS[id % LEVELS.len()].1;
    let mut last_used = vec![4u32; n]; // the warm-up trains every image
    for (&epoch, (stats, ids)) in trace.epochs.range(5..) {
        let used: HashSet<usize> = ids.iter().copied().collect();
        assert_eq!(used.len(), ids.len(), "epoch {epoch}: an id repeats");
        assert_eq!(ids.len(), stats.len());
        for (id, &last) in last_used.iter().enumerate() {
            let unused = epoch - 1 - last;
            match tier(id) {
                Tier::Hard => assert!(used.contains(&id), "epoch {epoch}: hard {id} skipped"),
                Tier::Medium if unused >= 3 => {
                    assert!(
                        used.contains(&id),
                        "epoch {epoch}: medium {id} unused {unused}"
                    )
                }
                _ => {}
            }
        }
        let medium = ids.iter().filter(|&&id| tier(id) == Tier::Medium).count();
        let quota = (0.4f64 * 300.0).ceil() as usize;
        assert_eq!(medium, stats.medium_trained);
        assert_eq!(medium, quota.max(stats.medium_covered), "epoch {epoch}");
        assert_eq!(ids.iter().filter(|&&id| tier(id) == Tier::Easy).count(), 6);
        for &id in ids {
            last_used[id] = epoch;
        }
    }
}

#[test]
fn easy_reviews_go_to_the_longest_unused_first() {
    // 100 hard images, 1,900 easy ones: 38 easy places an epoch, at most 19
    // of them for due reviews (unused for 10 epochs or more).
    let n = 2000;
    let sufficiency = |id: usize| if id < 100 { 0.2 } else { 0.95 };
    let mut sampler = afss_sampler(n, 64, 1000, 4);
    let trace = run(&mut sampler, 70, sufficiency);
    let mut last_used = vec![4u32; n];
    let mut reviews = 0;
    for (&epoch, (stats, ids)) in trace.epochs.range(5..) {
        let used: HashSet<usize> = ids.iter().copied().collect();
        let mut due: Vec<(u32, usize)> = (100..n)
            .map(|id| (epoch - 1 - last_used[id], id))
            .filter(|&(unused, _)| unused >= 10)
            .collect();
        due.sort_unstable_by_key(|d| std::cmp::Reverse(d.0));
        let k = due.len().min(19);
        assert_eq!(stats.easy_reviewed, k, "epoch {epoch}");
        assert_eq!(stats.easy_trained, 38);
        if k > 0 {
            // Every due image unused for longer than the k-th is reviewed;
            // among those tied with it, enough are.
            let kth = due[k - 1].0;
            let older = due.iter().filter(|d| d.0 > kth);
            assert!(older.clone().all(|d| used.contains(&d.1)), "epoch {epoch}");
            let reviewed = due
                .iter()
                .filter(|d| d.0 >= kth && used.contains(&d.1))
                .count();
            assert!(
                reviewed >= k,
                "epoch {epoch}: {reviewed} of the {k} longest unused"
            );
        }
        reviews += k;
        for &id in ids {
            last_used[id] = epoch;
        }
    }
    assert!(reviews > 500, "the test exercises reviews: {reviews}");
}

#[test]
fn refreshes_score_every_image_once_before_every_fifth_epoch() {
    let (n, batch) = (250, 32);
    let mut sampler = afss_sampler(n, batch, 1000, 5);
    let trace = run(&mut sampler, 23, level);
    let at: Vec<u32> = trace.refreshes.iter().map(|r| r.0).collect();
    assert_eq!(at, [5, 10, 15, 20]);
    for (_, ids) in &trace.refreshes {
        assert_eq!(
            ids,
            &(0..n).collect::<Vec<_>>(),
            "each image once, in id order"
        );
    }
    assert_eq!(sampler.strategy().refreshes(), 4);
    // Chunks are batch-sized: ⌈250 / 32⌉ = 8 scoring plans per refresh.
    let schedule = Schedule::new(n, batch, 1000, 1.0).unwrap();
    let strategy = Afss::new(AfssConfig::default()).unwrap();
    let mut fresh = Sampler::new(ScoreTable::new(n).unwrap(), schedule, strategy, 5).unwrap();
    let mut chunks = Vec::new();
    while fresh.strategy().refreshes() == 0 {
        match fresh.plan().unwrap().unwrap() {
            Planned::Train(plan) => fresh
                .record(plan.train(), &vec![0.5; plan.train().len()])
                .unwrap(),
            Planned::ScoreFirst(ids) => {
                fresh.record(&ids, &vec![0.5; ids.len()]).unwrap();
                chunks.push(ids.len());
                fresh.select().unwrap();
            }
        }
    }
    assert_eq!(chunks, [32, 32, 32, 32, 32, 32, 32, 26]);
}

#[test]
fn training_scores_do_not_move_images_between_tiers() {
    let n = 180;
    let mut sampler = afss_sampler(n, 16, 1000, 6);
    run(&mut sampler, 9, |_| 0.1); // refresh: all hard; training records 0.99
    assert!(sampler.table().records().iter().any(|r| r.last() == 0.99));
    assert!((0..n).all(|id| sampler.strategy().tier(id) == Some(Tier::Hard)));
    assert_eq!(sampler.strategy().sufficiency().unwrap(), &vec![0.1; n][..]);
}

#[test]
fn holds_the_step_budget_and_counts_refresh_passes() {
    for (n, batch, epochs, budget) in [(400, 32, 12, 1.0), (300, 16, 20, 0.5)] {
        let schedule = Schedule::new(n, batch, epochs, budget).unwrap();
        let strategy = Afss::new(AfssConfig::default()).unwrap();
        let mut sampler = Sampler::new(ScoreTable::new(n).unwrap(), schedule, strategy, 7).unwrap();
        let trace = run(&mut sampler, u32::MAX, level);
        assert!(
            sampler.plan().unwrap().is_none(),
            "nothing after the budget"
        );
        let limit = schedule.budget_steps();
        let trained: usize = trace.epochs.values().map(|(_, ids)| ids.len()).sum();
        let spent = sampler.budget();
        assert_eq!(spent.optimiser_steps(), limit);
        assert_eq!(spent.backward_passes(), trained as u64);
        assert_eq!(
            spent.forward_passes(),
            (trained + trace.refreshes.len() * n) as u64,
            "training passes plus one scoring pass per image per refresh"
        );
        assert!(!trace.refreshes.is_empty());
        let last = trace.epochs.values().last().unwrap();
        assert!(
            last.1.len() <= last.0.len(),
            "the budget may end inside an AFSS epoch"
        );
        if budget == 1.0 {
            let more_epochs = trace.epochs.len() as u32 > epochs;
            assert!(
                more_epochs,
                "AFSS epochs are shorter: more of them fit the budget"
            );
        }
    }
}

#[test]
fn plans_are_a_pure_function_of_seed_and_scores() {
    let trace = |seed| run(&mut afss_sampler(400, 16, 1000, seed), 25, level);
    assert_eq!(trace(8), trace(8));
    assert_ne!(trace(8), trace(9));
}

#[test]
fn a_sufficiency_outside_zero_one_is_an_error() {
    let mut sampler = afss_sampler(20, 8, 1000, 0);
    loop {
        match sampler.plan().unwrap().unwrap() {
            Planned::Train(plan) => sampler
                .record(plan.train(), &vec![2.0; plan.train().len()])
                .unwrap(),
            Planned::ScoreFirst(ids) => {
                let mut scores = vec![0.5; ids.len()];
                scores[1] = 1.5;
                sampler.record(&ids, &scores).unwrap();
                let err = sampler.select().unwrap_err();
                assert_eq!(
                    err,
                    SamplerError::InvalidSufficiency {
                        id: ids[1],
                        score: 1.5
                    }
                );
                assert!(err.to_string().contains("sufficiency"), "{err}");
                break;
            }
        }
    }
}

#[test]
fn invalid_parameters_are_errors() {
    let name_of = |config: AfssConfig| match StrategyConfig::Afss(config).build() {
        Err(SamplerError::InvalidParameter(p)) => p.name,
        other => panic!("accepted: {:?}", other.map(|s| s.name())),
    };
    let d = AfssConfig::default();
    let cases = [
        (
            AfssConfig {
                hard_threshold: -0.1,
                ..d
            },
            "hard_threshold",
        ),
        (
            AfssConfig {
                hard_threshold: 0.9,
                ..d
            },
            "easy_threshold",
        ),
        (
            AfssConfig {
                easy_threshold: 1.2,
                ..d
            },
            "easy_threshold",
        ),
        (
            AfssConfig {
                easy_share: 0.0,
                ..d
            },
            "easy_share",
        ),
        (
            AfssConfig {
                medium_share: 1.5,
                ..d
            },
            "medium_share",
        ),
        (
            AfssConfig {
                review_cap: f64::NAN,
                ..d
            },
            "review_cap",
        ),
        (
            AfssConfig {
                review_after: 0,
                ..d
            },
            "review_after",
        ),
        (
            AfssConfig {
                cover_after: 0,
                ..d
            },
            "cover_after",
        ),
        (
            AfssConfig {
                refresh_every: 0,
                ..d
            },
            "refresh_every",
        ),
    ];
    for (config, name) in cases {
        assert_eq!(name_of(config), name);
    }
    assert_eq!(StrategyConfig::Afss(d).build().unwrap().name(), "afss");
}
