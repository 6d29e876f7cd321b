"""isdet.Sampler from Python: the same plans as the Rust sampler for the
same seed and scores (tests/fixtures/plans.json, written by the Rust test
crates/sampler/tests/python_fixture.rs), budgets held, and bad
configurations refused with the field named."""

import json
import struct
from pathlib import Path

import pytest

import isdet

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "plans.json").read_text())


def f32(x):
    """x rounded to f32, as the Rust sampler holds it."""
    return struct.unpack("f", struct.pack("f", x))[0]


def score(i, step):
    return ((i * 37 + step * 11) % 23) * 0.125 + 0.125


def same_plan(plan, expected):
    assert plan.kind == expected["kind"]
    assert plan.ids == expected["ids"]
    assert plan.score_only == expected["score_only"]
    assert [f32(w) for w in plan.weights] == [f32(w) for w in expected["weights"]]


@pytest.mark.parametrize("run", FIXTURE["runs"], ids=lambda r: json.dumps(r["strategy"]))
def test_plans_are_the_rust_samplers(run):
    sampler = isdet.Sampler(
        run["n"], run["batch_size"], run["epochs"], run["budget"], run["strategy"], run["seed"]
    )
    steps = iter(run["steps"])
    for plan in sampler:
        expected = next(steps)
        same_plan(plan, expected["plan"])
        step = sampler.steps_planned
        sampler.record(plan.ids, [score(i, step) for i in plan.ids])
        if plan.score_first:
            same_plan(sampler.select(), expected["selected"])
    assert next(steps, None) is None, "the Rust run planned more steps"
    counters = sampler.budget
    for name, value in run["counters"].items():
        assert counters[name] == value, name


def test_the_budget_is_held_and_counted():
    sampler = isdet.Sampler(100, 10, 4, budget=0.3, strategy={"kind": "uniform"}, seed=1)
    seen = []
    for plan in sampler:
        seen.extend(plan.ids)
        sampler.record(plan.ids, [1.0] * len(plan.ids))
    b = sampler.budget
    assert b["optimiser_steps"] == b["limit_steps"] == 12
    assert b["full_steps"] == 40
    assert b["backward_passes"] == len(seen) == 120
    assert sampler.plan() is None


def test_uniform_yields_every_id_of_an_epoch_once():
    sampler = isdet.Sampler(30, 7, 1, strategy={"kind": "uniform"}, seed=3)
    ids = [i for plan in sampler for i in plan.ids]
    assert sorted(ids) == list(range(30))


def test_numpy_arrays_are_taken():
    np = pytest.importorskip("numpy")
    sampler = isdet.Sampler(20, 5, 1, strategy={"kind": "weighted_with_replacement"})
    plan = next(sampler)
    sampler.record(np.asarray(plan.ids), np.full(len(plan.ids), 0.5, dtype=np.float32))
    assert sampler.budget["backward_passes"] == 5


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"strategy": {"kind": "weighted_without_replacement", "epsilon": 2.0}}, "epsilon"),
        ({"strategy": {"kind": "no_such_strategy"}}, "no_such_strategy"),
        ({"budget": 1.5}, "budget"),
        ({"batch_size": 0}, "batch"),
    ],
)
def test_bad_configurations_raise_with_the_field_named(kwargs, named):
    args = {"n": 10, "batch_size": 4, "epochs": 2}
    args.update(kwargs)
    with pytest.raises(ValueError, match=named):
        isdet.Sampler(**args)


def test_a_bad_score_raises_with_the_rust_message():
    sampler = isdet.Sampler(10, 4, 1)
    plan = next(sampler)
    with pytest.raises(ValueError, match="finite"):
        sampler.record(plan.ids, [float("nan")] * len(plan.ids))
