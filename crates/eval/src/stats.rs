//! Statistics across seeds: mean, standard deviation, bootstrap intervals
//! and paired comparisons. Every resample comes from a seeded generator.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// Resamples used by default for bootstrap intervals.
pub const DEFAULT_RESAMPLES: usize = 10_000;

/// A value measured over several seeds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedSummary {
    /// How many seeds.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1; 0 for one seed).
    pub std: f64,
    /// Lower end of the 95% percentile-bootstrap interval of the mean.
    pub low: f64,
    /// Upper end of that interval.
    pub high: f64,
}

/// Mean, standard deviation and the 95% percentile-bootstrap interval of
/// the mean of `values` (one per seed), with `resamples` resamples drawn
/// from `seed`. One value gives a zero-width interval: the honest answer
/// is "no spread measured", which the report prints with n = 1.
pub fn summarize_seeds(values: &[f64], resamples: usize, seed: u64) -> Result<SeedSummary> {
    check_values(values)?;
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let std = if n > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    let (low, high) = percentile_interval(&mut means);
    Ok(SeedSummary {
        n,
        mean,
        std,
        low,
        high,
    })
}

/// A paired comparison of two methods measured on the same seeds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedComparison {
    /// Mean of `a − b` over the pairs.
    pub mean_difference: f64,
    /// Lower end of the 95% bootstrap interval of that mean.
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// Share of resamples whose mean difference is positive: the bootstrap
    /// probability that A is better than B (for higher-is-better metrics).
    pub prob_a_better: f64,
}

/// Paired bootstrap for "is A better than B": `a[k]` and `b[k]` were
/// measured on the same seed `k`; pairs are resampled together.
pub fn paired_bootstrap(
    a: &[f64],
    b: &[f64],
    resamples: usize,
    seed: u64,
) -> Result<PairedComparison> {
    if a.len() != b.len() {
        return Err(EvalError::LengthMismatch {
            what: "paired values (one per seed in each method)",
            expected: a.len(),
            found: b.len(),
        });
    }
    check_values(a)?;
    check_values(b)?;
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = d.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| (0..n).map(|_| d[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    let better = means.iter().filter(|&&m| m > 0.0).count() as f64 / means.len() as f64;
    let (low, high) = percentile_interval(&mut means);
    Ok(PairedComparison {
        mean_difference: d.iter().sum::<f64>() / n as f64,
        low,
        high,
        prob_a_better: better,
    })
}

fn check_values(values: &[f64]) -> Result<()> {
    if values.is_empty() {
        return Err(EvalError::NotEnoughData("statistics over no seeds".into()));
    }
    if let Some(k) = values.iter().position(|v| !v.is_finite()) {
        return Err(EvalError::Invalid {
            what: format!("value {k}"),
            message: format!("{} is not finite", values[k]),
        });
    }
    Ok(())
}

/// The 2.5th and 97.5th percentiles (nearest rank) of `xs`.
fn percentile_interval(xs: &mut [f64]) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len()) - 1];
    (at(0.025), at(0.975))
}
