//! Helpers shared by the integration tests: a chi-square goodness-of-fit
//! check, scored tables and a driver that follows the sampler protocol.
#![allow(dead_code)]

use isdet_sampler::{Planned, Sampler, Schedule, ScoreTable, StepPlan, Strategy};

/// Pearson's chi-square statistic of `counts` against probabilities
/// `probs` (which sum to 1).
pub fn chi_square(counts: &[u64], probs: &[f64]) -> f64 {
    assert_eq!(counts.len(), probs.len());
    let n: u64 = counts.iter().sum();
    counts
        .iter()
        .zip(probs)
        .map(|(&c, &p)| {
            let expected = p * n as f64;
            assert!(
                expected >= 5.0,
                "bin expects {expected} < 5 draws: test is underpowered"
            );
            (c as f64 - expected).powi(2) / expected
        })
        .sum()
}

/// The chi-square critical value at significance 0.001 with `df` degrees
/// of freedom (Wilson–Hilferty approximation, accurate to <1% for df ≥ 3).
pub fn chi_square_critical(df: usize) -> f64 {
    let k = df as f64;
    let z = 3.090_232; // standard normal quantile at 0.999
    let h = 2.0 / (9.0 * k);
    k * (1.0 - h + z * h.sqrt()).powi(3)
}

/// Asserts that `counts` are a plausible sample of `probs` (p > 0.001).
pub fn assert_fits(counts: &[u64], probs: &[f64], what: &str) {
    let stat = chi_square(counts, probs);
    let critical = chi_square_critical(probs.len() - 1);
    assert!(
        stat < critical,
        "{what}: chi-square {stat:.1} >= critical {critical:.1} (df {})",
        probs.len() - 1
    );
}

/// Probabilities proportional to `weights`.
pub fn normalised(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

/// A table where sample `id` has been scored once with `score(id)` at
/// step 0.
pub fn scored_table(len: usize, score: impl Fn(usize) -> f32) -> ScoreTable {
    let mut table = ScoreTable::new(len).unwrap();
    let ids: Vec<usize> = (0..len).collect();
    let scores: Vec<f32> = ids.iter().map(|&id| score(id)).collect();
    table.update(&ids, &scores, 0).unwrap();
    table
}

/// A sampler over a table scored by `score`, with many epochs so that the
/// budget outlasts the test.
pub fn sampler_over<S: Strategy>(
    len: usize,
    batch: usize,
    strategy: S,
    seed: u64,
    score: impl Fn(usize) -> f32,
) -> Sampler<S> {
    let schedule = Schedule::new(len, batch, 1_000_000, 1.0).unwrap();
    Sampler::new(scored_table(len, score), schedule, strategy, seed).unwrap()
}

/// Follows the protocol for up to `steps` plans, recording `score(id, step)`
/// for every forwarded id; returns the plans trained on (for two-phase
/// steps, the selected plan). Stops early when the sampler does.
pub fn drive<S: Strategy>(
    sampler: &mut Sampler<S>,
    steps: usize,
    score: impl Fn(usize, u64) -> f32,
) -> Vec<StepPlan> {
    let mut plans = Vec::new();
    for _ in 0..steps {
        let Some(planned) = sampler.plan().unwrap() else {
            break;
        };
        let step = sampler.current_step();
        let scores_of = |ids: &[usize]| ids.iter().map(|&id| score(id, step)).collect::<Vec<f32>>();
        let plan = match planned {
            Planned::Train(plan) => {
                sampler
                    .record(plan.train(), &scores_of(plan.train()))
                    .unwrap();
                plan
            }
            Planned::ScoreFirst(ids) => {
                sampler.record(&ids, &scores_of(&ids)).unwrap();
                sampler.select().unwrap()
            }
        };
        plans.push(plan);
    }
    plans
}

/// Plans `steps` one-phase steps without recording anything, so that the
/// table (and the distribution) stays fixed.
pub fn plans_without_recording<S: Strategy>(
    sampler: &mut Sampler<S>,
    steps: usize,
) -> Vec<StepPlan> {
    (0..steps)
        .map(|_| match sampler.plan().unwrap() {
            Some(Planned::Train(plan)) => plan,
            other => panic!("expected a one-phase training plan, got {other:?}"),
        })
        .collect()
}

/// How often each id appears among the plans' training ids.
pub fn train_counts(plans: &[StepPlan], len: usize) -> Vec<u64> {
    let mut counts = vec![0u64; len];
    for plan in plans {
        for &id in plan.train() {
            counts[id] += 1;
        }
    }
    counts
}
