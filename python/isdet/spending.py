"""What a sampler's budget was spent on, per sample, tallied as plans are
handed out: the same counts the Rust trainer rebuilds from its journal for
``sampling.json`` (docs/run-directory.md)."""

import math
from typing import Any, Dict, List, Optional, Sequence

# Minimum, 10%, 25%, median, 75%, 90%, maximum (`SCORE_QUANTILES` in Rust).
SCORE_QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


def round4(x: float) -> float:
    """``x`` to four significant digits, as the trainer writes scores."""
    return float(f"{x:.3e}")


class Spending:
    """Per-sample counts of one sampler: ``trained`` (backward passes),
    ``forwarded`` (forward passes, training and scoring-only) and
    ``last_score`` (``None`` until the sample is scored)."""

    def __init__(self, n: int) -> None:
        self.trained: List[int] = [0] * n
        self.forwarded: List[int] = [0] * n
        self.last_score: List[Optional[float]] = [None] * n

    def count(self, plan: Any) -> None:
        """Counts one plan handed out. A ``score_first`` plan costs nothing
        yet: its candidates come back as the ``score_only`` of the plan
        ``select()`` returns, which is where the sampler's budget counts
        them too."""
        if plan.score_first:
            return
        for i in plan.ids:
            self.trained[i] += 1
            self.forwarded[i] += 1
        for i in plan.score_only:
            self.forwarded[i] += 1

    def scored(self, ids: Sequence[int], scores: Sequence[float]) -> None:
        """Keeps each id's latest score."""
        for i, s in zip(ids, scores):
            self.last_score[i] = float(s)

    def snapshot(self, step: int) -> Optional[Dict[str, Any]]:
        """The distribution of the last scores of the samples scored so far
        at optimiser step ``step``; ``None`` before any is scored."""
        scores = sorted(s for s in self.last_score if s is not None)
        if not scores:
            return None
        last = len(scores) - 1

        def at(q: float) -> float:
            # Rust's f64::round rounds halves away from zero; Python's
            # round() would round them to even.
            return scores[int(math.floor(last * q + 0.5))]

        return {
            "step": int(step),
            "scored": len(scores),
            "quantiles": [round4(at(q)) for q in SCORE_QUANTILES],
        }

    def record(self, snapshots: List[Dict[str, Any]]) -> Dict[str, Any]:
        """The ``sampling.json`` record, with the given score snapshots."""
        return {
            "trained": list(self.trained),
            "forwarded": list(self.forwarded),
            "last_score": [None if s is None else round4(s) for s in self.last_score],
            "scores_over_run": snapshots,
        }
