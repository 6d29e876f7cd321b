//! AFSS (Xie et al. 2026) trained end to end with its learning
//! sufficiency: the refreshes forward every training image once without
//! training on it, the run holds its step budget, and every score is a
//! sufficiency in [0, 1]. A classifier asked for sufficiency is refused.

use std::path::Path;

mod common;

use common::read_json;
use isdet_trainer::{RunConfig, RunOutcome, SamplingRecord, Summary, TrainOptions, files, train};
use serde_json::json;

/// Training images; every fourth is empty (no object), so that the
/// no-object cases of sufficiency occur.
const TRAIN: usize = 16;

/// Writes `TRAIN` training and 8 validation synth scenes at 64 px as COCO
/// under `root`; returns the `data` configuration that reads them.
fn write_set(root: &Path) -> serde_json::Value {
    let splits = [("train", TRAIN, 11), ("val", 8, 12)];
    common::write_coco_set(root, &splits, |i, sample| {
        if i % 4 == 3 {
            common::make_empty(sample);
        }
    })
}

/// 4 epochs of `TRAIN / 4` steps: 16 optimiser steps at budget 1.
fn config(data: &serde_json::Value, refresh_every: u32) -> RunConfig {
    let value = json!({
        "method": "afss",
        "epochs": 4,
        "batch_size": 4,
        "augment": "light",
        "checkpoint_every": 8,
        "data": data,
        "model": {"preset": "tiny", "input_size": 64},
        "lr": {"base": 0.003, "warmup_steps": 2},
        "eval": {"every": 8, "batch_size": 8},
        "strategy": {"kind": "afss", "refresh_every": refresh_every},
        "heuristic": {"kind": "sufficiency"},
    });
    RunConfig::from_value(value, &[]).unwrap()
}

/// Checks one finished run; returns its number of refreshes.
fn check_run(summary: &Summary, sampling: &SamplingRecord, what: &str) -> u64 {
    assert_eq!(summary.steps, 16, "{what}: the step budget");
    assert_eq!(summary.skipped_batches, 0, "{what}");
    // A refresh forwards every image exactly once and trains on none: each
    // image's forward passes exceed its training passes by the refreshes.
    let refreshes: Vec<i64> = sampling
        .forwarded
        .iter()
        .zip(&sampling.trained)
        .map(|(&f, &t)| i64::from(f) - i64::from(t))
        .collect();
    let r = refreshes[0];
    assert!(r >= 1, "{what}: no refresh happened ({refreshes:?})");
    assert!(
        refreshes.iter().all(|&d| d == r),
        "{what}: images refreshed unevenly: {refreshes:?}"
    );
    assert_eq!(
        summary.forward - summary.backward,
        TRAIN as u64 * r as u64,
        "{what}: forward {} and backward {} passes",
        summary.forward,
        summary.backward
    );
    for (id, score) in sampling.last_score.iter().enumerate() {
        let s = score.unwrap_or_else(|| panic!("{what}: image {id} never scored"));
        assert!((0.0..=1.0).contains(&s), "{what}: image {id} scored {s}");
    }
    r as u64
}

#[test]
fn afss_refreshes_sufficiency_within_the_budget() {
    let root = tempfile::tempdir().unwrap();
    let data = write_set(&root.path().join("data"));
    let mut refreshes = Vec::new();
    for refresh_every in [1, 2] {
        let dir = root.path().join(format!("run-{refresh_every}"));
        let outcome = train(
            &config(&data, refresh_every),
            &dir,
            &TrainOptions::default(),
        )
        .unwrap_or_else(|e| panic!("refresh_every {refresh_every}: {e}"));
        let RunOutcome::Finished(summary) = outcome else {
            panic!("refresh_every {refresh_every}: not finished");
        };
        assert_eq!(
            (summary.strategy.as_str(), summary.heuristic.as_str()),
            ("afss", "sufficiency")
        );
        let sampling: SamplingRecord = read_json(&dir.join(files::SAMPLING));
        let what = format!("refresh_every {refresh_every}");
        refreshes.push(check_run(&summary, &sampling, &what));
    }
    // Refreshing before every epoch refreshes more often than before every
    // second one: the refreshes follow the configuration.
    assert!(refreshes[0] > refreshes[1], "{refreshes:?}");
}

#[test]
fn a_classifier_is_refused_sufficiency_at_load() {
    let root = tempfile::tempdir().unwrap();
    let value = json!({
        "task": "classification",
        "data": {"kind": "idx", "dir": root.path().join("absent"), "classes": "mnist"},
        "model": {"preset": "small", "input_size": 28},
        "augment": "standard",
        "heuristic": {"kind": "sufficiency"},
    });
    let err = RunConfig::from_value(value, &[]).unwrap_err().to_string();
    // The heuristic is named, not the missing data folder.
    assert!(
        err.contains("heuristic") && err.contains("sufficiency") && err.contains("detection"),
        "{err}"
    );
}
