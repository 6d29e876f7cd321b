//! `cargo xtask report` end to end on a hand-made sweep whose numbers are
//! worked out by hand below.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("xtask runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Per-step costs of a method: forward passes, backward passes, seconds.
struct Rates {
    forward: f64,
    backward: f64,
    seconds: f64,
}

const UNIFORM: Rates = Rates {
    forward: 10.0,
    backward: 10.0,
    seconds: 0.1,
};
const LOSS: Rates = Rates {
    forward: 30.0,
    backward: 10.0,
    seconds: 0.25,
};

/// Writes a finished run: one evaluation per entry of `steps`, the AP of
/// `ap`, costs growing linearly with the step at `rates`. The time split
/// puts 5% of training time in scoring and 5% in sampling.
#[allow(clippy::too_many_arguments)]
fn write_run(
    root: &Path,
    rel: &str,
    method: &str,
    budget: f64,
    seed: u64,
    steps: &[f64],
    ap: &[f64],
    rates: &Rates,
) {
    let dir = root.join(rel);
    std::fs::create_dir_all(&dir).unwrap();
    let mut lines = String::new();
    for (&s, &m) in steps.iter().zip(ap) {
        lines.push_str(&metrics_line(s, m, rates).to_string());
        lines.push('\n');
    }
    std::fs::write(dir.join("metrics.jsonl"), lines).unwrap();
    let last = *steps.last().unwrap();
    let summary = json!({
        "method": method, "strategy": "x", "heuristic": "y", "budget": budget,
        "seed": seed, "task": "detection", "primary_metric": "AP",
        "AP": ap.last().unwrap(), "AP50": 0.9,
        "val_annotations": "/nowhere/val_annotations.json",
        "steps": last as u64, "sampler_steps": last as u64,
        "forward": (last * rates.forward) as u64, "backward": (last * rates.backward) as u64,
        "images": (last * rates.forward) as u64, "seconds": last * rates.seconds,
        "eval_seconds": 1.0, "skipped_batches": 0
    });
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
}

fn metrics_line(step: f64, ap: f64, r: &Rates) -> Value {
    let seconds = step * r.seconds;
    json!({
        "step": step as u64, "sampler_step": step as u64, "epoch": 0,
        "forward": (step * r.forward) as u64, "backward": (step * r.backward) as u64,
        "images": (step * r.forward) as u64, "seconds": seconds,
        "lr": 0.01, "train_loss": 1.0, "skipped_batches": 0,
        "metrics": {"AP": ap, "AP50": 0.5},
        "time": {"data": 0.1 * seconds, "forward": 0.4 * seconds,
                 "backward": 0.4 * seconds, "scoring": 0.05 * seconds,
                 "sampling": 0.05 * seconds, "eval": 3.0}
    })
}

/// The sweep:
///
/// - uniform @ 100%, steps 0..400 by 100: final AP 0.4 and 0.5 (mean 0.45);
/// - uniform @ 30%, steps 0..120 by 40: final AP 0.3 and 0.4 (mean 0.35);
/// - loss @ 30% (nested two levels deeper): final AP 0.46 and 0.5 (0.48);
/// - an unfinished run, and a run four levels down (too deep, ignored).
///
/// Target = 0.8 × 0.45 = 0.36. Uniform @ 100% reaches it at step 360
/// (seed 0: 0.3 → 0.4 between 300 and 400) and 330 (seed 1: 0.3 → 0.5):
/// mean 345. Loss @ 30% reaches it at step 60 with both seeds (0.28 → 0.44
/// and 0.2 → 0.52 between 40 and 80): speed-up 345 / 60 = 5.75 in steps and
/// backward passes, 34.5 s / 15 s = 2.3 in seconds. Uniform @ 30% seed 0
/// never reaches it: "not reached (1/2)".
fn make_sweep(root: &Path) {
    let long = [0.0, 100.0, 200.0, 300.0, 400.0];
    let short = [0.0, 40.0, 80.0, 120.0];
    let u = "sweep-a";
    write_run(
        root,
        &format!("{u}/uniform-b1-s0"),
        "uniform",
        1.0,
        0,
        &long,
        &[0.0, 0.1, 0.2, 0.3, 0.4],
        &UNIFORM,
    );
    write_run(
        root,
        &format!("{u}/uniform-b1-s1"),
        "uniform",
        1.0,
        1,
        &long,
        &[0.0, 0.1, 0.2, 0.3, 0.5],
        &UNIFORM,
    );
    write_run(
        root,
        &format!("{u}/uniform-b0.3-s0"),
        "uniform",
        0.3,
        0,
        &short,
        &[0.0, 0.1, 0.2, 0.3],
        &UNIFORM,
    );
    write_run(
        root,
        &format!("{u}/uniform-b0.3-s1"),
        "uniform",
        0.3,
        1,
        &short,
        &[0.0, 0.1, 0.2, 0.4],
        &UNIFORM,
    );
    let l = "sweep-b/nested";
    write_run(
        root,
        &format!("{l}/loss-b0.3-s0"),
        "loss",
        0.3,
        0,
        &short,
        &[0.0, 0.28, 0.44, 0.46],
        &LOSS,
    );
    write_run(
        root,
        &format!("{l}/loss-b0.3-s1"),
        "loss",
        0.3,
        1,
        &short,
        &[0.0, 0.2, 0.52, 0.5],
        &LOSS,
    );
    // Killed mid-line: the torn last line must not matter.
    let unfinished = root.join("sweep-a/loss-b1-s0");
    std::fs::create_dir_all(&unfinished).unwrap();
    let lines = format!(
        "{}\n{}\n{{\"step\": 2",
        metrics_line(0.0, 0.0, &LOSS),
        metrics_line(100.0, 0.2, &LOSS)
    );
    std::fs::write(unfinished.join("metrics.jsonl"), lines).unwrap();
    write_run(
        root,
        "a/b/c/d/too-deep",
        "deep",
        1.0,
        0,
        &long,
        &[0.0, 0.1, 0.2, 0.3, 0.9],
        &UNIFORM,
    );
}

fn report_json(dir: &Path, extra: &[&str]) -> (Value, Output) {
    let mut args = vec![
        "report",
        dir.to_str().unwrap(),
        "--json",
        "--resamples",
        "2000",
    ];
    args.extend_from_slice(extra);
    let out = xtask(&args);
    assert!(out.status.success(), "{}", text(&out));
    let value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    (value, out)
}

fn group<'a>(report: &'a Value, method: &str, budget: f64) -> &'a Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["method"] == method && (g["budget"].as_f64().unwrap() - budget).abs() < 1e-9)
        .unwrap_or_else(|| panic!("no group {method}@{budget} in {report:#}"))
}

fn close(v: &Value, expected: f64) {
    let x = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!((x - expected).abs() < 1e-9, "{x} != {expected}");
}

#[test]
fn numbers_match_the_hand_computation() {
    let tmp = tempfile::tempdir().unwrap();
    make_sweep(tmp.path());
    let (r, _) = report_json(tmp.path(), &[]);
    assert_eq!(r["primary_metric"], "AP");
    assert_eq!(r["groups"].as_array().unwrap().len(), 3, "{r:#}");
    close(&r["reference_final_mean"], 0.45);
    close(&r["target"], 0.36);

    let u1 = group(&r, "uniform", 1.0);
    assert_eq!(u1["seeds"], json!([0, 1]));
    close(&u1["final_metric"]["mean"], 0.45);
    close(&u1["final_metric"]["std"], 0.05f64.hypot(0.05));
    // Two seeds: resampled means are 0.4, 0.45 or 0.5.
    close(&u1["final_metric"]["low"], 0.4);
    close(&u1["final_metric"]["high"], 0.5);
    close(&u1["mean_costs"]["steps"], 400.0);
    close(&u1["mean_costs"]["backward"], 4000.0);
    close(&u1["forward_per_backward"], 1.0);
    close(&u1["to_target"]["steps"]["mean"], 345.0);
    close(&u1["to_target"]["backward"]["mean"], 3450.0);
    close(&u1["to_target"]["seconds"]["mean"], 34.5);
    close(&u1["to_target"]["steps"]["speedup"], 1.0);

    let loss = group(&r, "loss", 0.3);
    close(&loss["final_metric"]["mean"], 0.48);
    close(&loss["mean_costs"]["forward"], 3600.0);
    close(&loss["mean_costs"]["seconds"], 30.0);
    close(&loss["forward_per_backward"], 3.0);
    close(&loss["scoring_share"], 0.05);
    close(&loss["sampling_share"], 0.05);
    close(&loss["to_target"]["steps"]["mean"], 60.0);
    close(&loss["to_target"]["steps"]["speedup"], 5.75);
    close(&loss["to_target"]["backward"]["speedup"], 5.75);
    close(&loss["to_target"]["seconds"]["mean"], 15.0);
    close(&loss["to_target"]["seconds"]["speedup"], 2.3);

    let u3 = group(&r, "uniform", 0.3);
    assert_eq!(u3["to_target"]["steps"]["reached"], 1);
    assert_eq!(u3["to_target"]["steps"]["mean"], Value::Null);
    assert_eq!(u3["to_target"]["steps"]["speedup"], Value::Null);

    let cmp = &r["comparisons"].as_array().unwrap();
    assert_eq!(cmp.len(), 1, "{r:#}");
    let c = &cmp[0];
    assert_eq!(
        (c["method"].as_str(), c["baseline"].as_str()),
        (Some("loss"), Some("uniform"))
    );
    assert_eq!(c["seeds"], json!([0, 1]));
    // Differences 0.16 (seed 0) and 0.10 (seed 1).
    close(&c["final_metric"]["mean_difference"], 0.13);
    close(&c["final_metric"]["low"], 0.1);
    close(&c["final_metric"]["high"], 0.16);
    close(&c["final_metric"]["prob_a_better"], 1.0);
    // Beside the bootstrap, the paired t-interval: 0.13 ± 12.706 · 0.03.
    assert!((c["final_metric"]["t"]["low"].as_f64().unwrap() + 0.251186).abs() < 1e-5);
    assert!((c["final_metric"]["t"]["high"].as_f64().unwrap() - 0.511186).abs() < 1e-5);
    assert_eq!(c["final_metric"]["t"]["n"], 2);
    // Trapezoids over 0..120 by 40, divided by 120: loss 38/120 and
    // 38.8/120, uniform 18/120 and 20/120.
    let area = &c["mean_metric_over_steps"];
    close(&area["up_to"], 120.0);
    close(&area["method"], (38.0 + 38.8) / 240.0);
    close(&area["baseline"], (18.0 + 20.0) / 240.0);
    // uniform @ 30% seed 1 never reaches the target, so the paired cost to
    // it is not given on any axis.
    for axis in ["steps", "backward", "seconds"] {
        let t = &c["to_target"][axis];
        assert_eq!((t["n"].as_u64(), t["reached"].as_u64()), (Some(2), Some(1)));
        assert_eq!(t["paired"], Value::Null);
    }

    let unfinished = r["unfinished"].as_array().unwrap();
    assert_eq!(unfinished.len(), 1, "{r:#}");
    assert_eq!(unfinished[0]["dir"], "sweep-a/loss-b1-s0");
    assert_eq!(unfinished[0]["evaluations"], 2);
    assert!(r["skipped"].as_array().unwrap().is_empty());
    assert!(
        !r.to_string().contains("deep"),
        "a run 4 levels down was read"
    );
}

#[test]
fn markdown_report_has_the_tables_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    make_sweep(tmp.path());
    let out = xtask(&[
        "report",
        tmp.path().to_str().unwrap(),
        "--resamples",
        "2000",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let path = tmp.path().join("report.md");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        path.to_str().unwrap()
    );
    let md = std::fs::read_to_string(&path).unwrap();
    for needle in [
        // Two seeds: 95% t-intervals, mean ± t(0.975, 1) · s / √2 with
        // t(0.975, 1) = 12.706 (0.45 ± 12.706 · 0.05; 0.48 ± 12.706 · 0.02).
        "| uniform | 100% | 2 | 0.4500 ± 0.0707 | [-0.1853, 1.0853] | 400 | 4000 | 4000 | 40.0 | 1.00 |",
        "| loss | 30% | 2 | 0.4800 ± 0.0283 | [0.2259, 0.7341] | 120 | 3600 | 1200 | 30.0 | 3.00 | 5.0% | 5.0% |",
        "= **0.3600**",
        // Costs 360 and 330: 345 ± 12.706 · 15.
        "| uniform | 100% | 345 [154, 536] | 3450 [1544, 5356] | 34.5 [15.4, 53.6] | 1.00× | 1.00× | 1.00× |",
        "| loss | 30% | 60 [60, 60] | 600 [600, 600] | 15.0 [15.0, 15.0] | 5.75× | 5.75× | 2.30× |",
        "| uniform | 30% | not reached (1/2) | not reached (1/2) | not reached (1/2) | – | – | – |",
        // Differences 0.16 and 0.10: 0.13 ± 12.706 · 0.03, and no
        // bootstrap or P(better) from two seeds.
        "| loss | 30% | 2 | +0.1300 | [-0.2512, +0.5112] | 0.3200 / 0.1583 |",
        // uniform @ 30% seed 1 never reaches the target: no paired Δ.
        "| loss | 30% | 2 | 1/2 reached | – | 1/2 reached | – | 1/2 reached | – |",
        "![AP against optimiser steps](plots/metric_vs_steps.png)",
        "![AP against backward passes](plots/metric_vs_backward.png)",
        "![AP against seconds](plots/metric_vs_seconds.png)",
        "![final AP against the budget](plots/metric_vs_budget.png)",
        "`sweep-a/loss-b1-s0`: 2 evaluations, last at step 100",
    ] {
        assert!(md.contains(needle), "{needle:?} missing from:\n{md}");
    }
    // Two seeds cannot make anything certain: no P(better) column.
    assert!(!md.contains("P(better) |"), "{md}");
    for name in [
        "metric_vs_steps.png",
        "metric_vs_backward.png",
        "metric_vs_seconds.png",
        "metric_vs_budget.png",
    ] {
        check_png(&tmp.path().join("plots").join(name));
    }
    assert!(
        tmp.path()
            .join("plots/paired_difference_vs_steps.png")
            .is_file()
    );
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// A real PNG of the plot size, with coloured lines and dark text in the
/// caption strip (which shows that the embedded font rendered).
fn check_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1000, 640));
    let coloured = img.pixels().filter(|p| {
        let [r, g, b] = p.0;
        r.max(g).max(b) - r.min(g).min(b) > 60
    });
    assert!(
        coloured.count() > 500,
        "{}: no coloured lines",
        path.display()
    );
    let caption_dark = (0..1000)
        .flat_map(|x| (0..45).map(move |y| (x, y)))
        .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 100))
        .count();
    assert!(caption_dark > 50, "{}: no caption text", path.display());
}

#[test]
fn malformed_summary_is_skipped_with_a_warning_or_fails_with_strict() {
    let tmp = tempfile::tempdir().unwrap();
    make_sweep(tmp.path());
    let bad = tmp.path().join("sweep-a/broken-b1-s0");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("summary.json"), "{ not json").unwrap();
    std::fs::write(bad.join("metrics.jsonl"), "").unwrap();

    let (r, out) = report_json(tmp.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: skipping") && stderr.contains("broken-b1-s0/summary.json"),
        "{stderr}"
    );
    assert_eq!(r["skipped"][0]["path"], "sweep-a/broken-b1-s0/summary.json");
    assert_eq!(r["groups"].as_array().unwrap().len(), 3);
    let md = std::fs::read_to_string(tmp.path().join("report.md")).unwrap();
    assert!(
        md.contains("## Skipped runs")
            && md.contains("`sweep-a/broken-b1-s0/summary.json`: malformed"),
        "{md}"
    );

    let out = xtask(&["report", tmp.path().to_str().unwrap(), "--strict"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("broken-b1-s0/summary.json"),
        "{}",
        text(&out)
    );
}

#[test]
fn malformed_metrics_line_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    make_sweep(tmp.path());
    let log = tmp.path().join("sweep-a/uniform-b1-s1/metrics.jsonl");
    let mut lines = std::fs::read_to_string(&log).unwrap();
    lines = lines.replacen("\"AP\":", "\"mAP\":", 2);
    std::fs::write(&log, lines).unwrap();
    let (r, _) = report_json(tmp.path(), &[]);
    let skipped = &r["skipped"][0];
    assert_eq!(skipped["path"], "sweep-a/uniform-b1-s1/metrics.jsonl");
    assert!(
        skipped["reason"].as_str().unwrap().contains("line 1"),
        "{skipped}"
    );
    assert_eq!(group(&r, "uniform", 1.0)["seeds"], json!([0]));
}

#[test]
fn missing_reference_gives_no_target_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    make_sweep(tmp.path());
    let (r, _) = report_json(tmp.path(), &["--reference", "uniform@50%"]);
    assert_eq!(r["reference_found"], false);
    assert_eq!(r["target"], Value::Null);
    let md = std::fs::read_to_string(tmp.path().join("report.md")).unwrap();
    assert!(
        md.contains("No runs of the reference uniform @ 50%"),
        "{md}"
    );
}

#[test]
fn target_fraction_moves_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    make_sweep(tmp.path());
    // Target 0.2: uniform @ 100% reaches it at step 200 with both seeds.
    let (r, _) = report_json(tmp.path(), &["--target-fraction", "0.4444444444444444"]);
    close(
        &group(&r, "uniform", 1.0)["to_target"]["steps"]["mean"],
        200.0,
    );
}

#[test]
fn empty_folder_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = xtask(&["report", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no run directories"), "{}", text(&out));
}

/// The hand sweep's reference climbs to its end: seed 0 from 0.3 at step
/// 300 (three quarters of 400) to 0.4 (+33.3%), seed 1 from 0.3 to 0.5
/// (+66.7%): a mean of +50%, far above the 3% the check allows. A
/// reference whose last quarter is flat (+2.0% and +1.0%) passes.
#[test]
fn an_underfit_reference_is_called_so_and_a_converged_one_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    make_sweep(tmp.path());
    let (r, _) = report_json(tmp.path(), &[]);
    let c = &r["reference_convergence"];
    assert_eq!(c["converged"], false, "{c}");
    close(&c["mean_rise"], 0.5);
    let md = std::fs::read_to_string(tmp.path().join("report.md")).unwrap();
    let warning = "Warning: the reference has not converged";
    assert!(md.contains(warning), "{md}");
    assert!(
        md.find(warning) < md.find("## "),
        "the warning opens the report"
    );

    let flat = tempfile::tempdir().unwrap();
    let long = [0.0, 100.0, 200.0, 300.0, 400.0];
    for (seed, ap) in [
        (0, [0.0, 0.3, 0.45, 0.49, 0.4998]),
        (1, [0.0, 0.3, 0.45, 0.5, 0.505]),
    ] {
        let rel = format!("uniform-b1-s{seed}");
        write_run(
            flat.path(),
            &rel,
            "uniform",
            1.0,
            seed,
            &long,
            &ap,
            &UNIFORM,
        );
    }
    let (r, _) = report_json(flat.path(), &[]);
    let c = &r["reference_convergence"];
    assert_eq!(c["converged"], true, "{c}");
    close(&c["mean_rise"], (0.4998 / 0.49 - 1.0 + 0.01) / 2.0);
    let md = std::fs::read_to_string(flat.path().join("report.md")).unwrap();
    assert!(!md.contains("not converged"), "{md}");
    assert!(md.contains("has converged"), "{md}");
    // A stricter threshold turns the same runs into a warning.
    let (r, _) = report_json(flat.path(), &["--max-rise", "0.01"]);
    assert_eq!(r["reference_convergence"]["converged"], false);
}

/// The warning is one paragraph of prose, no runs of spaces in it.
#[test]
fn the_convergence_warning_reads_as_prose() {
    let tmp = tempfile::tempdir().unwrap();
    make_sweep(tmp.path());
    report_json(tmp.path(), &[]);
    let md = std::fs::read_to_string(tmp.path().join("report.md")).unwrap();
    let line = md
        .lines()
        .find(|l| l.contains("has not converged"))
        .unwrap();
    assert!(!line.contains("  "), "{line}");
    assert!(line.contains("rose by +50.0%"), "{line}");
}

/// At equal training time: uniform @ 30% trains 0.1 s a step and ends at
/// step 120, 12 s; loss @ 30% trains 0.25 s a step, so at 12 s it is at
/// step 48, between its evaluations at 40 and 80: seed 0 at
/// 0.28 + 0.2 · 0.16 = 0.312 (uniform 0.3), seed 1 at 0.2 + 0.2 · 0.32 =
/// 0.264 (uniform 0.4). Loss ends ahead on final AP but is behind at equal
/// time, by a mean of (0.012 − 0.136) / 2 = −0.062.
#[test]
fn equal_training_time_reads_both_runs_at_the_faster_ones_end() {
    let tmp = tempfile::tempdir().unwrap();
    make_sweep(tmp.path());
    let (r, _) = report_json(tmp.path(), &[]);
    let c = r["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["method"] == "loss")
        .unwrap();
    assert!(c["final_metric"]["mean_difference"].as_f64().unwrap() > 0.0);
    let e = &c["metric_at_equal_seconds"];
    close(&e["seconds"], 12.0);
    close(&e["method"], (0.312 + 0.264) / 2.0);
    close(&e["baseline"], 0.35);
    close(&e["paired"]["mean_difference"], -0.062);
    let md = std::fs::read_to_string(tmp.path().join("report.md")).unwrap();
    assert!(md.contains("### At equal training time"), "{md}");
    assert!(
        md.contains("| loss | 30% | 12.0 | 0.2880 / 0.3500 | -0.0620 |"),
        "{md}"
    );
}

fn write_sampling(root: &Path, rel: &str, trained: &[u32], forwarded: &[u32]) {
    let record = json!({
        "trained": trained, "forwarded": forwarded,
        "last_score": vec![Some(1.0); trained.len()],
        "scores_over_run": [{"step": 40, "scored": trained.len(),
                             "quantiles": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}]
    });
    std::fs::write(root.join(rel).join("sampling.json"), record.to_string()).unwrap();
}

/// The spending section from hand-made `sampling.json` files: uniform @
/// 100% trains its 400 images 10 times each (4,000 backward passes);
/// loss @ 30% seed 0 trains 40 images 21 times and the other 360 once
/// (1,200), forwarding each 9 times (3,600): the top tenth takes 840 /
/// 1,200 = 70%, and G = 2·384,600 / (400·1,200) − 401/400 = 0.6. Its seed
/// 1 has no record; uniform @ 30% seed 0's counts disagree with its
/// summary, so that run gets a note and its group no row.
#[test]
fn the_spending_section_reads_each_runs_sampling_record() {
    let tmp = tempfile::tempdir().unwrap();
    make_sweep(tmp.path());
    for seed in [0, 1] {
        let even = vec![10; 400];
        write_sampling(
            tmp.path(),
            &format!("sweep-a/uniform-b1-s{seed}"),
            &even,
            &even,
        );
    }
    let mut skewed = vec![1; 360];
    skewed.extend([21; 40]);
    write_sampling(
        tmp.path(),
        "sweep-b/nested/loss-b0.3-s0",
        &skewed,
        &[9; 400],
    );
    write_sampling(tmp.path(), "sweep-a/uniform-b0.3-s0", &[1; 400], &[1; 400]);
    let (report, _) = report_json(tmp.path(), &[]);
    let spending = report["spending"].as_array().unwrap();
    assert_eq!(spending.len(), 2, "{spending:#?}");
    let (uniform, loss) = (&spending[0], &spending[1]);
    assert_eq!(
        (&uniform["method"], &uniform["runs"]),
        (&json!("uniform"), &json!(2))
    );
    close(&uniform["mean_trained"], 10.0);
    close(&uniform["gini"], 0.0);
    close(&uniform["top_decile_share"], 0.1);
    assert_eq!(uniform["most_trained"], 10);
    assert_eq!(
        (&loss["method"], &loss["runs"]),
        (&json!("loss"), &json!(1))
    );
    close(&loss["mean_trained"], 3.0);
    close(&loss["never_trained"], 0.0);
    close(&loss["top_decile_share"], 0.7);
    close(&loss["gini"], 0.6);
    close(&loss["histogram"][1]["mean"], 0.9);
    close(&loss["histogram"][21]["mean"], 0.1);
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("uniform-b0.3-s0") && notes.contains("the summary says 1200 and 1200"),
        "{notes}"
    );
    let out = xtask(&["report", tmp.path().to_str().unwrap(), "--resamples", "200"]);
    assert!(out.status.success(), "{}", text(&out));
    let md = std::fs::read_to_string(tmp.path().join("report.md")).unwrap();
    for needle in [
        "## What the budget was spent on",
        "| loss | 30% | 1 | 400 | 3.00 | 0.0% | 70.0% | 0.600 | 21× |",
        "![scores over the run](plots/scores_over_run.png)",
    ] {
        assert!(md.contains(needle), "{needle:?} missing from:\n{md}");
    }
    check_png(&tmp.path().join("plots/train_counts.png"));
    assert!(tmp.path().join("plots/scores_over_run.png").is_file());
}
