"""One importance score per sample from a forward pass's outputs, computed
by isdet's Rust heuristics (docs/methods.md, "Scoring a training sample"),
not re-implemented here."""

import json
from typing import Any, Dict, Optional, Sequence

from ._isdet import score_batch


def _flat(values: Any):
    """Values and shape of an array-like (NumPy array, CPU tensor, nested
    lists), as float32-ready Python lists."""
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    try:
        import numpy as np
    except ImportError:  # nested lists without NumPy
        shape, v = [], values
        while isinstance(v, (list, tuple)):
            shape.append(len(v))
            v = v[0] if v else []
        flat = values
        for _ in range(len(shape) - 1):
            flat = [x for row in flat for x in row]
        return [float(x) for x in flat], shape
    array = np.asarray(values, dtype=np.float32)
    return array.ravel().tolist(), list(array.shape)


def score(
    heuristic: Dict[str, Any],
    losses: Sequence[float],
    probs: Any,
    *,
    parts: Any = None,
    mask: Any = None,
    labels: Optional[Sequence[int]] = None,
    location_labels: Optional[Sequence[int]] = None,
    aggregation: Optional[Dict[str, Any]] = None,
):
    """The scores of a batch under ``heuristic`` (``{"kind": "entropy"}``,
    ``{"kind": "loss"}``, ``{"kind": "threshold_closeness"}``, …).

    Classification: ``losses`` ``[B]`` and softmax ``probs`` ``[B, C]``
    (``labels`` ``[B]`` for the heuristics that need the true class).
    Detection: ``losses`` ``[B]``, sigmoid ``probs`` ``[B, L, C]`` over the
    L locations, ``mask`` ``[B, L]`` (1 for real locations), the loss
    ``parts`` ``[B, 3]`` (classification, box, centre-ness), optional
    ``location_labels`` ``[B·L]``; ``aggregation`` turns location values
    into one image score (default: the mean of the top 10)."""
    config: Dict[str, Any] = {"heuristic": heuristic}
    if aggregation is not None:
        config["aggregation"] = aggregation
    flat_losses, _ = _flat(losses)
    flat_probs, shape = _flat(probs)
    parts_rows = None
    if parts is not None:
        flat_parts, _ = _flat(parts)
        parts_rows = [flat_parts[i : i + 3] for i in range(0, len(flat_parts), 3)]
    flat_mask = None if mask is None else _flat(mask)[0]
    as_ints = lambda xs: None if xs is None else [int(x) for x in _flat(xs)[0]]
    return score_batch(
        json.dumps(config),
        flat_losses,
        flat_probs,
        shape,
        parts_rows,
        flat_mask,
        as_ints(labels),
        as_ints(location_labels),
    )
