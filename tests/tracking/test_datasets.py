"""log_dataset_input against a real (sqlite) MLflow tracking store."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from ecg_mlflow.config import DataConfig
from ecg_mlflow.data.dataset import load_dataset
from ecg_mlflow.tracking import datasets, first_writes
from ecg_mlflow.tracking.datasets import log_dataset_input, split_digest


def test_train_and_test_inputs_are_logged_with_digests(synthetic_mitdb, tmp_path) -> None:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    ds = load_dataset(DataConfig(data_dir=str(synthetic_mitdb), cache_dir=str(tmp_path / "cache")))
    with mlflow.start_run() as run:
        log_dataset_input(ds, context="train")
        log_dataset_input(ds, context="test")
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    by_context = {next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset for i in inputs}
    assert set(by_context) == {"train", "test"}
    assert by_context["train"].name == ds.name == "mit-physionet-intra"
    assert by_context["train"].digest == split_digest(ds, "train") != by_context["test"].digest
    assert str(len(ds.train.x)) in by_context["train"].profile
    assert not list(mlflow.MlflowClient().list_artifacts(run.info.run_id))  # metadata only


def test_unknown_context_is_rejected(synthetic_mitdb, tmp_path) -> None:
    ds = load_dataset(DataConfig(data_dir=str(synthetic_mitdb), cache_dir=str(tmp_path / "cache")))
    with pytest.raises(ValueError, match="context"):
        log_dataset_input(ds, context="holdout")


def test_a_duplicate_key_is_tried_again_other_errors_are_not(synthetic_mitdb, tmp_path, monkeypatch) -> None:
    """Two workers logging the same dataset at once: the second insert is a duplicate key, and a retry finds the row."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    ds = load_dataset(DataConfig(data_dir=str(synthetic_mitdb), cache_dir=str(tmp_path / "cache")))
    errors = [MlflowException("(psycopg.errors.UniqueViolation) duplicate key value"), MlflowException("no such run")]
    calls = []

    def log_input(*args, **kwargs) -> None:
        calls.append(args)
        if errors:
            raise errors.pop(0)

    monkeypatch.setattr(datasets.mlflow, "log_input", log_input)
    with mlflow.start_run(), pytest.raises(MlflowException, match="no such run"):
        log_dataset_input(ds, context="train")
    assert len(calls) == 2  # the duplicate was tried again, the other error was raised at once
    with mlflow.start_run():
        errors[:] = [MlflowException("UNIQUE constraint failed")] * first_writes.ATTEMPTS
        with pytest.raises(MlflowException, match="UNIQUE"):
            log_dataset_input(ds, context="train")
    assert len(calls) == 2 + first_writes.ATTEMPTS
