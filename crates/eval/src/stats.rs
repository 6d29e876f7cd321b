//! Statistics across seeds: mean, standard deviation, bootstrap and
//! Student-t intervals, and paired comparisons. Every resample comes from
//! a seeded generator.
//!
//! Why both intervals: a percentile bootstrap over 2–5 seeds under-covers
//! badly (over two seeds it is the range of the two values, whatever their
//! spread), while the t-interval widens with the t quantile of n − 1
//! degrees of freedom, as an interval from so few draws must. Reports use
//! the t-interval below [`FEW_SEEDS`] seeds.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// Resamples used by default for bootstrap intervals.
pub const DEFAULT_RESAMPLES: usize = 10_000;

/// Below this many seeds (pairs) a percentile bootstrap is not to be
/// trusted and reports give the Student-t interval alone.
pub const FEW_SEEDS: usize = 10;

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
    /// The 95% Student-t interval of the mean (`None` for one seed).
    #[serde(default)]
    pub t: Option<TInterval>,
}

/// Mean, standard deviation and the 95% percentile-bootstrap interval of
/// the mean of `values` (one per seed), with `resamples` resamples drawn
/// from `seed`, and its 95% Student-t interval. One value gives a
/// zero-width bootstrap interval and no t-interval: the honest answer is
/// "no spread measured", which the report prints with n = 1.
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
        t: t_interval(values)?,
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
    /// Over fewer than [`FEW_SEEDS`] pairs it is not a probability to
    /// print: two pairs with the same sign give 1.0.
    pub prob_a_better: f64,
    /// The 95% paired Student-t interval of the mean difference (`None`
    /// for one pair).
    #[serde(default)]
    pub t: Option<TInterval>,
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
        t: t_interval(&d)?,
    })
}

/// A 95% Student-t interval of a mean: mean ± t₀.₉₇₅,ₙ₋₁ · s / √n, with
/// s the sample standard deviation of the n values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TInterval {
    /// Values (or pairs) the mean is over.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

/// The 95% Student-t interval of the mean of `values` (one per seed);
/// `None` with fewer than two values, which measure no spread. Errors on
/// a value that is not finite.
pub fn t_interval(values: &[f64]) -> Result<Option<TInterval>> {
    if values.len() < 2 {
        return Ok(None);
    }
    check_values(values)?;
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = student_t_quantile(0.975, (n - 1) as f64)? * (var / n as f64).sqrt();
    Ok(Some(TInterval {
        n,
        mean,
        low: mean - half,
        high: mean + half,
    }))
}

/// The 95% paired Student-t interval of the mean of `a − b`, where `a[k]`
/// and `b[k]` were measured on the same seed; `None` with fewer than two
/// pairs. Errors when the lengths differ or a value is not finite.
pub fn paired_t_interval(a: &[f64], b: &[f64]) -> Result<Option<TInterval>> {
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
    t_interval(&d)
}

/// The quantile function of Student's t distribution: the t with
/// P(T ≤ t) = `p` for `df` degrees of freedom (`df` need not be whole).
/// Found by bisection on the distribution function, which is exact to
/// the precision of the regularized incomplete beta function (about
/// 1e-12 here). Errors unless 0 < p < 1 and df > 0.
pub fn student_t_quantile(p: f64, df: f64) -> Result<f64> {
    if !(p > 0.0 && p < 1.0) {
        return Err(EvalError::Invalid {
            what: "t quantile: p".into(),
            message: format!("{p} is not in (0, 1)"),
        });
    }
    if !(df > 0.0 && df.is_finite()) {
        return Err(EvalError::Invalid {
            what: "t quantile: degrees of freedom".into(),
            message: format!("{df} is not positive and finite"),
        });
    }
    // The distribution is symmetric: solve for the upper tail q = 1 − p
    // (or p) and sign the answer, so that tiny tails keep their precision.
    let (tail, sign) = if p > 0.5 { (1.0 - p, 1.0) } else { (p, -1.0) };
    if tail == 0.5 {
        return Ok(0.0);
    }
    let upper = |t: f64| t_upper_tail(t, df);
    let mut hi = 1.0;
    while upper(hi) > tail {
        hi *= 2.0;
        if !hi.is_finite() {
            return Ok(sign * f64::INFINITY);
        }
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if upper(mid) > tail {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-14 * hi {
            break;
        }
    }
    Ok(sign * 0.5 * (lo + hi))
}

/// P(T > t) for t ≥ 0: ½ · I_{df/(df + t²)}(df/2, ½).
fn t_upper_tail(t: f64, df: f64) -> f64 {
    0.5 * incomplete_beta(df / (df + t * t), 0.5 * df, 0.5)
}

/// The regularized incomplete beta function I_x(a, b), by its continued
/// fraction (Numerical Recipes §6.4), using the symmetry
/// I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges slowly.
fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_fraction(1.0 - x, b, a) / b
    }
}

/// The continued fraction of the incomplete beta function, evaluated by
/// the modified Lentz method.
fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    // Convergence takes O(√max(a, b)) terms: 100,000 covers df up to ~10¹⁰.
    for m in 1..100_000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let even = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + even * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + even / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + odd * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + odd / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0, by the Lanczos approximation (g = 7, nine terms;
/// relative error about 1e-15), with the reflection formula below ½.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (k, &c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + k as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
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
