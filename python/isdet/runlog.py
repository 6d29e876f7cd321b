"""Run directories in isdet's format from any training loop, so that
``cargo xtask report`` compares them with isdet's own runs (the format is
docs/run-directory.md: ``metrics.jsonl``, one line per evaluation with
every cost counter, and ``summary.json`` at the end)."""

import json
import os
from pathlib import Path
from typing import Any, Dict, Optional

PHASES = ("data", "forward", "backward", "scoring", "sampling", "eval")


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
    keyword arguments. A directory that already holds ``summary.json`` is
    refused: a finished run is never overwritten.
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
        config: Optional[Dict[str, Any]] = None,
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
        self._metrics = self.dir / "metrics.jsonl"
        self._metrics.write_text("")
        if config is not None:
            _write_atomic(self.dir / "config.json", json.dumps(config))

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

    def finish(self) -> Dict[str, Any]:
        """Writes ``summary.json`` from the last evaluation and returns it."""
        last = self._last
        if last is None:
            raise ValueError(f"{self.dir}: no evaluation logged; a summary needs one")
        summary = dict(self._identity)
        summary.update(last["metrics"])
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
