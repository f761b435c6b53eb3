"""Training plumbing shared by the steps: seeding, per-epoch MLflow logging, validation macro-F1."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import keras
import mlflow
import numpy as np

from ecg_mlflow.evaluation import macro_f1
from ecg_mlflow.models.classifier import class_probabilities

VAL_MACRO_F1 = "val_macro_f1"
LEARNING_RATE = "learning_rate"
# Batches per graph call: at batch 64 on a 2-core CPU much of a step is fixed overhead;
# 32 per call measured 1.2-1.5x the throughput (docs/models.md). Results are unchanged.
STEPS_PER_EXECUTION = 32


def untuned(dataset: Any) -> Any:
    """`dataset` with tf.data's autotuning off and a fixed prefetch of 2 batches.

    With autotuning on, TensorFlow ran the fused LSTM kernel's two halves of a batch one after
    the other in about half the epochs (1.5x slower; Keras' unrolled LSTM 1.7-1.9x slower), whole
    epochs at a time: the bimodal figures in docs/models.md. Off, every epoch ran at the fast rate.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(2).with_options(options)


def batches_dataset(batches: keras.utils.PyDataset) -> Any:
    """A PyDataset as an untuned tf.data pipeline of known length.

    Keras makes one iterator an epoch; each one after the first starts with `on_epoch_end()`
    (a new draw), so no epoch depends on a prefetch thread reaching the end of the last one.
    """
    import tensorflow as tf

    epochs = itertools.count()

    def generate() -> Iterator[Any]:
        if next(epochs):
            batches.on_epoch_end()
        yield from (batches[i] for i in range(len(batches)))

    spec = tf.nest.map_structure(lambda a: tf.TensorSpec((None, *a.shape[1:]), a.dtype), batches[0])
    dataset = tf.data.Dataset.from_generator(generate, output_signature=spec)
    return untuned(dataset.apply(tf.data.experimental.assert_cardinality(len(batches))))


def shuffled_batches(inputs: Any, targets: np.ndarray, batch_size: int, seed: int) -> Any:
    """(inputs, targets) in batches, reshuffled every epoch from `seed`, as an untuned tf.data pipeline."""
    import tensorflow as tf

    tensors = tf.nest.map_structure(tf.convert_to_tensor, (inputs, targets))
    rows = tf.data.Dataset.range(len(targets)).shuffle(len(targets), seed=seed, reshuffle_each_iteration=True)
    gather = lambda r: tf.nest.map_structure(lambda t: tf.gather(t, r), tensors)  # noqa: E731
    return untuned(rows.batch(batch_size).map(gather))


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
    """Per-epoch metrics to the active MLflow run (step = epoch number, from 1), and the optimiser's
    learning rate at the epoch's end (`learning_rate`), so a schedule can be read off the UI's charts."""

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
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            metrics[LEARNING_RATE] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        if metrics:
            mlflow.log_metrics(metrics, step=epoch + 1)


class BestEpochStopping(keras.callbacks.Callback):
    """Keep the best validation epoch's weights; stop after `patience` epochs without improvement,
    but never before `min_epochs`.

    A slow starter (the paper's LSTM answers "N" for its first epochs, then learns) sits at the
    majority-class macro-F1 for a while; plain early stopping ended such runs before they began.
    The best epoch is chosen among all epochs, the first ones included (unlike Keras's
    EarlyStopping(start_from_epoch), which does not track them).
    """

    def __init__(self, monitor: str, patience: int, min_epochs: int) -> None:
        super().__init__()
        self.monitor, self.patience, self.min_epochs = monitor, patience, min_epochs

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self.best, self.best_epoch, self.wait, self.best_weights = -np.inf, -1, 0, None
        self.stopped_epoch = 0

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is None:
            return
        if float(current) > self.best:
            self.best, self.best_epoch, self.wait = float(current), epoch, 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
        if self.patience > 0 and epoch + 1 >= self.min_epochs and self.wait >= self.patience:
            self.model.stop_training = True
            self.stopped_epoch = epoch + 1

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def best_weights_callbacks(patience: int, min_epochs: int = 0) -> list[keras.callbacks.Callback]:
    """Model selection on validation macro-F1: the best epoch's weights; stop after `patience`, never before
    `min_epochs`."""
    return [BestEpochStopping(VAL_MACRO_F1, patience, min_epochs)]
