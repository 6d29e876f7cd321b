//! Presampling: the variance-reduction switch turns importance sampling on
//! only above τ_th, and selected samples carry weights 1/(B·g_i).

use isdet_sampler::{
    Planned, Presampling, PresamplingConfig, Sampler, Schedule, ScoreTable, StepPlan,
};

const B: usize = 16; // training batch b; candidates B = 3b

fn sampler() -> Sampler<Presampling> {
    let schedule = Schedule::new(2000, B, 100, 1.0).unwrap();
    let strategy = Presampling::new(PresamplingConfig::default()).unwrap();
    Sampler::new(ScoreTable::new(2000).unwrap(), schedule, strategy, 8).unwrap()
}

/// τ as Katharopoulos & Fleuret's code writes it:
/// 1 / sqrt(1 − ‖g − u‖² / ‖g‖²).
fn reference_tau(scores: &[f64]) -> f64 {
    let total: f64 = scores.iter().sum();
    let u = 1.0 / scores.len() as f64;
    let g: Vec<f64> = scores.iter().map(|s| s / total).collect();
    let diff: f64 = g.iter().map(|gi| (gi - u).powi(2)).sum();
    let norm: f64 = g.iter().map(|gi| gi * gi).sum();
    1.0 / (1.0 - diff / norm).sqrt()
}

struct Run {
    on_steps: Vec<usize>,
    emas_before: Vec<f64>,
    selected: Vec<(Vec<usize>, StepPlan)>,
}

/// Runs `steps` steps recording `score(id)`, and replays the EMA of τ.
fn run(steps: usize, score: impl Fn(usize) -> f32) -> Run {
    let mut sampler = sampler();
    let mut ema = 0.0;
    let mut run = Run {
        on_steps: Vec::new(),
        emas_before: Vec::new(),
        selected: Vec::new(),
    };
    for step in 0..steps {
        let planned = sampler.plan().unwrap().unwrap();
        assert!(
            (sampler.strategy().tau() - ema).abs() < 1e-9,
            "step {step}: τ EMA diverges"
        );
        run.emas_before.push(ema);
        let forwarded = match &planned {
            Planned::Train(plan) => plan.train().to_vec(),
            Planned::ScoreFirst(candidates) => candidates.clone(),
        };
        let scores: Vec<f32> = forwarded.iter().map(|&id| score(id)).collect();
        sampler.record(&forwarded, &scores).unwrap();
        if let Planned::ScoreFirst(candidates) = planned {
            run.on_steps.push(step);
            run.selected.push((candidates, sampler.select().unwrap()));
        }
        let scores: Vec<f64> = scores.iter().map(|&s| f64::from(s)).collect();
        ema = 0.9 * ema + 0.1 * reference_tau(&scores);
    }
    run
}

/// Heavy-tailed scores: τ of a random batch is about 2.4.
fn heavy(id: usize) -> f32 {
    ((id % 97) as f32 / 96.0).powi(10) + 1e-6
}

#[test]
fn switch_turns_on_only_above_the_threshold() {
    let threshold = PresamplingConfig::default().threshold();
    assert_eq!(
        threshold,
        (3.0 * B as f64 + 3.0 * B as f64) / (3.0 * B as f64)
    );
    let run = run(150, heavy);
    assert!(
        !run.on_steps.is_empty(),
        "heavy-tailed scores must switch importance sampling on"
    );
    for (step, &ema) in run.emas_before.iter().enumerate() {
        assert_eq!(
            run.on_steps.contains(&step),
            ema > threshold,
            "step {step}: EMA {ema:.3}"
        );
    }
    assert!(
        run.on_steps[0] > 5,
        "the EMA starts at 0 and needs several steps to rise"
    );
}

#[test]
fn uniform_scores_never_switch_on() {
    let run = run(150, |_| 1.0);
    assert!(run.on_steps.is_empty());
    assert!(run.emas_before.iter().all(|&ema| ema <= 1.0 + 1e-12));
}

#[test]
fn selected_samples_carry_weights_one_over_b_g() {
    let run = run(150, heavy);
    assert!(!run.selected.is_empty());
    for (candidates, plan) in &run.selected {
        assert_eq!(candidates.len(), 3 * B);
        assert_eq!(plan.score_only(), &candidates[..]);
        assert_eq!(plan.train().len(), B);
        let total: f64 = candidates.iter().map(|&id| f64::from(heavy(id))).sum();
        for (&id, &w) in plan.train().iter().zip(plan.weights()) {
            assert!(candidates.contains(&id));
            let g = f64::from(heavy(id)) / total;
            let expected = 1.0 / (candidates.len() as f64 * g);
            assert!(
                (f64::from(w) / expected - 1.0).abs() < 1e-5,
                "weight {w} vs {expected}"
            );
        }
        let cost = plan.cost();
        assert_eq!(
            (cost.forward, cost.backward, cost.optimiser_steps),
            (4 * B as u64, B as u64, 1)
        );
    }
}

#[test]
fn selection_follows_the_scores() {
    // Among the candidates, high scores must be picked far more often: the
    // top fifth of the candidates by score takes most picks.
    let run = run(300, heavy);
    let (mut top, mut all) = (0usize, 0usize);
    for (candidates, plan) in &run.selected {
        let mut sorted: Vec<f32> = candidates.iter().map(|&id| heavy(id)).collect();
        sorted.sort_by(f32::total_cmp);
        let cut = sorted[sorted.len() * 4 / 5];
        top += plan.train().iter().filter(|&&id| heavy(id) >= cut).count();
        all += plan.train().len();
    }
    assert!(
        top as f64 > 0.6 * all as f64,
        "{top} of {all} picks from the top fifth"
    );
}
