"""Patient-wise cross-validation, shared by every model kind (networks in `crossval`, features models in
`features`): folds of whole records, a nested run per fold with no test figures, the summary over
folds, and the out-of-fold probabilities that `patientwise` scores candidate models on.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from ecg_mlflow.data.dataset import BeatDataset, class_counts
from ecg_mlflow.data.sealed import TEST_SPLIT_TAG, seal_tag, sealed_test_split
from ecg_mlflow.evaluation import evaluate_predictions, log_per_record, per_record_table
from ecg_mlflow.steps.supervised import LabelledBeats, flag_if_learned_nothing, log_selection, split_beats
from ecg_mlflow.tracking.runs import step_run

FOLD_STEP = "crossval_fold"
FOLD_TAG = "ecg_mlflow.fold"
CV_DIR = "crossval"
OUT_OF_FOLD_FILE = "out_of_fold.npz"
FOLD_MODEL_DIR, FOLD_MODEL_FILE = "fold_model", "classifier.keras"
# The selection figures of a fold (supervised.log_selection) summarised over folds on the parent.
FOLD_FIGURES = (
    "val_macro_f1_nsv_selected",
    "val_macro_f1_selected",
    "val_se_S_selected",
    "val_ppv_S_selected",
    "val_se_V_selected",
    "val_ppv_V_selected",
    "best_epoch",
)
CV_SCORE = "cv_macro_f1_nsv_mean"  # what every choice of the patient-wise protocol is made on


def development_beats(dataset: BeatDataset, context: str, adapt: str = "none") -> tuple[LabelledBeats, np.ndarray]:
    """Every beat of the training records (the inter split's train and validation parts), and its record."""
    parts = [split_beats(dataset, split, context, adapt) for split in ("train", "val")]
    context_rows = None if parts[0].context is None else np.concatenate([p.context for p in parts])
    x, y = np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts])
    records = np.concatenate([dataset.train.records, dataset.val.records])
    return LabelledBeats(x, y, context_rows, parts[0].context_names, dataset.input_kind, records), records


def summarise_folds(fold_figures: Sequence[dict[str, float]]) -> dict[str, float]:
    """cv_<figure>_mean and cv_<figure>_std (population sd over folds) of each selection figure."""
    summary = {}
    for name in FOLD_FIGURES:
        values = [f[name] for f in fold_figures if name in f]
        if values:
            short = name.removeprefix("val_").removesuffix("_selected")
            summary[f"cv_{short}_mean"] = float(np.mean(values))
            summary[f"cv_{short}_std"] = float(np.std(values))
    return summary


def fold_table(records: np.ndarray, y: np.ndarray, fold_of: np.ndarray, class_names: tuple[str, ...]) -> pd.DataFrame:
    """One row per fold: its held-out records and beats per class (the fold assignment, for the UI)."""
    rows = []
    for fold in range(int(fold_of.max()) + 1):
        held = fold_of == fold
        rows.append(
            {"fold": fold + 1, "records": " ".join(sorted(set(records[held].tolist())))}
            | {f"n_{k}": v for k, v in class_counts(y[held], class_names).items()}
        )
    return pd.DataFrame(rows)


# (fold, its selection figures) -> None, after each fold
OnFold = Callable[[int, dict[str, float]], None]
# (training beats, held-out beats, fold) -> (the fold's model, its probabilities for the held-out beats, its history)
FoldFit = Callable[[LabelledBeats, LabelledBeats, int], tuple[Any, np.ndarray, dict[str, list[float]] | None]]


@dataclass(frozen=True)
class CrossValidation:
    """What K folds left: each fold's model and selection figures, the out-of-fold probabilities, the summary."""

    models: list[Any]
    figures: list[dict[str, float]]
    out_of_fold: np.ndarray
    summary: dict[str, float]


def cross_validate(
    params: dict[str, Any],
    pool: tuple[LabelledBeats, np.ndarray],
    fold_of: np.ndarray,
    dataset: BeatDataset,
    fit_fold: FoldFit,
    on_fold: OnFold | None = None,
) -> CrossValidation:
    """One nested run per fold: fit on every training record but the fold's, select on the fold's, no test.

    Shared by every model kind (networks in `crossval`, features models in `features`), so folds are
    run, logged and summarised the same way; the summary (cv_*) is logged to the active parent run.
    `on_fold(fold, its selection figures)` is called after each fold (an Optuna trial reports and prunes there).
    """
    beats, records = pool
    folds = int(fold_of.max()) + 1
    models, figures = [], []
    out_of_fold = np.zeros((len(beats.y), len(dataset.class_names)), dtype=np.float32)
    for fold in range(folds):
        held = fold_of == fold
        train, val = beats.subset(np.flatnonzero(~held)), beats.subset(np.flatnonzero(held))
        with (
            sealed_test_split("a cross-validation fold"),  # folds are compared: none computes a test figure
            step_run(FOLD_STEP, {**params, "fold": fold + 1}, run_name=f"fold-{fold + 1}-of-{folds}"),
        ):
            mlflow.set_tags({FOLD_TAG: str(fold + 1), TEST_SPLIT_TAG: seal_tag()})
            mlflow.log_param("val_records", ",".join(sorted(set(records[held].tolist()))))
            model, proba, history = fit_fold(train, val, fold)
            log_fold_model(model)
            fold_figures = log_selection(proba, val, dataset, history, majority=train.majority)
            flag_if_learned_nothing(fold_figures)
        models.append(model)
        figures.append(fold_figures)
        out_of_fold[held] = proba
        if on_fold is not None:
            on_fold(fold, fold_figures)
    summary = summarise_folds(figures) | out_of_fold_figures(beats.y, out_of_fold, dataset)
    mlflow.log_metrics(summary)
    # Every held-out recording, beside the average: crossval/per_record.csv, cv_records_n_se_below_80, ...
    held_out = per_record_table(beats.y, out_of_fold, records, dataset.class_names, dataset.headline_classes)
    summary |= log_per_record(held_out, "cv_", CV_DIR)
    log_out_of_fold(OutOfFold(out_of_fold, beats.y, fold_of, records))
    return CrossValidation(models, figures, out_of_fold, summary)


@dataclass(frozen=True)
class OutOfFold:
    """Every training beat's probabilities from the fold model that never saw its record, with its label,
    fold and record: what `patientwise` scores candidate models (an average of several) on."""

    proba: np.ndarray
    y: np.ndarray
    fold: np.ndarray
    records: np.ndarray

    def fold_scores(self, class_names: tuple[str, ...], headline: tuple[str, ...]) -> list[float]:
        """macro-F1 over the headline classes (N, S, V) of each fold's held-out beats."""
        labels = [class_names.index(c) for c in headline] if headline else list(range(len(class_names)))
        return [
            float(
                f1_score(self.y[rows], self.proba[rows].argmax(axis=1), labels=labels, average="macro", zero_division=0)
            )
            for rows in (self.fold == f for f in np.unique(self.fold))
        ]


def log_fold_model(model: Any) -> None:
    """The fold's network in its fold run (fold_model/classifier.keras), so an adaptation or another choice can be
    scored on the held-out records again without training the fold again (benchmarks/bench_adaptation.py)."""
    if not hasattr(model, "save"):  # a features model: cheap to fit again, not kept
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / FOLD_MODEL_FILE
        model.save(path)
        mlflow.log_artifact(str(path), FOLD_MODEL_DIR)


def load_fold_models(run_id: str) -> list[Any]:
    """The fold networks a cross-validation run's fold runs logged, in fold order."""
    import keras

    folds = mlflow.search_runs(
        experiment_ids=[mlflow.get_run(run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run_id}' and tags.`{FOLD_TAG}` != ''",
        output_format="list",
    )
    models = []
    for fold in sorted(folds, key=lambda run: int(run.data.tags[FOLD_TAG])):
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=fold.info.run_id, artifact_path=f"{FOLD_MODEL_DIR}/{FOLD_MODEL_FILE}", dst_path=tmp
            )
            models.append(keras.saving.load_model(path, compile=False))
    return models


def log_out_of_fold(oof: OutOfFold) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / OUT_OF_FOLD_FILE
        np.savez_compressed(path, proba=oof.proba, y=oof.y, fold=oof.fold, records=oof.records.astype(str))
        mlflow.log_artifact(str(path), CV_DIR)


def load_out_of_fold(run_id: str) -> OutOfFold:
    """The out-of-fold probabilities a cross-validation run logged."""
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=f"{CV_DIR}/{OUT_OF_FOLD_FILE}", dst_path=tmp
        )
        with np.load(path) as saved:
            return OutOfFold(saved["proba"], saved["y"], saved["fold"], saved["records"])


def cv_headline(summary: dict[str, float]) -> str:
    """The figure a configuration is chosen on, with its spread over folds."""
    return (
        f"CV macro-F1(N,S,V) {summary.get(CV_SCORE, float('nan')):.3f} ± "
        f"{summary.get('cv_macro_f1_nsv_std', float('nan')):.3f} over folds"
    )


def out_of_fold_figures(y: np.ndarray, proba: np.ndarray, dataset: BeatDataset) -> dict[str, float]:
    """Every training beat predicted by the fold model that never saw its patient: pooled CV figures (cv_oof_*)."""
    evaluation = evaluate_predictions(
        y, proba, dataset.class_names, "cv_oof_", headline_classes=dataset.headline_classes
    )
    keep = ("accuracy", "macro_f1", "macro_f1_nsv", "se_S", "ppv_S", "se_V", "ppv_V")
    return {f"cv_oof_{k}": evaluation.metrics[f"cv_oof_{k}"] for k in keep if f"cv_oof_{k}" in evaluation.metrics}


def log_fold_table(table: pd.DataFrame) -> None:
    """crossval/folds.csv on the parent run: which records each fold held out."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "folds.csv"
        table.to_csv(path, index=False)
        mlflow.log_artifact(str(path), CV_DIR)
