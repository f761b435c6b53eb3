"""Learning-rate schedules by name: how the rate moves over a run's optimiser steps.

`constant` is the paper's (Adam at a fixed rate). `cosine` anneals to 0 by the last step of the
epoch budget: a short schedule (the `fast` profile's LSTM) gets a high rate early and settles at
the end, where a constant rate stops wherever its budget runs out, mid-oscillation. Early stopping
keeps the schedule of the whole budget. Keras is imported when a schedule is made, so configs can
validate a name without loading TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

    LearningRate = float | keras.optimizers.schedules.LearningRateSchedule
else:
    LearningRate = Any


def constant(rate: float, steps: int) -> LearningRate:
    """The same rate for every step."""
    return rate


def cosine(rate: float, steps: int) -> LearningRate:
    """From `rate` down to 0 along half a cosine over `steps` optimiser steps."""
    import keras

    return keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(steps, 1))


LR_SCHEDULES: dict[str, Callable[[float, int], LearningRate]] = {"constant": constant, "cosine": cosine}


def learning_rate(schedule: str, rate: float, epochs: int, steps_per_epoch: int) -> LearningRate:
    """Adam's `learning_rate` for a run of `epochs` x `steps_per_epoch` optimiser steps."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
    return LR_SCHEDULES[schedule](rate, epochs * steps_per_epoch)
