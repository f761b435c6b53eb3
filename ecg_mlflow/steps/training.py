"""Training plumbing shared by the steps: seeding, per-epoch MLflow logging, validation macro-F1."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from typing import Any

import keras
import mlflow
import numpy as np

from ecg_mlflow.evaluation import macro_f1
from ecg_mlflow.models.classifier import class_probabilities

VAL_MACRO_F1 = "val_macro_f1"
# Batches per graph call: at batch 64 on a 2-core CPU much of a step is fixed overhead;
# 32 per call measured 1.2-1.5x the throughput (docs/models.md). Results are unchanged.
STEPS_PER_EXECUTION = 32


def seed_everything(seed: int) -> None:
    """Same seed, same numbers: Python, NumPy and TF seeds plus deterministic TF ops."""
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    keras.utils.set_random_seed(seed)
    import tensorflow as tf

    # Older TF or determinism already enabled: the seeds above still hold.
    with contextlib.suppress(Exception):
        tf.config.experimental.enable_op_determinism()


class ValidationMacroF1(keras.callbacks.Callback):
    """Put `val_macro_f1` into the epoch logs before later callbacks (early stopping, pruning) read them."""

    def __init__(
        self, val_inputs: np.ndarray | dict[str, np.ndarray], y_val: np.ndarray, n_classes: int, batch_size: int = 512
    ) -> None:
        super().__init__()
        self.val_inputs, self.y_val, self.n_classes, self.batch_size = val_inputs, y_val, n_classes, batch_size

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        raw = self.model.predict(self.val_inputs, batch_size=self.batch_size, verbose=0)
        proba = class_probabilities(raw, self.n_classes)
        if logs is not None:
            logs[VAL_MACRO_F1] = macro_f1(self.y_val, proba)


class MlflowEpochLogger(keras.callbacks.Callback):
    """Per-epoch metrics to the active MLflow run (step = epoch number, from 1)."""

    def __init__(self, rename: Callable[[dict[str, float]], dict[str, float]] | None = None) -> None:
        super().__init__()
        self.rename = rename or (lambda logs: logs)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        numbers = {}
        for key, value in (logs or {}).items():
            try:
                numbers[key] = float(value)
            except (TypeError, ValueError):
                continue
        metrics = {k: v for k, v in self.rename(numbers).items() if np.isfinite(v)}
        if metrics:
            mlflow.log_metrics(metrics, step=epoch + 1)


def best_weights_callbacks(patience: int, epochs: int) -> list[keras.callbacks.Callback]:
    """Model selection on validation macro-F1: keep the best epoch's weights, stop after `patience`."""
    return [
        keras.callbacks.EarlyStopping(
            monitor=VAL_MACRO_F1,
            mode="max",
            patience=patience if patience > 0 else epochs,
            restore_best_weights=True,
        )
    ]
