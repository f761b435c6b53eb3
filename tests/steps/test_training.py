"""Early stopping that cannot end a run before it starts, and runs that learned nothing say so."""

from __future__ import annotations

import logging

import keras
import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from ecg_mlflow.config import MainConfig
from ecg_mlflow.steps.children import MainResult
from ecg_mlflow.steps.main import results_table
from ecg_mlflow.steps.supervised import LEARNED_NOTHING_TAG, flag_if_learned_nothing, majority_macro_f1
from ecg_mlflow.steps.training import BestEpochStopping, batches_dataset, shuffled_batches


class Scripted(keras.callbacks.Callback):
    """Writes a scripted validation score into the epoch logs and nudges a weight so epochs differ."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.scores = scores

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs["val_score"] = self.scores[epoch]
        kernel = self.model.layers[-1].kernel
        kernel.assign(np.full(kernel.shape, float(epoch), dtype="float32"))


def _fit(scores: list[float], patience: int, min_epochs: int) -> tuple[keras.Model, BestEpochStopping, int]:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    stopping = BestEpochStopping("val_score", patience, min_epochs)
    history = model.fit(
        np.ones((4, 2)), np.ones(4), epochs=len(scores), verbose=0, callbacks=[Scripted(scores), stopping]
    )
    return model, stopping, len(history.history["loss"])


def test_a_slow_start_is_not_stopped_before_min_epochs() -> None:
    flat_then_learning = [0.18] * 7 + [0.5, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    _, _, ran_plain = _fit(flat_then_learning, patience=5, min_epochs=0)
    assert ran_plain == 6  # plain early stopping: over before it began
    model, stopping, ran = _fit(flat_then_learning, patience=5, min_epochs=8)
    assert ran == 15 and stopping.best_epoch == 9  # learned, then stopped 5 epochs after its best
    assert float(model.layers[-1].kernel.numpy()[0, 0]) == 9.0  # the best epoch's weights are restored


def test_the_best_epoch_may_come_before_min_epochs() -> None:
    model, stopping, ran = _fit([0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], patience=2, min_epochs=5)
    assert ran == 5 and stopping.best_epoch == 0
    assert float(model.layers[-1].kernel.numpy()[0, 0]) == 0.0


def test_majority_macro_f1_is_what_always_answering_n_scores() -> None:
    y = np.array([0] * 80 + [1] * 10 + [2] * 10)
    assert majority_macro_f1(y, 0, 5) == pytest.approx((2 * 0.8 / 1.8) / 5)


def test_a_run_that_learned_nothing_is_tagged_and_warns(tmp_path, caplog) -> None:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        mlflow.set_experiment("flags")
        metrics = {"val_majority_macro_f1": 0.181, "test_majority_macro_f1": 0.181}
        with mlflow.start_run() as run, caplog.at_level(logging.WARNING):
            assert flag_if_learned_nothing({**metrics, "val_macro_f1_selected": 0.181, "test_macro_f1": 0.182})
        assert MlflowClient().get_run(run.info.run_id).data.tags[LEARNED_NOTHING_TAG] == "true"
        assert "learned nothing" in caplog.text
        with mlflow.start_run() as run:
            assert not flag_if_learned_nothing({**metrics, "val_macro_f1_selected": 0.85, "test_macro_f1": 0.84})
        assert MlflowClient().get_run(run.info.run_id).data.tags[LEARNED_NOTHING_TAG] == "false"
    finally:
        mlflow.set_tracking_uri(None)


def test_the_main_table_marks_rows_that_learned_nothing() -> None:
    result = MainResult(
        run_ids={"scratch/lstm": "a" * 32, "scratch/cnn": "b" * 32},
        metrics={
            "scratch/lstm": {"test_accuracy": 0.8277, "test_macro_f1": 0.181, "test_se_S": 0.0},
            "scratch/cnn": {"test_accuracy": 0.98, "test_macro_f1": 0.90, "test_se_S": 0.8},
        },
        learned_nothing={"scratch/lstm": True, "scratch/cnn": False},
    )
    table = results_table(MainConfig(backbones=("cnn", "lstm")), result)
    lstm_row = next(line for line in table.splitlines() if line.startswith("| lstm"))
    cnn_row = next(line for line in table.splitlines() if line.startswith("| cnn"))
    assert "learned nothing" in lstm_row and "learned nothing" not in cnn_row
    assert "S Se" in table and "87.25%" in lstm_row  # EC57 columns and the paper's figure beside ours


def _epochs(dataset, n: int = 2) -> list[list]:
    return [[keras.tree.map_structure(np.asarray, batch) for batch in dataset] for _ in range(n)]


def test_shuffled_batches_give_every_row_once_an_epoch_in_a_new_seeded_order() -> None:
    x, y = np.arange(10, dtype=np.float32)[:, None] * [1.0, -1.0], np.arange(10)
    first, second = _epochs(shuffled_batches({"beat": x}, y, 4, seed=3))
    assert [len(b[1]) for b in first] == [4, 4, 2]
    for epoch in (first, second):
        rows = np.concatenate([b[1] for b in epoch])
        assert sorted(rows) == list(range(10))
        np.testing.assert_array_equal(np.concatenate([b[0]["beat"] for b in epoch]), x[rows])
    orders = [np.concatenate([b[1] for b in epoch]) for epoch in (first, second)]
    assert not np.array_equal(*orders)
    again = [np.concatenate([b[1] for b in epoch]) for epoch in _epochs(shuffled_batches({"beat": x}, y, 4, seed=3))]
    np.testing.assert_array_equal(np.stack(orders), np.stack(again))
    assert shuffled_batches(x, y, 4, seed=3).options().autotune.enabled is False


class _Counting(keras.utils.PyDataset):
    def __init__(self) -> None:
        super().__init__()
        self.epochs_ended = 0

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return np.full((2, 5), index + 10 * self.epochs_ended, np.float32), np.zeros(2, np.int64)

    def on_epoch_end(self) -> None:
        self.epochs_ended += 1


def test_batches_dataset_draws_anew_for_every_epoch_but_the_first() -> None:
    source = _Counting()
    first, second = _epochs(batches_dataset(source))
    assert [b[0][0, 0] for b in first] == [0, 1, 2] and [b[0][0, 0] for b in second] == [10, 11, 12]
    assert source.epochs_ended == 1
