"""isdet.RunLog: run directories written from Python are read back by
`cargo xtask report` exactly as isdet's own runs are."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import isdet

ROOT = Path(__file__).resolve().parents[2]


def xtask_binary():
    """The built xtask (ISDET_XTASK, or target/{debug,release}/xtask)."""
    candidates = [os.environ.get("ISDET_XTASK")] + [
        str(ROOT / "target" / kind / "xtask") for kind in ("debug", "release")
    ]
    found = [c for c in candidates if c and Path(c).is_file()]
    if not found:
        if os.environ.get("CI"):
            pytest.fail("CI builds xtask before the Python tests (cargo test --workspace)")
        pytest.skip("no built xtask binary")
    return found[0]


def write_run(root, method, seed, final):
    sampler = isdet.Sampler(40, 4, 2, strategy={"kind": "uniform"}, seed=seed)
    log = isdet.RunLog(root / f"{method}-b100-s{seed}", method=method, budget=1.0, seed=seed)
    log.evaluation(step=0, metrics={"AP": 0.0}, sampler=sampler, seconds=0.0)
    for k, plan in enumerate(sampler, start=1):
        sampler.record(plan.ids, [1.0] * len(plan.ids))
        if k % 5 == 0:
            log.evaluation(step=k, metrics={"AP": final * k / 20}, sampler=sampler, seconds=0.1 * k)
    return log.finish()


def test_a_runlog_directory_is_read_back_by_xtask_report(tmp_path):
    binary = xtask_binary()
    for seed in (0, 1):
        write_run(tmp_path, "uniform", seed, 0.5)
        write_run(tmp_path, "torch-entropy", seed, 0.6)
    out = subprocess.run(
        [binary, "report", str(tmp_path), "--json", "--resamples", "200", "--no-plots"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    finals = {g["method"]: g["final_metric"]["mean"] for g in report["groups"]}
    assert finals == pytest.approx({"uniform": 0.5, "torch-entropy": 0.6})
    assert report["unfinished"] == [] and report["skipped"] == []
    steps = {g["method"]: g["mean_costs"]["steps"] for g in report["groups"]}
    assert steps == {"uniform": 20, "torch-entropy": 20}


def test_a_finished_directory_is_never_overwritten(tmp_path):
    write_run(tmp_path, "uniform", 0, 0.5)
    with pytest.raises(FileExistsError):
        isdet.RunLog(tmp_path / "uniform-b100-s0", method="uniform", budget=1.0, seed=0)


def test_the_primary_metric_is_required(tmp_path):
    log = isdet.RunLog(tmp_path / "r", method="m", budget=1.0, seed=0)
    with pytest.raises(ValueError, match="AP"):
        log.evaluation(step=0, metrics={"top1": 0.1}, seconds=0.0)
