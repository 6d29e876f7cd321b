//! A sweep as a Slurm job array, against a real Slurm: the test starts a
//! one-node cluster on this machine (`scripts/slurm-local.sh`, which
//! installs Slurm and munge from the distribution's packages when they are
//! missing), submits a 4-cell tiny sweep with `sweep --slurm … --submit`,
//! waits for the array, and checks that every cell finished with the
//! metrics the same cells get from a local sweep; a second submission
//! trains nothing. The daemons are stopped and their state removed at the
//! end, also when the test fails. With `SLURM_CONF` already set, the
//! cluster it names is used and left running.

mod common;

use common::{text, xtask};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/slurm-local.sh")
}

/// The local cluster, stopped when dropped (when this test started it).
struct Cluster {
    conf: String,
    owned: bool,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        if let Ok(conf) = std::env::var("SLURM_CONF") {
            return Some(Cluster { conf, owned: false });
        }
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if !root {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the Slurm test as root (it starts slurmctld and slurmd)"
            );
            eprintln!("skipped: starting a local Slurm needs root");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("isdet-slurm-test-{}", std::process::id()));
        let o = Command::new("bash")
            .arg(script())
            .arg("start")
            .env("ISDET_SLURM_DIR", &dir)
            .output()
            .unwrap();
        let cluster = Cluster {
            conf: dir.join("slurm.conf").display().to_string(),
            owned: true,
        };
        assert!(o.status.success(), "{}", text(&o));
        Some(cluster)
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.owned {
            let dir = Path::new(&self.conf).parent().unwrap();
            let _ = Command::new("bash")
                .arg(script())
                .arg("stop")
                .env("ISDET_SLURM_DIR", dir)
                .output();
        }
    }
}

const SPEC: &str = r#"
base = "tiny.json"
out = "unused"
budgets = [1.0]
seeds = [0, 1]

[[methods]]
name = "uniform"

[[methods]]
name = "entropy"
config = { strategy = { kind = "weighted_without_replacement" }, heuristic = { kind = "entropy" } }
"#;

fn write_spec(dir: &Path) -> PathBuf {
    let config = serde_json::json!({
        "method": "uniform",
        "epochs": 1,
        "batch_size": 4,
        "data": {"kind": "synth", "train": 32, "val": 8, "size": 64, "seed": 5},
        "model": {"preset": "tiny", "input_size": 64},
        "lr": {"base": 0.003, "warmup_steps": 2},
        "eval": {"every": 4, "batch_size": 8}
    });
    std::fs::write(dir.join("tiny.json"), config.to_string()).unwrap();
    let spec = dir.join("spec.toml");
    std::fs::write(&spec, SPEC).unwrap();
    spec
}

fn submit(cluster: &Cluster, spec: &Path, out: &Path, job: &Path) -> String {
    let mut cmd = xtask();
    cmd.env("SLURM_CONF", &cluster.conf)
        .args(["sweep", "--spec"])
        .arg(spec)
        .arg("--out")
        .arg(out)
        .arg("--slurm")
        .arg(job)
        .args(["--submit", "--max-parallel", "2", "--cpus-per-task", "1"]);
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn wait_for(cluster: &Cluster, job: &str) {
    let start = Instant::now();
    loop {
        let o = cluster
            .command("squeue")
            .args(["-h", "-j", job])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&o.stdout).trim().is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "job {job} still queued: {}",
            text(&o)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn summary(dir: &Path) -> serde_json::Value {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_sweep_runs_as_a_slurm_job_array_with_the_local_sweeps_metrics() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path());
    let on_slurm = tmp.path().join("slurm-runs");
    let job = tmp.path().join("job.sh");
    let id = submit(&cluster, &spec, &on_slurm, &job);
    assert!(id.chars().all(|c| c.is_ascii_digit()), "job id {id:?}");
    let script = std::fs::read_to_string(&job).unwrap();
    assert!(script.contains("#SBATCH --array=0-3%2"), "{script}");
    wait_for(&cluster, &id);

    let o = xtask()
        .args(["sweep", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(&on_slurm)
        .arg("--status")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("4 cells: 4 finished"), "{}", text(&o));

    // The same cells on this machine, one thread as the array tasks had.
    let local = tmp.path().join("local-runs");
    let o = xtask()
        .env("RAYON_NUM_THREADS", "1")
        .args(["sweep", "--quiet", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(&local)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for cell in [
        "uniform-b100-s0",
        "uniform-b100-s1",
        "entropy-b100-s0",
        "entropy-b100-s1",
    ] {
        let (a, b) = (summary(&on_slurm.join(cell)), summary(&local.join(cell)));
        for name in ["AP", "AP50", "AR100", "steps", "forward", "backward"] {
            assert_eq!(a[name], b[name], "{cell}: {name}");
        }
    }

    // Submitting again trains nothing: every cell was finished before.
    let again = submit(&cluster, &spec, &on_slurm, &job);
    wait_for(&cluster, &again);
    let logs: String = std::fs::read_dir(&on_slurm)
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&format!("slurm-{again}_"))
        })
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(logs.matches("(finished before)").count(), 4, "{logs}");
}
