//! `cargo xtask train`, `eval` and `sweep` end to end, through the real
//! binary: a run killed with SIGKILL resumes to the metrics of an
//! uninterrupted run, and `eval` prints what pycocotools prints.

mod common;

use common::{spawn_train, text, xtask};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/eval/tests/fixtures")
}

/// A 32-step run on tiny synth data, checkpointing every 2 steps.
fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.json");
    let config = serde_json::json!({
        "method": "uniform",
        "epochs": 4,
        "batch_size": 4,
        "augment": "light",
        "checkpoint_every": 2,
        "data": {"kind": "synth", "train": 32, "val": 8, "size": 64, "seed": 5},
        "model": {"preset": "tiny", "input_size": 64},
        "lr": {"base": 0.003, "warmup_steps": 2},
        "eval": {"every": 8, "batch_size": 8}
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
        .output()
        .unwrap()
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn optimiser_steps_checkpointed(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("checkpoint/state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["optimiser_steps"].as_u64())
        .unwrap_or(0)
}

#[test]
fn a_killed_run_resumes_to_the_uninterrupted_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path());
    let whole = tmp.path().join("whole");
    let o = train(&config, &whole);
    assert!(o.status.success(), "{}", text(&o));

    let killed = tmp.path().join("killed");
    let mut child = spawn_train(&config, &killed, &[]);
    let start = Instant::now();
    // Kill it (SIGKILL: no chance to clean up) once a checkpoint past the
    // first evaluation exists, well before the end.
    while optimiser_steps_checkpointed(&killed) < 10 {
        assert!(start.elapsed() < Duration::from_secs(300), "no checkpoint");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let at = optimiser_steps_checkpointed(&killed);
    assert!(at < 32, "killed at {at}");
    assert!(!killed.join("summary.json").exists());

    let o = train(&config, &killed);
    assert!(o.status.success(), "{}", text(&o));
    let (a, b) = (summary(&whole), summary(&killed));
    for name in [
        "AP", "AP50", "AP75", "AR100", "steps", "forward", "backward", "images",
    ] {
        assert_eq!(a[name], b[name], "{name} after resuming from step {at}");
    }
    // Every evaluation line matches too (times aside).
    let metrics = |d: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(d.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                serde_json::json!([v["step"], v["metrics"], v["train_loss"], v["backward"]])
            })
            .collect()
    };
    assert_eq!(metrics(&whole), metrics(&killed));
    assert_eq!(
        std::fs::read(whole.join("predictions.json")).unwrap(),
        std::fs::read(killed.join("predictions.json")).unwrap()
    );
}

#[test]
fn eval_prints_what_pycocotools_prints() {
    let f = fixtures();
    let o = xtask()
        .args(["eval", "--gt"])
        .arg(f.join("coco_gt.json"))
        .arg("--dt")
        .arg(f.join("coco_dt.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let expected = std::fs::read_to_string(f.join("coco_summary.txt")).unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), expected);

    let o = xtask()
        .args(["eval", "--json", "--gt"])
        .arg(f.join("coco_gt.json"))
        .arg("--dt")
        .arg(f.join("coco_dt.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let ours: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.join("coco_stats.json")).unwrap()).unwrap();
    for (name, value) in theirs.as_object().unwrap() {
        let d = (ours[name].as_f64().unwrap() - value.as_f64().unwrap()).abs();
        assert!(d < 1e-12, "{name}");
    }
}

#[test]
fn eval_names_a_broken_file() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("dt.json");
    std::fs::write(&bad, "[{\"image_id\": 1").unwrap();
    let o = xtask()
        .args(["eval", "--gt"])
        .arg(fixtures().join("coco_gt.json"))
        .arg("--dt")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("dt.json"), "{}", text(&o));
}

#[test]
fn a_sweep_within_a_time_limit_skips_each_run_it_expects_to_overrun() {
    let tmp = tempfile::tempdir().unwrap();
    write_config(tmp.path());
    let spec = tmp.path().join("spec.toml");
    std::fs::write(
        &spec,
        "base = \"tiny.json\"\nout = \"unused\"\nbudgets = [1.0, 0.5, 0.25]\nseeds = [0]\n\n[[methods]]\nname = \"uniform\"\n",
    )
    .unwrap();
    let out = tmp.path().join("runs");
    let sweep = |within: &str| {
        xtask()
            .args(["sweep", "--quiet", "--within", within, "--spec"])
            .arg(&spec)
            .arg("--out")
            .arg(&out)
            .args(["--set", "epochs=1"])
            .output()
            .unwrap()
    };
    // No run has finished, so the first starts unchecked; its pace then
    // says neither of the others can end within no time at all, and the
    // sweep goes past the first it skips to weigh the next.
    let o = sweep("0s");
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.join("uniform-b100-s0/summary.json").exists());
    for skipped in ["uniform-b50-s0", "uniform-b25-s0"] {
        assert!(!out.join(skipped).exists(), "{}", text(&o));
        assert!(
            text(&o).contains(&format!("runs/{skipped}: the finished runs' pace says")),
            "{}",
            text(&o)
        );
    }
    assert!(
        text(&o).contains("2 run(s) skipped as too long for the time left"),
        "{}",
        text(&o)
    );
    let o = sweep("1h");
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.join("uniform-b50-s0/summary.json").exists());
    assert!(out.join("uniform-b25-s0/summary.json").exists());
    // A limit that is not a duration is refused by name.
    let o = sweep("2 hours");
    assert!(!o.status.success());
    assert!(
        text(&o).contains("\"2 hours\" is not a duration"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_sweep_runs_its_grid_and_skips_finished_runs() {
    let tmp = tempfile::tempdir().unwrap();
    write_config(tmp.path());
    let spec = tmp.path().join("spec.toml");
    std::fs::write(
        &spec,
        r#"
base = "tiny.json"
out = "unused"
budgets = [0.5]
seeds = [0, 1]

[[methods]]
name = "uniform"
budgets = [1.0, 0.5]

[[methods]]
name = "entropy"
config = { strategy = { kind = "weighted_without_replacement" }, heuristic = { kind = "entropy" } }
"#,
    )
    .unwrap();
    let out = tmp.path().join("runs");
    let sweep = || {
        xtask()
            .args(["sweep", "--quiet", "--spec"])
            .arg(&spec)
            .arg("--out")
            .arg(&out)
            .args(["--set", "epochs=1"])
            .output()
            .unwrap()
    };
    let o = sweep();
    assert!(o.status.success(), "{}", text(&o));
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "entropy-b50-s0",
            "entropy-b50-s1",
            "uniform-b100-s0",
            "uniform-b100-s1",
            "uniform-b50-s0",
            "uniform-b50-s1"
        ]
    );
    let s = summary(&out.join("entropy-b50-s1"));
    assert_eq!(s["heuristic"], "entropy");
    assert_eq!(s["strategy"], "weighted_without_replacement");
    assert_eq!(s["seed"], 1);
    assert_eq!(s["steps"], 4);
    // Run again: everything is finished, nothing is retrained.
    let o = sweep();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        text(&o).matches("(finished before)").count(),
        6,
        "{}",
        text(&o)
    );
}

/// Every spec that ships plans without error (the base configurations
/// parse and validate, the methods' fields exist).
#[test]
fn every_shipped_spec_plans() {
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&specs).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if !text.contains("[[methods]]") {
            continue;
        }
        let o = xtask()
            .args(["sweep", "--dry-run", "--spec"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}: {}", path.display(), text_of(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(" runs"),
            "{}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} specs found");
}

/// `--shard K/N` splits a sweep into N disjoint parts that together are
/// the whole plan, in plan order; a bad shard is refused.
#[test]
fn sweep_shards_partition_the_plan() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/synth-main.toml");
    let list = |extra: &[&str]| {
        let o = xtask()
            .args(["sweep", "--dry-run", "--spec"])
            .arg(&spec)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text_of(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains('\t'))
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let all = list(&[]);
    let parts: Vec<Vec<String>> = (0..3)
        .map(|k| list(&["--shard", &format!("{k}/3")]))
        .collect();
    assert!(parts.iter().all(|p| !p.is_empty()));
    let mut merged: Vec<String> = Vec::new();
    for i in 0..all.len() {
        merged.push(parts[i % 3][i / 3].clone());
    }
    assert_eq!(merged, all);
    assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), all.len());
    let o = xtask()
        .args(["sweep", "--dry-run", "--shard", "3/3", "--spec"])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text_of(&o).contains("K/N"), "{}", text_of(&o));
    // More shards than runs: the empty shard says so and succeeds.
    let shard = format!("{}/{}", all.len(), all.len() + 1);
    let o = xtask()
        .args(["sweep", "--dry-run", "--shard", &shard, "--spec"])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text_of(&o));
    assert!(text_of(&o).contains("has no runs"), "{}", text_of(&o));
}

/// `--seeds` replaces the spec's seeds for every method, in the plan and
/// in the job array's tasks (whose cell numbers depend on it), and in the
/// main job's; a seed asked for twice is refused.
#[test]
fn sweep_seeds_replace_the_specs_seeds() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/synth-main.toml");
    let o = xtask()
        .args(["sweep", "--dry-run", "--seeds", "2,3", "--spec"])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text_of(&o));
    let dirs: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains('\t'))
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    assert_eq!(dirs.len(), 10, "{dirs:?}");
    assert_eq!(dirs.iter().filter(|d| d.ends_with("-s2")).count(), 5);
    assert_eq!(dirs.iter().filter(|d| d.ends_with("-s3")).count(), 5);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("array.sh");
    let o = xtask()
        .args(["sweep", "--seeds", "2,3", "--out"])
        .arg(dir.path().join("runs"))
        .arg("--slurm")
        .arg(&script)
        .arg("--spec")
        .arg(&spec)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text_of(&o));
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("--array=0-9"), "{text}");
    assert!(text.contains(" --seeds 2,3 "), "{text}");
    let o = xtask()
        .args(["sweep", "--dry-run", "--seeds", "1,0,1", "--spec"])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text_of(&o).contains("seed 1 is asked for twice"),
        "{}",
        text_of(&o)
    );
    // The main job takes them too, and refuses the same way before it
    // trains anything.
    let o = xtask()
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(["run", "--quiet", "--seeds", "3,3", "--out"])
        .arg(dir.path().join("main"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text_of(&o).contains("seed 3 is asked for twice"),
        "{}",
        text_of(&o)
    );
    assert!(!dir.path().join("main").exists());
}

/// `order = "by_seed"` trains every method of seed 0 before any of seed 1;
/// `"by_budget"` the largest budget first, by seed within it; the default
/// keeps a method's runs together.
#[test]
fn sweep_orders_group_runs_as_named() {
    let dir = tempfile::tempdir().unwrap();
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/synth-base.toml");
    let write = |order: &str| {
        let spec = dir
            .path()
            .join(format!("spec-{}.toml", order.replace(['"', ' ', '='], "")));
        let text = format!(
            "base = {base:?}\nout = \"o\"\nbudgets = [1.0]\nseeds = [0, 1]\n{order}\n\
             [[methods]]\nname = \"a\"\n[[methods]]\nname = \"b\"\n\
             [[methods]]\nname = \"c\"\nbudgets = [0.5, 1.0]\nseeds = [0]\n"
        );
        std::fs::write(&spec, text).unwrap();
        let o = xtask()
            .args(["sweep", "--dry-run", "--spec"])
            .arg(&spec)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text_of(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split('\t').next()?.strip_prefix("o/").map(str::to_string))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        write("order = \"by_seed\""),
        [
            "a-b100-s0",
            "b-b100-s0",
            "c-b50-s0",
            "c-b100-s0",
            "a-b100-s1",
            "b-b100-s1"
        ]
    );
    assert_eq!(
        write("order = \"by_budget\""),
        [
            "a-b100-s0",
            "b-b100-s0",
            "c-b100-s0",
            "a-b100-s1",
            "b-b100-s1",
            "c-b50-s0"
        ]
    );
    assert_eq!(
        write(""),
        [
            "a-b100-s0",
            "a-b100-s1",
            "b-b100-s0",
            "b-b100-s1",
            "c-b50-s0",
            "c-b100-s0"
        ]
    );
}

fn text_of(o: &Output) -> String {
    text(o)
}

/// Two real processes on one run directory: the second is refused at once
/// with the directory and the holder named, a sweep over a grid holding
/// that directory skips it as running elsewhere, and once the holder is
/// killed with SIGKILL (no chance to release anything) the run resumes.
#[test]
fn a_run_directory_is_held_by_one_process_and_a_killed_holder_never_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path());
    let out = tmp.path().join("runs");
    let dir = out.join("uniform-b100-s0");
    let longer = ["--set", "epochs=100"];
    let mut holder = spawn_train(&config, &dir, &longer);
    let pid = format!("pid {}", holder.id());
    let start = Instant::now();
    while optimiser_steps_checkpointed(&dir) < 2
        || !std::fs::read_to_string(dir.join("run.lock")).is_ok_and(|t| t.contains(&pid))
    {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the holder never started"
        );
        assert!(
            holder.try_wait().unwrap().is_none(),
            "the holder ended early"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    let o = xtask()
        .args(["train", "--quiet", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&dir)
        .args(longer)
        .output()
        .unwrap();
    assert!(!o.status.success(), "a second process trained the same run");
    let said = text(&o);
    assert!(
        said.contains("uniform-b100-s0") && said.contains(&pid),
        "{said}"
    );

    let spec = tmp.path().join("spec.toml");
    std::fs::write(
        &spec,
        "base = \"tiny.json\"\nout = \"unused\"\nbudgets = [1.0]\nseeds = [0]\n\n[[methods]]\nname = \"uniform\"\n",
    )
    .unwrap();
    let o = xtask()
        .args(["sweep", "--quiet", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .args(longer)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("running elsewhere"), "{}", text(&o));
    assert!(
        holder.try_wait().unwrap().is_none(),
        "the holder ended early"
    );

    holder.kill().unwrap();
    holder.wait().unwrap();
    let killed_at = optimiser_steps_checkpointed(&dir);
    // The resume takes the lock and trains on past the killed holder's
    // last checkpoint (then it is stopped too: finishing proves nothing
    // more about the lock).
    let mut resumed = spawn_train(&config, &dir, &longer);
    let pid = format!("pid {}", resumed.id());
    let start = Instant::now();
    while optimiser_steps_checkpointed(&dir) <= killed_at
        || !std::fs::read_to_string(dir.join("run.lock")).is_ok_and(|t| t.contains(&pid))
    {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the resume is blocked"
        );
        assert!(resumed.try_wait().unwrap().is_none(), "the resume ended");
        std::thread::sleep(Duration::from_millis(5));
    }
    resumed.kill().unwrap();
    resumed.wait().unwrap();
}

/// A run resumed with another CPU thread count than it trained with says
/// so: its numbers will differ from an uninterrupted run's.
#[test]
fn resuming_with_another_thread_count_warns() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path());
    let run = tmp.path().join("run");
    let train_with = |threads: &str| {
        xtask()
            .env("RAYON_NUM_THREADS", threads)
            .env("RUST_LOG", "warn")
            .args(["train", "--quiet", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&run)
            .args(["--set", "epochs=1"])
            .output()
            .unwrap()
    };
    let o = train_with("1");
    assert!(o.status.success(), "{}", text(&o));
    // Unfinished again: the resume restores the last checkpoint.
    std::fs::remove_file(run.join("summary.json")).unwrap();
    let o = train_with("2");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("resuming with 2 CPU threads, but the run trained with 1"),
        "{}",
        text(&o)
    );
    std::fs::remove_file(run.join("summary.json")).unwrap();
    let o = train_with("1");
    assert!(!text(&o).contains("CPU threads"), "{}", text(&o));
}
