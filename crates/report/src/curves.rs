//! The curves a report computes, prints in its JSON and plots: the band
//! point of a mean curve over seeds, each method's paired difference to
//! the baseline over the run, and τ over the run. Only types and their
//! arithmetic live here, so that every module computing or drawing them
//! can import this one without importing each other.

use serde::Serialize;

/// One point of a group's mean curve: the mean cost and metric over seeds
/// at one evaluation index, and the lowest and highest metric of any seed
/// (or, where a field says so, the ends of an interval).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BandPoint {
    /// Mean cost over seeds.
    pub x: f64,
    /// Mean metric over seeds.
    pub mean: f64,
    /// Lowest metric of any seed.
    pub min: f64,
    /// Highest metric of any seed.
    pub max: f64,
}

impl BandPoint {
    /// The point at `x` of `values` (one per seed or run): their mean,
    /// lowest and highest.
    pub fn of(x: f64, values: &[f64]) -> Self {
        BandPoint {
            x,
            mean: mean(values.iter().copied()).unwrap_or(0.0),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// The mean of `values`; `None` when there are none.
pub fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The methods at one budget against the baseline method at that budget,
/// over the run: one small panel of the paired-difference plot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetDifferences {
    /// The budget.
    pub budget: f64,
    /// The baseline method (`uniform` unless `--reference` says otherwise).
    pub baseline: String,
    /// One curve per other method at the budget.
    pub methods: Vec<DifferenceCurve>,
}

/// One method's metric minus the baseline's at each evaluation step,
/// paired by seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DifferenceCurve {
    /// The method.
    pub method: String,
    /// The seeds both groups have (the pairs).
    pub seeds: Vec<u64>,
    /// One point per evaluation step of the baseline, up to the shortest
    /// paired run.
    pub points: Vec<DifferencePoint>,
}

/// The paired difference at one optimiser step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DifferencePoint {
    /// The optimiser step.
    pub step: f64,
    /// Mean over the pairs of method − baseline.
    pub mean: f64,
    /// The 95% paired t-interval of that mean (`None` for one pair).
    pub interval: Option<[f64; 2]>,
}

impl DifferencePoint {
    /// The point as a band: the interval, or no width for one pair.
    pub fn band(&self) -> BandPoint {
        let [min, max] = self.interval.unwrap_or([self.mean, self.mean]);
        BandPoint {
            x: self.step,
            mean: self.mean,
            min,
            max,
        }
    }
}

/// A group's sampling diagnostics (`diagnostics` of `metrics.jsonl`): the
/// variance reduction τ that importance sampling could bring, how unevenly
/// the draws spread, and for presampling whether it switched on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupTau {
    /// The method.
    pub method: String,
    /// The budget.
    pub budget: f64,
    /// Runs of the group with diagnostics (the others are left out).
    pub runs: usize,
    /// τ of the losses at the last evaluation, mean over runs (`None`
    /// when no run had scored an image by then).
    pub tau_loss: Option<f64>,
    /// τ of the gradient-norm bounds at the last evaluation, mean over runs.
    pub tau_grad_norm: Option<f64>,
    /// Gini of the draws per image at the last evaluation, mean over runs.
    pub draw_gini: f64,
    /// The share of evaluations at which the strategy's importance phase
    /// was on, over every evaluation of every run that says (presampling).
    pub importance_on: Option<f64>,
    /// The strategy's own running τ at the last evaluation, mean over runs
    /// (presampling's EMA).
    pub strategy_tau: Option<f64>,
    /// The τ above which the strategy switches importance sampling on
    /// (presampling), mean over runs.
    pub tau_threshold: Option<f64>,
    /// τ of the losses at each evaluation: mean over the runs that have it,
    /// and the lowest and highest run.
    pub tau_loss_over_run: Vec<BandPoint>,
    /// τ of the gradient-norm bounds at each evaluation, as above.
    pub tau_grad_norm_over_run: Vec<BandPoint>,
    /// The draws' Gini at each evaluation, as above.
    pub draw_gini_over_run: Vec<BandPoint>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_band_point_is_the_mean_and_range() {
        let p = BandPoint::of(3.0, &[0.2, 0.6, 0.4]);
        assert_eq!((p.x, p.min, p.max), (3.0, 0.2, 0.6));
        assert!((p.mean - 0.4).abs() < 1e-12);
        assert_eq!(mean([]), None);
    }

    #[test]
    fn one_pair_draws_no_band() {
        let one = DifferencePoint {
            step: 10.0,
            mean: -0.1,
            interval: None,
        };
        assert_eq!((one.band().min, one.band().max), (-0.1, -0.1));
        let two = DifferencePoint {
            interval: Some([-0.3, 0.1]),
            ..one
        };
        assert_eq!((two.band().min, two.band().max), (-0.3, 0.1));
    }
}
