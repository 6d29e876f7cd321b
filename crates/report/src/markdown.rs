//! The Markdown text of the report (docs/reports.md explains each part).

use std::fmt::Write;

use isdet_eval::{CostAxis, FEW_SEEDS};

use crate::aggregate::{AxisTarget, Comparison, PairedCost, Report, ToTarget, percent};
use crate::text::{
    bracket, cell, count, ends, interval_note, metric, paired_cells, paired_header, share,
    shows_bootstrap,
};
use crate::{gallery, plot, sections};

/// The whole report. `plots` says whether the plots were drawn.
pub fn render(report: &Report, plots: bool) -> String {
    let mut out = String::from("# Run report\n\n");
    let metric = &report.primary_metric;
    let _ = writeln!(
        out,
        "{} groups of runs (method @ budget), compared on final {metric}. \
         Intervals of a mean over seeds, and of a difference paired by seed, are 95% \
         Student-t intervals (n − 1 degrees of freedom): from the few seeds a study can \
         afford, a percentile bootstrap under-covers. Percentile-bootstrap intervals \
         ({} resamples, seed {}) and P(better) are printed beside them only for rows of \
         at least {FEW_SEEDS} seeds; the JSON has both for every row.\n",
        report.groups.len(),
        report.resamples,
        report.bootstrap_seed
    );
    convergence_note(&mut out, report);
    if report.groups.is_empty() {
        out.push_str("No finished runs yet.\n\n");
    } else {
        final_table(&mut out, report);
        target_table(&mut out, report);
        comparison_table(&mut out, report);
        per_class_section(&mut out, report, plots);
        gallery_section(&mut out, report);
        if plots {
            plot_section(&mut out, report);
        }
        sections::tau_section(&mut out, report, plots);
        spending_section(&mut out, report, plots);
        class_share_section(&mut out, report);
        sections::tag_section(&mut out, report);
        sheet_section(&mut out, report);
    }
    leftovers(&mut out, report);
    out
}

/// The reference's convergence check, at the top: a comparison against an
/// underfit reference must not be mistaken for a result.
fn convergence_note(out: &mut String, report: &Report) {
    let Some(c) = &report.reference_convergence else {
        return;
    };
    let metric = &report.primary_metric;
    let seeds: Vec<String> = c
        .seeds
        .iter()
        .map(|q| {
            format!(
                "seed {}: {} at step {:.0} → {} at step {:.0}, {:+.1}%",
                q.seed,
                self::metric(q.from),
                q.from_step,
                self::metric(q.to),
                q.to_step,
                q.rise * 100.0
            )
        })
        .collect();
    let reference = format!(
        "{} @ {}",
        report.reference.method,
        percent(report.reference.budget)
    );
    if c.converged {
        let _ = writeln!(
            out,
            "The reference ({reference}) has converged: its {metric} {} (relative, mean \
             over seeds) over the last quarter of its steps; the check allows a rise \
             of up to {:.0}% ({}).\n",
            rise_or_fall(c.mean_rise),
            c.max_rise * 100.0,
            seeds.join("; ")
        );
    } else {
        let _ = writeln!(
            out,
            "> **Warning: the reference has not converged:** {reference}'s {metric} rose by \
             {:+.1}% (relative, mean over seeds) over the last quarter of its steps, more \
             than the {:.0}% the check allows ({}). The schedule is too short: a budgeted \
             comparison against this reference says little about the methods.\n",
            c.mean_rise * 100.0,
            c.max_rise * 100.0,
            seeds.join("; ")
        );
    }
}

/// A relative change over the last quarter, in words: `rose by +2.9%`, or
/// `fell by 3.8%` (a falling curve read as "rose by -3.8%" before).
fn rise_or_fall(rise: f64) -> String {
    if rise < 0.0 {
        format!("fell by {:.1}%", -rise * 100.0)
    } else {
        format!("rose by {:+.1}%", rise * 100.0)
    }
}

fn final_table(out: &mut String, report: &Report) {
    let m = &report.primary_metric;
    let _ = writeln!(out, "## Final {m}\n");
    let bootstrap = shows_bootstrap(report.groups.iter().map(|g| g.final_metric.n));
    let (boot_head, boot_rule) = if bootstrap {
        (" bootstrap 95% |", "---:|")
    } else {
        ("", "")
    };
    let _ = writeln!(
        out,
        "| method | budget | seeds | {m} mean ± std | 95% t-interval of the mean |{boot_head} steps | forward | backward | seconds | forward / backward | scoring time | sampling time |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|{boot_rule}---:|---:|---:|---:|---:|---:|---:|"
    );
    for g in &report.groups {
        let s = &g.final_metric;
        let c = &g.mean_costs;
        let boot = match (bootstrap, s.n >= FEW_SEEDS) {
            (false, _) => String::new(),
            (true, true) => format!(" {} |", bracket(Some([s.low, s.high]), metric)),
            (true, false) => " – |".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ± {} | {} |{boot} {} | {} | {} | {:.1} | {} | {} | {} |",
            cell(&g.method),
            percent(g.budget),
            s.n,
            metric(s.mean),
            metric(s.std),
            bracket(ends(s.t.as_ref()), metric),
            count(c.steps),
            count(c.forward),
            count(c.backward),
            c.seconds,
            g.forward_per_backward
                .map_or_else(|| "–".into(), |r| format!("{r:.2}")),
            share(g.scoring_share),
            share(g.sampling_share),
        );
    }
    let _ = writeln!(
        out,
        "\n{} Costs are means over seeds of the final counters. Scoring and sampling \
         time are shares of the training time (evaluation excluded) at the last evaluation.\n",
        interval_note(bootstrap, false)
    );
    irreducible_note(out, report);
}

/// RHO-LOSS's irreducible-loss model trains before the run and is not in
/// its counters: its cost is listed under the table, per group.
fn irreducible_note(out: &mut String, report: &Report) {
    if report.irreducible.is_empty() {
        return;
    }
    out.push_str(
        "Not in the counters above: the irreducible-loss model each RHO-LOSS run trained \
         first on labelled holdout images (data the method used besides the training \
         set), and the forward passes that scored every training image with it (means \
         over the group's runs):\n\n",
    );
    for g in &report.irreducible {
        let _ = writeln!(
            out,
            "- {} @ {}: {} holdout images, {} steps, {} forward and {} backward passes, {:.1} s; \
             the model's own {} {}",
            cell(&g.method),
            percent(g.budget),
            count(g.holdout_images),
            count(g.steps),
            count(g.forward),
            count(g.backward),
            g.seconds,
            report.primary_metric,
            metric(g.metric)
        );
    }
    out.push('\n');
}

fn target_table(out: &mut String, report: &Report) {
    let m = &report.primary_metric;
    let r = &report.reference;
    let reference = format!("{} @ {}", cell(&r.method), percent(r.budget));
    let _ = writeln!(out, "## Cost to reach the target\n");
    let (Some(target), Some(ref_mean)) = (report.target, report.reference_final_mean) else {
        let _ = writeln!(out, "No runs of the reference {reference}: no target.\n");
        return;
    };
    let _ = writeln!(
        out,
        "Target: {} × the mean final {m} of {reference} ({}) = **{}**. \
         Speed-up = the reference's mean cost / the method's mean cost.\n",
        report.target_fraction,
        metric(ref_mean),
        metric(target)
    );
    out.push_str("| method | budget | steps | backward passes | seconds | speed-up (steps) | speed-up (backward) | speed-up (seconds) |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for g in &report.groups {
        let Some(t) = &g.to_target else { continue };
        let costs: Vec<String> = ToTarget::AXES
            .iter()
            .map(|&a| target_cost(t.get(a), a))
            .collect();
        let speedups: Vec<String> = ToTarget::AXES
            .iter()
            .map(|&a| {
                t.get(a)
                    .speedup
                    .map_or_else(|| "–".into(), |s| format!("{s:.2}×"))
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell(&g.method),
            percent(g.budget),
            costs.join(" | "),
            speedups.join(" | ")
        );
    }
    out.push_str(
        "\n\"not reached (k/n)\": k of the n seeds never reached the target, so no mean is given. \
         Brackets: the 95% Student-t interval of the mean cost over seeds.\n\n",
    );
}

fn target_cost(t: &AxisTarget, axis: CostAxis) -> String {
    let Some(v) = t.mean else {
        return format!("not reached ({}/{})", t.n - t.reached, t.n);
    };
    match t.t_interval {
        Some([lo, hi]) if t.n > 1 => {
            format!("{} [{}, {}]", cost(v, axis), cost(lo, axis), cost(hi, axis))
        }
        _ => cost(v, axis),
    }
}

fn cost(v: f64, axis: CostAxis) -> String {
    if axis == CostAxis::Seconds {
        format!("{v:.1}")
    } else {
        count(v)
    }
}

/// Method − baseline cost to the target, paired by seed: the detection
/// study's "reaches the baseline's performance in fewer iterations".
fn paired_target_table(out: &mut String, report: &Report) {
    let base = cell(&report.reference.method);
    let rows: Vec<String> = report
        .comparisons
        .iter()
        .filter_map(|c| {
            let t = c.to_target.as_ref()?;
            let cells: Vec<String> = ToTarget::AXES
                .iter()
                .map(|&a| paired_cost_cells(t.get(a), a))
                .collect();
            Some(format!(
                "| {} | {} | {} | {} |",
                cell(&c.method),
                percent(c.budget),
                c.seeds.len(),
                cells.join(" | ")
            ))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Cost to reach the target, paired\n\n\
         Δ = method − {base} in the cost to first reach the target, per seed pair; negative: \
         the method got there sooner. Given only when both runs of every pair reach it \
         (\"k/n reached\" otherwise). Intervals: 95% paired Student-t intervals.\n"
    );
    out.push_str("| method | budget | paired seeds | Δ steps | 95% t-interval | Δ backward passes | 95% t-interval | Δ seconds | 95% t-interval |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let _ = writeln!(out, "{row}");
    }
    out.push('\n');
}

fn paired_cost_cells(p: &PairedCost, axis: CostAxis) -> String {
    // The sign goes on the rounded magnitude, so nothing prints as "-0".
    let signed = |v: f64| {
        let magnitude = cost(v.abs(), axis);
        let zero = magnitude.chars().all(|c| c == '0' || c == '.');
        let sign = if zero {
            ""
        } else if v < 0.0 {
            "-"
        } else {
            "+"
        };
        format!("{sign}{magnitude}")
    };
    match &p.paired {
        // One pair has no spread: no interval.
        Some(d) => match &d.t {
            Some(t) if p.n > 1 => format!(
                "{} | [{}, {}]",
                signed(d.mean_difference),
                signed(t.low),
                signed(t.high)
            ),
            _ => format!("{} | –", signed(d.mean_difference)),
        },
        None => format!("{}/{} reached | –", p.reached, p.n),
    }
}

fn comparison_table(out: &mut String, report: &Report) {
    let m = &report.primary_metric;
    let base = cell(&report.reference.method);
    let _ = writeln!(out, "## Against {base} at the same budget\n");
    if report.comparisons.is_empty() {
        let _ = writeln!(
            out,
            "No method has {base} runs at its budget to compare with.\n"
        );
        return;
    }
    let bootstrap = shows_bootstrap(report.comparisons.iter().map(|c| c.seeds.len()));
    let _ = writeln!(
        out,
        "Paired by seed. Δ = method − {base}. Mean {m} over steps = area under {m} against \
         steps divided by the span, both curves cut at the shortest paired run.\n"
    );
    let _ = writeln!(
        out,
        "| method | budget | paired seeds | {} | mean {m} over steps (method / {base}) | up to step | {} |",
        paired_header(&format!("Δ final {m}"), bootstrap),
        paired_header("Δ mean over steps", bootstrap)
    );
    let rules = if bootstrap { 13 } else { 9 };
    let _ = writeln!(out, "|---|{}", "---:|".repeat(rules - 1));
    for c in &report.comparisons {
        let _ = writeln!(out, "{}", comparison_row(c, bootstrap));
    }
    let _ = writeln!(out, "\n{}\n", interval_note(bootstrap, true));
    paired_target_table(out, report);
    equal_time_table(out, report);
}

/// The metric at equal training time: the detection study's "higher final
/// performance at equal training time", overheads included.
fn equal_time_table(out: &mut String, report: &Report) {
    let m = &report.primary_metric;
    let base = cell(&report.reference.method);
    let with_time = || {
        report
            .comparisons
            .iter()
            .filter_map(|c| Some((c, c.metric_at_equal_seconds.as_ref()?)))
    };
    let bootstrap = shows_bootstrap(with_time().map(|(c, _)| c.seeds.len()));
    let rows: Vec<String> = with_time()
        .map(|(c, e)| {
            format!(
                "| {} | {} | {:.1} | {} / {} | {} |",
                cell(&c.method),
                percent(c.budget),
                e.seconds,
                metric(e.method),
                metric(e.baseline),
                paired_cells(&e.paired, c.seeds.len(), bootstrap)
            )
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### At equal training time\n\n\
         Each pair is read at the second the faster of its two runs finished training \
         (data, forward, backward, scoring and sampling; evaluation excluded), {m} \
         interpolated between evaluations. Seconds depend on the machine's load: \
         compare runs made on a quiet machine.\n"
    );
    let _ = writeln!(
        out,
        "| method | budget | at second (mean) | {m} (method / {base}) | {} |",
        paired_header("Δ", bootstrap)
    );
    let rules = if bootstrap { 8 } else { 6 };
    let _ = writeln!(out, "|---|{}", "---:|".repeat(rules - 1));
    for row in rows {
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(out, "\n{}\n", interval_note(bootstrap, true));
}

fn comparison_row(c: &Comparison, bootstrap: bool) -> String {
    let n = c.seeds.len();
    let area = c.mean_metric_over_steps.as_ref().map_or_else(
        || vec!["–"; if bootstrap { 6 } else { 4 }].join(" | "),
        |a| {
            format!(
                "{} / {} | {} | {}",
                metric(a.method),
                metric(a.baseline),
                count(a.up_to),
                paired_cells(&a.paired, n, bootstrap)
            )
        },
    );
    format!(
        "| {} | {} | {n} | {} | {} |",
        cell(&c.method),
        percent(c.budget),
        paired_cells(&c.final_metric, n, bootstrap),
        area
    )
}

/// The final AP of each class, for detection runs (their summaries
/// hold `AP/<class>`).
fn per_class_section(out: &mut String, report: &Report, plots: bool) {
    let mut classes: Vec<&String> = report
        .groups
        .iter()
        .flat_map(|g| g.per_class.keys())
        .collect();
    classes.sort();
    classes.dedup();
    if classes.is_empty() {
        return;
    }
    out.push_str(
        "## Per-class AP\n\n\
         Final AP (IoU 0.50:0.95) of each class, mean over the group's seeds. A sampler that \
         starves a class shows here first.\n\n| group |",
    );
    for c in &classes {
        let _ = write!(out, " {} |", cell(c));
    }
    out.push_str(" lowest |\n|---|");
    out.push_str(&"---:|".repeat(classes.len() + 1));
    out.push('\n');
    for g in &report.groups {
        let _ = write!(out, "| {} @ {} |", cell(&g.method), percent(g.budget));
        for c in &classes {
            let v = g
                .per_class
                .get(*c)
                .map_or_else(|| "–".to_string(), |v| metric(*v));
            let _ = write!(out, " {v} |");
        }
        let lowest = g
            .per_class
            .iter()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map_or_else(|| "–".to_string(), |(c, _)| cell(c));
        let _ = writeln!(out, " {lowest} |");
    }
    out.push('\n');
    let at_reference = |g: &&crate::aggregate::GroupReport| g.budget == report.reference.budget;
    if plots
        && report
            .groups
            .iter()
            .filter(at_reference)
            .any(|g| !g.per_class.is_empty())
    {
        let _ = writeln!(
            out,
            "The same at the reference's budget, one bar per method:\n\n\
             ![per-class AP](plots/{})\n",
            plot::PER_CLASS_PLOT
        );
    }
}

fn gallery_section(out: &mut String, report: &Report) {
    let Some(run) = &report.gallery else { return };
    let _ = writeln!(
        out,
        "## Gallery\n\n\
         Validation images (the same evenly spaced choice in every report of this data), ground \
         truth on the left, the predictions of the best run ({run}) scoring at least {} on the \
         right; one colour per class.\n\n![gallery](plots/{})\n",
        gallery::SCORE_THRESHOLD,
        gallery::GALLERY_PLOT
    );
}

fn plot_section(out: &mut String, report: &Report) {
    let m = &report.primary_metric;
    out.push_str("## Curves\n\n");
    if report.groups.len() <= plot::OVERLAP_LIMIT {
        out.push_str(
            "Each line is the mean over a group's seeds at each evaluation; the shaded band \
             spans the lowest to the highest seed (min–max).\n\n",
        );
        for axis in plot::AXES {
            let _ = writeln!(
                out,
                "![{m} against {}](plots/{})\n",
                axis.label(),
                plot::file_name(axis)
            );
        }
    } else {
        let _ = writeln!(
            out,
            "With {} groups, the curves of all of them on one chart could not be told apart: \
             the report draws them only for up to {} groups. The paired differences below \
             show each method against {} at its budget instead.\n",
            report.groups.len(),
            plot::OVERLAP_LIMIT,
            cell(&report.reference.method)
        );
    }
    sections::differences_section(out, report);
    let _ = writeln!(
        out,
        "Final {m} against the budget, one line per method (mean over seeds, \
         min–max band):\n\n![final {m} against the budget](plots/{})\n",
        plot::BUDGET_PLOT
    );
}

/// What the budget was spent on, for the groups whose runs have
/// `sampling.json`.
fn spending_section(out: &mut String, report: &Report, plots: bool) {
    if report.spending.is_empty() {
        return;
    }
    out.push_str(
        "## What the budget was spent on\n\n\
         From each run's `sampling.json`: how many times each training image was trained on \
         (backward passes), as means over the runs of a group. Uniform sampling without \
         replacement trains every image equally often (Gini 0, the top tenth of the images \
         takes 10% of the training); a sampler that favours some images raises both. \
         \"never trained\" is the share of images the run did not train on at all.\n\n\
         | method | budget | runs | images | trained per image | never trained | top 10% of images' share | Gini | most trained |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for g in &report.spending {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} | {:.1}% | {:.1}% | {:.3} | {}× |",
            cell(&g.method),
            percent(g.budget),
            g.runs,
            g.images,
            g.mean_trained,
            g.never_trained * 100.0,
            g.top_decile_share * 100.0,
            g.gini,
            g.most_trained
        );
    }
    out.push('\n');
    if plots {
        let _ = writeln!(
            out,
            "The share of the images trained k times (mean over the runs, min–max band):\n\n\
             ![share of images by times trained](plots/{})\n\n\
             The last recorded score of the images scored so far, over the run (median, and \
             the band from the 10% to the 90% quantile; the group's first seed; each panel \
             on its own scale, since heuristics score on different scales):\n\n\
             ![scores over the run](plots/{})\n",
            plot::TRAIN_COUNTS_PLOT,
            plot::SCORES_PLOT
        );
    }
}

/// Each group's share of training per class against the data's, and the
/// thumbnail sheets.
fn class_share_section(out: &mut String, report: &Report) {
    let Some(first) = report.spending.iter().find(|g| !g.class_shares.is_empty()) else {
        return;
    };
    out.push_str(
        "### Which classes the budget went to\n\n\
         Each class's share of the objects trained on (every backward pass of an image counts \
         its objects once; for classification, its label), divided by the class's share of the \
         training set's objects: 1.00 is a class trained exactly in proportion to the data, \
         below 1 a class the sampler trained less, above 1 one it favoured. Means over each \
         group's runs.\n\n| group |",
    );
    for c in &first.class_shares {
        let _ = write!(out, " {} |", cell(&c.class));
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(first.class_shares.len()));
    out.push_str("\n| *share of the data* |");
    for c in &first.class_shares {
        let _ = write!(out, " *{:.1}%* |", c.data * 100.0);
    }
    out.push('\n');
    for g in report
        .spending
        .iter()
        .filter(|g| !g.class_shares.is_empty())
    {
        let _ = write!(out, "| {} @ {} |", cell(&g.method), percent(g.budget));
        for c in &g.class_shares {
            let ratio = if c.data > 0.0 {
                c.trained / c.data
            } else {
                f64::NAN
            };
            let _ = write!(out, " {ratio:.2} |");
        }
        out.push('\n');
    }
    out.push('\n');
}

fn sheet_section(out: &mut String, report: &Report) {
    let sheets: Vec<_> = report
        .spending
        .iter()
        .filter_map(|g| Some((g, g.sheet.as_ref()?)))
        .collect();
    if sheets.is_empty() {
        return;
    }
    out.push_str(
        "### The most- and least-trained images\n\n\
         For each group's first run: the 16 training images trained most and the 16 trained \
         least (ties in a fixed pseudo-random order), each with its index, how many times it was trained \
         (×) and its last recorded score.\n\n",
    );
    for (g, file) in sheets {
        let _ = writeln!(
            out,
            "<details><summary>{} @ {}</summary>\n\n![most and least trained, {} @ {}](plots/{file})\n\n</details>\n",
            cell(&g.method),
            percent(g.budget),
            cell(&g.method),
            percent(g.budget)
        );
    }
}

fn leftovers(out: &mut String, report: &Report) {
    if !report.unfinished.is_empty() {
        out.push_str("## Unfinished runs\n\nNo `summary.json` yet; not in the tables.\n\n");
        for u in &report.unfinished {
            let progress = u.last_step.map_or_else(
                || "no evaluation logged".to_string(),
                |s| format!("{} evaluations, last at step {}", u.evaluations, count(s)),
            );
            let _ = writeln!(out, "- `{}`: {progress}", u.dir);
        }
        out.push('\n');
    }
    if !report.skipped.is_empty() {
        out.push_str("## Skipped runs\n\nLeft out because a file is unreadable or malformed.\n\n");
        for s in &report.skipped {
            let _ = writeln!(out, "- `{}`: {}", s.path, s.reason);
        }
        out.push('\n');
    }
    if !report.notes.is_empty() {
        out.push_str("## Notes\n\n");
        for n in &report.notes {
            let _ = writeln!(out, "- {n}");
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_falling_reference_is_said_to_fall() {
        assert_eq!(rise_or_fall(-0.038), "fell by 3.8%");
        assert_eq!(rise_or_fall(0.029), "rose by +2.9%");
        assert_eq!(rise_or_fall(0.0), "rose by +0.0%");
    }

    #[test]
    fn target_cost_says_how_many_seeds_missed() {
        let t = AxisTarget {
            n: 3,
            reached: 1,
            mean: None,
            interval: None,
            t_interval: None,
            speedup: None,
        };
        assert_eq!(target_cost(&t, CostAxis::Steps), "not reached (2/3)");
    }

    #[test]
    fn paired_cost_cells_sign_the_rounded_difference() {
        // The bootstrap's ends are not printed: the t-interval's are.
        let paired = |mean_difference, low, high| PairedCost {
            n: 3,
            reached: 3,
            paired: Some(isdet_eval::PairedComparison {
                mean_difference,
                low: f64::NAN,
                high: f64::NAN,
                prob_a_better: 0.0,
                t: Some(isdet_eval::TInterval {
                    n: 3,
                    mean: mean_difference,
                    low,
                    high,
                }),
            }),
        };
        assert_eq!(
            paired_cost_cells(&paired(-250.0, -400.4, -0.4), CostAxis::Steps),
            "-250 | [-400, 0]"
        );
        assert_eq!(
            paired_cost_cells(&paired(12.34, -1.0, 20.0), CostAxis::Seconds),
            "+12.3 | [-1.0, +20.0]"
        );
        let one = PairedCost {
            n: 1,
            ..paired(-250.0, -250.0, -250.0)
        };
        assert_eq!(paired_cost_cells(&one, CostAxis::Steps), "-250 | –");
        let missed = PairedCost {
            n: 3,
            reached: 2,
            paired: None,
        };
        assert_eq!(
            paired_cost_cells(&missed, CostAxis::Steps),
            "2/3 reached | –"
        );
    }
}
