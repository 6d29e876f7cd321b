"""isdet's sampler in a PyTorch loop: a batch sampler for
``torch.utils.data.DataLoader`` that draws every batch from an
``isdet.Sampler``. Importing this module imports torch; ``import isdet``
does not.

    from isdet.torch import BatchSampler

    batches = BatchSampler(isdet.Sampler(len(dataset), 32, epochs=10, budget=0.3,
                                         strategy={"kind": "weighted_without_replacement"}),
                           score_candidates=losses_without_grad)   # for two-phase methods
    for images, targets in DataLoader(dataset, batch_sampler=batches):
        losses = per_sample_loss(model(images), targets)          # [B]
        batches.record(losses)                                     # the scores: here the losses
        (batches.weights(losses.device) * losses).mean().backward()
        optimiser.step(); optimiser.zero_grad()
"""

from typing import Callable, Iterator, List, Optional, Sequence

import torch

import isdet


class BatchSampler(torch.utils.data.Sampler):
    """Yields the ids of each step's training plan. After each batch, call
    ``record`` with one score per id (skipped after a two-phase selection,
    whose scores were recorded with the candidates) and use ``weights``
    for the loss. Two-phase methods (selective backprop, presampling) need
    ``score_candidates``: ids → one score each, from a forward pass
    without gradients."""

    def __init__(
        self,
        sampler: "isdet.Sampler",
        score_candidates: Optional[Callable[[List[int]], Sequence[float]]] = None,
    ) -> None:
        self.sampler = sampler
        self.score_candidates = score_candidates
        self.plan: Optional[isdet.Plan] = None
        self._to_record = False

    def __iter__(self) -> Iterator[List[int]]:
        for plan in self.sampler:
            if plan.score_first:
                if self.score_candidates is None:
                    raise ValueError(
                        "this strategy scores candidates first: give BatchSampler a "
                        "score_candidates function (ids -> scores, without gradients)"
                    )
                self.sampler.record(plan.ids, _as_list(self.score_candidates(plan.ids)))
                plan = self.sampler.select()
                self._to_record = False
            else:
                self._to_record = True
            self.plan = plan
            if plan.ids:
                yield list(plan.ids)

    def __len__(self) -> int:
        budget = self.sampler.budget
        return budget["limit_steps"] - budget["optimiser_steps"]

    def record(self, scores) -> None:
        """Records the last batch's scores (one per id, e.g. the detached
        per-sample losses); a no-op after a two-phase selection."""
        if self.plan is None:
            raise RuntimeError("record() before the first batch")
        if self._to_record:
            self.sampler.record(self.plan.ids, _as_list(scores))
            self._to_record = False

    def weights(self, device=None) -> torch.Tensor:
        """The last batch's loss weights, as a float32 tensor."""
        if self.plan is None:
            raise RuntimeError("weights() before the first batch")
        return torch.tensor(self.plan.weights, dtype=torch.float32, device=device)


def _as_list(values) -> list:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().float().tolist()
    return values.tolist() if hasattr(values, "tolist") else list(values)
