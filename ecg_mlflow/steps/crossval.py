"""The `crossval` step: patient-wise K-fold cross-validation over the training records, the fold models averaged.

Why: three held-out records cannot tell configurations apart. Three seeds of one configuration
scored the same to 0.005 on them while their DS2 macro-F1(N,S,V) spread over 0.62-0.70 (issue 21).
Here every training record is held out once. A configuration is chosen on the mean over K folds of
whole patients, and the spread over folds says how far a difference can be trusted.

- Each fold is a nested run that trains exactly as `transfer` does (`train_classifier`). It is
  early-stopped on its own held-out records and computes no test metric: folds are compared, never
  tested.
- The parent logs the cross-validation figures: the mean and sd over folds (`cv_<figure>_mean`,
  `cv_<figure>_std`), and the out-of-fold figures, where each training beat is predicted by the fold
  model that never saw its patient (`cv_oof_*`).
- The K fold models, averaged with no retraining, are the final model. It is tested once on the test
  records, logged, registered as `ecg-<dataset>-<backbone>-cv` and served like any other classifier.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from ecg_mlflow.config import CrossValConfig, PretrainConfig
from ecg_mlflow.data.dataset import BeatDataset, class_counts, load_dataset
from ecg_mlflow.data.splits import patient_folds
from ecg_mlflow.evaluation import evaluate_predictions
from ecg_mlflow.models.classifier import build_ensemble, predict_proba
from ecg_mlflow.params import flatten_config
from ecg_mlflow.steps.pretrain import PROTOCOL_TAG, run_pretrain
from ecg_mlflow.steps.result import StepResult
from ecg_mlflow.steps.supervised import (
    LabelledBeats,
    flag_if_learned_nothing,
    headline,
    log_classifier,
    log_selection,
    log_test_evaluation,
    split_beats,
)
from ecg_mlflow.steps.training import seed_everything
from ecg_mlflow.steps.transfer import (
    UPSTREAM_RUN_TAG,
    UPSTREAM_URI_TAG,
    label_subset,
    resolve_pretrain_run,
    train_classifier,
    transfer_run_name,
)
from ecg_mlflow.tracking.datasets import log_dataset_input
from ecg_mlflow.tracking.registry import CURRENT_ALIAS, SCRATCH_ALIAS, crossval_model_name
from ecg_mlflow.tracking.runs import describe_run, experiment_name, step_run
from ecg_mlflow.tracking.upstream import UpstreamRun, resolve_upstream_run

log = logging.getLogger(__name__)

STEP = "crossval"
FOLD_STEP = "crossval_fold"
FOLD_TAG = "ecg_mlflow.fold"
# Did the encoder's pretraining see (unlabelled) beats of the records the folds hold out? (CV honesty)
SAW_HELD_OUT_TAG = "ecg_mlflow.pretraining_saw_held_out"
CV_DIR = "crossval"
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
    beats = LabelledBeats(x, y, context_rows, parts[0].context_names)
    return beats, np.concatenate([dataset.records_train, dataset.records_val])


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


def pretraining_saw_held_out(upstream: UpstreamRun | None, held_out_records: set[str]) -> bool:
    """Whether one encoder pretrained before the folds saw (unlabelled) beats of records the folds hold out."""
    if upstream is None:
        return False
    seen = set(filter(None, upstream.params.get("pretrain_records", "").split(",")))
    return not seen or bool(seen & held_out_records)  # runs that logged no records read the whole training split


def fold_pretraining(config: CrossValConfig, held_records: list[str], fold: int, verbose: int) -> UpstreamRun:
    """A pretraining nested in the fold's run, on the training records but the fold's (and `unlabelled`)."""
    pretrain = PretrainConfig(
        backbone=config.backbone,
        epochs=config.pretrain_epochs,
        seed=config.seed + fold,
        unlabelled=config.unlabelled,
        exclude_records=tuple(held_records),
        model=config.model,
        data=config.data,
    )
    result = run_pretrain(pretrain, register=False, verbose=verbose)
    return resolve_upstream_run(step="pretrain", run_id=result.run_id, expect_params={"backbone": config.backbone})


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
) -> CrossValidation:
    """One nested run per fold: fit on every training record but the fold's, select on the fold's, no test.

    Shared by every model kind (networks in `crossval`, features models in `features`), so folds are
    run, logged and summarised the same way; the summary (cv_*) is logged to the active parent run.
    """
    beats, records = pool
    folds = int(fold_of.max()) + 1
    models, figures = [], []
    out_of_fold = np.zeros((len(beats.y), len(dataset.class_names)), dtype=np.float32)
    for fold in range(folds):
        held = fold_of == fold
        train, val = beats.subset(np.flatnonzero(~held)), beats.subset(np.flatnonzero(held))
        with step_run(FOLD_STEP, {**params, "fold": fold + 1}, run_name=f"fold-{fold + 1}-of-{folds}"):
            mlflow.set_tag(FOLD_TAG, str(fold + 1))
            mlflow.log_param("val_records", ",".join(sorted(set(records[held].tolist()))))
            model, proba, history = fit_fold(train, val, fold)
            fold_figures = log_selection(proba, val, dataset, history, majority=train.majority)
            flag_if_learned_nothing(fold_figures)
        models.append(model)
        figures.append(fold_figures)
        out_of_fold[held] = proba
    summary = summarise_folds(figures) | out_of_fold_figures(beats.y, out_of_fold, dataset)
    mlflow.log_metrics(summary)
    return CrossValidation(models, figures, out_of_fold, summary)


def network_fold(
    config: CrossValConfig,
    upstream: UpstreamRun | None,
    held_records: dict[int, list[str]],
    n_classes: int,
    protocols: list[str],
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 2,
) -> FoldFit:
    """A fold trained exactly as a `transfer` run trains (train_classifier), early-stopped on the held-out records;
    with fold_pretraining, from an encoder pretrained in the fold without its held-out records (its protocol
    appended to `protocols`)."""

    def fit(train: LabelledBeats, val: LabelledBeats, fold: int) -> tuple[Any, np.ndarray, dict[str, list[float]]]:
        train = label_subset(train, config.label_fraction, config.seed)
        mlflow.log_param("train_beats", len(train.y))
        encoder = upstream
        if config.fold_pretraining:
            encoder = fold_pretraining(config, held_records[fold], fold, verbose)
            protocols.append(upstream_tag(encoder.run_id, PROTOCOL_TAG))
        if encoder is not None:
            mlflow.set_tag(UPSTREAM_RUN_TAG, encoder.run_id)
        seed_everything(config.seed + fold)
        model, history = train_classifier(config, encoder, train, val, n_classes, callbacks, verbose)
        return model, predict_proba(model, val.x, n_classes, context=val.context), history

    return fit


def run_crossval(
    config: CrossValConfig,
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    register: bool = True,
    verbose: int = 2,
) -> StepResult:
    params = flatten_config(config)
    run_name = f"cv{config.folds}-{transfer_run_name(config).removesuffix('-inter')}"
    with step_run(STEP, params, run_name=run_name, experiment=experiment_name(config.data.dataset)) as run:
        given = config.init == "pretrained" and not config.fold_pretraining  # one encoder for every fold
        upstream = resolve_pretrain_run(config) if given else None
        if upstream is not None:
            mlflow.set_tags({UPSTREAM_RUN_TAG: upstream.run_id, UPSTREAM_URI_TAG: upstream.model_uri})
            mlflow.log_params({"upstream_run_id": upstream.run_id, "upstream_model_uri": upstream.model_uri})
        seed_everything(config.seed)
        dataset = load_dataset(config.data, progress=verbose > 0)
        for context in ("train", "val", "test"):
            log_dataset_input(dataset, context=context)
        beats, records = development_beats(dataset, config.context, config.adapt)
        fold_of = patient_folds(records, beats.y, config.folds, config.data.split_seed)
        saw_held_out = pretraining_saw_held_out(upstream, set(records.tolist()))
        mlflow.set_tag(SAW_HELD_OUT_TAG, str(saw_held_out).lower())
        if upstream is not None:
            mlflow.set_tag(PROTOCOL_TAG, upstream_tag(upstream.run_id, PROTOCOL_TAG))
        log_fold_table(fold_table(records, beats.y, fold_of, dataset.class_names))
        n_classes = len(dataset.class_names)
        held = {fold: sorted(set(records[fold_of == fold].tolist())) for fold in range(config.folds)}
        protocols: list[str] = []
        fit = network_fold(config, upstream, held, n_classes, protocols, callbacks, verbose)
        cv = cross_validate(params, (beats, records), fold_of, dataset, fit)
        if protocols:  # the folds' own pretrainings: transductive if any saw the test records
            mlflow.set_tag(PROTOCOL_TAG, "transductive" if "transductive" in protocols else "inductive")

        averaged = build_ensemble(cv.models, n_classes)
        test = split_beats(dataset, "test", config.context, config.adapt)
        test_proba = predict_proba(averaged, test.x, n_classes, context=test.context)
        metrics = {**cv.summary, **log_test_evaluation(test_proba, test, dataset, None, beats.majority)}
        flag_if_learned_nothing(metrics)
        alias = CURRENT_ALIAS if config.init == "pretrained" else SCRATCH_ALIAS
        name = crossval_model_name(config.data.dataset, config.backbone)
        sample = beats.subset(np.arange(min(8, len(beats.y))))
        model_uri, version = log_classifier(
            averaged, sample, dataset.class_names, name, alias, register, run.info.run_id
        )
        describe_run(
            f"{config.folds}-fold patient-wise cross-validation of the {config.backbone} classifier ("
            f"init={config.init}, context={config.context}, adapt={config.adapt}, class_weight={config.class_weight}): "
            f"{cv_headline(cv.summary)}. The {config.folds} fold models averaged, tested once: {headline(metrics)}."
        )
        return StepResult(run_id=run.info.run_id, metrics=metrics, model_uri=model_uri, registered_version=version)


def upstream_tag(run_id: str, tag: str) -> str:
    return MlflowClient().get_run(run_id).data.tags.get(tag, "")


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
