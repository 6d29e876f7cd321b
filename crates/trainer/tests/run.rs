//! Whole runs on tiny synth data: the run directory, determinism, the NaN
//! policy, configuration checks, and rescoring the predictions file.

use std::path::Path;

use isdet_trainer::{
    DeviceConfig, RunConfig, RunOutcome, Summary, TrainOptions, TrainerError, train,
};
use serde_json::json;

/// A run of 16 optimiser steps (32 scenes, batch 4, 2 epochs) at 64 px.
pub fn tiny(overrides: &[&str]) -> RunConfig {
    let base = json!({
        "epochs": 2,
        "batch_size": 4,
        "augment": "light",
        "checkpoint_every": 2,
        "data": {"kind": "synth", "train": 32, "val": 8, "size": 64, "seed": 3},
        "model": {"preset": "tiny", "input_size": 64},
        "lr": {"base": 0.003, "warmup_steps": 2},
        "eval": {"every": 4, "batch_size": 8}
    });
    let sets: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    RunConfig::from_value(base, &sets).unwrap()
}

/// Starts `config` in `dir` with a stop already requested: the directory
/// then holds the configuration, the step-0 evaluation and a checkpoint.
/// Returns the stopping options.
fn stop_at_once(config: &RunConfig, dir: &Path) -> TrainOptions {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let options = TrainOptions {
        progress: false,
        stop: Some(stop),
        ..TrainOptions::default()
    };
    assert_eq!(
        train(config, dir, &options).unwrap(),
        RunOutcome::Stopped { step: 0 }
    );
    options
}

fn finished(outcome: RunOutcome) -> Summary {
    match outcome {
        RunOutcome::Finished(s) => s,
        other => panic!("expected a finished run, got {other:?}"),
    }
}

#[test]
fn a_run_writes_its_directory_and_repeats_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny(&[]);
    let a = finished(train(&config, &dir.path().join("a"), &TrainOptions::default()).unwrap());
    assert_eq!(a.steps, 16);
    assert_eq!(a.backward, 64);
    assert_eq!(a.forward, 64);
    assert_eq!(a.primary_metric, "AP");
    for name in [
        "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100",
    ] {
        assert!(a.metrics.contains_key(name), "summary lacks {name}");
    }
    let run = dir.path().join("a");
    for file in [
        "config.json",
        "metrics.jsonl",
        "journal.bin",
        "summary.json",
        "predictions.json",
        "val_annotations.json",
        "model.safetensors",
        "checkpoint/state.json",
    ] {
        assert!(run.join(file).exists(), "{file} missing");
    }
    // Evaluations at steps 0, 4, 8, 12 and 16.
    let lines = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, vec![0, 4, 8, 12, 16]);
    // The predictions file rescored from disk gives the summary's AP.
    let rescored = isdet_eval::evaluate_files(
        a.val_annotations.as_ref().unwrap(),
        &run.join("predictions.json"),
    )
    .unwrap();
    assert_eq!(rescored.get("AP"), a.metrics.get("AP").copied());
    // A second run of the same configuration gives the same numbers.
    let b = finished(train(&config, &dir.path().join("b"), &TrainOptions::default()).unwrap());
    assert_eq!(a.metrics, b.metrics);
    assert_eq!(
        std::fs::read(run.join("predictions.json")).unwrap(),
        std::fs::read(dir.path().join("b/predictions.json")).unwrap()
    );
    // Training the finished directory again reports it, unchanged.
    match train(&config, &run, &TrainOptions::default()).unwrap() {
        RunOutcome::AlreadyFinished(s) => assert_eq!(s, a),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_nan_loss_names_the_step_and_the_sample_ids() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny(&["fault={\"nan_loss_at_steps\": [5]}"]);
    let err = train(&config, dir.path(), &TrainOptions::default()).unwrap_err();
    match &err {
        TrainerError::NonFiniteLoss { step, ids, bad, .. } => {
            assert_eq!(*step, 5);
            assert_eq!(ids.len(), 4);
            assert_eq!(bad, ids);
            assert!(ids.iter().all(|&id| id < 32));
        }
        other => panic!("expected a non-finite loss error, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("step 5")
            && text.contains(&format!(
                "{:?}",
                match &err {
                    TrainerError::NonFiniteLoss { ids, .. } => ids.clone(),
                    _ => vec![],
                }
            )),
        "{text}"
    );

    // With the skip policy the batch is skipped, counted, and the run ends.
    let config = tiny(&[
        "fault={\"nan_loss_at_steps\": [5, 9]}",
        "on_nonfinite=\"skip\"",
    ]);
    let s = finished(train(&config, &dir.path().join("skip"), &TrainOptions::default()).unwrap());
    assert_eq!(s.skipped_batches, 2);
    assert!(s.metrics["AP"].is_finite());
}

#[test]
fn a_directory_refuses_another_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let options = stop_at_once(&tiny(&[]), dir.path());
    let err = train(&tiny(&["budget=0.5"]), dir.path(), &options).unwrap_err();
    assert!(
        matches!(&err, TrainerError::ConfigChanged { field, .. } if field == "budget"),
        "{err}"
    );
}

#[test]
fn bad_configurations_name_the_field() {
    for (set, field) in [
        ("budget=1.5", "budget"),
        ("batch_size=0", "batch_size"),
        ("model.input_size=50", "model.input_size"),
        ("strategy={\"kind\": \"no_such\"}", "no_such"),
        ("lr.base=-1", "lr.base"),
        ("augment=ricap", "augment: Ricap is not a Detection recipe"),
        ("model.preset=huge", "huge"),
        ("device=gpu", "device: \"gpu\" is not cpu, cuda or cuda:N"),
        ("device=cuda:x", "device: \"cuda:x\""),
        // Stray fields beside a kind that takes none, and typos in nested
        // tables, are named rather than dropped.
        (
            "strategy={\"kind\": \"uniform\", \"epsilon\": 0.1}",
            "unknown field `strategy.epsilon`",
        ),
        (
            "heuristic={\"kind\": \"entropy\", \"part\": \"classification\"}",
            "unknown field `heuristic.part`",
        ),
        (
            "strategy={\"kind\": \"weighted_with_replacement\", \"epsilom\": 0.1}",
            "epsilom",
        ),
        ("eval.evry=3", "evry"),
        // AFSS tiers by learning sufficiency: another score is refused at
        // load, not at its first refresh.
        (
            "strategy={\"kind\": \"afss\"}",
            "heuristic: strategy afss tiers images",
        ),
        (
            "data={\"kind\": \"mnist-det\", \"dir\": \"x\", \"scenes\": {\"regime\": {\"empty_share\": 2}}}",
            "data.scenes",
        ),
    ] {
        let base = serde_json::to_value(tiny(&[])).unwrap();
        let err = RunConfig::from_value(base, &[set.to_string()]).unwrap_err();
        assert!(err.to_string().contains(field), "{set}: {err}");
    }
    // The device is typed: its text form goes in and comes back out.
    for (text, device) in [
        ("cpu", DeviceConfig::Cpu),
        ("cuda", DeviceConfig::Cuda(None)),
        ("cuda:0", DeviceConfig::Cuda(Some(0))),
        ("cuda:3", DeviceConfig::Cuda(Some(3))),
    ] {
        let base = serde_json::to_value(tiny(&[])).unwrap();
        let config = RunConfig::from_value(base, &[format!("device={text}")]).unwrap();
        assert_eq!(config.device, device);
        assert_eq!(serde_json::to_value(config).unwrap()["device"], text);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "budget = 0.5\nunknown_field = 1\n").unwrap();
    let err = RunConfig::load(&path, &[]).unwrap_err();
    assert!(
        err.to_string().contains("bad.toml") && err.to_string().contains("unknown_field"),
        "{err}"
    );
}

#[test]
fn importance_sampling_runs_spend_the_same_budget() {
    let dir = tempfile::tempdir().unwrap();
    let weighted = r#"strategy={"kind": "weighted_without_replacement"}"#;
    for (k, sets) in [
        vec![weighted, r#"heuristic={"kind": "loss"}"#],
        vec![weighted, r#"heuristic={"kind": "entropy"}"#],
        vec![weighted, r#"heuristic={"kind": "threshold_closeness"}"#],
        vec![r#"strategy={"kind": "selective_backprop"}"#],
    ]
    .into_iter()
    .enumerate()
    {
        let mut sets = sets;
        sets.push("budget=0.5");
        let s = finished(
            train(
                &tiny(&sets),
                &dir.path().join(k.to_string()),
                &TrainOptions::default(),
            )
            .unwrap(),
        );
        assert_eq!(s.steps, 8, "{sets:?}");
        assert_eq!(s.backward, 32, "{sets:?}");
        assert!(s.forward >= s.backward, "{sets:?}");
    }
}

/// The acceptance check that anyone can rescore a run with pycocotools:
/// the run's `predictions.json` against its `val_annotations.json` gives
/// the summary's AP. Needs python3 with pycocotools (CI installs it; on
/// other machines the test says so and passes only when CI is not set).
#[test]
fn pycocotools_gives_the_summary_ap() {
    let check = std::process::Command::new("python3")
        .args(["-c", "import pycocotools"])
        .output();
    if !check.map(|o| o.status.success()).unwrap_or(false) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have pycocotools (pip install pycocotools)"
        );
        eprintln!("skipped: python3 with pycocotools is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = finished(train(&tiny(&["epochs=3"]), dir.path(), &TrainOptions::default()).unwrap());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/coco_eval.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(s.val_annotations.as_ref().unwrap())
        .arg(dir.path().join("predictions.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for name in ["AP", "AP50", "AP75", "AR100"] {
        let theirs = stats[name].as_f64().unwrap();
        let ours = s.metrics[name];
        assert!(
            (theirs - ours).abs() < 1e-9,
            "{name}: pycocotools {theirs}, isdet {ours}"
        );
    }
}

fn sampling_record(run: &Path) -> isdet_trainer::SamplingRecord {
    serde_json::from_str(&std::fs::read_to_string(run.join("sampling.json")).unwrap()).unwrap()
}

#[test]
fn the_sampling_record_counts_every_pass_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    // Uniform without replacement at 100%: every image once per epoch.
    let run = dir.path().join("uniform");
    let s = finished(train(&tiny(&[]), &run, &TrainOptions::default()).unwrap());
    let record = sampling_record(&run);
    assert_eq!(record.trained, vec![2; 32]);
    assert_eq!(record.forwarded, vec![2; 32]);
    assert!(record.last_score.iter().all(Option::is_some));
    let steps: Vec<u64> = record.scores_over_run.iter().map(|q| q.step).collect();
    assert_eq!(steps, vec![4, 8, 12, 16], "every evaluation step");
    assert_eq!(s.steps, 16);
    for q in &record.scores_over_run {
        assert!(q.quantiles.windows(2).all(|w| w[0] <= w[1]), "{q:?}");
    }
    // Selective backprop forwards candidates it does not train on: the
    // record's counts add up to the summary's passes, and the journal
    // rebuilds the same record after the run.
    let run = dir.path().join("sb");
    let config = tiny(&[r#"strategy={"kind": "selective_backprop"}"#, "budget=0.5"]);
    let s = finished(train(&config, &run, &TrainOptions::default()).unwrap());
    let record = sampling_record(&run);
    let sum = |v: &[u32]| v.iter().map(|&c| u64::from(c)).sum::<u64>();
    assert_eq!(sum(&record.trained), s.backward);
    assert_eq!(sum(&record.forwarded), s.forward);
    assert!(s.forward > s.backward, "candidates were forwarded only");
    assert!(
        record
            .trained
            .iter()
            .zip(&record.forwarded)
            .all(|(t, f)| t <= f)
    );
    std::fs::remove_file(run.join("sampling.json")).unwrap();
    assert_eq!(isdet_trainer::write_sampling_record(&run).unwrap(), record);
    assert_eq!(sampling_record(&run), record);
}

/// A checkpoint counts on the evaluations logged before it: when
/// `metrics.jsonl` has lost some (a copy of the directory taken while the
/// run was going), resuming names the file instead of padding it with zero
/// bytes up to the checkpoint's length.
#[test]
fn a_metrics_log_shorter_than_the_checkpoint_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    stop_at_once(&tiny(&[]), dir.path());
    let metrics = dir.path().join("metrics.jsonl");
    let text = std::fs::read(&metrics).unwrap();
    assert!(!text.is_empty(), "the step-0 evaluation is logged");
    std::fs::write(&metrics, &text[..text.len() / 2]).unwrap();
    let err = train(&tiny(&[]), dir.path(), &TrainOptions::default()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("metrics.jsonl") && message.contains("cannot resume"),
        "{message}"
    );
    assert_eq!(std::fs::read(&metrics).unwrap(), &text[..text.len() / 2]);
}

/// A copy of finished run `from` made unfinished again (its summary and
/// final files gone), so that training it resumes from its checkpoints.
fn unfinished_copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("checkpoint")).unwrap();
    for sub in ["", "checkpoint"] {
        for entry in std::fs::read_dir(from.join(sub)).unwrap().flatten() {
            if entry.path().is_file() {
                std::fs::copy(entry.path(), to.join(sub).join(entry.file_name())).unwrap();
            }
        }
    }
    for gone in [
        "summary.json",
        "model.safetensors",
        "predictions.json",
        "sampling.json",
    ] {
        std::fs::remove_file(to.join(gone)).unwrap();
    }
}

fn checkpoint_state(run: &Path, file: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("checkpoint").join(file)).unwrap())
        .unwrap()
}

#[test]
fn the_checkpoint_before_the_latest_is_kept_until_the_next_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    finished(train(&tiny(&[]), dir.path(), &TrainOptions::default()).unwrap());
    let (latest, previous) = (
        checkpoint_state(dir.path(), "state.json"),
        checkpoint_state(dir.path(), "state-previous.json"),
    );
    assert!(previous["optimiser_steps"].as_u64() < latest["optimiser_steps"].as_u64());
    let mut parts: Vec<String> = std::fs::read_dir(dir.path().join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    parts.sort();
    let mut named: Vec<String> = [&latest, &previous]
        .iter()
        .flat_map(|s| {
            [
                s["weights"].as_str(),
                s["optimizer"].as_str(),
                s["diagnostics"].as_str(),
            ]
        })
        .map(|n| n.unwrap().to_string())
        .collect();
    named.sort();
    assert_eq!(parts, named, "exactly the two checkpoints' files remain");
}

#[test]
fn a_damaged_latest_checkpoint_resumes_from_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny(&[]);
    let whole = dir.path().join("whole");
    let expected = finished(train(&config, &whole, &TrainOptions::default()).unwrap());
    let latest = checkpoint_state(&whole, "state.json");
    let weights = latest["weights"].as_str().unwrap().to_string();
    let optimizer = latest["optimizer"].as_str().unwrap().to_string();
    type Damage = fn(&Path);
    let cut_short: Damage = |p| {
        let bytes = std::fs::read(p).unwrap();
        std::fs::write(p, &bytes[..bytes.len() / 3]).unwrap();
    };
    let garbage: Damage = |p| std::fs::write(p, b"\x00\x17 not a checkpoint at all").unwrap();
    for (k, (file, damage)) in [
        (weights.as_str(), cut_short),
        (weights.as_str(), garbage),
        (optimizer.as_str(), cut_short),
        ("state.json", garbage),
    ]
    .into_iter()
    .enumerate()
    {
        let run = dir.path().join(format!("damaged-{k}"));
        unfinished_copy(&whole, &run);
        damage(&run.join("checkpoint").join(file));
        let resumed = finished(train(&config, &run, &TrainOptions::default()).unwrap());
        assert_eq!(resumed.metrics, expected.metrics, "{file}, damage {k}");
        // The diagnostic tables come back from the checkpoint and the draws
        // from the journal: the resumed run logs what the whole one did.
        assert_eq!(
            last_diagnostics(&run),
            last_diagnostics(&whole),
            "{file}, damage {k}"
        );
        assert_eq!(
            (resumed.steps, resumed.forward, resumed.backward),
            (expected.steps, expected.forward, expected.backward)
        );
    }
}

fn last_diagnostics(run: &Path) -> isdet_trainer::Diagnostics {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last: isdet_trainer::MetricsRecord =
        serde_json::from_str(text.lines().last().unwrap()).unwrap();
    last.diagnostics.unwrap()
}

#[test]
fn no_readable_checkpoint_is_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny(&[]);
    let whole = dir.path().join("whole");
    finished(train(&config, &whole, &TrainOptions::default()).unwrap());
    let run = dir.path().join("damaged");
    unfinished_copy(&whole, &run);
    for state in ["state.json", "state-previous.json"] {
        std::fs::write(run.join("checkpoint").join(state), b"{ garbage").unwrap();
    }
    let message = train(&config, &run, &TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("no checkpoint can be read")
            && message.contains("state.json")
            && message.contains("state-previous.json"),
        "{message}"
    );
}
