"""isdet.torch: the DataLoader adapter (skipped when torch is absent)."""

import pytest

torch = pytest.importorskip("torch")

import isdet  # noqa: E402
from isdet.torch import BatchSampler  # noqa: E402


def test_uniform_yields_every_id_of_an_epoch_exactly_once():
    batches = BatchSampler(isdet.Sampler(30, 4, 1, strategy={"kind": "uniform"}, seed=2))
    seen = []
    for ids in batches:
        seen.extend(ids)
        batches.record(torch.ones(len(ids)))
    assert sorted(seen) == list(range(30))


def test_a_dataloader_trains_on_the_plans_with_their_weights():
    data = torch.utils.data.TensorDataset(torch.arange(20, dtype=torch.float32))
    sampler = isdet.Sampler(20, 5, 2, budget=0.5, strategy={"kind": "weighted_with_replacement"})
    batches = BatchSampler(sampler)
    steps = 0
    for (x,) in torch.utils.data.DataLoader(data, batch_sampler=batches):
        assert x.tolist() == [float(i) for i in batches.plan.ids]
        batches.record(x + 1.0)
        assert batches.weights().shape == x.shape
        steps += 1
    assert steps == sampler.budget["limit_steps"] == 4


def test_two_phase_methods_need_a_candidate_scorer():
    with pytest.raises(ValueError, match="score_candidates"):
        list(BatchSampler(isdet.Sampler(40, 4, 2, strategy={"kind": "selective_backprop"})))
    batches = BatchSampler(
        isdet.Sampler(40, 4, 2, strategy={"kind": "selective_backprop"}),
        score_candidates=lambda ids: [float(i % 7) for i in ids],
    )
    for ids in batches:
        batches.record([0.0] * len(ids))  # a no-op: recorded with the candidates
    assert batches.sampler.budget["forward_passes"] > batches.sampler.budget["backward_passes"]
