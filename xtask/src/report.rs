//! `cargo xtask report DIR`: arguments, then `isdet_report::write_report`.
//! docs/reports.md describes the output; docs/run-directory.md the input.

use std::path::PathBuf;
use std::process::ExitCode;

use isdet_eval::DEFAULT_RESAMPLES;
use isdet_report::{GroupKey, ReportOptions, write_report};

/// Options of `cargo xtask report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The folder holding the runs; run directories (with `summary.json`,
    /// or only `metrics.jsonl` while unfinished) are found up to three
    /// levels below it. `report.md` and `plots/` are written into it.
    pub dir: PathBuf,
    /// The group speed-ups are measured against, as METHOD@BUDGET (budget
    /// as a fraction or a percentage); its method is also the baseline of
    /// the paired comparisons.
    #[arg(long, default_value = "uniform@1.0")]
    pub reference: GroupKey,
    /// The target metric as a fraction of the reference's mean final metric.
    #[arg(long, default_value_t = 0.8, value_parser = positive_fraction)]
    pub target_fraction: f64,
    /// Bootstrap resamples for the percentile-bootstrap intervals and
    /// P(better) (printed beside the Student-t intervals only for rows of
    /// at least 10 seeds; always in the JSON).
    #[arg(long, default_value_t = DEFAULT_RESAMPLES)]
    pub resamples: usize,
    /// Seed of the bootstrap resampling.
    #[arg(long, default_value_t = 0)]
    pub bootstrap_seed: u64,
    /// Print the aggregated numbers as JSON on stdout (the report is still
    /// written; its path then goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Fail instead of skipping runs whose files are malformed.
    #[arg(long)]
    pub strict: bool,
    /// Do not draw the plots.
    #[arg(long)]
    pub no_plots: bool,
    /// The largest relative rise of the reference's metric over its last
    /// quarter of steps that counts as converged (above it, the report
    /// opens with a warning that the reference has not converged).
    #[arg(long, default_value_t = isdet_report::convergence::DEFAULT_MAX_RISE, value_parser = positive_fraction)]
    pub max_rise: f64,
}

impl ReportArgs {
    /// The report of `dir` with every option at its default.
    pub fn defaults(dir: PathBuf) -> Self {
        let d = ReportOptions::default();
        ReportArgs {
            dir,
            reference: d.reference,
            target_fraction: d.target_fraction,
            resamples: d.resamples,
            bootstrap_seed: d.bootstrap_seed,
            json: false,
            strict: d.strict,
            no_plots: !d.plots,
            max_rise: d.max_rise,
        }
    }
}

fn positive_fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a positive number"))
    }
}

/// Writes `DIR/report.md` and `DIR/plots/`, and prints the report's path
/// (or, with `--json`, the numbers).
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let options = ReportOptions {
        reference: args.reference,
        target_fraction: args.target_fraction,
        resamples: args.resamples,
        bootstrap_seed: args.bootstrap_seed,
        strict: args.strict,
        plots: !args.no_plots,
        max_rise: args.max_rise,
    };
    let written = write_report(&args.dir, &options)?;
    for s in &written.skipped {
        eprintln!("warning: skipping {}: {}", s.path.display(), s.reason);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&written.report)?);
        eprintln!("{}", written.markdown.display());
    } else {
        println!("{}", written.markdown.display());
    }
    Ok(ExitCode::SUCCESS)
}
