"""isdet's importance sampler for any training loop.

The sampler decides what a training budget is spent on: which samples each
step trains on, with what weight, and which it only scores first. It is the
Rust sampler of isdet (the same plans for the same seed and scores), with
the configuration names of isdet's TOML files::

    import isdet

    sampler = isdet.Sampler(n=len(dataset), batch_size=32, epochs=10, budget=0.3,
                            strategy={"kind": "weighted_without_replacement", "epsilon": 0.1})
    for plan in sampler:
        if plan.score_first:                     # selective backprop, presampling
            sampler.record(plan.ids, losses_without_grad(plan.ids))
            plan = sampler.select()
        losses = per_sample_losses(plan.ids)     # forward with gradients
        sampler.record(plan.ids, losses)         # one score per id
        (weights(plan.weights) * losses).mean().backward()
        optimiser.step()
    print(sampler.budget)                        # every pass counted

A training plan's scores are recorded once (for a selected plan they were
recorded with the candidates). Bad configurations raise ``ValueError`` with
the field named.
"""

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from ._isdet import RawSampler
from .runlog import RunLog, coco_metrics
from .scoring import score
from .spending import Spending

__all__ = ["Plan", "RunLog", "Sampler", "Spending", "coco_metrics", "score"]


@dataclass(frozen=True)
class Plan:
    """One step's plan: train on ``ids`` with ``weights`` (after forwarding
    ``score_only`` without gradients), or, when ``score_first``, forward the
    candidate ``ids`` without gradients, record their scores and call
    ``Sampler.select()`` for the plan to train on."""

    kind: str
    ids: List[int]
    weights: List[float]
    score_only: List[int]

    @property
    def score_first(self) -> bool:
        return self.kind == "score_first"


def _as_list(values: Any) -> list:
    # NumPy arrays and torch tensors (on the CPU) both have tolist().
    return values.tolist() if hasattr(values, "tolist") else list(values)


class Sampler:
    """The sampler of one training run over ``n`` samples: ``epochs`` epochs
    of ``batch_size`` at ``budget`` (a fraction of the full schedule's
    optimiser steps), drawing with ``strategy`` (a dict, default uniform),
    every draw from ``seed``."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        epochs: int,
        budget: float = 1.0,
        strategy: Optional[Dict[str, Any]] = None,
        seed: int = 0,
    ) -> None:
        if strategy is None:
            strategy = {"kind": "uniform"}
        if not isinstance(strategy, dict):
            raise TypeError("strategy: expected a dict such as {'kind': 'uniform'}")
        self._raw = RawSampler(
            int(n), int(batch_size), int(epochs), float(budget), json.dumps(strategy), int(seed)
        )
        self._spending = Spending(int(n))

    def __iter__(self) -> "Sampler":
        return self

    def __next__(self) -> Plan:
        plan = self.plan()
        if plan is None:
            raise StopIteration
        return plan

    def plan(self) -> Optional[Plan]:
        """The next plan, or ``None`` once the budget is spent."""
        raw = self._raw.plan()
        if raw is None:
            return None
        plan = Plan(*raw)
        self._spending.count(plan)
        return plan

    def record(self, ids: Sequence[int], scores: Sequence[float]) -> None:
        """Records one score (finite, non-negative) per id."""
        ids, scores = _as_list(ids), _as_list(scores)
        self._raw.record(ids, scores)
        self._spending.scored(ids, scores)

    def select(self) -> Plan:
        """After a ``score_first`` plan and its ``record``: the plan to train on."""
        plan = Plan(*self._raw.select())
        self._spending.count(plan)
        return plan

    @property
    def steps_planned(self) -> int:
        """Plans handed out so far."""
        return self._raw.steps_planned()

    @property
    def spending(self) -> "Spending":
        """What the budget has been spent on so far, per sample: train and
        forward counts and last scores (``RunLog`` writes it to
        ``sampling.json``)."""
        return self._spending

    @property
    def budget(self) -> Dict[str, int]:
        """The budget's counters: optimiser steps, forward and backward
        passes, images seen, the step limit and the full schedule's steps."""
        return self._raw.budget()
