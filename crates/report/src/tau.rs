//! τ over the run: from each evaluation's `diagnostics` in `metrics.jsonl`,
//! the variance reduction that importance sampling by the run's current
//! scores could bring (τ of the losses and of the gradient-norm bounds;
//! near 1 when the scores are alike, where importance sampling cannot
//! pay), the Gini of the draws so far, and for presampling its own τ
//! estimate, its switch threshold and whether it switched on. Runs made
//! before the diagnostics were recorded are left out.

use isdet_trainer::Diagnostics;

use crate::aggregate::Group;
use crate::curves::{BandPoint, GroupTau, mean};
use crate::load::Run;

/// The diagnostics of every group with at least one run that records
/// them, in the groups' order.
pub fn tau_groups(groups: &[Group]) -> Vec<GroupTau> {
    groups.iter().filter_map(group_tau).collect()
}

fn group_tau(g: &Group) -> Option<GroupTau> {
    let runs: Vec<&Run> = g
        .runs
        .iter()
        .filter(|r| !r.diagnostics.is_empty())
        .collect();
    let lasts: Vec<&Diagnostics> = runs
        .iter()
        .filter_map(|r| r.diagnostics.last().map(|(_, d)| d))
        .collect();
    if lasts.is_empty() {
        return None;
    }
    let at_end = |f: fn(&Diagnostics) -> Option<f64>| mean(lasts.iter().filter_map(|d| f(d)));
    Some(GroupTau {
        method: g.method.clone(),
        budget: g.budget,
        runs: runs.len(),
        tau_loss: at_end(|d| d.tau_loss),
        tau_grad_norm: at_end(|d| d.tau_grad_norm),
        draw_gini: at_end(|d| Some(d.draw_gini)).unwrap_or(0.0),
        importance_on: importance_share(&runs),
        strategy_tau: at_end(|d| d.strategy_tau),
        tau_threshold: at_end(|d| d.tau_threshold),
        tau_loss_over_run: over_run(&runs, |d| d.tau_loss),
        tau_grad_norm_over_run: over_run(&runs, |d| d.tau_grad_norm),
        draw_gini_over_run: over_run(&runs, |d| Some(d.draw_gini)),
    })
}

/// The share of evaluations, over all the runs, at which the importance
/// phase was on; `None` when no evaluation says (not presampling).
fn importance_share(runs: &[&Run]) -> Option<f64> {
    let said: Vec<bool> = runs
        .iter()
        .flat_map(|r| r.diagnostics.iter().filter_map(|(_, d)| d.importance_on))
        .collect();
    mean(said.iter().map(|&on| if on { 1.0 } else { 0.0 }))
}

/// The value at each evaluation index up to the shortest run (runs of a
/// group evaluate at the same steps): mean over the runs that have it,
/// and the lowest and highest of them; indices where no run has it are
/// left out.
fn over_run(runs: &[&Run], value: fn(&Diagnostics) -> Option<f64>) -> Vec<BandPoint> {
    let len = runs.iter().map(|r| r.diagnostics.len()).min().unwrap_or(0);
    (0..len)
        .filter_map(|i| {
            let at = runs.iter().map(|r| &r.diagnostics[i]);
            let values: Vec<f64> = at.clone().filter_map(|(_, d)| value(d)).collect();
            if values.is_empty() {
                return None;
            }
            let step = mean(at.map(|(s, _)| *s))?;
            Some(BandPoint::of(step, &values))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::load::Costs;

    fn diag(tau_loss: Option<f64>, gini: f64, on: Option<bool>) -> Diagnostics {
        Diagnostics {
            tau_loss,
            tau_grad_norm: tau_loss.map(|t| 2.0 * t),
            scored: 10,
            draw_gini: gini,
            importance_on: on,
            strategy_tau: on.map(|_| 1.5),
            tau_threshold: on.map(|_| 1.8),
        }
    }

    fn run(seed: u64, diagnostics: Vec<(f64, Diagnostics)>) -> Run {
        Run {
            dir: format!("r{seed}").into(),
            method: "presampling".into(),
            budget: 1.0,
            seed,
            primary_metric: "AP".into(),
            final_metric: 0.5,
            costs: Costs::default(),
            per_class: BTreeMap::new(),
            curve: Vec::new(),
            time: BTreeMap::new(),
            sampling: None,
            sampling_problem: None,
            diagnostics,
            irreducible: None,
        }
    }

    /// Seed 0: τ(loss) unknown at step 0, 1.2 at 10, 1.4 at 20, on at the
    /// last of its three evaluations. Seed 1: 1.0 at 10 and 1.6 at 20,
    /// never on. Seed 2 has no diagnostics and is left out.
    fn presampling() -> Group {
        Group {
            method: "presampling".into(),
            budget: 1.0,
            runs: vec![
                run(
                    0,
                    vec![
                        (0.0, diag(None, 0.0, Some(false))),
                        (10.0, diag(Some(1.2), 0.1, Some(false))),
                        (20.0, diag(Some(1.4), 0.2, Some(true))),
                    ],
                ),
                run(
                    1,
                    vec![
                        (0.0, diag(None, 0.0, Some(false))),
                        (10.0, diag(Some(1.0), 0.1, Some(false))),
                        (20.0, diag(Some(1.6), 0.4, Some(false))),
                    ],
                ),
                run(2, Vec::new()),
            ],
        }
    }

    #[test]
    fn tau_at_the_end_is_the_mean_of_each_runs_last_evaluation() {
        let t = &tau_groups(&[presampling()])[0];
        assert_eq!(t.runs, 2);
        assert!((t.tau_loss.unwrap() - 1.5).abs() < 1e-12);
        assert!((t.tau_grad_norm.unwrap() - 3.0).abs() < 1e-12);
        assert!((t.draw_gini - 0.3).abs() < 1e-12);
        // On at 1 of 6 evaluations.
        assert!((t.importance_on.unwrap() - 1.0 / 6.0).abs() < 1e-12);
        assert_eq!((t.strategy_tau, t.tau_threshold), (Some(1.5), Some(1.8)));
        // Step 0 has no τ: the curve starts at step 10.
        let xs: Vec<f64> = t.tau_loss_over_run.iter().map(|p| p.x).collect();
        assert_eq!(xs, [10.0, 20.0]);
        let p = t.tau_loss_over_run[0];
        assert_eq!((p.min, p.max), (1.0, 1.2));
        assert!((p.mean - 1.1).abs() < 1e-12);
        // The Gini is known from step 0: three points, the last 0.2–0.4.
        let gini: Vec<(f64, f64)> = t.draw_gini_over_run.iter().map(|p| (p.x, p.mean)).collect();
        assert_eq!(gini.len(), 3);
        assert!((gini[2].1 - 0.3).abs() < 1e-12, "{gini:?}");
        assert_eq!(
            (t.draw_gini_over_run[2].min, t.draw_gini_over_run[2].max),
            (0.2, 0.4)
        );
    }

    #[test]
    fn groups_without_diagnostics_have_no_entry_and_others_no_switch() {
        let mut old = presampling();
        old.runs.retain(|r| r.diagnostics.is_empty());
        assert!(tau_groups(&[old]).is_empty());
        let mut uniform = presampling();
        for r in &mut uniform.runs {
            for (_, d) in &mut r.diagnostics {
                d.importance_on = None;
                d.strategy_tau = None;
                d.tau_threshold = None;
            }
        }
        let t = &tau_groups(&[uniform])[0];
        assert_eq!((t.importance_on, t.tau_threshold), (None, None));
    }
}
