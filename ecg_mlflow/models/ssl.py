"""The multi-task self-supervised model: one encoder, 8 binary "was transform k applied?" heads.

Each head is a sigmoid Dense(1) named after its transform (TRANSFORM_NAMES), so Keras
keys losses, metrics and history by those names ("noise_loss", "val_noise_binary_accuracy").
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from ecg_mlflow.transforms import TRANSFORM_NAMES

ACCURACY = "binary_accuracy"


def build_ssl_model(encoder: keras.Model) -> keras.Model:
    """encoder + 8 sigmoid heads, outputs in TRANSFORM_NAMES order, named "ssl_<encoder name>"."""
    inputs = keras.Input(shape=encoder.input_shape[1:], name="beat")
    features = encoder(inputs)
    outputs = [keras.layers.Dense(1, activation="sigmoid", name=name)(features) for name in TRANSFORM_NAMES]
    return keras.Model(inputs, outputs, name=f"ssl_{encoder.name}")


def compile_ssl_model(
    model: keras.Model, learning_rate: float, head_weights: Sequence[float], steps_per_execution: int = 1
) -> keras.Model:
    """Adam + binary cross-entropy per head, weighted by head_weights; BinaryAccuracy per head.

    steps_per_execution > 1 runs that many batches per graph call: on a small CPU the
    per-batch Python/graph overhead is a large share of a batch-64 step (docs/models.md).
    """
    if len(head_weights) != len(TRANSFORM_NAMES):
        raise ValueError(f"head_weights needs {len(TRANSFORM_NAMES)} numbers, got {len(head_weights)}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss={name: keras.losses.BinaryCrossentropy() for name in TRANSFORM_NAMES},
        loss_weights={name: float(w) for name, w in zip(TRANSFORM_NAMES, head_weights, strict=True)},
        metrics={name: [keras.metrics.BinaryAccuracy(name=ACCURACY)] for name in TRANSFORM_NAMES},
        steps_per_execution=steps_per_execution,
    )
    return model


def ssl_targets(y_onehot: np.ndarray) -> dict[str, np.ndarray]:
    """(n, 8) one-hot from build_representation_set -> {head name: contiguous (n,) float32 target}."""
    y_onehot = np.asarray(y_onehot)
    if y_onehot.ndim != 2 or y_onehot.shape[1] != len(TRANSFORM_NAMES):
        raise ValueError(f"y_onehot must be (n, {len(TRANSFORM_NAMES)}), got {y_onehot.shape}")
    return {name: np.ascontiguousarray(y_onehot[:, k], dtype=np.float32) for k, name in enumerate(TRANSFORM_NAMES)}


def ssl_metric_names(prefix: str = "") -> dict[str, str]:
    """{head name: its accuracy's Keras history key}, e.g. {"noise": "noise_binary_accuracy"}.

    prefix="val_" gives the validation keys. Checked against a real fit in the tests.
    """
    return {name: f"{prefix}{name}_{ACCURACY}" for name in TRANSFORM_NAMES}


def ssl_loss_names(prefix: str = "") -> dict[str, str]:
    """{head name: its loss's Keras history key}, e.g. {"noise": "noise_loss"}."""
    return {name: f"{prefix}{name}_loss" for name in TRANSFORM_NAMES}


def rename_ssl_history(history: dict[str, list[float]]) -> dict[str, list[float]]:
    """Keras history -> short MLflow metric names: acc_noise, val_acc_noise, loss_noise, loss, val_loss, ..."""
    renamed: dict[str, list[float]] = {}
    for prefix in ("", "val_"):
        for name, key in ssl_metric_names(prefix).items():
            if key in history:
                renamed[f"{prefix}acc_{name}"] = history[key]
        for name, key in ssl_loss_names(prefix).items():
            if key in history:
                renamed[f"{prefix}loss_{name}"] = history[key]
        if f"{prefix}loss" in history:
            renamed[f"{prefix}loss"] = history[f"{prefix}loss"]
    return renamed
