"""Test-split metrics from scikit-learn, with the names every step logs."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest

from ecg_mlflow.evaluation import (
    evaluate_predictions,
    log_evaluation,
    log_per_record,
    macro_f1,
    per_record_figures,
    per_record_table,
)


def _one_hot_proba(pred: np.ndarray, n: int) -> np.ndarray:
    proba = np.full((len(pred), n), 0.05, dtype=np.float32)
    proba[np.arange(len(pred)), pred] = 0.8
    return proba / proba.sum(axis=1, keepdims=True)


def test_metrics_on_known_predictions() -> None:
    y = np.array([0, 0, 0, 1, 1, 2, 2, 3, 4, 4])
    pred = np.array([0, 0, 1, 1, 1, 2, 0, 3, 4, 4])
    ev = evaluate_predictions(y, _one_hot_proba(pred, 5), ("N", "S", "V", "F", "Q"))
    assert ev.metrics["test_accuracy"] == pytest.approx(0.8)
    assert ev.metrics["test_recall_V"] == pytest.approx(0.5)
    assert ev.metrics["test_precision_S"] == pytest.approx(2 / 3)
    f1 = {"N": 2 * (2 / 3 * 2 / 3) / (4 / 3), "S": 0.8, "V": 2 / 3, "F": 1.0, "Q": 1.0}
    assert ev.metrics["test_macro_f1"] == pytest.approx(np.mean(list(f1.values())))
    assert ev.confusion.tolist()[2] == [1, 0, 1, 0, 0]
    assert 0.5 < ev.metrics["test_roc_auc"] <= 1.0
    assert macro_f1(y, _one_hot_proba(pred, 5)) == pytest.approx(ev.metrics["test_macro_f1"])


def test_binary_auc_uses_the_positive_column() -> None:
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.45, 0.55]])
    ev = evaluate_predictions(y, proba, ("normal", "mi"))
    assert ev.metrics["test_roc_auc"] == pytest.approx(1.0)
    assert ev.metrics["test_accuracy"] == pytest.approx(1.0)


def test_log_evaluation_writes_metrics_and_artifacts(tmp_path) -> None:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    y = np.array([0, 1, 1, 0])
    ev = evaluate_predictions(y, _one_hot_proba(np.array([0, 1, 0, 0]), 2), ("normal", "mi"))
    with mlflow.start_run() as run:
        log_evaluation(ev, {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]})
    data = mlflow.get_run(run.info.run_id).data
    assert data.metrics["test_accuracy"] == pytest.approx(0.75)
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="evaluation", dst_path=str(tmp_path)
    )
    names = {p.name for p in Path(local).iterdir()}
    assert {"confusion_matrix.png", "confusion_matrix.json", "classification_report.txt", "curves.png"} <= names
    matrix = json.loads((Path(local) / "confusion_matrix.json").read_text())
    assert matrix["matrix"] == [[2, 0], [1, 1]]


def test_every_recording_beside_the_average() -> None:
    """Recording A: 9 of 10 normal beats right; B: 5 of 10; C: no normal beat (not in the normal summary)."""
    names = ("N", "S", "V", "F", "Q")
    y = np.array([0] * 10 + [0] * 10 + [2] * 4)
    predicted = np.array([0] * 9 + [2] + [0] * 5 + [1] * 5 + [2] * 4)
    proba = np.eye(len(names))[predicted]
    records = np.array(["A"] * 10 + ["B"] * 10 + ["C"] * 4)
    table = per_record_table(y, proba, records, names, ("N", "S", "V"))
    assert table["record"].tolist() == ["A", "B", "C"] and table["n_N"].tolist() == [10, 10, 0]
    assert table["se_N"].tolist()[:2] == [0.9, 0.5] and table["se_V"].tolist()[2] == 1.0
    figures = per_record_figures(table, "test_")
    assert figures == {
        "test_records": 3.0,
        "test_records_n_se_below_80": 1.0,
        "test_records_n_se_median": 0.7,
        "test_records_n_se_worst": 0.5,
    }


def test_log_per_record_writes_the_table_and_its_summary(tmp_path) -> None:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    names = ("N", "S")
    table = per_record_table(np.array([0, 0, 1]), np.eye(2)[[0, 1, 1]], np.array(["r1", "r1", "r2"]), names)
    try:
        with mlflow.start_run() as run:
            log_per_record(table, "svdb_")
        logged = mlflow.get_run(run.info.run_id).data.metrics
        assert logged["svdb_records_n_se_below_80"] == 1.0 and logged["svdb_records_n_se_worst"] == 0.5
        csv = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/evaluation/per_record.csv")
        assert csv.splitlines()[0].startswith("record,beats,n_N,n_S")
    finally:
        mlflow.set_tracking_uri(None)
