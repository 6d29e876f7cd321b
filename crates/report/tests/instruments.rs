//! The report's instruments for "when does importance sampling pay?" on
//! hand-made run directories whose numbers are worked out below:
//! t-intervals where seeds are few, paired-difference panels per budget,
//! τ over the run, and the draws split by regime tags.

use std::path::Path;

use isdet_report::{ReportOptions, write_report};
use serde_json::{Value, json};

/// A finished run: one evaluation per step with the AP of `ap`, and the
/// diagnostics of `diagnostics` (one per evaluation) when given. Every
/// step costs 10 forward and backward passes, unless `passes` overrides
/// the summary's totals (to agree with a sampling record).
struct RunSpec<'a> {
    method: &'a str,
    budget: f64,
    seed: u64,
    steps: &'a [f64],
    ap: &'a [f64],
    diagnostics: Option<Vec<Value>>,
    passes: Option<u64>,
}

fn write_run(root: &Path, spec: &RunSpec) -> std::path::PathBuf {
    let rel = format!("{}-b{}-s{}", spec.method, spec.budget, spec.seed);
    let dir = root.join(rel);
    std::fs::create_dir_all(&dir).unwrap();
    let mut lines = String::new();
    for (k, (&step, &ap)) in spec.steps.iter().zip(spec.ap).enumerate() {
        let mut line = json!({
            "step": step as u64, "sampler_step": step as u64, "epoch": 0,
            "forward": (step * 10.0) as u64, "backward": (step * 10.0) as u64,
            "images": (step * 10.0) as u64, "seconds": step * 0.1,
            "lr": 0.01, "train_loss": 1.0, "skipped_batches": 0,
            "metrics": {"AP": ap},
            "time": {"data": 0.0, "forward": 0.05 * step, "backward": 0.05 * step,
                     "scoring": 0.0, "sampling": 0.0, "eval": 1.0}
        });
        if let Some(d) = &spec.diagnostics {
            line["diagnostics"] = d[k].clone();
        }
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    std::fs::write(dir.join("metrics.jsonl"), lines).unwrap();
    let last = *spec.steps.last().unwrap();
    let passes = spec.passes.unwrap_or((last * 10.0) as u64);
    let summary = json!({
        "method": spec.method, "strategy": "x", "heuristic": "y", "budget": spec.budget,
        "seed": spec.seed, "task": "detection", "primary_metric": "AP",
        "AP": spec.ap.last().unwrap(),
        "val_annotations": "/nowhere/val_annotations.json",
        "steps": last as u64, "sampler_steps": last as u64,
        "forward": passes, "backward": passes, "images": passes,
        "seconds": last * 0.1, "eval_seconds": 1.0, "skipped_batches": 0
    });
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
    dir
}

fn diag(tau: Option<f64>, gini: f64, presampling: Option<(bool, f64)>) -> Value {
    let mut d = json!({"scored": 6, "draw_gini": gini});
    if let Some(t) = tau {
        d["tau_loss"] = json!(t);
        d["tau_grad_norm"] = json!(2.0 * t);
    }
    if let Some((on, ema)) = presampling {
        d["importance_on"] = json!(on);
        d["strategy_tau"] = json!(ema);
        d["tau_threshold"] = json!(1.8);
    }
    d
}

const STEPS: [f64; 4] = [0.0, 40.0, 80.0, 120.0];

/// The study, at 30% unless said:
///
/// - uniform, seeds 0 and 1: AP 0, 0.1, 0.2, 0.3 and 0, 0.1, 0.2, 0.4; no
///   diagnostics;
/// - loss, seeds 0 and 1: AP 0, 0.28, 0.44, 0.46 and 0, 0.2, 0.52, 0.5, so
///   the final differences are 0.16 and 0.10 (mean 0.13, standard error
///   0.03, t(0.975, 1) = 12.706: [−0.2512, +0.5112]); τ(loss) ends at 1.4
///   and 1.2, the draws' Gini at 0.2 and 0.4; each run has a sampling
///   record over six tagged images (below);
/// - presampling, seeds 0 and 1, AP as uniform's: on at 2 of seed 0's 4
///   evaluations and never on seed 1 (25%), its EMA ending at 1.9 and 1.5
///   against the threshold 1.8;
/// - entropy at 50%, seed 0: no uniform at 50%, so no panel there.
fn make_study(root: &Path) {
    let ap_u = [[0.0, 0.1, 0.2, 0.3], [0.0, 0.1, 0.2, 0.4]];
    let ap_l = [[0.0, 0.28, 0.44, 0.46], [0.0, 0.2, 0.52, 0.5]];
    let taus = [
        [None, Some(1.2), Some(1.3), Some(1.4)],
        [None, Some(1.0), Some(1.1), Some(1.2)],
    ];
    let ginis = [0.2, 0.4];
    let on = [[false, false, true, true], [false; 4]];
    let ema = [1.9, 1.5];
    let trained = [vec![4u32, 2, 0, 0, 2, 2], vec![1; 6]];
    write_tags(root);
    for seed in 0..2 {
        let s = seed as usize;
        let base = |method, ap: &'static [f64], diagnostics, passes| RunSpec {
            method,
            budget: 0.3,
            seed,
            steps: &STEPS,
            ap,
            diagnostics,
            passes,
        };
        write_run(root, &base("uniform", leak(ap_u[s]), None, None));
        let loss_diag = (0..4)
            .map(|k| diag(taus[s][k], if k == 3 { ginis[s] } else { 0.0 }, None))
            .collect();
        let total = trained[s].iter().map(|&c| u64::from(c)).sum();
        let dir = write_run(
            root,
            &base("loss", leak(ap_l[s]), Some(loss_diag), Some(total)),
        );
        write_sampling(&dir, &trained[s]);
        write_config(&dir, root);
        let pre_diag = (0..4)
            .map(|k| diag(taus[s][k], 0.0, Some((on[s][k], ema[s]))))
            .collect();
        write_run(
            root,
            &base("presampling", leak(ap_u[s]), Some(pre_diag), None),
        );
    }
    write_run(
        root,
        &RunSpec {
            method: "entropy",
            budget: 0.5,
            seed: 0,
            steps: &STEPS,
            ap: &[0.0, 0.1, 0.2, 0.3],
            diagnostics: None,
            passes: None,
        },
    );
}

fn leak(ap: [f64; 4]) -> &'static [f64] {
    Box::leak(Box::new(ap))
}

fn write_sampling(dir: &Path, trained: &[u32]) {
    let record = json!({
        "trained": trained, "forwarded": trained,
        "last_score": vec![Some(1.0); trained.len()],
        "scores_over_run": []
    });
    std::fs::write(dir.join("sampling.json"), record.to_string()).unwrap();
}

/// A COCO data configuration whose training annotations would be
/// `root/data/instances_train.json`: the tags file sits beside them.
fn write_config(dir: &Path, root: &Path) {
    let data = root.join("data");
    let config = json!({
        "method": "loss", "budget": 0.3,
        "data": {"kind": "coco",
                 "train_json": data.join("instances_train.json"),
                 "train_images": data.join("train"),
                 "val_json": data.join("instances_val.json"),
                 "val_images": data.join("val")}
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

/// Six frames in two clips of three: frame 0 is empty, frame 1 has a
/// noisy box, frame 3 a missing one.
fn write_tags(root: &Path) {
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let images: Vec<Value> = (0..6u64)
        .map(|i| {
            json!({"id": i + 1, "clip": i / 3, "frame": i % 3, "empty": i == 0,
                   "boxes": u32::from(i != 0), "noisy": u32::from(i == 1),
                   "missing": u32::from(i == 3)})
        })
        .collect();
    let tags = json!({"regime": {"clip_frames": 3}, "images": images});
    std::fs::write(data.join("instances_train.tags.json"), tags.to_string()).unwrap();
}

fn options() -> ReportOptions {
    ReportOptions {
        reference: "uniform@0.3".parse().unwrap(),
        resamples: 2_000,
        ..ReportOptions::default()
    }
}

fn close(v: &Value, want: f64) {
    let x = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!((x - want).abs() < 1e-4, "{x} != {want}");
}

fn report(root: &Path) -> (Value, String) {
    let written = write_report(root, &options()).unwrap();
    let json = serde_json::to_value(&written.report).unwrap();
    (json, std::fs::read_to_string(written.markdown).unwrap())
}

#[test]
fn two_seeds_print_t_intervals_and_no_certainty() {
    let tmp = tempfile::tempdir().unwrap();
    make_study(tmp.path());
    let (json, md) = report(tmp.path());
    let loss = json["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["method"] == "loss")
        .unwrap();
    // The bootstrap is still in the JSON, the t-interval beside it.
    close(&loss["final_metric"]["prob_a_better"], 1.0);
    close(
        &loss["final_metric"]["t"]["low"],
        0.13 - 12.706_204_7 * 0.03,
    );
    close(
        &loss["final_metric"]["t"]["high"],
        0.13 + 12.706_204_7 * 0.03,
    );
    assert_eq!(json["few_seeds"], 10);
    for needle in [
        "| loss | 30% | 2 | +0.1300 | [-0.2512, +0.5112] |",
        "| Δ final AP | 95% t-interval | mean AP over steps",
        "Intervals: 95% paired Student-t intervals of the mean difference",
        // Table 1: uniform's finals 0.3 and 0.4: 0.35 ± 12.706 · 0.05.
        "| uniform | 30% | 2 | 0.3500 ± 0.0707 | [-0.2853, 0.9853] |",
        // Table 2: the target 0.8 · 0.35 = 0.28 is reached at steps 112
        // and 96: 104 ± 12.706 · 8 (the bootstrap would say [96, 112]).
        "| uniform | 30% | 104 [2, 206] |",
    ] {
        assert!(md.contains(needle), "{needle:?} missing from:\n{md}");
    }
    assert!(
        !md.contains("P(better) |"),
        "P(better) printed from 2 seeds:\n{md}"
    );
    assert!(!md.contains("| 1.000 |"), "{md}");
}

#[test]
fn ten_seeds_add_the_bootstrap_and_p_better() {
    let tmp = tempfile::tempdir().unwrap();
    for seed in 0..10 {
        let bump = 0.01 * (1 + seed % 3) as f64;
        for (method, extra) in [("uniform", 0.0), ("loss", bump)] {
            let ap = [0.0, 0.1 + extra, 0.2 + extra, 0.3 + extra];
            let spec = RunSpec {
                method,
                budget: 0.3,
                seed,
                steps: &STEPS,
                ap: &ap,
                diagnostics: None,
                passes: None,
            };
            write_run(tmp.path(), &spec);
        }
    }
    let (_, md) = report(tmp.path());
    assert!(
        md.contains("| Δ final AP | 95% t-interval | bootstrap 95% | P(better) |"),
        "{md}"
    );
    // Every seed gains: the bootstrap is sure, and now it may say so.
    let row = md
        .lines()
        .find(|l| l.starts_with("| loss | 30% | 10 | +"))
        .unwrap();
    assert!(row.contains("| 1.000 |"), "{row}");
}

#[test]
fn paired_difference_panels_per_budget_with_a_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    make_study(tmp.path());
    let (json, md) = report(tmp.path());
    let curves = json["paired_curves"].as_array().unwrap();
    assert_eq!(curves.len(), 1, "{curves:#?}");
    assert_eq!(curves[0]["baseline"], "uniform");
    let loss = &curves[0]["methods"][0];
    assert_eq!(loss["method"], "loss");
    // Differences per step: 0; 0.18 and 0.10; 0.24 and 0.32; 0.16 and 0.10.
    for (point, want) in loss["points"]
        .as_array()
        .unwrap()
        .iter()
        .zip([0.0, 0.14, 0.28, 0.13])
    {
        close(&point["mean"], want);
    }
    close(
        &loss["points"][3]["interval"][0],
        0.13 - 12.706_204_7 * 0.03,
    );
    for needle in [
        "![AP − uniform over the run](plots/paired_difference_vs_steps.png)",
        "No paired-difference panel at 50%: no uniform runs at that budget.",
        // Five groups: the overlapping curves are still drawn.
        "![AP against optimiser steps](plots/metric_vs_steps.png)",
    ] {
        assert!(md.contains(needle), "{needle:?} missing from:\n{md}");
    }
    let png = image::open(tmp.path().join("plots/paired_difference_vs_steps.png")).unwrap();
    // One budget: one panel, as large as a chart, under a legend row.
    assert_eq!((png.width(), png.height()), (900, 540 + 34));
    assert!(tmp.path().join("plots/metric_vs_steps.png").is_file());
}

#[test]
fn many_groups_get_panels_instead_of_overlapping_curves() {
    let tmp = tempfile::tempdir().unwrap();
    for (k, method) in ["uniform", "a", "b", "c", "d", "e", "f"].iter().enumerate() {
        let extra = 0.01 * k as f64;
        let ap = [0.0, 0.1 + extra, 0.2 + extra, 0.3 + extra];
        let spec = RunSpec {
            method,
            budget: 0.3,
            seed: 0,
            steps: &STEPS,
            ap: &ap,
            diagnostics: None,
            passes: None,
        };
        write_run(tmp.path(), &spec);
    }
    let (_, md) = report(tmp.path());
    assert!(md.contains("With 7 groups"), "{md}");
    assert!(!md.contains("metric_vs_steps.png"), "{md}");
    assert!(!tmp.path().join("plots/metric_vs_steps.png").exists());
    assert!(
        tmp.path()
            .join("plots/paired_difference_vs_steps.png")
            .is_file()
    );
    assert!(tmp.path().join("plots/metric_vs_budget.png").is_file());
    // Old runs: no τ section, and a note saying why.
    assert!(!md.contains("τ over the run"), "{md}");
    assert!(md.contains("No run records sampling diagnostics"), "{md}");
}

#[test]
fn tau_section_has_the_values_at_the_end_and_the_plot() {
    let tmp = tempfile::tempdir().unwrap();
    make_study(tmp.path());
    let (json, md) = report(tmp.path());
    let tau = json["tau"].as_array().unwrap();
    assert_eq!(tau.len(), 2, "{tau:#?}");
    close(&tau[0]["tau_loss"], 1.3);
    close(&tau[1]["importance_on"], 0.25);
    for needle in [
        "| loss | 30% | 2 | 1.300 | 2.600 | 0.300 | – | – |",
        "| presampling | 30% | 2 | 1.300 | 2.600 | 0.000 | 25.0% | 1.700 / 1.800 |",
        "![τ and the draws' Gini over the run](plots/tau_over_run.png)",
        "entropy @ 50% (1 of 1 runs), uniform @ 30% (2 of 2 runs)",
    ] {
        assert!(md.contains(needle), "{needle:?} missing from:\n{md}");
    }
    let png = image::open(tmp.path().join("plots/tau_over_run.png")).unwrap();
    // One budget with diagnostics: one row of three 560 × 380 panels (τ
    // of the losses, of the gradient-norm bounds, the draws' Gini) under a
    // legend row (22 px and 6 px of padding above and below).
    assert_eq!((png.width(), png.height()), (3 * 560, 380 + 34));
}

#[test]
fn draws_are_split_by_the_training_sets_tags() {
    let tmp = tempfile::tempdir().unwrap();
    make_study(tmp.path());
    let (json, md) = report(tmp.path());
    let loss = json["spending"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["method"] == "loss")
        .unwrap();
    // Seed 0 draws 4, 2, 0 | 0, 2, 2; seed 1 draws every frame once.
    let tags = &loss["tags"];
    close(&tags["empty_draws"], (0.4 + 1.0 / 6.0) / 2.0);
    close(&tags["empty_frames"], 1.0 / 6.0);
    close(&tags["noisy_draws"], (0.2 + 1.0 / 6.0) / 2.0);
    close(&tags["missing_draws"], (0.0 + 1.0 / 6.0) / 2.0);
    close(
        &tags["clip_top_share"],
        ((4.0 / 6.0 + 0.5) / 2.0 + 1.0 / 3.0) / 2.0,
    );
    let row =
        "| loss @ 30% | 28.3% / 16.7% | 18.3% / 16.7% | 8.3% / 16.7% | 2 × 3.0 | 0.458 (0.333) |";
    assert!(md.contains("### The draws by what the images hold"), "{md}");
    assert!(md.contains(row), "{row:?} missing from:\n{md}");
}

#[test]
fn a_tags_file_of_another_set_is_named_in_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    make_study(tmp.path());
    let path = tmp.path().join("data/instances_train.tags.json");
    let mut tags: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    tags["images"].as_array_mut().unwrap().pop();
    std::fs::write(&path, tags.to_string()).unwrap();
    let (json, md) = report(tmp.path());
    assert!(
        !md.contains("### The draws by what the images hold"),
        "{md}"
    );
    let notes = json["notes"].to_string();
    assert!(
        notes.contains("loss @ 30%") && notes.contains("the tags file has 5 images"),
        "{notes}"
    );
}
