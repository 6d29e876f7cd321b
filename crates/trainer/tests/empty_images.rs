//! Training on a set that holds empty frames (no object at all) and noisy
//! boxes (a wrong class): the losses, every heuristic the detector takes
//! and the sampler must handle an image without positives, and the run's
//! diagnostics must be recorded.

use std::path::Path;

mod common;

use common::read_json;
use isdet_heuristics::Heuristic;
use isdet_trainer::{
    MetricsRecord, RunConfig, RunOutcome, SamplingRecord, TrainOptions, files, train,
};
use serde_json::json;

/// Every fourth training frame is empty (a blank canvas, no annotation);
/// every fifth non-empty one has each box's class moved to the next class.
fn is_empty(index: usize) -> bool {
    index % 4 == 1
}

/// Writes 24 training and 8 validation synth scenes at 64 px as COCO under
/// `root`; returns the `data` configuration that reads them.
fn write_set(root: &Path) -> serde_json::Value {
    let splits = [("train", 24, 5), ("val", 8, 6)];
    let classes = isdet_data::SYNTH_CLASSES.len() as u32;
    common::write_coco_set(root, &splits, |i, sample| {
        if is_empty(i) {
            common::make_empty(sample);
        } else if i % 5 == 0 {
            for a in &mut sample.annotations {
                a.class = (a.class + 1) % classes;
            }
        }
    })
}

/// 12 optimiser steps (2 epochs of batch 4) on the set of `data`.
fn config(
    data: &serde_json::Value,
    heuristic: Heuristic,
    strategy: serde_json::Value,
) -> RunConfig {
    let value = json!({
        "method": "empty-frames",
        "epochs": 2,
        "batch_size": 4,
        "augment": "train",
        "checkpoint_every": 4,
        "data": data,
        "model": {"preset": "tiny", "input_size": 64},
        "lr": {"base": 0.003, "warmup_steps": 2},
        "eval": {"every": 6, "batch_size": 8},
        "strategy": strategy,
        "heuristic": serde_json::to_value(heuristic).unwrap(),
    });
    RunConfig::from_value(value, &[]).unwrap()
}

#[test]
fn every_heuristic_scores_empty_frames_and_noisy_boxes_without_a_nan() {
    let root = tempfile::tempdir().unwrap();
    let data = write_set(&root.path().join("data"));
    let detection_heuristics = Heuristic::ALL
        .into_iter()
        .filter(|h| !matches!(h, Heuristic::PSgd));
    for heuristic in detection_heuristics {
        let dir = root.path().join(format!("run-{}", heuristic.label()));
        let outcome = train(
            &config(&data, heuristic, json!({"kind": "uniform"})),
            &dir,
            &TrainOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", heuristic.label()));
        let RunOutcome::Finished(summary) = outcome else {
            panic!("{}: not finished", heuristic.label());
        };
        assert_eq!(summary.steps, 12);
        assert_eq!(summary.skipped_batches, 0, "{}", heuristic.label());
        let sampling: SamplingRecord = read_json(&dir.join(files::SAMPLING));
        for (id, score) in sampling.last_score.iter().enumerate() {
            let score =
                score.unwrap_or_else(|| panic!("{}: image {id} unscored", heuristic.label()));
            assert!(
                score.is_finite() && score >= 0.0,
                "{}: image {id} (empty: {}) scored {score}",
                heuristic.label(),
                is_empty(id)
            );
        }
    }
}

#[test]
fn importance_sampling_on_empty_frames_logs_its_diagnostics() {
    let root = tempfile::tempdir().unwrap();
    let data = write_set(&root.path().join("data"));
    let strategies = [
        json!({"kind": "weighted_with_replacement", "epsilon": 0.1}),
        json!({"kind": "presampling"}),
        json!({"kind": "selective_backprop"}),
    ];
    for strategy in strategies {
        let dir = root.path().join(strategy["kind"].as_str().unwrap());
        let run = config(&data, Heuristic::LOSS, strategy);
        train(&run, &dir, &TrainOptions::default()).unwrap();
        let text = std::fs::read_to_string(dir.join(files::METRICS)).unwrap();
        let records: Vec<MetricsRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let last = records.last().unwrap().diagnostics.unwrap();
        let first = records[0].diagnostics.unwrap();
        // Nothing is scored before the first step.
        assert_eq!((first.scored, first.tau_loss), (0, None));
        assert!(last.scored > 0 && last.scored <= 24);
        for tau in [last.tau_loss.unwrap(), last.tau_grad_norm.unwrap()] {
            // τ = sqrt(mean(s²)) / mean(s) lies in [1, sqrt(n)].
            assert!((1.0..=(last.scored as f64).sqrt()).contains(&tau), "{tau}");
        }
        assert!((0.0..1.0).contains(&last.draw_gini));
        let presampling = run.strategy.build().unwrap().name() == "presampling";
        assert_eq!(last.importance_on.is_some(), presampling);
        assert_eq!(last.tau_threshold.is_some(), presampling);
    }
}
