//! What RHO-LOSS's irreducible-loss model cost each group: trained before
//! the run's first step and not in the run's own counters, so the report
//! shows it beside them (its holdout images are labelled data the method
//! used besides the training set).

use serde::Serialize;

use crate::load::Run;

/// Means over a group's runs of their irreducible-loss model's costs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupIrreducible {
    /// The group's method.
    pub method: String,
    /// The group's budget.
    pub budget: f64,
    /// Runs that carry the costs.
    pub runs: usize,
    /// Labelled holdout images the model trained on.
    pub holdout_images: f64,
    /// Its optimiser steps.
    pub steps: f64,
    /// Its forward passes, training and scoring the training set.
    pub forward: f64,
    /// Its backward passes.
    pub backward: f64,
    /// Its seconds, training and scoring the training set (evaluation
    /// excluded).
    pub seconds: f64,
    /// Its final primary metric on the validation set.
    pub metric: f64,
}

/// One entry per group, given as (method, budget, runs), whose runs
/// trained an irreducible-loss model.
pub fn irreducible_costs<'a>(
    groups: impl IntoIterator<Item = (&'a str, f64, &'a [Run])>,
) -> Vec<GroupIrreducible> {
    groups
        .into_iter()
        .filter_map(|(method, budget, runs)| {
            let costs: Vec<_> = runs.iter().filter_map(|r| r.irreducible).collect();
            let n = costs.len();
            let mean = |f: &dyn Fn(&isdet_trainer::IrreducibleCost) -> f64| {
                costs.iter().map(f).sum::<f64>() / n as f64
            };
            (n > 0).then(|| GroupIrreducible {
                method: method.to_string(),
                budget,
                runs: n,
                holdout_images: mean(&|c| c.holdout_images as f64),
                steps: mean(&|c| c.steps as f64),
                forward: mean(&|c| (c.forward + c.loss_forward) as f64),
                backward: mean(&|c| c.backward as f64),
                seconds: mean(&|c| c.seconds + c.loss_seconds),
                metric: mean(&|c| c.metric),
            })
        })
        .collect()
}
