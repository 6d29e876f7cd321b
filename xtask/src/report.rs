//! `cargo xtask report DIR`: a Markdown report comparing the runs under
//! DIR, with tables (final metric with intervals, cost to target and
//! speed-ups, paired comparisons) and PNG plots of the metric against
//! steps, backward passes and seconds. docs/reports.md describes the
//! output; docs/run-directory.md the input.

mod aggregate;
mod load;
mod markdown;
mod plot;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use isdet_eval::DEFAULT_RESAMPLES;

use aggregate::{GroupKey, Options};

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
    /// Bootstrap resamples for intervals and paired comparisons.
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
}

fn positive_fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a positive number"))
    }
}

/// Runs the command: scans DIR, writes `DIR/report.md` and `DIR/plots/`,
/// and prints the report's path (or, with `--json`, the numbers).
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let scan = load::scan(&args.dir)?;
    if scan.runs.is_empty() && scan.unfinished.is_empty() {
        anyhow::bail!(
            "no run directories (with summary.json or metrics.jsonl) under {}{}",
            args.dir.display(),
            skipped_suffix(&scan.skipped)
        );
    }
    for s in &scan.skipped {
        eprintln!("warning: skipping {}: {}", s.path.display(), s.reason);
    }
    if args.strict && !scan.skipped.is_empty() {
        let first = &scan.skipped[0];
        anyhow::bail!(
            "{} malformed run file(s), the first {}: {}",
            scan.skipped.len(),
            first.path.display(),
            first.reason
        );
    }
    let options = Options {
        reference: args.reference.clone(),
        target_fraction: args.target_fraction,
        resamples: args.resamples,
        bootstrap_seed: args.bootstrap_seed,
    };
    let (report, groups) = aggregate::build(&args.dir, scan, &options)?;
    let draw = !args.no_plots && !groups.is_empty();
    if draw {
        plot::write_all(&args.dir.join("plots"), &groups, &report.primary_metric)?;
    }
    let path = args.dir.join("report.md");
    write_atomic(&path, markdown::render(&report, draw).as_bytes())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        eprintln!("{}", path.display());
    } else {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn skipped_suffix(skipped: &[load::Skipped]) -> String {
    match skipped.first() {
        Some(s) => format!(
            " that could be read (skipped {}: {})",
            s.path.display(),
            s.reason
        ),
        None => String::new(),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and
/// a rename, so that a reader (or a report being regenerated while it is
/// open) never sees half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
