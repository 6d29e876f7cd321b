"""isdet.score: the Rust heuristics from Python (the numbers of the Rust
crate's own documented examples)."""

import math

import pytest

import isdet


def test_detection_least_confidence_takes_the_unmasked_locations():
    # Two images, two locations, one class; image 1's second location is masked.
    probs = [[[0.5], [0.01]], [[0.99], [0.0]]]
    mask = [[1.0, 1.0], [1.0, 0.0]]
    parts = [[0.6, 0.3, 0.1], [0.2, 0.2, 0.1]]
    scores = isdet.score(
        {"kind": "least_confidence"}, [1.0, 0.5], probs,
        parts=parts, mask=mask, aggregation={"kind": "max"},
    )
    assert scores == pytest.approx([0.5, 0.01], abs=1e-6)
    loss_part = isdet.score({"kind": "loss", "part": "classification"}, [1.0, 0.5], probs,
                            parts=parts, mask=mask)
    assert loss_part == pytest.approx([0.6, 0.2])


def test_classification_entropy_of_a_uniform_prediction_is_log_c():
    scores = isdet.score({"kind": "entropy"}, [1.0, 1.0], [[0.25] * 4, [1.0, 0.0, 0.0, 0.0]])
    assert scores[0] == pytest.approx(math.log(4), rel=1e-5)
    assert scores[1] == pytest.approx(0.0, abs=1e-5)


def test_bad_input_raises_with_the_rust_message():
    with pytest.raises(ValueError, match="probs"):
        isdet.score({"kind": "entropy"}, [1.0, 1.0, 1.0], [[0.5, 0.5]])
    with pytest.raises(ValueError, match="no_such"):
        isdet.score({"kind": "no_such"}, [1.0], [[1.0]])
