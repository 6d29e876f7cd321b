"""Run directories in isdet's format from any training loop, so that
``cargo xtask report`` compares them with isdet's own runs (the format is
docs/run-directory.md: ``metrics.jsonl``, one line per evaluation with
every cost counter, ``summary.json`` at the end, and, when the loop gives
them, ``sampling.json``, ``predictions.json`` and ``config.json``)."""

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

PHASES = ("data", "forward", "backward", "scoring", "sampling", "eval")

# pycocotools' 12 statistics, in `COCOeval.stats` order.
COCO_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl",
              "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def coco_metrics(ground_truth: Dict[str, Any], results: List[Dict[str, Any]]) -> Dict[str, float]:
    """The metrics isdet's runs record, for COCO ``results`` (``image_id``,
    ``category_id``, ``bbox`` as x, y, width, height, ``score``; at least
    one) scored against the COCO ``ground_truth`` dict by pycocotools (the
    reference isdet's own evaluation matches): the 12 statistics by name,
    and ``AP/<class name>`` for each category (AP at IoU 0.50:0.95, all
    areas, 100 detections; classes without ground truth are left out),
    which the report's per-class table reads. Needs pycocotools."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints as it goes
        coco = COCO()
        coco.dataset = ground_truth
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    metrics = dict(zip(COCO_STATS, (float(v) for v in evaluator.stats)))
    # precision: [IoU thresholds, recall points, categories, areas, max detections]
    precision = evaluator.eval["precision"]
    for k, cat_id in enumerate(evaluator.params.catIds):
        values = precision[:, :, k, 0, -1]
        values = values[values > -1]
        if values.size:
            name = coco.cats[cat_id]["name"]
            metrics[f"AP/{name}"] = float(values.mean())
    return metrics


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunLog:
    """One run directory being written.

    ``method``, ``budget`` and ``seed`` are what the report groups runs by
    (a group is a method at a budget; its runs are its seeds);
    ``primary_metric`` is the metric it compares (``AP``, ``top1``)::

        log = isdet.RunLog("runs/torch/entropy-b30-s0", method="entropy", budget=0.3, seed=0)
        log.evaluation(step=0, metrics={"AP": 0.0}, sampler=sampler, seconds=0.0)
        ...                                   # train, evaluating every K steps
        log.evaluation(step=s, metrics={"AP": ap}, sampler=sampler, seconds=t, lr=lr, train_loss=l)
        log.finish()                          # summary.json from the last evaluation

    Counters (``forward``, ``backward``, ``images``, ``sampler_step``) are
    taken from ``sampler`` (an ``isdet.Sampler``) when given, else from the
    keyword arguments. With a sampler, ``finish()`` also writes
    ``sampling.json`` (each sample's train and forward counts and last
    score, and the score distribution at every evaluation), which the
    report's "what the budget was spent on" section reads.

    ``data`` is isdet's data configuration of the run (``{"kind": "coco",
    "train_json": …, "train_images": …, "val_json": …, "val_images": …}``,
    as in isdet's TOML files): ``config.json`` then names it, and the report
    can open the images for its gallery and thumbnail sheets.
    ``predictions()`` writes the final validation predictions for the
    gallery. A directory that already holds ``summary.json`` is refused: a
    finished run is never overwritten.
    """

    def __init__(
        self,
        directory,
        method: str,
        budget: float,
        seed: int,
        primary_metric: str = "AP",
        task: str = "detection",
        strategy: str = "",
        heuristic: str = "",
        data: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.dir = Path(directory)
        if (self.dir / "summary.json").exists():
            raise FileExistsError(f"{self.dir}: holds a finished run (summary.json)")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._identity = {
            "method": method,
            "strategy": strategy or method,
            "heuristic": heuristic,
            "budget": float(budget),
            "seed": int(seed),
            "task": task,
            "primary_metric": primary_metric,
        }
        self._last: Optional[Dict[str, Any]] = None
        self._sampler = None
        self._snapshots: List[Dict[str, Any]] = []
        self._val_annotations: Optional[Path] = None
        self._metrics = self.dir / "metrics.jsonl"
        self._metrics.write_text("")
        if data is not None:
            config = {"method": method, "task": task, "budget": float(budget),
                      "seed": int(seed), "data": data}
            _write_atomic(self.dir / "config.json", json.dumps(config, indent=1))

    def evaluation(
        self,
        step: int,
        metrics: Dict[str, float],
        seconds: float,
        sampler=None,
        *,
        epoch: int = 0,
        forward: int = 0,
        backward: int = 0,
        images: int = 0,
        sampler_step: Optional[int] = None,
        lr: float = 0.0,
        train_loss: Optional[float] = None,
        skipped_batches: int = 0,
        time: Optional[Dict[str, float]] = None,
    ) -> None:
        """Appends one evaluation: ``metrics`` at optimiser step ``step``,
        after ``seconds`` of training (evaluation excluded)."""
        if self._identity["primary_metric"] not in metrics:
            raise ValueError(f"metrics: no {self._identity['primary_metric']!r}, the primary metric")
        if sampler is not None:
            b = sampler.budget
            forward, backward, images = b["forward_passes"], b["backward_passes"], b["images_seen"]
            sampler_step = sampler.steps_planned
            self._sampler = sampler
            snapshot = sampler.spending.snapshot(step)
            if snapshot is not None:
                self._snapshots.append(snapshot)
        phases = {name: 0.0 for name in PHASES}
        phases.update(time or {})
        line = {
            "step": int(step),
            "sampler_step": int(step if sampler_step is None else sampler_step),
            "epoch": int(epoch),
            "forward": int(forward),
            "backward": int(backward),
            "images": int(images),
            "seconds": float(seconds),
            "lr": float(lr),
            "train_loss": None if train_loss is None else float(train_loss),
            "skipped_batches": int(skipped_batches),
            "metrics": {k: float(v) for k, v in metrics.items()},
            "time": {k: float(v) for k, v in phases.items()},
        }
        with open(self._metrics, "a") as f:
            f.write(json.dumps(line) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._last = line

    def predictions(self, results: List[Dict[str, Any]], ground_truth: Dict[str, Any]) -> None:
        """Writes the final validation predictions (COCO results: ``image_id``,
        ``category_id``, ``bbox`` as x, y, width, height, ``score``) and the
        COCO ground truth they are scored against, for the report's gallery."""
        _write_atomic(self.dir / "predictions.json", json.dumps(results))
        self._val_annotations = (self.dir / "val_annotations.json").resolve()
        _write_atomic(self._val_annotations, json.dumps(ground_truth))

    def finish(self) -> Dict[str, Any]:
        """Writes ``summary.json`` from the last evaluation (and, when the
        evaluations were given a sampler, ``sampling.json``) and returns
        the summary."""
        last = self._last
        if last is None:
            raise ValueError(f"{self.dir}: no evaluation logged; a summary needs one")
        if self._sampler is not None:
            self._write_sampling(last)
        summary = dict(self._identity)
        summary.update(last["metrics"])
        if self._val_annotations is not None:
            summary["val_annotations"] = str(self._val_annotations)
        summary.update(
            steps=last["step"],
            sampler_steps=last["sampler_step"],
            forward=last["forward"],
            backward=last["backward"],
            images=last["images"],
            seconds=last["seconds"],
            eval_seconds=last["time"]["eval"],
            skipped_batches=last["skipped_batches"],
        )
        _write_atomic(self.dir / "summary.json", json.dumps(summary))
        return summary

    def _write_sampling(self, last: Dict[str, Any]) -> None:
        spending = self._sampler.spending
        # The report refuses a record whose counts disagree with the
        # summary, so a loop that trained after its last evaluation (and
        # so would be misreported) is told here, not there.
        counts = (sum(spending.trained), sum(spending.forwarded))
        if counts != (last["backward"], last["forward"]):
            raise ValueError(
                f"{self.dir}: the sampler has handed out {counts[0]} backward and "
                f"{counts[1]} forward passes, the last evaluation says {last['backward']} "
                f"and {last['forward']}: evaluate once more after the last step"
            )
        snapshots = list(self._snapshots)
        if not snapshots or snapshots[-1]["step"] != last["step"]:
            final = spending.snapshot(last["step"])
            if final is not None:
                snapshots.append(final)
        _write_atomic(self.dir / "sampling.json", json.dumps(spending.record(snapshots)))
