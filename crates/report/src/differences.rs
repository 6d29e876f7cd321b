//! Each method's paired difference to the baseline over the run, per
//! budget: at every evaluation step of the baseline, the method's metric
//! minus the baseline's on the same seed, as a mean over the seeds with
//! its 95% paired t-interval. One panel per budget reads where a whole
//! chart of overlapping curves does not.

use isdet_eval::{CostAxis, metric_at_cost, paired_t_interval};

use crate::aggregate::{Group, budget_matches};
use crate::curves::{BudgetDifferences, DifferenceCurve, DifferencePoint, mean};
use crate::load::Run;

/// The paired-difference curves of every budget that has runs of
/// `baseline` and of another method, in the groups' order (budgets from
/// the largest). Methods without a seed in common with the baseline are
/// left out (the comparison table's notes name them).
pub fn paired_curves(groups: &[Group], baseline: &str) -> Vec<BudgetDifferences> {
    let mut out: Vec<BudgetDifferences> = Vec::new();
    for base in groups.iter().filter(|g| g.method == baseline) {
        let methods: Vec<DifferenceCurve> = groups
            .iter()
            .filter(|g| g.method != baseline && budget_matches(g.budget, base.budget))
            .filter_map(|g| difference_curve(g, base))
            .collect();
        if !methods.is_empty() {
            out.push(BudgetDifferences {
                budget: base.budget,
                baseline: baseline.to_string(),
                methods,
            });
        }
    }
    out
}

/// `g` against `base`, paired by seed; `None` without a seed in common.
fn difference_curve(g: &Group, base: &Group) -> Option<DifferenceCurve> {
    let pairs: Vec<(&Run, &Run)> = g
        .runs
        .iter()
        .filter_map(|a| base.runs.iter().find(|b| b.seed == a.seed).map(|b| (a, b)))
        .collect();
    let (_, first_base) = pairs.first()?;
    // Both curves of every pair must cover a step: stop at the shortest.
    let end = pairs
        .iter()
        .flat_map(|(a, b)| [a, b])
        .filter_map(|r| r.curve.last().map(|p| p.steps))
        .fold(f64::INFINITY, f64::min);
    let points = first_base
        .curve
        .iter()
        .map(|p| p.steps)
        .filter(|&step| step <= end)
        .filter_map(|step| difference_at(&pairs, step))
        .collect();
    Some(DifferenceCurve {
        method: g.method.clone(),
        seeds: pairs.iter().map(|(a, _)| a.seed).collect(),
        points,
    })
}

/// The mean paired difference at `step` (each curve interpolated between
/// its evaluations), with its t-interval over the pairs.
fn difference_at(pairs: &[(&Run, &Run)], step: f64) -> Option<DifferencePoint> {
    let at = |r: &Run| metric_at_cost(&r.curve, CostAxis::Steps, step);
    let mut a = Vec::with_capacity(pairs.len());
    let mut b = Vec::with_capacity(pairs.len());
    for (x, y) in pairs {
        a.push(at(x)?);
        b.push(at(y)?);
    }
    let interval = paired_t_interval(&a, &b).ok().flatten();
    Some(DifferencePoint {
        step,
        mean: mean(a.iter().zip(&b).map(|(x, y)| x - y))?,
        interval: interval.map(|t| [t.low, t.high]),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use isdet_eval::CurvePoint;

    use super::*;
    use crate::load::Costs;

    fn run(method: &str, budget: f64, seed: u64, curve: &[(f64, f64)]) -> Run {
        Run {
            dir: format!("{method}-{seed}").into(),
            method: method.into(),
            budget,
            seed,
            primary_metric: "AP".into(),
            final_metric: curve.last().unwrap().1,
            costs: Costs::default(),
            per_class: BTreeMap::new(),
            curve: curve
                .iter()
                .map(|&(steps, metric)| CurvePoint {
                    steps,
                    backward: steps,
                    forward: steps,
                    images: steps,
                    seconds: steps,
                    metric,
                })
                .collect(),
            time: BTreeMap::new(),
            sampling: None,
            sampling_problem: None,
            diagnostics: Vec::new(),
            irreducible: None,
        }
    }

    fn group(method: &str, budget: f64, runs: Vec<Run>) -> Group {
        Group {
            method: method.into(),
            budget,
            runs,
        }
    }

    /// Uniform at 30% evaluates at 0, 10, 20; loss's seed 0 is +0.1 and
    /// +0.2 ahead at 10 and 20, its seed 1 +0.3 and +0.0; seed 2 of loss
    /// has no uniform pair. At 100% there is no uniform: no panel.
    fn study() -> Vec<Group> {
        vec![
            group(
                "uniform",
                0.3,
                vec![
                    run("uniform", 0.3, 0, &[(0.0, 0.0), (10.0, 0.2), (20.0, 0.4)]),
                    run("uniform", 0.3, 1, &[(0.0, 0.0), (10.0, 0.1), (20.0, 0.5)]),
                ],
            ),
            group(
                "loss",
                0.3,
                vec![
                    run("loss", 0.3, 0, &[(0.0, 0.0), (10.0, 0.3), (20.0, 0.6)]),
                    run("loss", 0.3, 1, &[(0.0, 0.0), (10.0, 0.4), (20.0, 0.5)]),
                    run("loss", 0.3, 2, &[(0.0, 0.0), (10.0, 0.9), (20.0, 0.9)]),
                ],
            ),
            group(
                "loss",
                1.0,
                vec![run("loss", 1.0, 0, &[(0.0, 0.0), (10.0, 0.3)])],
            ),
        ]
    }

    #[test]
    fn differences_are_paired_by_seed_with_a_t_band() {
        let curves = paired_curves(&study(), "uniform");
        assert_eq!(curves.len(), 1, "{curves:?}");
        let loss = &curves[0].methods[0];
        assert_eq!((curves[0].budget, loss.seeds.clone()), (0.3, vec![0, 1]));
        let means: Vec<f64> = loss.points.iter().map(|p| p.mean).collect();
        let want = [0.0, 0.2, 0.1];
        for (m, w) in means.iter().zip(want) {
            assert!((m - w).abs() < 1e-12, "{means:?}");
        }
        // At step 10 the differences are 0.1 and 0.3: standard error 0.1,
        // t(0.975, 1) = 12.706.
        let [low, high] = loss.points[1].interval.unwrap();
        assert!(
            (high - low - 2.0 * 1.270_620_473_6).abs() < 1e-6,
            "{low} {high}"
        );
        // Both seeds tie at step 0: a band of no width.
        assert_eq!(loss.points[0].interval, Some([0.0, 0.0]));
    }

    #[test]
    fn a_shorter_run_cuts_the_curve_and_interpolation_fills_other_steps() {
        let groups = vec![
            group(
                "uniform",
                0.5,
                vec![run(
                    "uniform",
                    0.5,
                    0,
                    &[(0.0, 0.0), (10.0, 0.2), (20.0, 0.4)],
                )],
            ),
            // Evaluated at 0 and 15 only, and stopped there.
            group("x", 0.5, vec![run("x", 0.5, 0, &[(0.0, 0.0), (15.0, 0.6)])]),
        ];
        let curves = paired_curves(&groups, "uniform");
        let points = &curves[0].methods[0].points;
        assert_eq!(points.len(), 2, "{points:?}");
        // At step 10, x is at 0.4 (interpolated): 0.4 − 0.2; one pair, no band.
        assert!((points[1].mean - 0.2).abs() < 1e-12);
        assert_eq!(points[1].interval, None);
    }
}
