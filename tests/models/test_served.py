"""The served form of a classifier: what clients may send, what they get back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecg_mlflow.models.served import class_probabilities, label_table, served_inputs


def test_beats_as_lists_of_numbers_become_the_model_input() -> None:
    beats = np.random.default_rng(0).normal(size=(3, 187)).tolist()
    inputs = served_inputs(beats, 187, 0)
    assert set(inputs) == {"beat"} and inputs["beat"].shape == (3, 187, 1)
    assert served_inputs(np.asarray(beats)[..., None], 187, 0)["beat"].shape == (3, 187, 1)
    assert served_inputs(pd.DataFrame(beats), 187, 0)["beat"].shape == (3, 187, 1)


def test_wrong_beat_length_names_the_shape() -> None:
    with pytest.raises(ValueError, match=r"187 numbers; got an array shaped \(2, 180\)"):
        served_inputs(np.zeros((2, 180)), 187, 0)


def test_context_model_needs_rhythm_of_the_right_width() -> None:
    beats = np.zeros((2, 187))
    with pytest.raises(ValueError, match="also takes 8 rhythm features"):
        served_inputs(beats, 187, 8)
    with pytest.raises(ValueError, match=r"rhythm must be \(2, 8\); got \(2, 5\)"):
        served_inputs({"beat": beats, "rhythm": np.zeros((2, 5))}, 187, 8)
    inputs = served_inputs({"beat": beats, "rhythm": np.ones((2, 8))}, 187, 8)
    assert inputs["rhythm"].shape == (2, 8) and inputs["beat"].shape == (2, 187, 1)
    with pytest.raises(ValueError, match="send the beats as 'beat'"):
        served_inputs({"beats": beats}, 187, 0)


def test_label_table_names_the_most_likely_class() -> None:
    probs = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]], dtype=np.float32)
    table = label_table(probs, ["N", "S", "V"])
    assert list(table.columns) == ["label", "p_N", "p_S", "p_V"]
    assert table["label"].tolist() == ["S", "N"]


def test_one_sigmoid_unit_becomes_two_class_probabilities() -> None:
    probs = class_probabilities(np.array([[0.25], [0.9]]), 2)
    np.testing.assert_allclose(probs, [[0.75, 0.25], [0.1, 0.9]], atol=1e-6)
