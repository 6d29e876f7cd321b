//! # isdet-report
//!
//! From run directories to answers: reads the runs under a folder through
//! the trainer's own record types (one definition of the run-directory
//! contract, docs/run-directory.md), groups them by method and budget,
//! and writes a Markdown report with final metrics and bootstrap
//! intervals, cost to a target metric and speed-ups against a reference,
//! paired comparisons and plots (docs/reports.md). It also turns sweep
//! specifications into the grid of runs and runs that grid.
//!
//! ```no_run
//! use isdet_report::{ReportOptions, write_report};
//!
//! let written = write_report(std::path::Path::new("runs/synth-main"), &ReportOptions::default())?;
//! println!("{}", written.markdown.display());
//! # Ok::<(), isdet_report::ReportError>(())
//! ```
#![deny(missing_docs)]

mod aggregate;
pub mod convergence;
mod curves;
mod differences;
pub mod draw;
mod error;
mod gallery;
mod images;
mod irreducible;
mod load;
mod markdown;
mod panels;
mod plot;
mod sections;
mod sheets;
pub mod slurm;
mod spending;
pub mod sweep;
mod tags;
mod tau;
mod text;

use std::path::{Path, PathBuf};

use isdet_base::write_atomic;

pub use aggregate::{GroupKey, GroupSpending, Report, TagShares};
pub use curves::{BandPoint, BudgetDifferences, DifferenceCurve, DifferencePoint, GroupTau};
pub use error::{ReportError, Result};
pub use irreducible::GroupIrreducible;
pub use load::Skipped;

/// How a report is made.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// The group speed-ups are measured against; its method is also the
    /// baseline of the paired comparisons.
    pub reference: GroupKey,
    /// The target metric as a fraction of the reference's mean final metric.
    pub target_fraction: f64,
    /// Bootstrap resamples for intervals and paired comparisons.
    pub resamples: usize,
    /// Seed of the bootstrap resampling.
    pub bootstrap_seed: u64,
    /// Fail instead of skipping runs whose files are malformed.
    pub strict: bool,
    /// Draw the plots.
    pub plots: bool,
    /// The largest relative rise of the reference's metric over its last
    /// quarter of steps that counts as converged; above it the report
    /// opens with a warning.
    pub max_rise: f64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            reference: GroupKey {
                method: "uniform".into(),
                budget: 1.0,
            },
            target_fraction: 0.8,
            resamples: isdet_eval::DEFAULT_RESAMPLES,
            bootstrap_seed: 0,
            strict: false,
            plots: true,
            max_rise: convergence::DEFAULT_MAX_RISE,
        }
    }
}

/// What [`write_report`] wrote and found.
#[derive(Debug)]
pub struct WrittenReport {
    /// `report.md`.
    pub markdown: PathBuf,
    /// The aggregated numbers (what `--json` prints).
    pub report: Report,
    /// Run files that could not be used, and why (also in the report).
    pub skipped: Vec<Skipped>,
}

/// Scans `dir` for run directories (up to three levels below it), and
/// writes `dir/report.md` and, with [`ReportOptions::plots`], `dir/plots/`.
pub fn write_report(dir: &Path, options: &ReportOptions) -> Result<WrittenReport> {
    let scan = load::scan(dir)?;
    if scan.runs.is_empty() && scan.unfinished.is_empty() {
        return Err(ReportError::Runs(format!(
            "no run directories (with summary.json or metrics.jsonl) under {}{}",
            dir.display(),
            skipped_suffix(&scan.skipped)
        )));
    }
    if options.strict
        && let Some(first) = scan.skipped.first()
    {
        return Err(ReportError::Runs(format!(
            "{} malformed run file(s), the first {}: {}",
            scan.skipped.len(),
            first.path.display(),
            first.reason
        )));
    }
    let skipped = scan.skipped.clone();
    let aggregation = aggregate::Options {
        reference: options.reference.clone(),
        target_fraction: options.target_fraction,
        resamples: options.resamples,
        bootstrap_seed: options.bootstrap_seed,
        max_rise: options.max_rise,
    };
    let (mut report, groups) = aggregate::build(dir, scan, &aggregation)?;
    report.spending = spending::spending(&groups);
    report.paired_curves = differences::paired_curves(&groups, &options.reference.method);
    report.tau = tau::tau_groups(&groups);
    report.irreducible = irreducible::irreducible_costs(
        groups
            .iter()
            .map(|g| (g.method.as_str(), g.budget, &g.runs[..])),
    );
    if report.tau.is_empty() && !groups.is_empty() {
        report.notes.push(
            "No run records sampling diagnostics (τ, the draws' Gini) in metrics.jsonl: \
             the runs were made before they were recorded, so the report has no τ section."
                .into(),
        );
    }
    add_tag_shares(&groups, &mut report);
    let mut images = images::ImageCache::default();
    add_data_views(dir, &groups, &mut images, &mut report, options.plots);
    let draw = options.plots && !groups.is_empty();
    if draw {
        let plots = dir.join("plots");
        plot::write_all(&plots, &groups, &report.primary_metric)?;
        panels::write_differences(&plots, &report.paired_curves, &report.primary_metric)?;
        panels::write_tau(&plots, &report.tau)?;
        plot::write_spending(&dir.join("plots"), &report.spending)?;
        let at_reference: Vec<_> = report
            .groups
            .iter()
            .filter(|g| g.budget == options.reference.budget)
            .map(|g| (g.method.clone(), g.per_class.clone()))
            .collect();
        plot::write_per_class(&dir.join("plots"), &at_reference)?;
        draw_gallery(dir, &groups, &mut images, &mut report);
    }
    let markdown = dir.join("report.md");
    write_atomic(&markdown, markdown::render(&report, draw).as_bytes())
        .map_err(error::io_err(&markdown))?;
    Ok(WrittenReport {
        markdown,
        report,
        skipped,
    })
}

/// The group `spending` is about, its first run with a sampling record
/// (whose data the views read), and the records of all its runs that have
/// one; `None` when the group has no record.
fn sampled_runs<'a>(
    groups: &'a [aggregate::Group],
    spending: &GroupSpending,
) -> Option<(
    &'a aggregate::Group,
    &'a load::Run,
    Vec<&'a isdet_trainer::SamplingRecord>,
)> {
    let group = groups
        .iter()
        .find(|g| g.method == spending.method && g.budget == spending.budget)?;
    let first = group.runs.iter().find(|r| r.sampling.is_some())?;
    let records = group
        .runs
        .iter()
        .filter_map(|r| r.sampling.as_ref())
        .collect();
    Some((group, first, records))
}

/// Each group's draws split by its training set's regime tags, where the
/// data has a tags file (the group's first run with a sampling record
/// says where its data is); a tags file that cannot be used gets a note.
fn add_tag_shares(groups: &[aggregate::Group], report: &mut Report) {
    for spending in &mut report.spending {
        let Some((group, first, records)) = sampled_runs(groups, spending) else {
            continue;
        };
        let shares = tags::run_tags(&first.dir)
            .and_then(|t| t.map(|t| tags::tag_shares(&records, &t)).transpose());
        match shares {
            Ok(shares) => spending.tags = shares,
            Err(why) => report.notes.push(format!(
                "no split of the draws by regime tags for {}: {why}",
                group.label()
            )),
        }
    }
}

/// What needs the runs' data beside their records: each group's per-class
/// share of training and, with `sheets`, its thumbnail sheet of the most-
/// and least-trained images (from the group's first run with a record).
/// Where the data is not at hand, a note says why.
fn add_data_views(
    dir: &Path,
    groups: &[aggregate::Group],
    images: &mut images::ImageCache,
    report: &mut Report,
    sheets: bool,
) {
    let mut missing: Vec<(String, String)> = Vec::new();
    for spending in &mut report.spending {
        let Some((group, first, records)) = sampled_runs(groups, spending) else {
            continue;
        };
        let label = group.label();
        let done = images.of_run(&first.dir).and_then(|data| {
            let objects = data.train_objects()?;
            spending.class_shares =
                spending::class_shares(&records, objects, data.classes().names())?;
            if sheets {
                let name = sheets::file_name(&group.method, group.budget);
                let plots = dir.join("plots");
                std::fs::create_dir_all(&plots).map_err(|e| format!("{}: {e}", plots.display()))?;
                let title = format!(
                    "{label}, seed {}: the most and least trained images",
                    first.seed
                );
                sheets::write_sheet(&plots.join(&name), &title, records[0], &data)?;
                spending.sheet = Some(name);
            }
            Ok(())
        });
        if let Err(why) = done {
            missing.push((label, why));
        }
    }
    // One note per reason: a study's groups usually share their data.
    let mut reasons: Vec<&String> = missing.iter().map(|(_, why)| why).collect();
    reasons.sort();
    reasons.dedup();
    for why in reasons {
        let groups: Vec<&str> = missing
            .iter()
            .filter(|(_, w)| w == why)
            .map(|(label, _)| label.as_str())
            .collect();
        report.notes.push(format!(
            "no per-class shares or thumbnails for {}: {why}",
            groups.join(", ")
        ));
    }
}

/// Draws the gallery of the best run (the best seed of the group with the
/// highest mean final metric) of a detection report; when it cannot be
/// drawn (no predictions kept, data not on this machine), a note says why.
fn draw_gallery(
    dir: &Path,
    groups: &[aggregate::Group],
    images: &mut images::ImageCache,
    report: &mut Report,
) {
    let best = report
        .groups
        .iter()
        .zip(groups)
        .filter(|(g, _)| !g.per_class.is_empty())
        .max_by(|a, b| a.0.final_metric.mean.total_cmp(&b.0.final_metric.mean))
        .and_then(|(_, g)| {
            g.runs
                .iter()
                .max_by(|a, b| a.final_metric.total_cmp(&b.final_metric))
        });
    let Some(run) = best else { return };
    let label = format!(
        "{} @ {} seed {}",
        run.method,
        aggregate::percent(run.budget),
        run.seed
    );
    let drawn = images.of_run(&run.dir).and_then(|data| {
        gallery::write_gallery(
            &dir.join("plots").join(gallery::GALLERY_PLOT),
            &run.dir,
            &label,
            &data,
        )
    });
    match drawn {
        Ok(()) => report.gallery = Some(label),
        Err(why) => report.notes.push(format!("no gallery: {why}")),
    }
}

fn skipped_suffix(skipped: &[Skipped]) -> String {
    match skipped.first() {
        Some(s) => format!(
            " that could be read (skipped {}: {})",
            s.path.display(),
            s.reason
        ),
        None => String::new(),
    }
}
