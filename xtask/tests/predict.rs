//! `cargo xtask predict` end to end, through the real binary, on a tiny
//! trained synth run: the results on the run's own validation images are
//! the run's predictions (so they score to the run's AP, in `xtask eval`
//! and in pycocotools), the drawings
//! have the inputs' sizes and the boxes' colours on the boxes' edges only,
//! and unreadable images are skipped and counted (or fail with `--strict`).

mod common;

use common::{run_ok, text, xtask};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use isdet_report::draw::class_colour;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A trained 32-step synth run, and its validation scenes exported as a
/// COCO set: `(tempdir, run dir, export dir)`, made once per test binary.
fn trained() -> &'static (tempfile::TempDir, PathBuf, PathBuf) {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf, PathBuf)> = OnceLock::new();
    RUN.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("tiny.json");
        let spec = serde_json::json!({
            "method": "uniform",
            "epochs": 4,
            "batch_size": 4,
            "data": {"kind": "synth", "train": 32, "val": 8, "size": 64, "seed": 5},
            "model": {"preset": "tiny", "input_size": 64},
            "lr": {"base": 0.003, "warmup_steps": 2},
            "eval": {"every": 32, "batch_size": 8}
        });
        std::fs::write(&config, serde_json::to_vec(&spec).unwrap()).unwrap();
        let run = tmp.path().join("run");
        run_ok(
            xtask()
                .args(["train", "--quiet", "--config"])
                .arg(&config)
                .arg("--out")
                .arg(&run),
        );
        let export = tmp.path().join("synth");
        run_ok(
            xtask()
                .args([
                    "data", "synth", "--train", "32", "--val", "8", "--size", "64",
                ])
                .args(["--seed", "5", "--out"])
                .arg(&export),
        );
        (tmp, run, export)
    })
}

#[test]
fn predictions_on_the_validation_set_are_the_runs_own_and_score_to_its_ap() {
    let (tmp, run, export) = trained();
    let out = tmp.path().join("val-predictions.json");
    run_ok(
        xtask()
            .args(["predict", "--run"])
            .arg(run)
            .arg("--coco")
            .arg(export.join("instances_val.json"))
            .arg("--image-dir")
            .arg(export.join("val"))
            .arg("--out")
            .arg(&out),
    );
    assert_eq!(json(&out), json(&run.join("predictions.json")));
    let o = run_ok(
        xtask()
            .args(["eval", "--json", "--gt"])
            .arg(run.join("val_annotations.json"))
            .arg("--dt")
            .arg(&out),
    );
    let scored: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let summary = json(&run.join("summary.json"));
    assert_eq!(scored["AP"], summary["AP"]);
    if let Some(theirs) = pycocotools(&run.join("val_annotations.json"), &out) {
        for name in ["AP", "AP50", "AP75", "AR100"] {
            let (a, b) = (
                theirs[name].as_f64().unwrap(),
                scored[name].as_f64().unwrap(),
            );
            assert!(
                (a - b).abs() < 1e-9,
                "{name}: pycocotools {a}, xtask eval {b}"
            );
        }
    }
}

/// The statistics pycocotools gives `results` (scripts/coco_eval.py);
/// `None` where python3 with pycocotools is missing, which CI never is.
fn pycocotools(gt: &Path, results: &Path) -> Option<serde_json::Value> {
    let present = Command::new("python3")
        .args(["-c", "import pycocotools"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have pycocotools (pip install pycocotools)"
        );
        eprintln!("skipped the pycocotools check: python3 with pycocotools is not installed");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/coco_eval.py");
    let o = run_ok(Command::new("python3").arg(script).arg(gt).arg(results));
    Some(serde_json::from_slice(&o.stdout).unwrap())
}

#[test]
fn drawings_have_the_input_size_and_colour_only_the_drawn_boxes() {
    let (tmp, run, export) = trained();
    let images = tmp.path().join("mixed");
    std::fs::create_dir_all(&images).unwrap();
    let scene = image::open(export.join("val").join(first_png(&export.join("val")))).unwrap();
    scene.save(images.join("a.png")).unwrap();
    scene
        .resize_exact(100, 60, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .save(images.join("b.jpg"))
        .unwrap();
    scene.to_luma8().save(images.join("c.png")).unwrap();
    scene
        .resize_exact(48, 80, image::imageops::FilterType::Triangle)
        .to_rgba8()
        .save(images.join("d.png"))
        .unwrap();
    let out = tmp.path().join("mixed.json");
    let drawn = tmp.path().join("drawn");
    // First everything, to find the best box; then only that box drawn.
    run_ok(predict_images(run, &images, &out).args(["--score-thresh", "0"]));
    let results = json(&out);
    let best = results
        .as_array()
        .unwrap()
        .iter()
        .max_by(|a, b| {
            a["score"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["score"].as_f64().unwrap())
        })
        .expect("the tiny run finds something")
        .clone();
    let thresh = best["score"].as_f64().unwrap().to_string();
    run_ok(
        predict_images(run, &images, &out)
            .args(["--score-thresh", &thresh, "--draw"])
            .arg(&drawn),
    );
    let list = json(&out.with_extension("images.json"));
    for image in list["images"].as_array().unwrap() {
        let source = PathBuf::from(image["file_name"].as_str().unwrap());
        let stem = source.file_stem().unwrap().to_str().unwrap().to_string();
        let picture = image::open(drawn.join(format!("{stem}.png")))
            .unwrap()
            .to_rgb8();
        let input = image::open(&source).unwrap().to_rgb8();
        assert_eq!(picture.dimensions(), input.dimensions(), "{stem}");
        if image["id"] != best["image_id"] {
            assert_eq!(picture, input, "{stem} has no box over the threshold");
            continue;
        }
        let [x, y, w, h] = [0, 1, 2, 3].map(|k| best["bbox"][k].as_f64().unwrap());
        let class = best["category_id"].as_u64().unwrap() as usize - 1;
        let (r, g, b) = class_colour(class);
        let (iw, ih) = input.dimensions();
        let at = |px: f64, py: f64| {
            let clamp = |v: f64, len: u32| (v.round().max(0.0) as u32).min(len - 1);
            *picture.get_pixel(clamp(px, iw), clamp(py, ih))
        };
        // The bottom and left edges (the label tab sits at the top).
        assert_eq!(at(x + w / 2.0, y + h).0, [r, g, b], "bottom edge");
        assert_eq!(at(x, y + h / 2.0 + 1.0).0, [r, g, b], "left edge");
        // Away from the box, the picture is the input.
        for (px, py) in [(0, ih - 1), (iw - 1, ih - 1)] {
            let far =
                (px as f64) < x - 3.0 || (px as f64) > x + w + 3.0 || (py as f64) > y + h + 3.0;
            if far {
                assert_eq!(picture.get_pixel(px, py), input.get_pixel(px, py));
            }
        }
    }
}

#[test]
fn unreadable_images_are_skipped_and_counted_or_fail_with_strict() {
    let (tmp, run, export) = trained();
    let images = tmp.path().join("broken");
    std::fs::create_dir_all(&images).unwrap();
    let good = export.join("val").join(first_png(&export.join("val")));
    std::fs::copy(&good, images.join("good.png")).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(images.join("truncated.png"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(images.join("empty.png"), b"").unwrap();
    std::fs::write(images.join("garbage.jpg"), b"not an image").unwrap();
    std::fs::write(images.join("notes.txt"), b"not taken").unwrap();
    let out = tmp.path().join("broken.json");
    let o = run_ok(&mut predict_images(run, &images, &out));
    let said = text(&o);
    assert!(said.contains("1 images predicted, 3 skipped"), "{said}");
    for name in ["truncated.png", "empty.png", "garbage.jpg"] {
        assert!(said.contains(name), "{name} is not named: {said}");
    }
    let o = predict_images(run, &images, &out)
        .arg("--strict")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("empty.png"), "{}", text(&o));
}

fn predict_images(run: &Path, images: &Path, out: &Path) -> Command {
    let mut cmd = xtask();
    cmd.args(["predict", "--run"])
        .arg(run)
        .arg("--images")
        .arg(images)
        .arg("--out")
        .arg(out);
    cmd
}

fn first_png(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    names.sort();
    names.remove(0)
}
