//! The report's sections on when importance sampling can pay: each
//! method's paired difference to the baseline over the run, τ over the
//! run, and the draws split by what the images hold (docs/reports.md).

use std::fmt::Write;

use crate::aggregate::{Report, budget_matches, percent};
use crate::panels;
use crate::text::{cell, share};

/// The paired-difference panels, and the budgets that have none.
pub fn differences_section(out: &mut String, report: &Report) {
    let m = &report.primary_metric;
    let base = cell(&report.reference.method);
    if !report.paired_curves.is_empty() {
        let _ = writeln!(
            out,
            "### Against {base} over the run\n\n\
             One panel per budget: each method's {m} minus {base}'s at every evaluation step \
             of {base}, paired by seed (the method's curve interpolated between its \
             evaluations, both cut at the shortest paired run). The line is the mean over \
             the pairs, the band its 95% paired Student-t interval (none with one pair); \
             above the zero line the method is ahead.\n\n\
             ![{m} − {base} over the run](plots/{})\n",
            panels::DIFFERENCES_PLOT
        );
    }
    let missing = budgets_without_baseline(report);
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "No paired-difference panel at {}: no {base} runs at that budget.\n",
            missing.join(", ")
        );
    }
}

/// The budgets at which a method other than the baseline runs but the
/// baseline does not.
fn budgets_without_baseline(report: &Report) -> Vec<String> {
    let base = &report.reference.method;
    let mut budgets: Vec<f64> = Vec::new();
    for g in report.groups.iter().filter(|g| &g.method != base) {
        let has_base = report
            .groups
            .iter()
            .any(|b| &b.method == base && budget_matches(b.budget, g.budget));
        if !has_base && !budgets.iter().any(|&b| budget_matches(b, g.budget)) {
            budgets.push(g.budget);
        }
    }
    budgets.into_iter().map(percent).collect()
}

/// τ and the draws' Gini at the end of each group's runs, and the plot
/// of τ over the run.
pub fn tau_section(out: &mut String, report: &Report, plots: bool) {
    if report.tau.is_empty() {
        return;
    }
    out.push_str(
        "## Could importance sampling pay? τ over the run\n\n\
         At every evaluation each run records τ, the variance reduction that importance \
         sampling by the current scores of the training images would bring over uniform \
         sampling (presampling's own estimate, Katharopoulos & Fleuret 2018; \
         docs/methods.md), for the images' last losses and for their gradient-norm bounds, \
         whatever the run's strategy. τ near 1 means the scores are alike and importance \
         sampling cannot reduce the gradient's variance; presampling switches it on only \
         once its running estimate (an EMA of its own τ) passes its threshold. \
         \"draw Gini\" is the Gini coefficient of the training draws per image so far (0: \
         every image drawn equally often). Values at the last evaluation, means over the \
         group's runs; \"importance on\" is the share of all its evaluations at which \
         presampling's importance phase was on.\n\n\
         | method | budget | runs | τ (loss) | τ (grad-norm bound) | draw Gini | importance on | presampling's τ (EMA) / threshold |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let number = |v: Option<f64>| v.map_or_else(|| "–".into(), |v| format!("{v:.3}"));
    for g in &report.tau {
        let switch = match (g.strategy_tau, g.tau_threshold) {
            (Some(t), Some(th)) => format!("{t:.3} / {th:.3}"),
            (None, Some(th)) => format!("– / {th:.3}"),
            _ => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.3} | {} | {switch} |",
            cell(&g.method),
            percent(g.budget),
            g.runs,
            number(g.tau_loss),
            number(g.tau_grad_norm),
            g.draw_gini,
            share(g.importance_on)
        );
    }
    out.push('\n');
    if plots {
        let _ = writeln!(
            out,
            "τ of the losses, τ of the gradient-norm bounds and the draws' Gini against \
             optimiser steps, one row of panels per budget, one line per method (mean over \
             its runs, min–max band); presampling's threshold dashed where a presampling \
             run is present:\n\n![τ and the draws' Gini over the run](plots/{})\n",
            panels::TAU_PLOT
        );
    }
    let lacking = lacking_diagnostics(report);
    if !lacking.is_empty() {
        let _ = writeln!(
            out,
            "Left out, without diagnostics in `metrics.jsonl` (runs made before they were \
             recorded): {}.\n",
            lacking.join(", ")
        );
    }
}

/// The groups some of whose runs have no diagnostics, as "label (k of n
/// runs)".
fn lacking_diagnostics(report: &Report) -> Vec<String> {
    report
        .groups
        .iter()
        .filter_map(|g| {
            let with = report
                .tau
                .iter()
                .find(|t| t.method == g.method && budget_matches(t.budget, g.budget))
                .map_or(0, |t| t.runs);
            let n = g.seeds.len();
            (with < n).then(|| {
                format!(
                    "{} @ {} ({} of {n} runs)",
                    cell(&g.method),
                    percent(g.budget),
                    n - with
                )
            })
        })
        .collect()
}

/// The draws split by the training set's regime tags, for the groups
/// whose data has a tags file.
pub fn tag_section(out: &mut String, report: &Report) {
    let tagged: Vec<_> = report
        .spending
        .iter()
        .filter_map(|g| Some((g, g.tags.as_ref()?)))
        .collect();
    if tagged.is_empty() {
        return;
    }
    out.push_str(
        "### The draws by what the images hold\n\n\
         The training set carries regime tags (the `.tags.json` file beside its annotations, \
         written by `cargo xtask data mnist-det` when a regime knob is on). Each cell gives \
         the share of the group's training draws (backward passes) spent on such frames, then \
         the share of the training frames that are such: a sampler that favours them draws \
         more than their share. A frame counts as noisy (missing) when at least one of its \
         boxes has a wrong class (is left out of the annotations). \"clip top frame\": over \
         the clips of two or more frames that were drawn at all, the mean share of a clip's \
         draws taken by its most-drawn frame, against (in brackets) the 1/K an even spread \
         over a clip's K frames gives; a random draw of a budget lands above 1/K by chance \
         alone, so compare a method with uniform at the same budget. Means over each group's \
         runs.\n\n\
         | group | empty frames: draws / frames | noisy frames: draws / frames | frames with missing boxes: draws / frames | clips × frames | clip top frame (even) |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    let pair =
        |draws: f64, frames: f64| format!("{} / {}", share(Some(draws)), share(Some(frames)));
    for (g, t) in tagged {
        let clip = match (t.clip_top_share, t.clip_even_share) {
            (Some(top), Some(even)) => format!("{top:.3} ({even:.3})"),
            _ => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {} @ {} | {} | {} | {} | {} × {:.1} | {clip} |",
            cell(&g.method),
            percent(g.budget),
            pair(t.empty_draws, t.empty_frames),
            pair(t.noisy_draws, t.noisy_frames),
            pair(t.missing_draws, t.missing_frames),
            t.clips,
            t.frames_per_clip
        );
    }
    out.push('\n');
}
