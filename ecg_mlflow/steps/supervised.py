"""Fit, evaluate and log a supervised classifier: shared by `transfer` and `ensemble`.

Model selection (early stopping, best weights) reads the validation split only;
the test split is touched once, after training, by evaluate_and_log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import mlflow
import numpy as np
from sklearn.metrics import f1_score
from sklearn.utils.class_weight import compute_class_weight

from ecg_mlflow.data.adaptation import adapt_context
from ecg_mlflow.data.context import CONTEXT_KINDS
from ecg_mlflow.data.dataset import BeatDataset
from ecg_mlflow.evaluation import Evaluation, evaluate_predictions, log_evaluation, log_per_record, per_record_table
from ecg_mlflow.models.classifier import model_inputs, predict_proba
from ecg_mlflow.models.test_time import MIN_BEATS, adapted_probabilities, load_adapter
from ecg_mlflow.steps.training import (
    VAL_MACRO_F1,
    MlflowEpochLogger,
    ValidationMacroF1,
    best_weights_callbacks,
    shuffled_batches,
)
from ecg_mlflow.tracking.classifiers import log_served_classifier
from ecg_mlflow.tracking.registry import register_with_alias
from ecg_mlflow.tracking.runs import REGISTERED_TAG
from ecg_mlflow.tracking.upstream import MODEL_URI_TAG

log = logging.getLogger(__name__)


LEARNED_NOTHING_TAG = "ecg_mlflow.learned_nothing"
LEARNED_NOTHING_MARGIN = 0.01  # macro-F1 within this of the majority answer counts as no better


@dataclass(frozen=True)
class FitSettings:
    epochs: int
    batch_size: int
    patience: int
    class_weight: str = "none"
    min_epochs: int = 0
    seed: int = 0  # the order batches come in


@dataclass(frozen=True)
class LabelledBeats:
    """Beats, their labels and (context=rr) their rhythm context: one split as a model sees it."""

    x: np.ndarray
    y: np.ndarray
    context: np.ndarray | None = None
    context_names: tuple[str, ...] = ()  # the context columns, adaptation's included (what a served model lists)
    input_kind: str = "kachuee"  # what x holds of each beat (data/inputs.py)
    records: np.ndarray | None = None  # each beat's recording (None: isolated beats, the Kaggle CSVs)

    def subset(self, rows: np.ndarray) -> LabelledBeats:
        context = None if self.context is None else self.context[rows]
        records = None if self.records is None else self.records[rows]
        return LabelledBeats(self.x[rows], self.y[rows], context, self.context_names, self.input_kind, records)

    def inputs(self, model: keras.Model) -> np.ndarray | dict[str, np.ndarray]:
        return model_inputs(model, self.x, self.context)

    @property
    def majority(self) -> int:
        """The most common label: what a model that learned nothing answers."""
        return int(np.bincount(self.y).argmax())


def split_beats(dataset: BeatDataset, split: str, context: str, adapt: str = "none") -> LabelledBeats:
    """One split of the dataset with its context when the step asks for it (context != 'none'), adapted to
    each record as `adapt` says (data/adaptation.py)."""
    table = dataset.table(split)
    columns, names = adapt_context(adapt, dataset.context(split, context), CONTEXT_KINDS[context], table.records)
    records = table.records if table.has_records else None
    return LabelledBeats(table.x, table.y, columns, names, dataset.input_kind, records)


def predict_recordings(model: keras.Model, beats: LabelledBeats, n_classes: int, adapt: str, seed: int) -> np.ndarray:
    """The model's probabilities for `beats`, adapted to each recording first where `adapt` changes the model
    (models/test_time.py); isolated beats (no recordings) and too-short recordings are labelled as trained."""
    if beats.records is None or load_adapter(adapt) is None:
        return predict_proba(model, beats.x, n_classes, context=beats.context)
    adapted = adapted_probabilities(
        model, (beats.x, beats.context, beats.context_names), beats.records, adapt, n_classes, seed
    )
    if adapted.unadapted:
        log.warning(
            "adapt=%s: %d recording(s) have fewer than %d beats and were labelled unadapted: %s",
            adapt,
            len(adapted.unadapted),
            MIN_BEATS,
            ", ".join(adapted.unadapted),
        )
    return adapted.proba


def targets(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Integer labels for softmax heads, float 0/1 for the binary sigmoid head."""
    return y.astype(np.float32) if n_classes == 2 else y.astype(np.int64)


def class_weights(y: np.ndarray, n_classes: int, mode: str) -> dict[int, float] | None:
    """Keras class_weight: None for 'none'; 'balanced' weighs each present class by n / (k * count)."""
    if mode == "none":
        return None
    present = np.unique(y)
    weights = compute_class_weight(mode, classes=present, y=y)
    out = dict.fromkeys(range(n_classes), 1.0)
    out.update({int(c): float(w) for c, w in zip(present, weights, strict=True)})
    return out


def fit_classifier(
    model: keras.Model,
    train: LabelledBeats,
    val: LabelledBeats,
    n_classes: int,
    settings: FitSettings,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 2,
) -> dict[str, list[float]]:
    """Train with per-epoch validation macro-F1; the best validation epoch's weights are kept."""
    val_inputs = val.inputs(model)
    history = model.fit(
        shuffled_batches(train.inputs(model), targets(train.y, n_classes), settings.batch_size, settings.seed),
        validation_data=(val_inputs, targets(val.y, n_classes)),
        epochs=settings.epochs,
        shuffle=False,  # shuffled_batches reshuffles every epoch, seeded
        class_weight=class_weights(train.y, n_classes, settings.class_weight),
        callbacks=[
            ValidationMacroF1(val_inputs, val.y, n_classes),
            *callbacks,
            MlflowEpochLogger(),
            *best_weights_callbacks(settings.patience, settings.min_epochs),
        ],
        verbose=verbose,
    )
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def headline(metrics: dict[str, float]) -> str:
    """The figures a run's description leads with: the test split's for a final model, else the validation
    split's (a compared model never sees the test split); EC57 ones when the dataset has them."""
    split, prefix, suffix = ("test", "test_", "") if "test_accuracy" in metrics else ("validation", "val_", "_selected")
    figure = {name: metrics.get(f"{prefix}{name}{suffix}") for name in HEADLINE}
    parts = [f"{split} accuracy {figure['accuracy']:.2%}", f"macro-F1 {figure['macro_f1']:.3f}"]
    if figure["macro_f1_nsv"] is not None:
        parts.append(
            f"macro-F1(N,S,V) {figure['macro_f1_nsv']:.3f}, S Se {figure['se_S']:.1%} / +P "
            f"{figure['ppv_S']:.1%}, V Se {figure['se_V']:.1%} / +P {figure['ppv_V']:.1%}"
        )
    return "; ".join(parts)


HEADLINE = ("accuracy", "macro_f1", "macro_f1_nsv", "se_S", "ppv_S", "se_V", "ppv_V")


def majority_macro_f1(y_true: np.ndarray, majority: int, n_classes: int) -> float:
    """The macro-F1 of always answering the training split's most common class: what "learned nothing" scores."""
    answer = np.full(len(y_true), majority)
    return float(f1_score(y_true, answer, average="macro", labels=np.arange(n_classes), zero_division=0))


def flag_if_learned_nothing(metrics: dict[str, float]) -> bool:
    """Tag the active run (and warn on stderr) when it is no better than the majority answer on the splits
    it was evaluated on (validation; test too for a final model)."""
    scores = {"val": "val_macro_f1_selected", "test": "test_macro_f1"}
    checked = {split: score for split, score in scores.items() if score in metrics}
    nothing = any(
        metrics[score] <= metrics[f"{split}_majority_macro_f1"] + LEARNED_NOTHING_MARGIN
        for split, score in checked.items()
    )
    mlflow.set_tag(LEARNED_NOTHING_TAG, str(nothing).lower())
    if nothing:
        found = ", ".join(
            f"{split} macro-F1 {metrics[score]:.3f} (majority {metrics[f'{split}_majority_macro_f1']:.3f})"
            for split, score in checked.items()
        )
        log.warning(
            "this model learned nothing: %s is no better than always answering the most common class; train "
            "longer (epochs, min_epochs) or check the learning rate",
            found,
        )
    return nothing


def log_selection(
    proba: np.ndarray,
    val: LabelledBeats,
    dataset: BeatDataset,
    history: dict[str, list[float]] | None = None,
    majority: int = 0,
) -> dict[str, float]:
    """The figures a model was chosen on (validation only, from its probabilities there), logged.

    This is all a model that is compared (a fold, a trial) ever computes: no test split.
    """
    n_classes = len(dataset.class_names)
    val_curve = (history or {}).get(VAL_MACRO_F1, [])
    summary = {}
    if val_curve:
        best = int(np.argmax(val_curve))
        summary = {"best_val_macro_f1": float(val_curve[best]), "best_epoch": float(best + 1)}
    val_eval = evaluate_predictions(
        val.y, proba, dataset.class_names, "val_", headline_classes=dataset.headline_classes
    )
    summary.update(_selected(val_eval.metrics))
    summary["val_majority_macro_f1"] = majority_macro_f1(val.y, majority, n_classes)
    mlflow.log_metrics(summary)
    return summary


def log_test_evaluation(
    proba: np.ndarray,
    test: LabelledBeats,
    dataset: BeatDataset,
    history: dict[str, list[float]] | None = None,
    majority: int = 0,
) -> dict[str, float]:
    """A final model's one look at the test split (its probabilities there): EC57 figures, confusion, curves."""
    evaluation: Evaluation = evaluate_predictions(
        test.y, proba, dataset.class_names, "test_", headline_classes=dataset.headline_classes
    )
    log_evaluation(evaluation, history)
    figures = {
        **evaluation.metrics,
        "test_majority_macro_f1": majority_macro_f1(test.y, majority, len(dataset.class_names)),
    }
    table = dataset.table("test")
    if table.has_records and len(table.records) == len(test.y):  # every recording, beside the average
        records = per_record_table(test.y, proba, table.records, dataset.class_names, dataset.headline_classes)
        figures |= log_per_record(records, "test_")
    mlflow.log_metric("test_majority_macro_f1", figures["test_majority_macro_f1"])
    return figures


def evaluate_and_log(
    model: keras.Model,
    val: LabelledBeats,
    test: LabelledBeats | None,
    dataset: BeatDataset,
    history: dict[str, list[float]],
    majority: int = 0,
    adapt: tuple[str, int] = ("none", 0),
) -> dict[str, float]:
    """Selection summary (validation) and, for a final network (`test` given), the test-split evaluation,
    logged to the active run. A compared network (test None: the split is sealed) gets the summary only.
    `adapt` (the adaptation and its seed) adapts the model to each recording before it labels its beats.

    `majority` is the training labels' most common class: both splits are compared with always
    answering it, and a run no better than that is tagged ecg_mlflow.learned_nothing=true.
    """
    n_classes = len(dataset.class_names)
    summary = log_selection(predict_recordings(model, val, n_classes, *adapt), val, dataset, history, majority)
    metrics = dict(summary)
    if test is not None:
        test_proba = predict_recordings(model, test, n_classes, *adapt)
        metrics |= log_test_evaluation(test_proba, test, dataset, history, majority)
    flag_if_learned_nothing(metrics)
    return metrics


def _selected(val_metrics: dict[str, float]) -> dict[str, float]:
    """The chosen model's validation figures under names that don't clash with the per-epoch curves."""
    keep = ("val_accuracy", "val_macro_f1", "val_macro_f1_nsv", "val_se_S", "val_ppv_S", "val_se_V", "val_ppv_V")
    return {f"{name}_selected": val_metrics[name] for name in keep if name in val_metrics}


def log_classifier(
    model: keras.Model,
    sample: LabelledBeats,
    class_names: Sequence[str],
    registered_name: str,
    alias: str,
    register: bool,
    run_id: str,
    adapt: str = "none",
) -> tuple[str, str]:
    """Log the served form (models/served.py) with a signature from real beats; optionally register.

    The served model takes the sample's context columns (`sample.context_names`) and adapts to each recording as
    `adapt` says. -> (model URI, registered version or "").
    """
    few = sample.subset(np.arange(min(8, len(sample.y))))
    info = log_served_classifier(model, few.x, few.context, class_names, few.context_names, few.input_kind, adapt)
    mlflow.set_tag(MODEL_URI_TAG, info.model_uri)
    if not register:
        return info.model_uri, ""
    version = register_with_alias(info.model_uri, registered_name, alias, tags={"run_id": run_id})
    mlflow.set_tag(REGISTERED_TAG, f"{registered_name}/{version.version}")
    return info.model_uri, str(version.version)
