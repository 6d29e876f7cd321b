//! A sweep as a Slurm job array: one array task per grid cell, each
//! running the already-built isdet binary on its one cell
//! (`sweep --spec S --cell $SLURM_ARRAY_TASK_ID`), so cluster nodes never
//! compile. Cells are numbered in the plan's order (the spec's `order`), so
//! `--dry-run` lists them and the numbering is the same on every call.
//! Resubmitting the array skips finished cells and resumes the others;
//! the run-directory lock makes a double submission safe.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::error::{ReportError, Result};
use crate::sweep::SweepPlan;

/// What the job array asks Slurm for, and what each task runs.
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    /// The isdet binary the tasks run (absolute).
    pub binary: PathBuf,
    /// The sweep specification (absolute).
    pub spec: PathBuf,
    /// Overrides passed to every task (`--set`).
    pub overrides: Vec<String>,
    /// The seeds passed to every task (`--seeds`), where the sweep's
    /// were overridden: the cells' numbering depends on them.
    pub seeds: Option<Vec<u64>>,
    /// The folder the tasks start in (relative paths of the spec and its
    /// data resolve from it).
    pub workdir: PathBuf,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` (e.g. `02:00:00`).
    pub time: Option<String>,
    /// `--cpus-per-task`; each task's `RAYON_NUM_THREADS` is set to it.
    pub cpus_per_task: Option<u32>,
    /// `--gpus` (per task).
    pub gpus: Option<String>,
    /// The array's `%N` throttle: at most this many tasks at once.
    pub max_parallel: Option<usize>,
}

/// Single-quotes `s` for bash.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn quote_path(p: &Path) -> String {
    quote(&p.display().to_string())
}

/// The `sbatch` script of `plan`'s job array (one task per run of the
/// plan, in order).
pub fn job_array_script(plan: &SweepPlan, o: &SlurmOptions) -> Result<String> {
    if plan.runs.is_empty() {
        return Err(ReportError::Runs("the sweep has no runs to submit".into()));
    }
    let name = o
        .spec
        .file_stem()
        .map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
    let mut out = String::from("#!/bin/bash\n");
    let mut directive = |line: String| {
        let _ = writeln!(out, "#SBATCH {line}");
    };
    directive(format!("--job-name=isdet-{name}"));
    let throttle = o.max_parallel.map_or(String::new(), |n| format!("%{n}"));
    directive(format!("--array=0-{}{throttle}", plan.runs.len() - 1));
    directive(format!(
        "--output={}",
        plan.root.join("slurm-%A_%a.out").display()
    ));
    if let Some(p) = &o.partition {
        directive(format!("--partition={p}"));
    }
    if let Some(t) = &o.time {
        directive(format!("--time={t}"));
    }
    if let Some(c) = o.cpus_per_task {
        directive(format!("--cpus-per-task={c}"));
    }
    if let Some(g) = &o.gpus {
        directive(format!("--gpus={g}"));
    }
    let _ = writeln!(
        out,
        "\n# isdet sweep of {spec}: {n} cells, cell k = line k+1 of `sweep --dry-run`.\n\
         # Resubmitting skips finished cells and resumes unfinished ones.\n\
         set -euo pipefail\n\
         cd {workdir}\n\
         export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-1}}\"",
        spec = o.spec.display(),
        n = plan.runs.len(),
        workdir = quote_path(&o.workdir),
    );
    let mut command = format!(
        "exec {} sweep --quiet --spec {} --out {}",
        quote_path(&o.binary),
        quote_path(&o.spec),
        quote_path(&plan.root)
    );
    if let Some(seeds) = &o.seeds {
        let seeds: Vec<String> = seeds.iter().map(u64::to_string).collect();
        let _ = write!(command, " --seeds {}", seeds.join(","));
    }
    for set in &o.overrides {
        let _ = write!(command, " --set {}", quote(set));
    }
    let _ = writeln!(command, " --cell \"$SLURM_ARRAY_TASK_ID\"");
    out.push_str(&command);
    Ok(out)
}

/// Submits `script` with `sbatch` and returns the job id it printed.
pub fn submit(script: &Path) -> Result<String> {
    let output = std::process::Command::new("sbatch")
        .arg("--parsable")
        .arg(script)
        .output()
        .map_err(|source| ReportError::Io {
            path: "sbatch".into(),
            source,
        })?;
    let said = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() {
        return Err(ReportError::Runs(format!(
            "sbatch {} failed: {}{said}",
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let id = said.split(';').next().unwrap_or_default().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(ReportError::Runs(format!(
            "sbatch {} printed no job id: {said:?}",
            script.display()
        )));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
