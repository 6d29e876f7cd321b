//! `scripts/gpu-check.sh`, the prepared CUDA check, exercised without a
//! GPU: its argument checking, its answer where there is no GPU, and its
//! checks and JSON on the CPU (`--device cpu`) with this build's xtask.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::text;
use serde_json::Value;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/gpu-check.sh")
}

fn gpu_check(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .unwrap()
}

fn report(out: &Path) -> Value {
    let path = out.join("gpu-check.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

#[test]
fn bad_arguments_are_refused_with_the_argument_named() {
    for (args, named) in [
        (&[][..], "expected a command"),
        (&["launch"][..], "unknown command 'launch'"),
        (&["run", "--device", "tpu"][..], "--device tpu"),
        (&["run", "--steps", "0"][..], "--steps 0"),
        (&["run", "--bench", "huge:16"][..], "--bench huge:16"),
        (&["run", "--skip", "everything"][..], "--skip everything"),
        (&["run", "--out"][..], "--out needs a folder"),
        (&["prepare", "--fast"][..], "unknown argument '--fast'"),
    ] {
        let o = gpu_check(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(named), "{args:?}: {}", text(&o));
    }
}

#[test]
fn without_a_gpu_the_cuda_check_runs_nothing_and_says_so() {
    let gpu_here = Command::new("nvidia-smi")
        .arg("-L")
        .output()
        .is_ok_and(|o| o.status.success());
    if gpu_here {
        eprintln!("a GPU is visible here: the no-GPU answer is not what this machine gives");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let o = gpu_check(&["run", "--out", out.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let r = report(out.path());
    assert_eq!(r["status"], "no_gpu");
    assert_eq!(r["device"], "cuda");
    assert!(r["gpu"].is_null());
    assert_eq!(r["checks"].as_array().unwrap().len(), 0);
}

/// The training, resume and bench checks on the CPU, as they run on a GPU.
/// The device-parity check is skipped: it runs a test binary, which CI
/// already runs as `fast_path` on the CPU.
#[test]
fn on_the_cpu_the_checks_run_and_their_json_reports_each() {
    let out = tempfile::tempdir().unwrap();
    let o = gpu_check(&[
        "run",
        "--device",
        "cpu",
        "--xtask",
        env!("CARGO_BIN_EXE_xtask"),
        "--out",
        out.path().to_str().unwrap(),
        "--steps",
        "8",
        "--bench",
        "tiny:4",
        "--skip",
        "device-parity",
    ]);
    let log = std::fs::read_to_string(out.path().join("gpu-check.log")).unwrap_or_default();
    assert_eq!(o.status.code(), Some(0), "{}\n{log}", text(&o));
    let r = report(out.path());
    assert_eq!(r["status"], "passed", "{r}");
    assert_eq!(r["device"], "cpu");
    assert_eq!(check(&r, "device-parity")["status"], "skipped");
    for name in ["train", "resume", "bench"] {
        assert_eq!(check(&r, name)["status"], "passed", "{r}\n{log}");
    }
    assert!(
        check(&r, "train")["detail"]
            .as_str()
            .unwrap()
            .starts_with("training loss"),
        "{r}"
    );
    let detail = check(&r, "bench")["detail"].as_str().unwrap();
    assert!(detail.starts_with("tiny b4: "), "{r}");
    let bench = r["bench"].as_array().unwrap();
    assert_eq!(bench.len(), 1, "{r}");
    assert_eq!(bench[0]["device"], "cpu");
    assert_eq!(bench[0]["preset"], "tiny");
    assert_eq!(bench[0]["batch"], 4);
    assert!(bench[0]["train_step_ms_median"].as_f64().unwrap() > 0.0);
}
