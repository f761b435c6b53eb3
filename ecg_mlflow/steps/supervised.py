"""Fit, evaluate and log a supervised classifier: shared by `transfer` and `ensemble`.

Model selection (early stopping, best weights) reads the validation split only;
the test split is touched once, after training, by evaluate_and_log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import mlflow
import numpy as np
from mlflow.models import infer_signature

from ecg_mlflow.data.dataset import BeatDataset
from ecg_mlflow.evaluation import Evaluation, evaluate_predictions, log_evaluation
from ecg_mlflow.models.backbones import as_model_input
from ecg_mlflow.models.classifier import predict_proba
from ecg_mlflow.steps.training import (
    VAL_MACRO_F1,
    MlflowEpochLogger,
    ValidationMacroF1,
    best_weights_callbacks,
)
from ecg_mlflow.tracking.registry import register_with_alias
from ecg_mlflow.tracking.upstream import MODEL_URI_TAG


@dataclass(frozen=True)
class FitSettings:
    epochs: int
    batch_size: int
    patience: int


def targets(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Integer labels for softmax heads, float 0/1 for the binary sigmoid head."""
    return y.astype(np.float32) if n_classes == 2 else y.astype(np.int64)


def fit_classifier(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    dataset: BeatDataset,
    settings: FitSettings,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 2,
) -> dict[str, list[float]]:
    """Train with per-epoch validation macro-F1; the best validation epoch's weights are kept."""
    n_classes = len(dataset.class_names)
    history = model.fit(
        as_model_input(x_train),
        targets(y_train, n_classes),
        validation_data=(as_model_input(dataset.x_val), targets(dataset.y_val, n_classes)),
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        shuffle=True,
        callbacks=[
            ValidationMacroF1(dataset.x_val, dataset.y_val, n_classes),
            *callbacks,
            MlflowEpochLogger(),
            *best_weights_callbacks(settings.patience, settings.epochs),
        ],
        verbose=verbose,
    )
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def evaluate_and_log(model: keras.Model, dataset: BeatDataset, history: dict[str, list[float]]) -> dict[str, float]:
    """Selection summary (validation) and the test-split evaluation, logged to the active run."""
    n_classes = len(dataset.class_names)
    val_curve = history.get(VAL_MACRO_F1, [])
    summary = {}
    if val_curve:
        best = int(np.argmax(val_curve))
        summary = {"best_val_macro_f1": float(val_curve[best]), "best_epoch": float(best + 1)}
    val_eval = evaluate_predictions(
        dataset.y_val, predict_proba(model, dataset.x_val, n_classes), dataset.class_names, "val_"
    )
    summary["val_accuracy_selected"] = val_eval.metrics["val_accuracy"]
    summary["val_macro_f1_selected"] = val_eval.metrics["val_macro_f1"]
    mlflow.log_metrics(summary)
    evaluation: Evaluation = evaluate_predictions(
        dataset.y_test, predict_proba(model, dataset.x_test, n_classes), dataset.class_names, "test_"
    )
    log_evaluation(evaluation, history)
    return {**summary, **evaluation.metrics}


def log_classifier(
    model: keras.Model, dataset: BeatDataset, registered_name: str, alias: str, register: bool, run_id: str
) -> tuple[str, str]:
    """Log through MLflow's Keras flavour with a signature; optionally register and alias. -> (uri, version)."""
    sample = as_model_input(dataset.x_val[:8])
    signature = infer_signature(sample, np.asarray(model.predict(sample, verbose=0)))
    info = mlflow.keras.log_model(model, name="model", signature=signature)
    mlflow.set_tag(MODEL_URI_TAG, info.model_uri)
    if not register:
        return info.model_uri, ""
    version = register_with_alias(info.model_uri, registered_name, alias, tags={"run_id": run_id})
    mlflow.set_tag("ecg_mlflow.registered", f"{registered_name}/{version.version}")
    return info.model_uri, str(version.version)
