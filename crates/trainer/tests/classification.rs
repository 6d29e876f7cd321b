//! Classification runs on a tiny hand-made IDX set: the classifier learns,
//! every augmentation recipe and method runs within the budget, and a run
//! stopped mid-way (with the stateful threshold-closeness scorer) resumes
//! to the uninterrupted result.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use isdet_data::{LabelledImages, idx_file_names, write_idx_pair};
use isdet_trainer::{RunConfig, RunOutcome, Summary, TrainOptions, train};
use serde_json::json;

/// `n` 28×28 images of 3 classes: class k is a bright 8×8 square in the
/// k-th third of the image, top to bottom, on faint seeded noise.
fn images(n: usize, seed: u64) -> LabelledImages {
    let mut pixels = vec![0u8; n * 28 * 28];
    let mut labels = Vec::with_capacity(n);
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in 0..n {
        let k = i % 3;
        labels.push(k as u8);
        for y in 0..28 {
            for x in 0..28 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let noise = (state % 40) as u8;
                // Rows, not columns: a horizontal flip keeps the class.
                let square = (10..18).contains(&x) && (2 + 9 * k..10 + 9 * k).contains(&y);
                pixels[i * 784 + y * 28 + x] = if square { 220 } else { noise };
            }
        }
    }
    LabelledImages {
        rows: 28,
        cols: 28,
        pixels,
        labels,
    }
}

fn write_set(dir: &Path) {
    for (split, n, seed) in [("train", 96, 1), ("t10k", 30, 2)] {
        let (imgs, labs) = idx_file_names(split);
        write_idx_pair(&images(n, seed), &dir.join(imgs), &dir.join(labs)).unwrap();
    }
}

fn config(data: &Path, sets: &[&str]) -> RunConfig {
    let base = json!({
        "task": "classification",
        "epochs": 4,
        "batch_size": 16,
        "augment": "standard",
        "checkpoint_every": 2,
        "data": {"kind": "idx", "dir": data, "classes": "mnist"},
        "model": {"preset": "small", "input_size": 28},
        "lr": {"base": 0.003, "warmup_steps": 2},
        "eval": {"every": 6, "batch_size": 32}
    });
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    RunConfig::from_value(base, &sets).unwrap()
}

fn finished(outcome: RunOutcome) -> Summary {
    match outcome {
        RunOutcome::Finished(s) => s,
        other => panic!("expected a finished run, got {other:?}"),
    }
}

#[test]
fn the_classifier_learns_and_reports_top1() {
    let tmp = tempfile::tempdir().unwrap();
    write_set(tmp.path());
    let s = finished(
        train(
            &config(tmp.path(), &["epochs=8"]),
            &tmp.path().join("run"),
            &TrainOptions::default(),
        )
        .unwrap(),
    );
    assert_eq!(s.task, "classification");
    assert_eq!(s.primary_metric, "top1");
    assert_eq!(s.steps, 48);
    assert!(s.val_annotations.is_none());
    assert!(s.metrics["top1"] >= 0.9, "top-1 {}", s.metrics["top1"]);
    let first = std::fs::read_to_string(tmp.path().join("run/metrics.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert!(first["metrics"]["top1"].as_f64().unwrap() < 0.7);
}

#[test]
fn every_recipe_and_method_holds_the_budget() {
    let tmp = tempfile::tempdir().unwrap();
    write_set(tmp.path());
    let psgd = r#"strategy={"kind": "weighted_without_replacement", "score": "mean", "unseen": "max_score"}"#;
    let runs: Vec<Vec<&str>> = vec![
        vec!["augment=\"mixup\"", psgd, r#"heuristic={"kind": "p_sgd"}"#],
        vec![
            "augment=\"ricap\"",
            r#"strategy={"kind": "weighted_without_replacement"}"#,
            r#"heuristic={"kind": "threshold_closeness"}"#,
        ],
        vec![
            "augment=\"cutmix\"",
            r#"strategy={"kind": "selective_backprop"}"#,
        ],
        vec![
            "augment=\"cutout\"",
            r#"strategy={"kind": "presampling"}"#,
            r#"heuristic={"kind": "grad_norm_bound"}"#,
        ],
        vec![
            "augment=\"rand-augment\"",
            r#"strategy={"kind": "info_batch"}"#,
        ],
    ];
    for (k, mut sets) in runs.into_iter().enumerate() {
        sets.push("budget=0.5");
        let s = finished(
            train(
                &config(tmp.path(), &sets),
                &tmp.path().join(k.to_string()),
                &TrainOptions::default(),
            )
            .unwrap(),
        );
        assert!(s.steps <= 12, "{sets:?}: {} steps", s.steps);
        assert!(s.backward <= 48 * 4, "{sets:?}");
        assert!(s.forward >= s.backward, "{sets:?}");
        assert!(s.metrics["top1"].is_finite(), "{sets:?}");
    }
}

#[test]
fn a_stopped_closeness_run_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    write_set(tmp.path());
    let sets = [
        "augment=\"ricap\"",
        r#"strategy={"kind": "weighted_with_replacement"}"#,
        r#"heuristic={"kind": "threshold_closeness"}"#,
    ];
    let cfg = config(tmp.path(), &sets);
    let whole = finished(train(&cfg, &tmp.path().join("whole"), &TrainOptions::default()).unwrap());

    let dir = tmp.path().join("stopped");
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, dir) = (Arc::clone(&stop), dir.clone());
        std::thread::spawn(move || {
            // Stop once a checkpoint past step 6 exists.
            loop {
                let steps = std::fs::read_to_string(dir.join("checkpoint/state.json"))
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .and_then(|v| v["optimiser_steps"].as_u64())
                    .unwrap_or(0);
                if steps >= 6 {
                    stop.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    let options = TrainOptions {
        progress: false,
        stop: Some(stop),
        ..TrainOptions::default()
    };
    let outcome = train(&cfg, &dir, &options).unwrap();
    watcher.join().unwrap();
    match outcome {
        RunOutcome::Stopped { step } => assert!(step < 24, "stopped at {step}"),
        other => panic!("expected a stop, got {other:?}"),
    }
    assert!(dir.join("checkpoint/state.json").exists());
    let state = std::fs::read_to_string(dir.join("checkpoint/state.json")).unwrap();
    assert!(
        state.contains("scorer-"),
        "the scorer state is checkpointed: {state}"
    );
    let resumed = finished(train(&cfg, &dir, &TrainOptions::default()).unwrap());
    assert_eq!(whole.metrics, resumed.metrics);
    assert_eq!(
        (whole.steps, whole.forward, whole.backward),
        (resumed.steps, resumed.forward, resumed.backward)
    );
}

#[test]
fn rho_loss_trains_its_irreducible_model_on_training_images_held_out() {
    let tmp = tempfile::tempdir().unwrap();
    write_set(tmp.path());
    // 96 training images: 24 held out for the irreducible-loss model, the
    // other 72 trained on; 4 epochs of 72 in batches of 16 are 20 steps.
    let run = config(
        tmp.path(),
        &[
            "data.holdout=24",
            r#"strategy={"kind": "rho_loss", "ratio": 2}"#,
            r#"irreducible={"epochs": 2}"#,
        ],
    );
    let dir = tmp.path().join("rho");
    let s = finished(train(&run, &dir, &TrainOptions::default()).unwrap());
    let il = s.irreducible.expect("the irreducible model's cost");
    assert_eq!(il.holdout_images, 24);
    assert_eq!(il.steps, 4, "2 epochs of 24 in batches of 16");
    assert_eq!(il.loss_forward, 72, "one IL per trained image");
    assert_eq!(s.steps, 20);
    assert_eq!(s.backward, 4 * 72, "every trained image once an epoch");
    // The IL run trains on the held-out images only, the run on the rest.
    let il_config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("irreducible/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(il_config["data"]["train_on_holdout"], true);
    assert_eq!(il_config["data"]["holdout"], 24);
    // Without a holdout the section is refused, naming the field.
    let base = serde_json::to_value(config(tmp.path(), &[])).unwrap();
    let err = RunConfig::from_value(
        base,
        &[
            r#"strategy={"kind": "rho_loss"}"#.to_string(),
            r#"irreducible={}"#.to_string(),
        ],
    )
    .unwrap_err();
    assert!(err.to_string().contains("data.holdout"), "{err}");
}
