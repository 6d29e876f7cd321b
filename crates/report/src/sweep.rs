//! Sweep specifications → the grid of runs (methods × budgets × seeds),
//! and running that grid: finished runs are skipped, unfinished ones
//! resume.

use std::path::{Path, PathBuf};
use std::time::Instant;

use isdet_trainer::{RunConfig, RunOutcome, TrainOptions, TrainerError, files, read_config_value};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ReportError, Result};

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
    /// Seeds every method runs with unless it names its own.
    pub seeds: Vec<u64>,
    /// The methods.
    pub methods: Vec<MethodSpec>,
    /// Data regimes (or any other variants of the base) every method runs
    /// in, each in its own folder under the root; none: the base alone.
    #[serde(default)]
    pub regimes: Vec<RegimeSpec>,
    /// The order the runs are trained in.
    #[serde(default)]
    pub order: RunOrder,
}

/// One regime of a sweep: configuration fields set on the base before each
/// method's (a data regime: `config = { data = { … } }`), and the folder
/// under the sweep's root its runs go to, so that each regime reports on
/// its own (`cargo xtask report <root>/<name>`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegimeSpec {
    /// The regime's name: its folder under the root.
    pub name: String,
    /// Configuration fields set on top of the base, under each method's.
    #[serde(default)]
    pub config: serde_json::Map<String, Value>,
}

/// The order of a sweep's runs.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RunOrder {
    /// Methods in spec order, then budgets, then seeds.
    #[default]
    ByMethod,
    /// Every regime, method and budget of the first seed, then of the
    /// second, …: a sweep stopped part-way leaves whole seeds behind, each
    /// a paired comparison of all methods in every regime.
    BySeed,
    /// The largest budget first, and within a budget as [`RunOrder::BySeed`]:
    /// a study's full-schedule comparison is finished before its budgeted
    /// runs start (e.g. to choose which methods to run under budget).
    ByBudget,
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
    /// Seeds for this method (default: the sweep's).
    #[serde(default)]
    pub seeds: Option<Vec<u64>>,
    /// Configuration fields set on top of the base (strategy, heuristic, …).
    #[serde(default)]
    pub config: serde_json::Map<String, Value>,
}

/// One planned run of a sweep.
#[derive(Debug)]
pub struct PlannedRun {
    /// Its directory.
    pub dir: PathBuf,
    /// Its configuration.
    pub config: RunConfig,
}

/// The file a sweep writes into a run directory when training it failed
/// (the error's text); removed when the run is tried again.
const FAILED: &str = "failed.txt";

/// How far a planned run has got, from its directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// `summary.json` is there.
    Finished,
    /// A process holds the run directory's lock: it is training now.
    Running,
    /// The last attempt ended in an error (`failed.txt` says which).
    Failed,
    /// A checkpoint is there: the next sweep resumes it.
    Resumable,
    /// Nothing to resume.
    ToRun,
}

impl RunState {
    /// `finished`, `running`, `failed`, `resumable` or `to run`.
    pub fn label(self) -> &'static str {
        match self {
            RunState::Finished => "finished",
            RunState::Running => "running",
            RunState::Failed => "failed",
            RunState::Resumable => "resumable",
            RunState::ToRun => "to run",
        }
    }
}

impl PlannedRun {
    /// How far this run has got.
    pub fn state(&self) -> RunState {
        self.status().0
    }

    /// How far this run has got, and what explains it: who is training
    /// it (`pid N on HOST`) when running, the first line of the error when
    /// failed, else nothing.
    pub fn status(&self) -> (RunState, String) {
        if self.dir.join(files::SUMMARY).exists() {
            (RunState::Finished, String::new())
        } else if let Some(holder) = isdet_trainer::run_lock_holder(&self.dir) {
            (RunState::Running, holder)
        } else if let Ok(error) = std::fs::read_to_string(self.dir.join(FAILED)) {
            let first = error.lines().next().unwrap_or_default().to_string();
            (RunState::Failed, first)
        } else if self
            .dir
            .join(files::CHECKPOINT_DIR)
            .join(files::STATE)
            .exists()
        {
            (RunState::Resumable, String::new())
        } else {
            (RunState::ToRun, String::new())
        }
    }
}

/// A sweep's specification and its runs, in order.
#[derive(Debug)]
pub struct SweepPlan {
    /// The specification.
    pub spec: SweepSpec,
    /// Where the runs go.
    pub root: PathBuf,
    /// The runs, in the spec's [`RunOrder`].
    pub runs: Vec<PlannedRun>,
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

/// The runs of the sweep specification at `spec_path` (TOML or JSON), into
/// `out` (default: the spec's `out`), on `seeds` (default: the spec's
/// `seeds`, or a method's own), each configuration with `overrides`
/// applied last.
pub fn plan_sweep(
    spec_path: &Path,
    out: Option<&Path>,
    seeds: Option<&[u64]>,
    overrides: &[String],
) -> Result<SweepPlan> {
    let spec_err = |message: String| ReportError::Spec {
        path: spec_path.to_path_buf(),
        message,
    };
    let value = read_config_value(spec_path)?;
    let spec: SweepSpec = serde_json::from_value(value)
        .map_err(|e| spec_err(format!("not a sweep specification: {e}")))?;
    let base_path = spec_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&spec.base);
    let base = read_config_value(&base_path)?;
    let root = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| spec.out.clone());
    if let Some(seeds) = seeds {
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = seeds.iter().find(|s| !seen.insert(**s)) {
            return Err(spec_err(format!("seed {dup} is asked for twice")));
        }
    }
    check_regime_names(&spec.regimes).map_err(spec_err)?;
    let regimes: Vec<Option<&RegimeSpec>> = match spec.regimes.is_empty() {
        true => vec![None],
        false => spec.regimes.iter().map(Some).collect(),
    };
    // (budget, seed, run) in regime, then method order; sorted stably when
    // asked.
    let mut runs = Vec::new();
    for (regime, method) in regimes
        .iter()
        .flat_map(|r| spec.methods.iter().map(move |m| (*r, m)))
    {
        let budgets = method.budgets.as_ref().unwrap_or(&spec.budgets);
        let seeds = seeds.unwrap_or(method.seeds.as_ref().unwrap_or(&spec.seeds));
        let (folder, label) = match regime {
            Some(r) => (root.join(&r.name), format!("regime {}, method", r.name)),
            None => (root.clone(), "method".to_string()),
        };
        for &budget in budgets {
            for &seed in seeds {
                let mut value = base.clone();
                if let Some(r) = regime {
                    merge(&mut value, Value::Object(r.config.clone()));
                }
                merge(&mut value, Value::Object(method.config.clone()));
                let mut sets = vec![
                    format!("method={}", Value::String(method.name.clone())),
                    format!("budget={budget}"),
                    format!("seed={seed}"),
                ];
                sets.extend(overrides.iter().cloned());
                let config = RunConfig::from_value(value, &sets).map_err(|e| {
                    spec_err(format!(
                        "{label} {} at budget {budget}, seed {seed}: {e}",
                        method.name
                    ))
                })?;
                let dir = folder.join(run_name(&method.name, budget, seed));
                runs.push((budget, seed, PlannedRun { dir, config }));
            }
        }
    }
    if runs.is_empty() {
        return Err(spec_err("the sweep has no runs".into()));
    }
    match spec.order {
        RunOrder::ByMethod => {}
        RunOrder::BySeed => runs.sort_by_key(|(_, seed, _)| *seed),
        RunOrder::ByBudget => {
            runs.sort_by(|(b1, s1, _), (b2, s2, _)| b2.total_cmp(b1).then(s1.cmp(s2)))
        }
    }
    let runs = runs.into_iter().map(|(_, _, run)| run).collect();
    Ok(SweepPlan { spec, root, runs })
}

/// Regime names are folder names: one path component each, no two alike.
fn check_regime_names(regimes: &[RegimeSpec]) -> std::result::Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for r in regimes {
        let plain =
            !r.name.is_empty() && r.name != "." && r.name != ".." && !r.name.contains(['/', '\\']);
        if !plain {
            return Err(format!(
                "regime name {:?} is not a folder name (one path component)",
                r.name
            ));
        }
        if !seen.insert(r.name.as_str()) {
            return Err(format!("regime {:?} is named twice", r.name));
        }
    }
    Ok(())
}

impl SweepPlan {
    /// Keeps only run `index` (from 0, in the plan's order): one cell of
    /// the grid, as one Slurm array task trains it.
    pub fn keep_cell(&mut self, index: usize) -> Result<()> {
        if index >= self.runs.len() {
            return Err(ReportError::Runs(format!(
                "cell {index} does not exist: the sweep has {} runs (cells 0 to {})",
                self.runs.len(),
                self.runs.len().saturating_sub(1)
            )));
        }
        let run = self.runs.swap_remove(index);
        self.runs = vec![run];
        Ok(())
    }

    /// Keeps run `i` of the plan only when `i % shard.count == shard.index`,
    /// so that `count` processes (one per core or per machine) can share a
    /// sweep without training the same run twice. Indices are those of the
    /// whole plan, so a shard is the same set of runs on every call.
    pub fn keep_shard(&mut self, shard: Shard) {
        let runs = std::mem::take(&mut self.runs);
        self.runs = runs
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % shard.count == shard.index)
            .map(|(_, run)| run)
            .collect();
    }
}

/// One of `count` disjoint parts of a sweep's runs (`index` from 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which part, from 0.
    pub index: usize,
    /// How many parts.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// Reads `K/N` (0 ≤ K < N).
    fn from_str(text: &str) -> std::result::Result<Shard, String> {
        let bad = || format!("a shard is K/N with 0 <= K < N, not {text:?}");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let index = k.trim().parse().map_err(|_| bad())?;
        let count = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// `<method>-b<budget %>-s<seed>`.
pub fn run_name(method: &str, budget: f64, seed: u64) -> String {
    format!("{method}-b{}-s{seed}", (budget * 100.0).round() as u64)
}

/// What [`run_sweep`] tells its caller as it goes.
#[derive(Debug)]
pub enum SweepEvent<'a> {
    /// Run `index` (of `total`) starts or resumes.
    Starting {
        /// Its position, from 0.
        index: usize,
        /// Runs in the sweep.
        total: usize,
        /// The run.
        run: &'a PlannedRun,
    },
    /// A run ended (finished now, finished before, or stopped).
    Ended {
        /// The run.
        run: &'a PlannedRun,
        /// How.
        outcome: &'a RunOutcome,
    },
    /// A run was skipped: another process is training it.
    Elsewhere {
        /// The run.
        run: &'a PlannedRun,
        /// Who holds it (`pid N on HOST`).
        holder: &'a str,
    },
    /// The sweep skips `run`: the finished runs' pace says it would not
    /// end before the deadline. It goes on with the runs after it, which
    /// may be shorter.
    OutOfTime {
        /// The run not started.
        run: &'a PlannedRun,
        /// Seconds it is expected to take.
        expected: f64,
        /// Seconds left before the deadline.
        left: f64,
    },
}

/// How [`run_sweep`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepEnd {
    /// Every run was trained, found finished, or left to another process.
    Done,
    /// A run was stopped (Ctrl-C).
    Stopped,
    /// Every run was trained, found finished or left to another process,
    /// except those skipped as too long for the time left.
    OutOfTime,
}

/// Trains every run of `plan` in order. A run another process is training
/// (its directory is locked) is skipped with [`SweepEvent::Elsewhere`], so
/// two sweeps over one grid never train a run twice. With a `deadline`,
/// the sweep skips every run that [`expected_seconds`] says would end
/// after it and trains the ones that fit (a chunk of a long grid that
/// leaves only finished runs behind, with no core left idle while a
/// shorter run would still fit); a run already in progress is never cut
/// short.
pub fn run_sweep(
    plan: &SweepPlan,
    options: &TrainOptions,
    deadline: Option<Instant>,
    mut on_event: impl FnMut(SweepEvent<'_>),
) -> Result<SweepEnd> {
    let total = plan.runs.len();
    let mut skipped = false;
    for (index, run) in plan.runs.iter().enumerate() {
        if let Some(deadline) = deadline
            && matches!(
                run.state(),
                RunState::ToRun | RunState::Resumable | RunState::Failed
            )
            && let Some(expected) = expected_seconds(plan, run)
        {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs_f64();
            if expected > left {
                on_event(SweepEvent::OutOfTime {
                    run,
                    expected,
                    left,
                });
                skipped = true;
                continue;
            }
        }
        on_event(SweepEvent::Starting { index, total, run });
        let outcome = match isdet_trainer::train(&run.config, &run.dir, options) {
            Ok(outcome) => outcome,
            Err(TrainerError::Busy { holder, .. }) => {
                on_event(SweepEvent::Elsewhere {
                    run,
                    holder: &holder,
                });
                continue;
            }
            Err(source) => {
                // Best effort: `--status` reads it; the error is returned
                // either way.
                let _ = std::fs::write(run.dir.join(FAILED), format!("{source}\n"));
                return Err(ReportError::Train {
                    dir: run.dir.clone(),
                    source,
                });
            }
        };
        let _ = std::fs::remove_file(run.dir.join(FAILED));
        on_event(SweepEvent::Ended {
            run,
            outcome: &outcome,
        });
        if matches!(outcome, RunOutcome::Stopped { .. }) {
            return Ok(SweepEnd::Stopped);
        }
    }
    Ok(if skipped {
        SweepEnd::OutOfTime
    } else {
        SweepEnd::Done
    })
}

/// Seconds `run` is expected to take, training and evaluation, from the
/// plan's finished runs: the median of their seconds per unit of budget,
/// over the runs of the same method where any has finished (selective
/// backprop's forward passes make its pace its own), else over all, times
/// `run`'s budget. `None` before any run of the plan has finished. A
/// resumable run is counted whole, which errs on the side of stopping.
pub fn expected_seconds(plan: &SweepPlan, run: &PlannedRun) -> Option<f64> {
    let mut same = Vec::new();
    let mut all = Vec::new();
    for other in &plan.runs {
        let Some(pace) = seconds_per_budget(&other.dir) else {
            continue;
        };
        if other.config.method == run.config.method {
            same.push(pace);
        }
        all.push(pace);
    }
    let paces = if same.is_empty() { all } else { same };
    median(paces).map(|pace| pace * run.config.budget)
}

/// A finished run's seconds (training and evaluation) per unit of budget.
fn seconds_per_budget(dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(files::SUMMARY)).ok()?;
    let summary: isdet_trainer::Summary = serde_json::from_str(&text).ok()?;
    (summary.budget > 0.0).then(|| (summary.seconds + summary.eval_seconds) / summary.budget)
}

/// The median, `None` when empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::{PlannedRun, Shard, SweepPlan, SweepSpec, expected_seconds};
    use isdet_trainer::RunConfig;

    fn planned(
        root: &std::path::Path,
        method: &str,
        budget: f64,
        seconds: Option<f64>,
    ) -> PlannedRun {
        let dir = root.join(super::run_name(method, budget, 0));
        if let Some(seconds) = seconds {
            std::fs::create_dir_all(&dir).unwrap();
            let summary = serde_json::json!({
                "method": method, "strategy": "uniform", "heuristic": "loss",
                "budget": budget, "seed": 0, "task": "detection", "primary_metric": "AP",
                "AP": 0.5, "steps": 1, "sampler_steps": 1, "forward": 1, "backward": 1,
                "images": 1, "seconds": seconds - 10.0, "eval_seconds": 10.0,
                "skipped_batches": 0,
            });
            std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
        }
        let config = RunConfig {
            method: method.into(),
            budget,
            ..RunConfig::default()
        };
        PlannedRun { dir, config }
    }

    #[test]
    fn expected_seconds_scale_the_median_pace_of_the_same_method_by_budget() {
        let tmp = tempfile::tempdir().unwrap();
        let spec: SweepSpec = serde_json::from_value(serde_json::json!({
            "base": "b.toml", "out": "o", "methods": [], "budgets": [1.0], "seeds": [0]
        }))
        .unwrap();
        let runs = vec![
            planned(tmp.path(), "slow", 1.0, Some(400.0)),
            planned(tmp.path(), "slow", 0.5, Some(300.0)),
            planned(tmp.path(), "slow", 0.25, Some(200.0)),
            planned(tmp.path(), "fast", 0.5, Some(50.0)),
            planned(tmp.path(), "slow", 0.3, None),
            planned(tmp.path(), "new", 0.5, None),
        ];
        let plan = SweepPlan {
            spec,
            root: tmp.path().into(),
            runs,
        };
        // "slow" runs 400, 600 and 800 s per unit of budget: median 600.
        let slow = expected_seconds(&plan, &plan.runs[4]).unwrap();
        assert!((slow - 180.0).abs() < 1e-9, "{slow}");
        // A method that never finished takes the pace of all: 100, 400,
        // 600, 800 → 500.
        let new = expected_seconds(&plan, &plan.runs[5]).unwrap();
        assert!((new - 250.0).abs() < 1e-9, "{new}");
        let none = SweepPlan {
            runs: vec![planned(tmp.path(), "x", 1.0, None)],
            ..plan
        };
        assert_eq!(expected_seconds(&none, &none.runs[0]), None);
    }

    #[test]
    fn shard_reads_k_of_n_and_refuses_the_rest() {
        assert_eq!("1/3".parse(), Ok(Shard { index: 1, count: 3 }));
        assert_eq!("0/1".parse(), Ok(Shard { index: 0, count: 1 }));
        for bad in ["3/3", "1/0", "1", "a/2", "-1/2", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn regimes_put_every_method_in_each_regime_folder_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("base.toml"),
            "[data]\nkind = \"synth\"\ntrain = 32\nval = 8\nsize = 64\nseed = 0\n",
        )
        .unwrap();
        let spec = |regimes: &str| {
            let path = dir.path().join("spec.toml");
            let text = format!(
                "base = \"base.toml\"\nout = \"o\"\nbudgets = [1.0]\nseeds = [0, 1]\n\
                 order = \"by_seed\"\n[[methods]]\nname = \"a\"\n[[methods]]\nname = \"b\"\n\
                 config = {{ budget = 1.0 }}\n{regimes}"
            );
            std::fs::write(&path, text).unwrap();
            super::plan_sweep(&path, None, None, &[])
        };
        let plan = spec(
            "[[regimes]]\nname = \"r0\"\n[[regimes]]\nname = \"r1\"\n\
             config = { data = { train = 16 } }\n",
        )
        .unwrap();
        let names: Vec<String> = plan
            .runs
            .iter()
            .map(|r| {
                let rel = r.dir.strip_prefix("o").unwrap();
                rel.to_string_lossy().into_owned()
            })
            .collect();
        // By seed: every regime and method of seed 0 before seed 1.
        assert_eq!(
            names,
            [
                "r0/a-b100-s0",
                "r0/b-b100-s0",
                "r1/a-b100-s0",
                "r1/b-b100-s0",
                "r0/a-b100-s1",
                "r0/b-b100-s1",
                "r1/a-b100-s1",
                "r1/b-b100-s1"
            ]
        );
        // The regime's fields go on the base (merged), the method's on top.
        let train = |k: usize| match &plan.runs[k].config.data {
            isdet_trainer::DataConfig::Synth { train, seed, .. } => (*train, *seed),
            other => panic!("{other:?}"),
        };
        assert_eq!((train(0), train(2)), ((32, 0), (16, 0)));
        for bad in [
            "name = \"x/y\"",
            "name = \"..\"",
            "name = \"r\"\n[[regimes]]\nname = \"r\"",
        ] {
            let err = spec(&format!("[[regimes]]\n{bad}\n")).unwrap_err();
            assert!(err.to_string().contains("regime"), "{bad}: {err}");
        }
        // Without regimes the runs go straight under the root, as before.
        let plain = spec("").unwrap();
        assert_eq!(plain.runs[0].dir, std::path::Path::new("o/a-b100-s0"));
    }
}
