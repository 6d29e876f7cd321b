//! The `mnist-det` data kind end to end: a run configuration alone makes
//! its regime set on first use, reuses it after, and refuses a folder made
//! with other scenes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{text, xtask};
use isdet_data::RegimeTags;

/// npm packages are cached under the target folder, as in cli.rs.
fn cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("isdet-cache")
}

/// Four steps on 16 regime frames (clips of 4, a quarter of the frames
/// empty) made in `data`.
fn write_config(dir: &Path, data: &Path, empty_share: f32) -> PathBuf {
    let path = dir.join(format!("regime-{empty_share}.json"));
    let config = serde_json::json!({
        "method": "uniform",
        "epochs": 1,
        "batch_size": 4,
        "augment": "none",
        "data": {
            "kind": "mnist-det",
            "dir": data,
            "scenes": {
                "train": 16, "val": 8, "holdout": 4, "canvas": 64, "max_size": 32,
                "regime": {"clip_frames": 4, "empty_share": empty_share}
            }
        },
        "model": {"preset": "tiny", "input_size": 64},
        "lr": {"base": 0.003, "warmup_steps": 1},
        "eval": {"every": 4, "batch_size": 8}
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    path
}

fn train(config: &Path, out: &Path) -> Output {
    xtask()
        .args(["train", "--quiet", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .env("ISDET_CACHE", cache())
        .output()
        .unwrap()
}

#[test]
fn a_regime_set_is_made_once_from_the_run_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data/regime");
    let config = write_config(dir.path(), &data, 0.25);
    let o = train(&config, &dir.path().join("a"));
    assert!(o.status.success(), "{}", text(&o));
    for file in [
        "mnist-det.json",
        "instances_train.json",
        "instances_val.json",
        "instances_holdout.json",
        "instances_holdout.tags.json",
    ] {
        assert!(data.join(file).is_file(), "{file} missing");
    }
    let tags = RegimeTags::read(&data.join("instances_train.tags.json")).unwrap();
    assert_eq!(tags.images.len(), 16);
    assert_eq!(tags.images.iter().filter(|t| t.empty).count(), 4);
    let made = std::fs::metadata(data.join("instances_train.json"))
        .unwrap()
        .modified()
        .unwrap();

    // A second run reads the same set: nothing is made again.
    let o = train(&config, &dir.path().join("b"));
    assert!(o.status.success(), "{}", text(&o));
    let again = std::fs::metadata(data.join("instances_train.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(made, again);

    // Other scenes in the same folder are refused, naming the field.
    let other = write_config(dir.path(), &data, 0.5);
    let o = train(&other, &dir.path().join("c"));
    assert!(!o.status.success());
    assert!(text(&o).contains("data.scenes"), "{}", text(&o));
}
