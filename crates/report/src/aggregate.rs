//! From runs to the report's numbers: groups of seeds, final metrics with
//! intervals, cost to target and speed-ups, paired comparisons, and the
//! mean curves with seed bands that the plots draw.

use std::collections::BTreeMap;
use std::path::Path;

use isdet_eval::{
    CostAxis, PairedComparison, SeedSummary, cost_to_target, mean_metric_over_cost, metric_at_cost,
    paired_bootstrap, summarize_seeds,
};
use serde::Serialize;

pub use crate::curves::BandPoint;
use crate::curves::{BudgetDifferences, GroupTau, mean};
use crate::error::{ReportError, Result};
use crate::load::{Costs, Run, Scan};

/// A method at a budget, e.g. `uniform@1.0`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupKey {
    /// The method label.
    pub method: String,
    /// The budget as a fraction of the full schedule.
    pub budget: f64,
}

impl GroupKey {
    /// Whether `other` names the same group: budgets are compared to six
    /// decimals so that `0.3` read from JSON matches `0.3` typed by hand.
    pub fn matches(&self, method: &str, budget: f64) -> bool {
        self.method == method && budget_key(self.budget) == budget_key(budget)
    }
}

impl std::str::FromStr for GroupKey {
    type Err = String;

    /// Parses `METHOD@BUDGET`, the budget as a fraction (`0.3`) or a
    /// percentage (`30%`).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (method, budget) = s
            .rsplit_once('@')
            .filter(|(m, _)| !m.is_empty())
            .ok_or_else(|| format!("expected METHOD@BUDGET (e.g. uniform@1.0), got {s:?}"))?;
        let budget = match budget.strip_suffix('%') {
            Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
            None => budget.trim().parse::<f64>(),
        }
        .map_err(|e| format!("budget of {s:?}: {e}"))?;
        if !(budget.is_finite() && budget > 0.0) {
            return Err(format!("budget of {s:?} must be positive"));
        }
        Ok(Self {
            method: method.to_string(),
            budget,
        })
    }
}

fn budget_key(budget: f64) -> i64 {
    (budget * 1e6).round() as i64
}

/// Whether two budgets are the same to six decimals (as [`GroupKey::matches`]).
pub fn budget_matches(a: f64, b: f64) -> bool {
    budget_key(a) == budget_key(b)
}

/// The knobs of the aggregation.
#[derive(Clone, Debug)]
pub struct Options {
    /// The group speed-ups are measured against; its method is also the
    /// baseline of the paired comparisons.
    pub reference: GroupKey,
    /// Target = this × the reference's mean final metric.
    pub target_fraction: f64,
    /// Bootstrap resamples.
    pub resamples: usize,
    /// Seed of every bootstrap.
    pub bootstrap_seed: u64,
    /// The largest relative rise of the reference over its last quarter
    /// of steps that counts as converged.
    pub max_rise: f64,
}

/// The runs of one method at one budget, one per seed, in seed order.
#[derive(Clone, Debug)]
pub struct Group {
    /// The method label.
    pub method: String,
    /// The budget.
    pub budget: f64,
    /// The runs, sorted by seed, seeds distinct.
    pub runs: Vec<Run>,
}

impl Group {
    fn seeds(&self) -> Vec<u64> {
        self.runs.iter().map(|r| r.seed).collect()
    }

    /// "method @ 30%", as tables and legends name a group.
    pub fn label(&self) -> String {
        format!("{} @ {}", self.method, percent(self.budget))
    }
}

/// A budget fraction as a percentage without needless decimals.
pub fn percent(budget: f64) -> String {
    let p = budget * 100.0;
    if (p - p.round()).abs() < 1e-6 {
        format!("{}%", p.round())
    } else {
        format!("{p:.1}%")
    }
}

/// Everything the report prints, and what `--json` writes.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The name of the compared metric (`AP`, `top1`).
    pub primary_metric: String,
    /// The reference group of the cost-to-target table.
    pub reference: GroupKey,
    /// Whether the reference group has runs.
    pub reference_found: bool,
    /// The reference's mean final metric.
    pub reference_final_mean: Option<f64>,
    /// The target fraction.
    pub target_fraction: f64,
    /// The target metric: fraction × the reference's mean final metric.
    pub target: Option<f64>,
    /// Whether the reference has converged (absent without a reference or
    /// when its curves are too short to tell).
    pub reference_convergence: Option<crate::convergence::Convergence>,
    /// Bootstrap resamples used.
    pub resamples: usize,
    /// Bootstrap seed used.
    pub bootstrap_seed: u64,
    /// Below this many seeds (pairs) the text gives Student-t intervals
    /// alone: percentile-bootstrap intervals and P(better) from so few
    /// seeds under-cover (both are still in this JSON).
    pub few_seeds: usize,
    /// One entry per method and budget.
    pub groups: Vec<GroupReport>,
    /// Each method against the baseline method at the same budget.
    pub comparisons: Vec<Comparison>,
    /// Runs without `summary.json`.
    pub unfinished: Vec<UnfinishedRun>,
    /// Runs left out, with the file at fault.
    pub skipped: Vec<SkippedRun>,
    /// What each group's budget was spent on (groups whose runs have
    /// `sampling.json`).
    pub spending: Vec<GroupSpending>,
    /// Per budget with baseline runs: each other method's paired
    /// difference to the baseline at every evaluation step.
    pub paired_curves: Vec<BudgetDifferences>,
    /// Each group's sampling diagnostics (τ, the draws' Gini), for the
    /// groups whose runs record them.
    pub tau: Vec<GroupTau>,
    /// What each RHO-LOSS group's irreducible-loss model cost, beside its
    /// own counters.
    pub irreducible: Vec<crate::irreducible::GroupIrreducible>,
    /// Other things the reader should know (duplicate seeds, missing
    /// baselines, uneven curves).
    pub notes: Vec<String>,
    /// The run whose predictions the gallery shows, when one was drawn.
    pub gallery: Option<String>,
}

/// The numbers of one group.
#[derive(Debug, Serialize)]
pub struct GroupReport {
    /// The method label.
    pub method: String,
    /// The budget.
    pub budget: f64,
    /// The seeds, in order.
    pub seeds: Vec<u64>,
    /// The run directories, relative to the report folder.
    pub runs: Vec<String>,
    /// The final primary metric over seeds.
    pub final_metric: SeedSummary,
    /// Mean final costs over seeds.
    pub mean_costs: Costs,
    /// Mean over seeds of forward passes per backward pass.
    pub forward_per_backward: Option<f64>,
    /// Mean over seeds of the share of training time spent scoring.
    pub scoring_share: Option<f64>,
    /// Mean over seeds of the share of training time spent sampling.
    pub sampling_share: Option<f64>,
    /// Cost to reach the target, when there is a target.
    pub to_target: Option<ToTarget>,
    /// Mean final AP of each class over the seeds that report it
    /// (detection).
    pub per_class: BTreeMap<String, f64>,
}

/// One value per axis of the cost-to-target tables (optimiser steps,
/// backward passes, seconds): a group's cost ([`ToTarget`]) or a method's
/// paired difference from the baseline ([`PairedToTarget`]).
#[derive(Debug, Serialize)]
pub struct PerAxis<T> {
    /// In optimiser steps.
    pub steps: T,
    /// In backward passes.
    pub backward: T,
    /// In seconds.
    pub seconds: T,
}

/// Cost to reach the target on each axis the report compares.
pub type ToTarget = PerAxis<AxisTarget>;

/// Cost to the target, method − baseline, paired by seed, on each axis.
pub type PairedToTarget = PerAxis<PairedCost>;

impl<T> PerAxis<T> {
    /// The axes of the cost-to-target tables, in column order.
    pub const AXES: [CostAxis; 3] = [CostAxis::Steps, CostAxis::Backward, CostAxis::Seconds];

    /// The value of each axis, from `f`.
    fn from_fn(mut f: impl FnMut(CostAxis) -> T) -> Self {
        PerAxis {
            steps: f(CostAxis::Steps),
            backward: f(CostAxis::Backward),
            seconds: f(CostAxis::Seconds),
        }
    }

    /// The entry of `axis` (steps for an axis the tables do not have).
    pub fn get(&self, axis: CostAxis) -> &T {
        match axis {
            CostAxis::Backward => &self.backward,
            CostAxis::Seconds => &self.seconds,
            _ => &self.steps,
        }
    }

    fn get_mut(&mut self, axis: CostAxis) -> &mut T {
        match axis {
            CostAxis::Backward => &mut self.backward,
            CostAxis::Seconds => &mut self.seconds,
            _ => &mut self.steps,
        }
    }
}

/// Cost to target on one axis.
#[derive(Debug, Serialize)]
pub struct AxisTarget {
    /// Seeds in the group.
    pub n: usize,
    /// Seeds whose curve reaches the target.
    pub reached: usize,
    /// Mean cost over seeds; only when every seed reaches the target, since
    /// a mean over the lucky seeds would flatter the method.
    pub mean: Option<f64>,
    /// 95% bootstrap interval of that mean over seeds (`[low, high]`),
    /// when there is a mean.
    pub interval: Option<[f64; 2]>,
    /// 95% Student-t interval of that mean (`[low, high]`), when there is
    /// a mean over at least two seeds.
    pub t_interval: Option<[f64; 2]>,
    /// Reference mean cost / this mean cost.
    pub speedup: Option<f64>,
}

/// One method against the baseline at the same budget, paired by seed.
#[derive(Debug, Serialize)]
pub struct Comparison {
    /// The method.
    pub method: String,
    /// The budget.
    pub budget: f64,
    /// The baseline method.
    pub baseline: String,
    /// The seeds both have.
    pub seeds: Vec<u64>,
    /// Final metric, method − baseline.
    pub final_metric: PairedComparison,
    /// Mean metric over optimiser steps, when both curves allow it.
    pub mean_metric_over_steps: Option<AreaComparison>,
    /// The metric at equal training time (overheads included): each pair
    /// read at the wall-clock second the faster of the two finished.
    pub metric_at_equal_seconds: Option<EqualTimeComparison>,
    /// Cost to reach the report's target, method − baseline, per axis
    /// (absent when there is no target).
    pub to_target: Option<PairedToTarget>,
}

/// One axis of [`PairedToTarget`].
#[derive(Debug, Serialize)]
pub struct PairedCost {
    /// Pairs compared.
    pub n: usize,
    /// Pairs in which both runs reach the target.
    pub reached: usize,
    /// Paired bootstrap of method − baseline (negative: the method is
    /// cheaper); only when every pair reaches the target, for the reason
    /// [`AxisTarget::mean`] gives.
    pub paired: Option<PairedComparison>,
}

/// Method against baseline at equal training time. Seconds depend on the
/// machine's load: read it only for runs made on a quiet machine.
#[derive(Debug, Serialize)]
pub struct EqualTimeComparison {
    /// The mean over pairs of the seconds compared at.
    pub seconds: f64,
    /// The method's mean over seeds at those seconds.
    pub method: f64,
    /// The baseline's mean over seeds at those seconds.
    pub baseline: f64,
    /// Paired bootstrap of method − baseline.
    pub paired: PairedComparison,
}

/// The mean metric over a common range of steps (area under the curve
/// divided by the span), method against baseline.
#[derive(Debug, Serialize)]
pub struct AreaComparison {
    /// The curves are cut at this many steps, the shortest paired run's.
    pub up_to: f64,
    /// The method's mean over seeds.
    pub method: f64,
    /// The baseline's mean over seeds.
    pub baseline: f64,
    /// Paired bootstrap of method − baseline.
    pub paired: PairedComparison,
}

/// A run without `summary.json`.
#[derive(Debug, Serialize)]
pub struct UnfinishedRun {
    /// Its directory, relative to the report folder.
    pub dir: String,
    /// Evaluations logged.
    pub evaluations: usize,
    /// Step of the last one.
    pub last_step: Option<f64>,
}

/// A run left out.
#[derive(Debug, Serialize)]
pub struct SkippedRun {
    /// The file at fault, relative to the report folder.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A path relative to the report folder, for tables and notes.
pub fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    if rel.as_os_str().is_empty() {
        ".".into()
    } else {
        rel.display().to_string()
    }
}

/// Aggregates a scan. Fails only when finished runs disagree on the
/// primary metric, since a table mixing AP and top-1 would be meaningless.
pub fn build(root: &Path, scan: Scan, opts: &Options) -> Result<(Report, Vec<Group>)> {
    let primary_metric = common_metric(root, &scan.runs)?;
    let mut notes = Vec::new();
    let groups = group_runs(root, scan.runs, &mut notes);
    let mut reports = groups
        .iter()
        .map(|g| group_report(root, g, opts))
        .collect::<Result<Vec<_>>>()?;
    let reference = groups
        .iter()
        .position(|g| opts.reference.matches(&g.method, g.budget));
    let reference_final_mean = reference.map(|i| reports[i].final_metric.mean);
    let reference_convergence = reference.and_then(|i| {
        let runs = groups[i].runs.iter().map(|r| (r.seed, &r.curve[..]));
        crate::convergence::check(runs, opts.max_rise)
    });
    let target = reference_final_mean.map(|m| m * opts.target_fraction);
    // Without a reference there is no target; the report says so in place
    // of the table, and the JSON has `reference_found: false`.
    if let Some(target) = target {
        fill_to_target(&groups, &mut reports, target, reference, opts);
    }
    let comparisons = compare_all(&groups, target, opts, &mut notes);
    notes.extend(uneven_curve_notes(&groups));
    notes.extend(groups.iter().flat_map(|g| &g.runs).filter_map(|r| {
        let problem = r.sampling_problem.as_ref()?;
        Some(format!(
            "{}: no spending section for this run: {problem}",
            relative(root, &r.dir)
        ))
    }));
    let report = Report {
        primary_metric,
        reference: opts.reference.clone(),
        reference_found: reference.is_some(),
        reference_final_mean,
        target_fraction: opts.target_fraction,
        target,
        reference_convergence,
        resamples: opts.resamples,
        bootstrap_seed: opts.bootstrap_seed,
        groups: reports,
        comparisons,
        unfinished: scan
            .unfinished
            .iter()
            .map(|u| UnfinishedRun {
                dir: relative(root, &u.dir),
                evaluations: u.evaluations,
                last_step: u.last_step,
            })
            .collect(),
        skipped: scan
            .skipped
            .iter()
            .map(|s| SkippedRun {
                path: relative(root, &s.path),
                reason: s.reason.clone(),
            })
            .collect(),
        few_seeds: isdet_eval::FEW_SEEDS,
        // Filled by the caller from the groups (crate::spending,
        // crate::differences, crate::tau).
        spending: Vec::new(),
        paired_curves: Vec::new(),
        tau: Vec::new(),
        irreducible: Vec::new(),
        notes,
        gallery: None,
    };
    Ok((report, groups))
}

fn common_metric(root: &Path, runs: &[Run]) -> Result<String> {
    let mut by_metric: BTreeMap<&str, &Run> = BTreeMap::new();
    for run in runs {
        by_metric.entry(&run.primary_metric).or_insert(run);
    }
    match by_metric.len() {
        0 => Ok("metric".into()),
        1 => Ok(runs[0].primary_metric.clone()),
        _ => {
            let examples: Vec<String> = by_metric
                .iter()
                .map(|(m, r)| format!("{m} (e.g. {})", relative(root, &r.dir)))
                .collect();
            Err(ReportError::Runs(format!(
                "the runs mix primary metrics: {}; report on them separately",
                examples.join(", ")
            )))
        }
    }
}

/// Groups runs by method and budget. Order: budget from largest, then the
/// method `uniform` first and the others by name, so that each budget's
/// baseline heads its block. Two runs with the same seed in a group (e.g.
/// the same sweep copied twice) would break pairing by seed: the first by
/// path is kept and a note names both.
pub fn group_runs(root: &Path, runs: Vec<Run>, notes: &mut Vec<String>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for run in runs {
        let index = groups
            .iter()
            .position(|g| g.method == run.method && budget_key(g.budget) == budget_key(run.budget));
        match index {
            Some(i) => add_run(root, &mut groups[i], run, notes),
            None => groups.push(Group {
                method: run.method.clone(),
                budget: run.budget,
                runs: vec![run],
            }),
        }
    }
    for g in &mut groups {
        g.runs.sort_by_key(|r| r.seed);
    }
    groups.sort_by(|a, b| {
        b.budget
            .total_cmp(&a.budget)
            .then((a.method != "uniform").cmp(&(b.method != "uniform")))
            .then(a.method.cmp(&b.method))
    });
    groups
}

fn add_run(root: &Path, group: &mut Group, run: Run, notes: &mut Vec<String>) {
    match group.runs.iter().find(|r| r.seed == run.seed) {
        Some(kept) => notes.push(format!(
            "{} has two runs with seed {}: {} is used, {} is left out.",
            group.label(),
            run.seed,
            relative(root, &kept.dir),
            relative(root, &run.dir)
        )),
        None => group.runs.push(run),
    }
}

/// Each class's mean final AP over the runs that report it.
fn per_class_means(runs: &[Run]) -> BTreeMap<String, f64> {
    let classes: std::collections::BTreeSet<&String> =
        runs.iter().flat_map(|r| r.per_class.keys()).collect();
    classes
        .into_iter()
        .filter_map(|c| {
            Some((
                c.clone(),
                mean(runs.iter().filter_map(|r| r.per_class.get(c).copied()))?,
            ))
        })
        .collect()
}

fn group_report(root: &Path, g: &Group, opts: &Options) -> Result<GroupReport> {
    let finals: Vec<f64> = g.runs.iter().map(|r| r.final_metric).collect();
    let final_metric =
        summarize_seeds(&finals, opts.resamples, opts.bootstrap_seed).map_err(|source| {
            ReportError::Eval {
                what: format!("final {} of {}", g.runs[0].primary_metric, g.label()),
                source,
            }
        })?;
    let costs = |f: fn(&Costs) -> f64| mean(g.runs.iter().map(|r| f(&r.costs))).unwrap_or(0.0);
    let mean_costs = Costs {
        steps: costs(|c| c.steps),
        forward: costs(|c| c.forward),
        backward: costs(|c| c.backward),
        images: costs(|c| c.images),
        seconds: costs(|c| c.seconds),
    };
    Ok(GroupReport {
        method: g.method.clone(),
        budget: g.budget,
        seeds: g.seeds(),
        runs: g.runs.iter().map(|r| relative(root, &r.dir)).collect(),
        final_metric,
        mean_costs,
        forward_per_backward: mean(
            g.runs
                .iter()
                .filter(|r| r.costs.backward > 0.0)
                .map(|r| r.costs.forward / r.costs.backward),
        ),
        scoring_share: mean(g.runs.iter().filter_map(|r| time_share(r, "scoring"))),
        sampling_share: mean(g.runs.iter().filter_map(|r| time_share(r, "sampling"))),
        to_target: None,
        per_class: per_class_means(&g.runs),
    })
}

/// The share of training time (every phase but `eval`, as `seconds` counts
/// it) spent in `phase` by the last evaluation.
fn time_share(run: &Run, phase: &str) -> Option<f64> {
    let total: f64 = run
        .time
        .iter()
        .filter(|(k, _)| k.as_str() != "eval")
        .map(|(_, v)| *v)
        .sum();
    (total > 0.0 && total.is_finite()).then(|| run.time.get(phase).copied().unwrap_or(0.0) / total)
}

fn axis_target(g: &Group, target: f64, axis: CostAxis, opts: &Options) -> AxisTarget {
    let costs: Vec<Option<f64>> = g
        .runs
        .iter()
        .map(|r| cost_to_target(&r.curve, target, axis))
        .collect();
    let reached = costs.iter().filter(|c| c.is_some()).count();
    // Only when every seed reaches the target: a mean over the lucky seeds
    // would flatter the method.
    let all: Option<Vec<f64>> = costs.iter().copied().collect();
    let summary = all
        .as_ref()
        .and_then(|c| summarize_seeds(c, opts.resamples, opts.bootstrap_seed).ok());
    AxisTarget {
        n: costs.len(),
        reached,
        mean: all.and_then(mean),
        interval: summary.map(|s| [s.low, s.high]),
        t_interval: summary.and_then(|s| s.t).map(|t| [t.low, t.high]),
        speedup: None,
    }
}

/// Method − baseline cost to `target` on `axis`, paired by seed.
fn paired_cost(pairs: &[(&Run, &Run)], target: f64, axis: CostAxis, opts: &Options) -> PairedCost {
    let costs: Vec<Option<(f64, f64)>> = pairs
        .iter()
        .map(|(a, b)| {
            let a = cost_to_target(&a.curve, target, axis)?;
            Some((a, cost_to_target(&b.curve, target, axis)?))
        })
        .collect();
    let reached = costs.iter().filter(|c| c.is_some()).count();
    let all: Option<Vec<(f64, f64)>> = costs.iter().copied().collect();
    let paired = all.and_then(|c| {
        let (a, b): (Vec<f64>, Vec<f64>) = c.into_iter().unzip();
        paired_bootstrap(&a, &b, opts.resamples, opts.bootstrap_seed).ok()
    });
    PairedCost {
        n: pairs.len(),
        reached,
        paired,
    }
}

fn fill_to_target(
    groups: &[Group],
    reports: &mut [GroupReport],
    target: f64,
    reference: Option<usize>,
    opts: &Options,
) {
    for (g, report) in groups.iter().zip(reports.iter_mut()) {
        report.to_target = Some(ToTarget::from_fn(|axis| axis_target(g, target, axis, opts)));
    }
    let Some(reference) = reference else { return };
    for axis in ToTarget::AXES {
        let reference_cost = reports[reference]
            .to_target
            .as_ref()
            .and_then(|t| t.get(axis).mean);
        for report in reports.iter_mut() {
            if let Some(t) = report.to_target.as_mut() {
                let entry = t.get_mut(axis);
                entry.speedup = speedup(reference_cost, entry.mean);
            }
        }
    }
}

/// Reference cost / method cost. A zero cost (a curve already at the target
/// when it starts) has no meaningful ratio.
fn speedup(reference: Option<f64>, cost: Option<f64>) -> Option<f64> {
    match (reference, cost) {
        (Some(r), Some(c)) if c > 0.0 && r > 0.0 => Some(r / c),
        _ => None,
    }
}

fn compare_all(
    groups: &[Group],
    target: Option<f64>,
    opts: &Options,
    notes: &mut Vec<String>,
) -> Vec<Comparison> {
    let baseline = &opts.reference.method;
    let mut out = Vec::new();
    for g in groups.iter().filter(|g| &g.method != baseline) {
        let Some(base) = groups
            .iter()
            .find(|b| &b.method == baseline && budget_key(b.budget) == budget_key(g.budget))
        else {
            notes.push(format!(
                "No {baseline} runs at {}: {} is not compared.",
                percent(g.budget),
                g.label()
            ));
            continue;
        };
        match compare(g, base, target, opts) {
            Ok(c) => out.push(c),
            Err(e) => notes.push(format!("{} against {baseline}: {e:#}.", g.label())),
        }
    }
    out
}

fn compare(g: &Group, base: &Group, target: Option<f64>, opts: &Options) -> Result<Comparison> {
    let pairs: Vec<(&Run, &Run)> = g
        .runs
        .iter()
        .filter_map(|a| base.runs.iter().find(|b| b.seed == a.seed).map(|b| (a, b)))
        .collect();
    if pairs.is_empty() {
        return Err(ReportError::Runs("no seed in common".into()));
    }
    let a: Vec<f64> = pairs.iter().map(|(a, _)| a.final_metric).collect();
    let b: Vec<f64> = pairs.iter().map(|(_, b)| b.final_metric).collect();
    let final_metric =
        paired_bootstrap(&a, &b, opts.resamples, opts.bootstrap_seed).map_err(|source| {
            ReportError::Eval {
                what: format!("{} against {}", g.label(), base.label()),
                source,
            }
        })?;
    Ok(Comparison {
        method: g.method.clone(),
        budget: g.budget,
        baseline: base.method.clone(),
        seeds: pairs.iter().map(|(a, _)| a.seed).collect(),
        final_metric,
        mean_metric_over_steps: compare_area(&pairs, opts).ok(),
        metric_at_equal_seconds: compare_at_equal_seconds(&pairs, opts),
        to_target: target
            .map(|t| PairedToTarget::from_fn(|axis| paired_cost(&pairs, t, axis, opts))),
    })
}

/// Each pair read at the second the faster of its two runs finished
/// training; `None` when a curve does not cover it.
fn compare_at_equal_seconds(pairs: &[(&Run, &Run)], opts: &Options) -> Option<EqualTimeComparison> {
    let mut at = Vec::with_capacity(pairs.len());
    for (a, b) in pairs {
        let end = |r: &Run| r.curve.last().map(|p| p.seconds);
        let t = end(a)?.min(end(b)?);
        let va = metric_at_cost(&a.curve, CostAxis::Seconds, t)?;
        let vb = metric_at_cost(&b.curve, CostAxis::Seconds, t)?;
        at.push((t, va, vb));
    }
    let a: Vec<f64> = at.iter().map(|x| x.1).collect();
    let b: Vec<f64> = at.iter().map(|x| x.2).collect();
    let paired = paired_bootstrap(&a, &b, opts.resamples, opts.bootstrap_seed).ok()?;
    Some(EqualTimeComparison {
        seconds: mean(at.iter().map(|x| x.0))?,
        method: mean(a.iter().copied())?,
        baseline: mean(b.iter().copied())?,
        paired,
    })
}

/// Mean metric over steps for each pair, both curves cut at the shortest
/// paired run's last step so that the areas cover the same range.
fn compare_area(
    pairs: &[(&Run, &Run)],
    opts: &Options,
) -> std::result::Result<AreaComparison, isdet_eval::EvalError> {
    let up_to = pairs
        .iter()
        .flat_map(|(a, b)| [a, b])
        .filter_map(|r| r.curve.last().map(|p| p.steps))
        .fold(f64::INFINITY, f64::min);
    let area = |r: &Run| mean_metric_over_cost(&r.curve, CostAxis::Steps, Some(up_to));
    let a = pairs
        .iter()
        .map(|(a, _)| area(a))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let b = pairs
        .iter()
        .map(|(_, b)| area(b))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let paired = paired_bootstrap(&a, &b, opts.resamples, opts.bootstrap_seed)?;
    Ok(AreaComparison {
        up_to,
        method: mean(a.iter().copied()).unwrap_or(f64::NAN),
        baseline: mean(b.iter().copied()).unwrap_or(f64::NAN),
        paired,
    })
}

fn uneven_curve_notes(groups: &[Group]) -> Vec<String> {
    groups
        .iter()
        .filter(|g| {
            let lens = g.runs.iter().map(|r| r.curve.len());
            lens.clone().min() != lens.max()
        })
        .map(|g| {
            format!(
                "The seeds of {} logged different numbers of evaluations: plots stop at the shortest.",
                g.label()
            )
        })
        .collect()
}

/// One group's spending, over the runs that have a sampling record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupSpending {
    /// The method label.
    pub method: String,
    /// The budget.
    pub budget: f64,
    /// Runs of the group with a sampling record.
    pub runs: usize,
    /// Training images (of the first such run).
    pub images: usize,
    /// Mean backward passes per image.
    pub mean_trained: f64,
    /// Share of the images never trained on (mean over runs).
    pub never_trained: f64,
    /// Share of the backward passes spent on the tenth of the images
    /// trained most (mean over runs); 10% when training is even.
    pub top_decile_share: f64,
    /// Gini coefficient of the per-image train counts (mean over runs):
    /// 0 when every image is trained equally often, towards 1 when a few
    /// images take all the training.
    pub gini: f64,
    /// The most times any image was trained, over the runs.
    pub most_trained: u32,
    /// Share of the images trained k times (index k): mean, lowest and
    /// highest over the runs.
    pub histogram: Vec<BandPoint>,
    /// The distribution of the last scores over the run, from the
    /// group's first seed with a record.
    pub scores_over_run: Vec<isdet_trainer::ScoreSnapshot>,
    /// Each class's share of the training against its share of the
    /// data; empty when the run's data is not at hand.
    pub class_shares: Vec<ClassShare>,
    /// The thumbnail sheet of the most- and least-trained images (a file
    /// in `plots/`), when it was drawn.
    pub sheet: Option<String>,
    /// The draws split by the training set's regime tags, when the data
    /// has a tags file.
    pub tags: Option<TagShares>,
}

/// Where a group's training draws (backward passes) went, by what the
/// training set's regime tags say each image holds, against how common
/// such images are. Means over the group's runs with a sampling record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TagShares {
    /// Share of the frames that hold no object.
    pub empty_frames: f64,
    /// Share of the draws spent on those frames.
    pub empty_draws: f64,
    /// Share of the frames with at least one box of a wrong class.
    pub noisy_frames: f64,
    /// Share of the draws spent on those frames.
    pub noisy_draws: f64,
    /// Share of the frames with at least one object left unannotated.
    pub missing_frames: f64,
    /// Share of the draws spent on those frames.
    pub missing_draws: f64,
    /// Clips in the training set.
    pub clips: usize,
    /// Mean frames per clip.
    pub frames_per_clip: f64,
    /// Over the clips of two or more frames that were drawn at all: the
    /// mean share of a clip's draws taken by its most-drawn frame (mean
    /// over runs); `None` without such clips.
    pub clip_top_share: Option<f64>,
    /// The same statistic for a perfectly even spread, the mean of 1/K
    /// over the same clips (K: the clip's frames).
    pub clip_even_share: Option<f64>,
}

/// One class's share of a group's training.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassShare {
    /// The class name.
    pub class: String,
    /// Its share of the objects in the training set (of the labels, for
    /// classification).
    pub data: f64,
    /// Its share of the objects trained on, each image's objects counted
    /// once per backward pass of the image (mean over the group's runs).
    pub trained: f64,
}

/// A group's curve on `axis`: runs of a group evaluate at the same steps, so
/// they are aligned by evaluation index, up to the shortest run.
pub fn band(g: &Group, axis: CostAxis) -> Vec<BandPoint> {
    let len = g.runs.iter().map(|r| r.curve.len()).min().unwrap_or(0);
    (0..len)
        .map(|i| {
            let points = g.runs.iter().map(|r| &r.curve[i]);
            let metrics: Vec<f64> = points.clone().map(|p| p.metric).collect();
            BandPoint::of(mean(points.map(|p| axis.of(p))).unwrap_or(0.0), &metrics)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_keys_parse_fractions_and_percentages() {
        let key: GroupKey = "uniform@1.0".parse().unwrap();
        assert!(key.matches("uniform", 1.0));
        let key: GroupKey = "uniform@30%".parse().unwrap();
        assert!(key.matches("uniform", 0.3));
        // The last `@` separates the budget, so a method may contain one.
        let key: GroupKey = "a@b@0.5".parse().unwrap();
        assert_eq!((key.method.as_str(), key.budget), ("a@b", 0.5));
        for bad in ["uniform", "@0.3", "uniform@", "uniform@x", "uniform@-1"] {
            assert!(bad.parse::<GroupKey>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn percentages_drop_needless_decimals() {
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.3), "30%");
        assert_eq!(percent(0.125), "12.5%");
    }

    /// A run whose metric rises linearly by `slope` per step over 4 steps.
    fn linear_run(seed: u64, slope: f64) -> Run {
        let curve = (0..=4)
            .map(|i| {
                let i = i as f64;
                isdet_eval::CurvePoint {
                    steps: i,
                    backward: 2.0 * i,
                    forward: 2.0 * i,
                    images: 2.0 * i,
                    seconds: 10.0 * i,
                    metric: slope * i,
                }
            })
            .collect();
        Run {
            dir: format!("r{seed}").into(),
            method: "m".into(),
            budget: 1.0,
            seed,
            primary_metric: "AP".into(),
            final_metric: slope * 4.0,
            costs: Costs::default(),
            per_class: BTreeMap::new(),
            curve,
            time: BTreeMap::new(),
            sampling: None,
            sampling_problem: None,
            diagnostics: Vec::new(),
            irreducible: None,
        }
    }

    #[test]
    fn paired_cost_to_target_is_method_minus_baseline_only_when_every_pair_reaches_it() {
        let opts = Options {
            reference: "uniform@1.0".parse().unwrap(),
            target_fraction: 1.0,
            resamples: 1000,
            bootstrap_seed: 0,
            max_rise: 0.03,
        };
        // Target 0.4: the method (slope 0.2) needs 2 steps, the baseline
        // (slope 0.1) 4, on both seeds: Δ = −2 steps, −4 backward, −20 s.
        let (a0, a1, b0, b1) = (
            linear_run(0, 0.2),
            linear_run(1, 0.2),
            linear_run(0, 0.1),
            linear_run(1, 0.1),
        );
        let pairs = [(&a0, &b0), (&a1, &b1)];
        for (axis, want) in [
            (CostAxis::Steps, -2.0),
            (CostAxis::Backward, -4.0),
            (CostAxis::Seconds, -20.0),
        ] {
            let p = paired_cost(&pairs, 0.4, axis, &opts);
            assert_eq!((p.n, p.reached), (2, 2));
            let d = p.paired.expect("every pair reached the target");
            assert!((d.mean_difference - want).abs() < 1e-9, "{axis:?}: {d:?}");
        }
        // One baseline that never gets there: no difference is given.
        let never = linear_run(1, 0.05);
        let p = paired_cost(&[(&a0, &b0), (&a1, &never)], 0.4, CostAxis::Steps, &opts);
        assert_eq!((p.n, p.reached), (2, 1));
        assert!(p.paired.is_none());
    }
}
