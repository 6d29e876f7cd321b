//! Whether the reference run has converged: a comparison of budgets says
//! something about importance sampling only when the reference (uniform at
//! 100%) is trained out. The practical check (docs/methods.md, "When a
//! comparison means something"): over the last quarter of its
//! optimiser steps, the reference's validation metric rises by at most 3%
//! (relative).

use isdet_eval::{CostAxis, CurvePoint, metric_at_cost};
use serde::Serialize;

/// The largest relative rise over the last quarter of the steps that
/// still counts as converged.
pub const DEFAULT_MAX_RISE: f64 = 0.03;

/// The convergence check of one group of runs (one per seed).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Convergence {
    /// The largest rise allowed.
    pub max_rise: f64,
    /// Per seed: the metric at 75% of the run's steps (interpolated
    /// between evaluations), at the end, and the relative rise between.
    pub seeds: Vec<LastQuarter>,
    /// The mean relative rise over seeds.
    pub mean_rise: f64,
    /// Whether the mean rise is at most `max_rise`.
    pub converged: bool,
}

/// One run's last quarter.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LastQuarter {
    /// The seed.
    pub seed: u64,
    /// The step three quarters through the run.
    pub from_step: f64,
    /// The run's last evaluated step.
    pub to_step: f64,
    /// The metric at `from_step`.
    pub from: f64,
    /// The metric at `to_step`.
    pub to: f64,
    /// `(to − from) / from` (infinite when `from` is 0 and `to` above it).
    pub rise: f64,
}

/// The last quarter of one run's curve; `None` when the curve has fewer
/// than two evaluations or no evaluation covers three quarters of it.
pub fn last_quarter(seed: u64, curve: &[CurvePoint]) -> Option<LastQuarter> {
    let last = curve.last()?;
    if curve.len() < 2 || last.steps <= 0.0 {
        return None;
    }
    let from_step = 0.75 * last.steps;
    let from = metric_at_cost(curve, CostAxis::Steps, from_step)?;
    let rise = if from > 0.0 {
        (last.metric - from) / from
    } else if last.metric > from {
        f64::INFINITY
    } else {
        0.0
    };
    Some(LastQuarter {
        seed,
        from_step,
        to_step: last.steps,
        from,
        to: last.metric,
        rise,
    })
}

/// The check over a group's runs, given as (seed, curve); `None` when no
/// run has a curve long enough to tell.
pub fn check<'a>(
    runs: impl IntoIterator<Item = (u64, &'a [CurvePoint])>,
    max_rise: f64,
) -> Option<Convergence> {
    let seeds: Vec<LastQuarter> = runs
        .into_iter()
        .filter_map(|(seed, curve)| last_quarter(seed, curve))
        .collect();
    if seeds.is_empty() {
        return None;
    }
    let mean_rise = seeds.iter().map(|s| s.rise).sum::<f64>() / seeds.len() as f64;
    Some(Convergence {
        max_rise,
        converged: mean_rise <= max_rise,
        seeds,
        mean_rise,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(points: &[(f64, f64)]) -> Vec<CurvePoint> {
        points
            .iter()
            .map(|&(steps, metric)| CurvePoint {
                steps,
                backward: steps,
                forward: steps,
                images: steps,
                seconds: steps,
                metric,
            })
            .collect()
    }

    #[test]
    fn the_rise_is_read_at_three_quarters_by_interpolation() {
        // 0.75 × 400 = 300, halfway between 200 (0.4) and 400 (0.5): 0.45.
        let c = curve(&[(0.0, 0.0), (200.0, 0.4), (400.0, 0.5)]);
        let q = last_quarter(0, &c).unwrap();
        assert_eq!(q.from_step, 300.0);
        assert!((q.from - 0.45).abs() < 1e-12);
        assert!((q.rise - (0.05 / 0.45)).abs() < 1e-12);
    }

    #[test]
    fn a_flat_last_quarter_passes_and_a_climbing_one_fails() {
        let flat = curve(&[(0.0, 0.0), (300.0, 0.500), (400.0, 0.510)]);
        let climbing = curve(&[(0.0, 0.0), (300.0, 0.40), (400.0, 0.50)]);
        let ok = check([(0, &flat[..])], DEFAULT_MAX_RISE).unwrap();
        assert!(ok.converged, "{ok:?}");
        let bad = check([(0, &climbing[..]), (1, &flat[..])], DEFAULT_MAX_RISE).unwrap();
        assert!(!bad.converged, "{bad:?}");
        assert!((bad.mean_rise - (0.25 + 0.02) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn a_curve_too_short_to_tell_gives_no_verdict() {
        assert!(check([(0, &curve(&[(0.0, 0.0)])[..])], DEFAULT_MAX_RISE).is_none());
        let from_zero = curve(&[(0.0, 0.0), (400.0, 0.2)]);
        // 0 at step 0 and 0.2 at 400: 0.15 at 300, a rise of a third.
        let q = last_quarter(0, &from_zero).unwrap();
        assert!((q.rise - (0.05 / 0.15)).abs() < 1e-12);
    }
}
