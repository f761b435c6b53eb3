"""Learning-rate schedules by name: the rate each gives Adam over a run's steps."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ecg_mlflow.config import ConfigError, TransferConfig
from ecg_mlflow.models.schedules import LR_SCHEDULES, learning_rate


def rate_at(rate, step: int) -> float:
    return float(keras.ops.convert_to_numpy(rate(step))) if callable(rate) else float(rate)


def test_constant_is_the_same_rate_at_every_step() -> None:
    rate = learning_rate("constant", 1e-3, epochs=5, steps_per_epoch=10)
    assert [rate_at(rate, s) for s in (0, 25, 50)] == [1e-3] * 3


def test_cosine_starts_at_the_rate_and_anneals_to_zero_by_the_last_epoch() -> None:
    rate = learning_rate("cosine", 3e-3, epochs=6, steps_per_epoch=100)
    values = [rate_at(rate, s) for s in range(0, 601, 100)]
    assert values[0] == pytest.approx(3e-3)
    assert values[3] == pytest.approx(1.5e-3, rel=1e-4)  # half-way: half the rate
    assert values[-1] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(values) < 0)


def test_an_unknown_schedule_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown learning-rate schedule 'step'.*constant, cosine"):
        learning_rate("step", 1e-3, epochs=1, steps_per_epoch=1)
    with pytest.raises(ConfigError, match="lr_schedule"):
        TransferConfig(lr_schedule="step")


def test_every_schedule_is_a_choice_of_the_transfer_step() -> None:
    for name in LR_SCHEDULES:
        assert TransferConfig(lr_schedule=name).lr_schedule == name
