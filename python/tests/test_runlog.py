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


def drain(sampler, score=lambda i: 0.01 + (i % 7) / 10):
    """Runs a sampler to its end as a training loop would, recording one
    score per id; returns the train plans and their score-only ids."""
    trained, forwarded = [], []
    for plan in sampler:
        if plan.score_first:
            sampler.record(plan.ids, [score(i) for i in plan.ids])
            plan = sampler.select()
        else:
            sampler.record(plan.ids, [score(i) for i in plan.ids])
        trained += plan.ids
        forwarded += plan.ids + plan.score_only
    return trained, forwarded


@pytest.mark.parametrize("strategy", [
    {"kind": "uniform"},
    {"kind": "weighted_with_replacement"},
    {"kind": "selective_backprop", "beta": 1.0},
    {"kind": "presampling"},
    {"kind": "info_batch"},
])
def test_the_spending_counts_add_up_to_the_budgets_passes(strategy):
    sampler = isdet.Sampler(60, 4, 3, budget=0.5, strategy=strategy, seed=3)
    trained, forwarded = drain(sampler)
    spending, budget = sampler.spending, sampler.budget
    assert sum(spending.trained) == budget["backward_passes"] > 0
    assert sum(spending.forwarded) == budget["forward_passes"]
    assert spending.trained == [trained.count(i) for i in range(60)]
    assert spending.forwarded == [forwarded.count(i) for i in range(60)]
    seen = set(forwarded)
    assert [s is not None for s in spending.last_score] == [i in seen for i in range(60)]


def test_the_score_snapshot_takes_the_trainers_quantiles():
    spending = isdet.Spending(5)
    assert spending.snapshot(0) is None
    spending.scored([0, 1, 2, 3], [0.4, 0.1, 0.3, 0.2])
    snap = spending.snapshot(7)
    # Index round((n - 1) * q) of the sorted scores, halves away from zero:
    # 0.75 * 3 = 2.25 -> 2, 0.5 * 3 = 1.5 -> 2.
    assert snap == {"step": 7, "scored": 4,
                    "quantiles": [0.1, 0.1, 0.2, 0.3, 0.3, 0.4, 0.4]}


def test_a_runlog_with_a_sampler_writes_a_sampling_record_the_report_reads(tmp_path):
    binary = xtask_binary()
    strategy = {"kind": "weighted_with_replacement"}
    sampler = isdet.Sampler(40, 4, 2, strategy=strategy, seed=0)
    log = isdet.RunLog(tmp_path / "w-b100-s0", method="w", budget=1.0, seed=0)
    log.evaluation(step=0, metrics={"AP": 0.0}, sampler=sampler, seconds=0.0)
    for k, plan in enumerate(sampler, start=1):
        sampler.record(plan.ids, [float(i) for i in plan.ids])
        if k % 10 == 0:
            log.evaluation(step=k, metrics={"AP": k / 100}, sampler=sampler, seconds=0.1 * k)
    log.finish()
    record = json.loads((tmp_path / "w-b100-s0" / "sampling.json").read_text())
    assert sum(record["trained"]) == sampler.budget["backward_passes"] == 80
    assert [s["step"] for s in record["scores_over_run"]] == [10, 20]
    out = subprocess.run(
        [binary, "report", str(tmp_path), "--json", "--resamples", "200", "--no-plots"],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    spending = json.loads(out.stdout)["spending"]
    assert [(s["method"], s["runs"], s["images"]) for s in spending] == [("w", 1, 40)]
    assert spending[0]["mean_trained"] == pytest.approx(2.0)


def test_a_runlog_refuses_a_sampling_record_that_disagrees_with_its_last_evaluation(tmp_path):
    sampler = isdet.Sampler(40, 4, 2, seed=0)
    log = isdet.RunLog(tmp_path / "r", method="m", budget=1.0, seed=0)
    log.evaluation(step=0, metrics={"AP": 0.0}, sampler=sampler, seconds=0.0)
    drain(sampler)  # trains to the end without evaluating again
    with pytest.raises(ValueError, match="evaluate once more"):
        log.finish()
    assert not (tmp_path / "r" / "summary.json").exists()


def test_coco_metrics_give_each_classes_ap_under_its_name():
    pytest.importorskip("pycocotools")
    gt = {
        "images": [{"id": 1, "width": 64, "height": 64}, {"id": 2, "width": 64, "height": 64}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "owl"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 20], "area": 400, "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [30, 30, 20, 20], "area": 400, "iscrowd": 0},
        ],
    }
    # The cat is found exactly; the dog is missed (a box far away).
    results = [
        {"image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 20], "score": 0.9},
        {"image_id": 2, "category_id": 2, "bbox": [0, 0, 8, 8], "score": 0.8},
    ]
    metrics = isdet.coco_metrics(gt, results)
    assert metrics["AP/cat"] == pytest.approx(1.0)
    assert metrics["AP/dog"] == pytest.approx(0.0)
    assert "AP/owl" not in metrics  # no ground truth: no AP
    assert metrics["AP"] == pytest.approx(0.5)
    assert set(isdet.runlog.COCO_STATS) <= set(metrics)


def test_predictions_are_written_beside_their_ground_truth(tmp_path):
    log = isdet.RunLog(tmp_path / "r", method="m", budget=1.0, seed=0,
                       data={"kind": "coco", "train_json": "t.json", "train_images": "t",
                             "val_json": "v.json", "val_images": "v"})
    gt = {"images": [{"id": 1, "width": 8, "height": 8}], "categories": [], "annotations": []}
    log.predictions([], gt)
    log.evaluation(step=0, metrics={"AP": 0.0}, seconds=0.0)
    summary = log.finish()
    run = tmp_path / "r"
    assert json.loads((run / "predictions.json").read_text()) == []
    assert json.loads((run / "val_annotations.json").read_text()) == gt
    assert summary["val_annotations"] == str((run / "val_annotations.json").resolve())
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["kind"] == "coco" and config["method"] == "m"
