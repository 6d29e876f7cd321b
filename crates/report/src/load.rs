//! Finding run directories under a folder and reading their files
//! (`summary.json`, `metrics.jsonl`; see docs/run-directory.md) through
//! the trainer's own record types, the one definition of that contract.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use isdet_eval::CurvePoint;
use isdet_trainer::{Diagnostics, MetricsRecord, SamplingRecord, Summary, files};
use serde::Serialize;

use crate::error::{ReportError, Result};

/// How deep below the report folder run directories are looked for: runs
/// sit directly in a sweep folder, sweeps may sit in a folder of sweeps, and
/// one more level leaves room for grouping those by experiment.
pub const MAX_DEPTH: usize = 3;

/// A finished run: its summary and its evaluation curve.
#[derive(Clone, Debug)]
pub struct Run {
    /// The run directory.
    pub dir: PathBuf,
    /// The method label the run was given.
    pub method: String,
    /// The budget as a fraction of the full schedule.
    pub budget: f64,
    /// The seed.
    pub seed: u64,
    /// The name of the metric reports compare (`AP`, `top1`).
    pub primary_metric: String,
    /// That metric at the end of the run, from `summary.json`.
    pub final_metric: f64,
    /// The final costs, from `summary.json`.
    pub costs: Costs,
    /// The final AP of each class (`AP/<class>` in `summary.json`;
    /// detection only), classes without ground truth left out.
    pub per_class: BTreeMap<String, f64>,
    /// One point per line of `metrics.jsonl`, metric = the primary metric.
    pub curve: Vec<CurvePoint>,
    /// Cumulative seconds per phase at the last evaluation.
    pub time: BTreeMap<String, f64>,
    /// What the budget was spent on (`sampling.json`), when the run has a
    /// usable one.
    pub sampling: Option<SamplingRecord>,
    /// Why `sampling.json` is there but was not used.
    pub sampling_problem: Option<String>,
    /// The sampling diagnostics of each evaluation that has them, with its
    /// optimiser step; empty for runs made before they were recorded.
    pub diagnostics: Vec<(f64, Diagnostics)>,
    /// What RHO-LOSS's irreducible-loss model cost (`summary.json`'s
    /// `irreducible`), for runs that trained one.
    pub irreducible: Option<isdet_trainer::IrreducibleCost>,
}

/// The cost counters of a run (or their means over a group's seeds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Costs {
    /// Optimiser steps.
    pub steps: f64,
    /// Per-sample forward passes.
    pub forward: f64,
    /// Per-sample backward passes.
    pub backward: f64,
    /// Images loaded.
    pub images: f64,
    /// Seconds of training, evaluation excluded.
    pub seconds: f64,
}

/// A run directory with `metrics.jsonl` but no `summary.json` yet.
#[derive(Clone, Debug)]
pub struct Unfinished {
    /// The run directory.
    pub dir: PathBuf,
    /// Evaluations logged so far (lines that parse).
    pub evaluations: usize,
    /// The optimiser step of the last of them.
    pub last_step: Option<f64>,
}

/// A file that could not be used, and why.
#[derive(Clone, Debug)]
pub struct Skipped {
    /// The file (or directory) at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// Everything found under the report folder.
#[derive(Debug, Default)]
pub struct Scan {
    /// Finished runs that could be read.
    pub runs: Vec<Run>,
    /// Runs still going (or killed): listed, never aggregated.
    pub unfinished: Vec<Unfinished>,
    /// Runs left out because a file is unreadable or malformed.
    pub skipped: Vec<Skipped>,
}

/// An error about one file, which always names it.
#[derive(Debug)]
struct FileError {
    path: PathBuf,
    message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl FileError {
    fn new(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    fn into_skipped(self) -> Skipped {
        Skipped {
            path: self.path,
            reason: self.message,
        }
    }
}

/// Finds every run directory under `root` (`root` itself included, down to
/// [`MAX_DEPTH`] levels) and reads it. Unreadable or malformed runs end up
/// in [`Scan::skipped`] rather than failing the whole report, so one broken
/// run of a large sweep does not hide the others.
pub fn scan(root: &Path) -> Result<Scan> {
    if !root.is_dir() {
        return Err(ReportError::Runs(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    let mut scan = Scan::default();
    let mut dirs = Vec::new();
    find_run_dirs(root, 0, &mut dirs, &mut scan.skipped);
    for dir in dirs {
        if dir.join(files::SUMMARY).is_file() {
            match read_finished(&dir) {
                Ok(run) => scan.runs.push(run),
                Err(e) => scan.skipped.push(e.into_skipped()),
            }
        } else {
            scan.unfinished.push(read_unfinished(&dir));
        }
    }
    Ok(scan)
}

/// A run writes `config.json` first, so a run that has not logged an
/// evaluation yet (RHO-LOSS's, while its irreducible-loss model trains in
/// `irreducible/` below it) is still one run, not a folder of runs.
fn is_run_dir(dir: &Path) -> bool {
    [files::SUMMARY, files::METRICS, files::CONFIG]
        .iter()
        .any(|f| dir.join(f).is_file())
}

/// Collects run directories depth first, in name order so that reports are
/// reproducible. A run directory is not searched further: its
/// `checkpoint/` holds no runs.
fn find_run_dirs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>, skipped: &mut Vec<Skipped>) {
    if is_run_dir(dir) {
        out.push(dir.to_path_buf());
        return;
    }
    if depth == MAX_DEPTH {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            skipped.push(FileError::new(dir, format!("cannot list: {e}")).into_skipped());
            return;
        }
    };
    let mut children: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    children.sort();
    for child in children {
        find_run_dirs(&child, depth + 1, out, skipped);
    }
}

fn read_text(path: &Path) -> std::result::Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|e| FileError::new(path, format!("cannot read: {e}")))
}

fn read_finished(dir: &Path) -> std::result::Result<Run, FileError> {
    let summary_path = dir.join(files::SUMMARY);
    let summary: Summary = serde_json::from_str(&read_text(&summary_path)?)
        .map_err(|e| FileError::new(&summary_path, format!("malformed: {e}")))?;
    let final_metric = summary_metric(&summary)
        .ok_or_else(|| {
            let name = &summary.primary_metric;
            format!("no finite number under \"{name}\", its primary_metric")
        })
        .map_err(|m| FileError::new(&summary_path, m))?;
    let costs = Costs {
        steps: summary.steps as f64,
        forward: summary.forward as f64,
        backward: summary.backward as f64,
        images: summary.images as f64,
        seconds: summary.seconds,
    };
    if !(costs.seconds.is_finite() && costs.seconds >= 0.0 && summary.budget.is_finite()) {
        return Err(FileError::new(
            &summary_path,
            "budget or seconds negative or not finite",
        ));
    }
    let per_class = summary
        .metrics
        .iter()
        .filter_map(|(k, &v)| Some((k.strip_prefix("AP/")?.to_string(), v)))
        .filter(|(_, v)| v.is_finite() && *v >= 0.0)
        .collect();
    let metrics_path = dir.join(files::METRICS);
    let lines = read_lines_strict(&metrics_path)?;
    let curve = curve_of(&lines, &summary.primary_metric, &metrics_path)?;
    let time = lines.last().map(|l| phase_map(&l.time)).unwrap_or_default();
    let diagnostics = lines
        .iter()
        .filter_map(|l| Some((l.step as f64, l.diagnostics?)))
        .collect();
    let irreducible = summary.irreducible;
    let (sampling, sampling_problem) = match read_sampling(dir, &summary) {
        Ok(record) => (record, None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(Run {
        dir: dir.to_path_buf(),
        method: summary.method,
        budget: summary.budget,
        seed: summary.seed,
        primary_metric: summary.primary_metric,
        final_metric,
        costs,
        per_class,
        curve,
        time,
        sampling,
        sampling_problem,
        diagnostics,
        irreducible,
    })
}

/// The run's `sampling.json`, checked against its summary; `None` when the
/// run has none (runs made before the trainer wrote it).
fn read_sampling(
    dir: &Path,
    summary: &Summary,
) -> std::result::Result<Option<SamplingRecord>, FileError> {
    let path = dir.join(files::SAMPLING);
    if !path.is_file() {
        return Ok(None);
    }
    let record: SamplingRecord = serde_json::from_str(&read_text(&path)?)
        .map_err(|e| FileError::new(&path, format!("malformed: {e}")))?;
    if let Some(problem) = record.disagreement(summary) {
        return Err(FileError::new(&path, problem));
    }
    Ok(Some(record))
}

fn summary_metric(summary: &Summary) -> Option<f64> {
    let value = *summary.metrics.get(&summary.primary_metric)?;
    value.is_finite().then_some(value)
}

/// The phase times by name, as the report's tables list them.
fn phase_map(t: &isdet_trainer::PhaseTimes) -> BTreeMap<String, f64> {
    [
        ("data", t.data),
        ("forward", t.forward),
        ("backward", t.backward),
        ("scoring", t.scoring),
        ("sampling", t.sampling),
        ("eval", t.eval),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Every line of a finished run's `metrics.jsonl`; any malformed line is
/// an error, since a finished run's log is complete.
fn read_lines_strict(path: &Path) -> std::result::Result<Vec<MetricsRecord>, FileError> {
    let text = read_text(path)?;
    let mut lines = Vec::new();
    for (k, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str(line)
            .map_err(|e| FileError::new(path, format!("line {}: malformed: {e}", k + 1)))?;
        lines.push(parsed);
    }
    if lines.is_empty() {
        return Err(FileError::new(path, "no evaluations"));
    }
    Ok(lines)
}

fn curve_of(
    lines: &[MetricsRecord],
    metric: &str,
    path: &Path,
) -> std::result::Result<Vec<CurvePoint>, FileError> {
    let mut curve = Vec::with_capacity(lines.len());
    for (k, line) in lines.iter().enumerate() {
        let value = line
            .metrics
            .get(metric)
            .copied()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                let message = format!("line {}: no finite \"{metric}\" in metrics", k + 1);
                FileError::new(path, message)
            })?;
        curve.push(CurvePoint {
            steps: line.step as f64,
            backward: line.backward as f64,
            forward: line.forward as f64,
            images: line.images as f64,
            seconds: line.seconds,
            metric: value,
        });
    }
    Ok(curve)
}

/// An unfinished run's progress. Its log may end in a line cut short by a
/// kill, so lines that do not parse are passed over rather than reported.
fn read_unfinished(dir: &Path) -> Unfinished {
    let text = std::fs::read_to_string(dir.join(files::METRICS)).unwrap_or_default();
    let steps: Vec<f64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<MetricsRecord>(l).ok())
        .map(|l| l.step as f64)
        .collect();
    Unfinished {
        dir: dir.to_path_buf(),
        evaluations: steps.len(),
        last_step: steps.last().copied(),
    }
}
