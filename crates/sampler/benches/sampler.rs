//! Sampler speed, side by side with the O(N) alternative the reference
//! codes use (normalise the full distribution and draw from it every step).
//!
//! - `step_n10m`: draw a batch of 128 and record 128 scores with
//!   N = 10,000,000 (target ≤ 50 µs): the sum-tree sampler against
//!   normalising and drawing from the full distribution.
//! - `epoch_n1m`: all plans of one epoch of weighted sampling without
//!   replacement, budget 0.3, N = 1,000,000 (target ≤ 200 ms), beside the
//!   uniform baseline and one O(N) step at N = 1,000,000 (an O(N) epoch
//!   costs that times the epoch's 2,344 steps).
//!
//! `cargo bench -p isdet-sampler --bench sampler`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use isdet_sampler::{
    Planned, Sampler, Schedule, ScoreTable, Strategy, Uniform, WeightedConfig,
    WeightedWithReplacement, WeightedWithoutReplacement,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BATCH: usize = 128;
const BIG: usize = 10_000_000;
const EPOCH_N: usize = 1_000_000;

/// A score in [0, 10) that depends on the id and a counter.
fn score(id: usize, k: u64) -> f32 {
    let h = (id as u64 ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (h >> 40) as f32 / (1u64 << 24) as f32 * 10.0
}

fn scored_table(len: usize) -> ScoreTable {
    let mut table = ScoreTable::new(len).unwrap();
    let ids: Vec<usize> = (0..len).collect();
    let scores: Vec<f32> = ids.iter().map(|&id| score(id, 0)).collect();
    table.update(&ids, &scores, 0).unwrap();
    table
}

fn train_ids<S: Strategy>(sampler: &mut Sampler<S>) -> Vec<usize> {
    match sampler.plan().unwrap() {
        Some(Planned::Train(plan)) => plan.train().to_vec(),
        other => panic!("expected a training plan, got {other:?}"),
    }
}

/// The O(N) alternative: per step, normalise all scores into a cumulative
/// distribution, draw 128 ids by binary search, then update their scores.
struct FullDistribution {
    scores: Vec<f32>,
    cumulative: Vec<f64>,
    rng: ChaCha8Rng,
    k: u64,
}

impl FullDistribution {
    fn new(len: usize) -> Self {
        Self {
            scores: (0..len).map(|id| score(id, 0)).collect(),
            cumulative: vec![0.0; len],
            rng: ChaCha8Rng::seed_from_u64(1),
            k: 0,
        }
    }

    fn step(&mut self) -> usize {
        let mut acc = 0.0;
        for (c, &s) in self.cumulative.iter_mut().zip(&self.scores) {
            acc += f64::from(s);
            *c = acc;
        }
        self.k += 1;
        let mut last = 0;
        for _ in 0..BATCH {
            let target = self.rng.random::<f64>() * acc;
            let id = self
                .cumulative
                .partition_point(|&c| c <= target)
                .min(self.scores.len() - 1);
            self.scores[id] = score(id, self.k);
            last = id;
        }
        last
    }
}

fn step_n10m(c: &mut Criterion) {
    let mut group = c.benchmark_group("step_n10m");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let schedule = Schedule::new(BIG, BATCH, 1000, 1.0).unwrap();
    let config = WeightedConfig {
        epsilon: 0.1,
        ..WeightedConfig::default()
    };
    let strategy = WeightedWithReplacement::new(config).unwrap();
    let mut sampler = Sampler::new(scored_table(BIG), schedule, strategy, 1).unwrap();
    train_ids(&mut sampler); // builds the sum tree (O(N), once)
    let mut k = 0;
    group.bench_function("sum_tree_draw128_record128", |b| {
        b.iter(|| {
            let ids = train_ids(&mut sampler);
            k += 1;
            let scores: Vec<f32> = ids.iter().map(|&id| score(id, k)).collect();
            sampler.record(&ids, &scores).unwrap();
        })
    });
    drop(sampler);
    let mut full = FullDistribution::new(BIG);
    group.bench_function("full_distribution_draw128_record128", |b| {
        b.iter(|| black_box(full.step()))
    });
    group.finish();
}

fn epoch_n1m(c: &mut Criterion) {
    let mut group = c.benchmark_group("epoch_n1m");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    let table = scored_table(EPOCH_N);
    let schedule = Schedule::new(EPOCH_N, BATCH, 10, 0.3).unwrap();
    let steps = schedule.steps_per_epoch();
    let epoch = |mut sampler: Sampler<Box<dyn Strategy>>| {
        for _ in 0..steps {
            black_box(train_ids(&mut sampler));
        }
    };
    let fresh =
        |strategy: Box<dyn Strategy>| Sampler::new(table.clone(), schedule, strategy, 1).unwrap();
    group.bench_function("weighted_without_replacement_epoch", |b| {
        b.iter_batched(
            || {
                fresh(Box::new(
                    WeightedWithoutReplacement::new(WeightedConfig::default()).unwrap(),
                ))
            },
            epoch,
            BatchSize::LargeInput,
        )
    });
    group.bench_function("uniform_epoch", |b| {
        b.iter_batched(
            || fresh(Box::new(Uniform::new())),
            epoch,
            BatchSize::LargeInput,
        )
    });
    let mut full = FullDistribution::new(EPOCH_N);
    group.bench_function("full_distribution_one_step", |b| {
        b.iter(|| black_box(full.step()))
    });
    group.finish();
}

criterion_group!(benches, step_n10m, epoch_n1m);
criterion_main!(benches);
