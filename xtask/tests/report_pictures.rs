//! The report's sections that need the runs' own data, on real tiny synth
//! runs: per-class AP, the gallery, each class's share of training and the
//! thumbnail sheets; and, without the data, a note instead of a failure.

mod common;

use common::{run_ok, xtask};
use std::path::Path;

use serde_json::Value;

/// Trains a 32-step tiny synth run of `strategy` into `root/name`.
fn train(root: &Path, name: &str, strategy: Value) {
    let config = root.join(format!("{name}.json"));
    let spec = serde_json::json!({
        "method": name,
        "epochs": 4,
        "batch_size": 4,
        "strategy": strategy,
        "data": {"kind": "synth", "train": 32, "val": 8, "size": 64, "seed": 5},
        "model": {"preset": "tiny", "input_size": 64},
        "lr": {"base": 0.003, "warmup_steps": 2},
        "eval": {"every": 16, "batch_size": 8}
    });
    std::fs::write(&config, serde_json::to_vec(&spec).unwrap()).unwrap();
    run_ok(
        xtask()
            .args(["train", "--quiet", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(root.join("runs").join(name)),
    );
}

fn report(dir: &Path) -> Value {
    let o = run_ok(
        xtask()
            .arg("report")
            .arg(dir)
            .args(["--json", "--resamples", "200"]),
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn decodes(path: &Path) {
    let image = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        image.width() > 100 && image.height() > 100,
        "{}",
        path.display()
    );
}

#[test]
fn a_detection_report_shows_classes_a_gallery_and_what_was_trained() {
    let tmp = tempfile::tempdir().unwrap();
    train(
        tmp.path(),
        "uniform",
        serde_json::json!({"kind": "uniform"}),
    );
    train(
        tmp.path(),
        "weighted",
        serde_json::json!({"kind": "weighted_with_replacement"}),
    );
    let runs = tmp.path().join("runs");
    let json = report(&runs);
    let md = std::fs::read_to_string(runs.join("report.md")).unwrap();
    for heading in [
        "## Per-class AP",
        "## Gallery",
        "### Which classes the budget went to",
        "### The most- and least-trained images",
    ] {
        assert!(md.contains(heading), "no {heading:?} in\n{md}");
    }
    for plot in [
        "gallery.png",
        "per_class_ap.png",
        "trained_uniform_100.png",
        "trained_weighted_100.png",
    ] {
        decodes(&runs.join("plots").join(plot));
    }
    // Per-class AP: the summary's AP/<class> of each synth class.
    let uniform = json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["method"] == "uniform")
        .unwrap();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("uniform/summary.json")).unwrap())
            .unwrap();
    for (class, ap) in uniform["per_class"].as_object().unwrap() {
        assert_eq!(*ap, summary[format!("AP/{class}")], "{class}");
    }
    // Class shares: both columns are shares; uniform without replacement
    // trains each image equally often, so every class in proportion.
    for g in json["spending"].as_array().unwrap() {
        let shares = g["class_shares"].as_array().unwrap();
        assert_eq!(shares.len(), 5, "synth has five classes");
        for column in ["data", "trained"] {
            let sum: f64 = shares.iter().map(|c| c[column].as_f64().unwrap()).sum();
            assert!((sum - 1.0).abs() < 1e-9, "{column} shares sum to {sum}");
        }
        if g["method"] == "uniform" {
            for c in shares {
                let (d, t) = (c["data"].as_f64().unwrap(), c["trained"].as_f64().unwrap());
                assert!((d - t).abs() < 1e-12, "{c}");
            }
        }
    }
    // The counts the report reads are the run's: they add up to its passes.
    let sampling: Value = serde_json::from_str(
        &std::fs::read_to_string(runs.join("weighted/sampling.json")).unwrap(),
    )
    .unwrap();
    let trained: u64 = sampling["trained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("weighted/summary.json")).unwrap())
            .unwrap();
    assert_eq!(trained, summary["backward"].as_u64().unwrap());
    assert_eq!(
        json["gallery"].as_str().map(|s| s.contains("seed 0")),
        Some(true)
    );

    // Without the data behind the runs (a configuration pointing at
    // missing files), the sections that need it give way to a note.
    for name in ["uniform", "weighted"] {
        let path = runs.join(name).join("config.json");
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config["data"] = serde_json::json!({
            "kind": "coco",
            "train_json": "/nonexistent/train.json", "train_images": "/nonexistent",
            "val_json": "/nonexistent/val.json", "val_images": "/nonexistent"
        });
        std::fs::write(&path, config.to_string()).unwrap();
    }
    std::fs::remove_dir_all(runs.join("plots")).unwrap();
    let json = report(&runs);
    let notes = json["notes"].to_string();
    assert!(notes.contains("/nonexistent/train.json"), "{notes}");
    assert!(json["gallery"].is_null());
    assert!(!runs.join("plots/gallery.png").exists());
}
