//! RHO-LOSS in the trainer: the irreducible-loss (IL) model trained on a
//! holdout set before the run's first step, the stored losses every
//! rebuild of the sampler reads, the costs reported beside the run's, and
//! the configuration checks.

use std::path::Path;

mod common;

use common::read_json;
use isdet_trainer::{
    IrreducibleLosses, RunConfig, RunOutcome, SamplingRecord, Summary, TrainOptions, files, train,
};
use serde_json::{Value, json};

/// Training images, holdout images, batch size, epochs, candidates per
/// trained image.
const TRAIN: usize = 32;
const HOLDOUT: usize = 8;
const BATCH: u64 = 4;
const EPOCHS: u64 = 2;
const RATIO: u64 = 2;

/// Writes 32 training, 8 holdout and 8 validation synth scenes at 64 px
/// as COCO under `root` (three seeds: disjoint scenes drawn alike);
/// returns the `data` configuration and the `irreducible` section.
fn write_set(root: &Path) -> (Value, Value) {
    let splits = [("train", TRAIN, 5), ("holdout", HOLDOUT, 7), ("val", 8, 6)];
    let data = common::write_coco_set(root, &splits, |_, _| {});
    let path = |p: &str| root.join(p).to_string_lossy().into_owned();
    let irreducible = json!({
        "holdout_json": path("instances_holdout.json"),
        "holdout_images": path("holdout"),
    });
    (data, irreducible)
}

/// 16 optimiser steps of RHO-LOSS (2 epochs of batch 4 over 32 images),
/// 8 candidates per step.
fn config(data: &Value, irreducible: &Value) -> RunConfig {
    let value = json!({
        "method": "rho-loss",
        "epochs": EPOCHS,
        "batch_size": BATCH,
        "augment": "light",
        "checkpoint_every": 4,
        "data": data,
        "model": {"preset": "tiny", "input_size": 64},
        "lr": {"base": 0.003, "warmup_steps": 2},
        "eval": {"every": 8, "batch_size": 8},
        "strategy": {"kind": "rho_loss", "ratio": RATIO},
        "heuristic": {"kind": "loss"},
        "irreducible": irreducible,
    });
    RunConfig::from_value(value, &[]).unwrap()
}

fn finished(outcome: RunOutcome) -> Summary {
    match outcome {
        RunOutcome::Finished(s) => s,
        other => panic!("expected a finished run, got {other:?}"),
    }
}

/// Starts `config` in `dir` with a stop already requested.
fn stopped_at_once(config: &RunConfig, dir: &Path) -> RunOutcome {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let options = TrainOptions {
        stop: Some(stop),
        ..TrainOptions::default()
    };
    train(config, dir, &options).unwrap()
}

fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn a_rho_loss_run_holds_its_budget_and_reports_the_irreducible_model_beside_it() {
    let root = tempfile::tempdir().unwrap();
    let (data, irreducible) = write_set(&root.path().join("data"));
    let config = config(&data, &irreducible);
    let dir = root.path().join("run");
    let summary = finished(train(&config, &dir, &TrainOptions::default()).unwrap());
    let steps = EPOCHS * TRAIN as u64 / BATCH;
    assert_eq!(summary.strategy, "rho_loss");
    assert_eq!(summary.steps, steps);
    assert_eq!(summary.backward, steps * BATCH);
    // Per step: ratio · b candidates forwarded to be scored, then the b
    // selected forwarded again to be trained on; nothing else.
    assert_eq!(summary.forward, steps * (RATIO * BATCH + BATCH));
    let sampling: SamplingRecord = read_json(&dir.join(files::SAMPLING));
    assert_eq!(sampling.disagreement(&summary), None);

    // The IL run: uniform at budget 1 on the holdout, a quarter of the
    // run's 16 reference steps = 2 epochs of 2 steps, its own seed.
    let il_dir = dir.join(files::IRREDUCIBLE_DIR);
    let il_summary: Summary = read_json(&il_dir.join(files::SUMMARY));
    let il_config: RunConfig = read_json(&il_dir.join(files::CONFIG));
    assert_eq!(
        (il_summary.strategy.as_str(), il_summary.budget),
        ("uniform", 1.0)
    );
    assert_eq!((il_config.epochs, il_summary.steps), (2, 4));
    assert_ne!(il_config.seed, config.seed);
    assert!(il_config.irreducible.is_none());

    // Its costs, beside the run's and not in them.
    let cost = summary
        .irreducible
        .expect("the summary reports the IL model's cost");
    let on_disk: Summary = read_json(&dir.join(files::SUMMARY));
    assert_eq!(on_disk, summary);
    assert_eq!(cost.holdout_images, HOLDOUT as u64);
    assert_eq!(
        (cost.steps, cost.forward, cost.backward, cost.images),
        (4, 16, 16, 16)
    );
    assert_eq!(cost.seconds, il_summary.seconds);
    assert_eq!(cost.loss_forward, TRAIN as u64);
    assert!(cost.loss_seconds > 0.0 && cost.seconds > 0.0);

    // One finite, non-negative IL per training image, and not all alike.
    let stored: IrreducibleLosses = read_json(&dir.join(files::IRREDUCIBLE_LOSSES));
    assert_eq!(stored.cost, cost);
    assert_eq!(stored.losses.len(), TRAIN);
    assert!(stored.losses.iter().all(|l| l.is_finite() && *l >= 0.0));
    assert!(stored.losses.iter().any(|l| *l != stored.losses[0]));

    // Each step trained on the candidates with the largest training loss
    // − stored IL: replaying that rule on the journal's candidate scores
    // gives the run's training counts.
    let mut trained = vec![0u32; TRAIN];
    for (ids, scores) in journal(&dir.join(files::JOURNAL)) {
        for id in rho_selection(&ids, &scores, &stored.losses) {
            trained[id] += 1;
        }
    }
    assert_eq!(trained, sampling.trained);

    // IL is taken in evaluation mode: it does not depend on the images
    // forwarded beside each (batch statistics would).
    let mut other = config.clone();
    (other.eval.batch_size, other.budget) = (5, 0.25);
    let other_dir = root.path().join("other");
    finished(train(&other, &other_dir, &TrainOptions::default()).unwrap());
    let again: IrreducibleLosses = read_json(&other_dir.join(files::IRREDUCIBLE_LOSSES));
    for (a, b) in stored.losses.iter().zip(&again.losses) {
        assert!((a - b).abs() <= 1e-4 * a.max(1.0), "{a} vs {b}");
    }
}

/// The (ids, scores) of every entry of the journal at `path`
/// (docs/run-directory.md: per step `u64 step`, `u32 n`, `n × u32` ids,
/// `n × f32` scores, little-endian).
fn journal(path: &Path) -> Vec<(Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut entries = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = word(at + 8) as usize;
        let ids = (0..n).map(|i| word(at + 12 + 4 * i) as usize).collect();
        let scores = (0..n)
            .map(|i| f32::from_bits(word(at + 12 + 4 * n + 4 * i)))
            .collect();
        entries.push((ids, scores));
        at += 12 + 8 * n;
    }
    entries
}

/// RHO-LOSS's rule: the `BATCH` candidates with the largest training loss
/// − IL, ties to the earlier candidate.
fn rho_selection(ids: &[usize], scores: &[f32], il: &[f32]) -> Vec<usize> {
    let mut ranked: Vec<(f64, usize)> = ids
        .iter()
        .zip(scores)
        .map(|(&id, &loss)| (f64::from(loss) - f64::from(il[id]), id))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranked
        .iter()
        .take(BATCH as usize)
        .map(|&(_, id)| id)
        .collect()
}

#[test]
fn interrupted_rho_loss_runs_resume_to_the_same_result() {
    let root = tempfile::tempdir().unwrap();
    let (data, irreducible) = write_set(&root.path().join("data"));
    let config = config(&data, &irreducible);
    let whole_dir = root.path().join("whole");
    let whole = finished(train(&config, &whole_dir, &TrainOptions::default()).unwrap());
    let losses = |dir: &Path| read_json::<IrreducibleLosses>(&dir.join(files::IRREDUCIBLE_LOSSES));

    // Stopped while the IL model trains: nothing is stored yet.
    let during = root.path().join("during");
    assert_eq!(
        stopped_at_once(&config, &during),
        RunOutcome::Stopped { step: 0 }
    );
    assert!(!during.join(files::IRREDUCIBLE_LOSSES).exists());
    assert!(!during.join(files::METRICS).exists());

    // Stopped after the IL model trained (its finished run copied in):
    // the losses are stored before the run's first step.
    let after = root.path().join("after");
    copy_files(
        &whole_dir.join(files::IRREDUCIBLE_DIR),
        &after.join(files::IRREDUCIBLE_DIR),
    );
    assert_eq!(
        stopped_at_once(&config, &after),
        RunOutcome::Stopped { step: 0 }
    );
    assert_eq!(losses(&after).losses, losses(&whole_dir).losses);

    // Stopped in the middle: a copy of the run without its final files
    // resumes from its last checkpoint with the stored losses.
    let middle = root.path().join("middle");
    copy_files(&whole_dir, &middle);
    copy_files(&whole_dir.join("checkpoint"), &middle.join("checkpoint"));
    for gone in [
        files::SUMMARY,
        files::MODEL_WEIGHTS,
        files::PREDICTIONS,
        files::SAMPLING,
    ] {
        std::fs::remove_file(middle.join(gone)).unwrap();
    }

    for dir in [&during, &after, &middle] {
        let resumed = finished(train(&config, dir, &TrainOptions::default()).unwrap());
        assert_eq!(resumed.metrics, whole.metrics, "{}", dir.display());
        assert_eq!(
            (resumed.steps, resumed.forward, resumed.backward),
            (whole.steps, whole.forward, whole.backward)
        );
        assert_eq!(losses(dir).losses, losses(&whole_dir).losses);
        let cost = resumed.irreducible.unwrap();
        assert_eq!((cost.steps, cost.forward), (4, 16));
    }

    // A run with a checkpoint but without its stored losses is refused,
    // naming the file, rather than sampling with recomputed ones.
    let lost = root.path().join("lost");
    copy_files(&whole_dir, &lost);
    copy_files(&whole_dir.join("checkpoint"), &lost.join("checkpoint"));
    std::fs::remove_file(lost.join(files::SUMMARY)).unwrap();
    std::fs::remove_file(lost.join(files::IRREDUCIBLE_LOSSES)).unwrap();
    let err = train(&config, &lost, &TrainOptions::default()).unwrap_err();
    assert!(err.to_string().contains(files::IRREDUCIBLE_LOSSES), "{err}");
}

/// `value` without the field at dotted `path`: what a configuration that
/// leaves it out reads.
fn without(mut value: Value, path: &str) -> Value {
    let (outer, key) = match path.split_once('.') {
        Some((outer, inner)) => (&mut value[outer], inner),
        None => (&mut value, path),
    };
    outer.as_object_mut().unwrap().remove(key);
    value
}

#[test]
fn rho_loss_and_its_model_come_together_and_errors_name_the_field() {
    let (data, irreducible) = write_set(tempfile::tempdir().unwrap().path());
    let good = serde_json::to_value(config(&data, &irreducible)).unwrap();
    let synth = json!({"kind": "synth", "train": 32, "val": 8, "size": 64, "seed": 3});
    let synth = format!("data={synth}");
    // (field left out, override, what the error names)
    let cases = [
        ("irreducible", "", "irreducible: strategy rho_loss needs"),
        (
            "",
            r#"strategy={"kind": "uniform"}"#,
            "irreducible: only strategy rho_loss",
        ),
        ("", r#"heuristic={"kind": "entropy"}"#, "heuristic:"),
        (
            "irreducible.holdout_images",
            "",
            "irreducible.holdout_images",
        ),
        ("irreducible.holdout_json", "", "irreducible.holdout_json"),
        ("", "irreducible={}", "irreducible.holdout_json"),
        ("", &synth, "irreducible: the irreducible-loss model needs"),
        ("", "irreducible.epochs=0", "irreducible.epochs"),
        ("", "irreducible.batch_size=0", "irreducible.batch_size"),
        ("", "irreducible.lr=-1", "irreducible.lr"),
        ("", "irreducible.epoch=3", "epoch"),
    ];
    for (left_out, set, named) in cases {
        let value = match left_out {
            "" => good.clone(),
            path => without(good.clone(), path),
        };
        let sets: Vec<String> = [set]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string())
            .collect();
        let err = RunConfig::from_value(value, &sets).unwrap_err().to_string();
        assert!(err.contains(named), "{left_out:?} {set:?}: {err}");
    }
    assert!(RunConfig::from_value(good, &[]).is_ok());
}

#[test]
fn configurations_without_the_section_serialise_as_before() {
    let text = RunConfig::default().to_json();
    assert!(!text.contains("irreducible"), "{text}");
    let with: RunConfig = RunConfig::from_value(
        json!({
            "strategy": {"kind": "rho_loss"},
            "data": {"kind": "coco", "train_json": "t.json", "train_images": "t",
                     "val_json": "v.json", "val_images": "v"},
            "irreducible": {"holdout_json": "h.json", "holdout_images": "h", "preset": "small"},
        }),
        &[],
    )
    .unwrap();
    let il = with.irreducible.clone().unwrap();
    assert_eq!((il.epochs, il.batch_size, il.lr), (None, None, None));
    let back: Value = serde_json::from_str(&with.to_json()).unwrap();
    assert_eq!(
        back["irreducible"],
        json!({"holdout_json": "h.json", "holdout_images": "h", "preset": "small"})
    );
}
