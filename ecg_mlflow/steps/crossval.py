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
from collections.abc import Sequence
from typing import Any

import keras
import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

from ecg_mlflow.config import CrossValConfig, PretrainConfig
from ecg_mlflow.data.sealed import TEST_SPLIT, open_splits
from ecg_mlflow.data.splits import patient_folds
from ecg_mlflow.models.classifier import build_ensemble
from ecg_mlflow.params import flatten_config
from ecg_mlflow.steps.folds import (
    FoldFit,
    OnFold,
    cross_validate,
    cv_headline,
    development_beats,
    fold_table,
    log_fold_table,
)
from ecg_mlflow.steps.pretrain import PROTOCOL_TAG, run_pretrain
from ecg_mlflow.steps.result import StepResult
from ecg_mlflow.steps.supervised import (
    LabelledBeats,
    flag_if_learned_nothing,
    headline,
    log_classifier,
    log_test_evaluation,
    predict_recordings,
    split_beats,
)
from ecg_mlflow.steps.training import seed_everything
from ecg_mlflow.steps.transfer import (
    UPSTREAM_RUN_TAG,
    label_subset,
    resolve_pretrain_run,
    start_supervised_run,
    train_classifier,
    transfer_run_name,
)
from ecg_mlflow.tracking.registry import CURRENT_ALIAS, SCRATCH_ALIAS, crossval_model_name
from ecg_mlflow.tracking.runs import describe_run, experiment_name, step_run
from ecg_mlflow.tracking.upstream import UpstreamRun, resolve_upstream_run

log = logging.getLogger(__name__)

STEP = "crossval"
# Did the encoder's pretraining see (unlabelled) beats of the records the folds hold out? (CV honesty)
SAW_HELD_OUT_TAG = "ecg_mlflow.pretraining_saw_held_out"


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
        return model, predict_recordings(model, val, n_classes, config.adapt, config.seed + fold), history

    return fit


def run_crossval(
    config: CrossValConfig,
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    register: bool = True,
    verbose: int = 2,
    on_fold: OnFold | None = None,
) -> StepResult:
    """Cross-validate, then test the averaged fold models once, unless the test split is sealed (an Optuna trial:
    the CV figures are its result; `on_fold` hears each fold's figures)."""
    params = flatten_config(config)
    run_name = f"cv{config.folds}-{transfer_run_name(config).removesuffix('-inter')}"
    with step_run(STEP, params, run_name=run_name, experiment=experiment_name(config.data.dataset)) as run:
        given = config.init == "pretrained" and not config.fold_pretraining  # one encoder for every fold
        upstream = resolve_pretrain_run(config) if given else None
        dataset = start_supervised_run(config, upstream, verbose)
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
        cv = cross_validate(params, (beats, records), fold_of, dataset, fit, on_fold)
        if protocols:  # the folds' own pretrainings: transductive if any saw the test records
            mlflow.set_tag(PROTOCOL_TAG, "transductive" if "transductive" in protocols else "inductive")

        averaged = build_ensemble(cv.models, n_classes)
        metrics = dict(cv.summary)
        if TEST_SPLIT in open_splits((TEST_SPLIT,)):  # a final model; a compared one (a trial) stops at its CV
            test = split_beats(dataset, TEST_SPLIT, config.context, config.adapt)
            test_proba = predict_recordings(averaged, test, n_classes, config.adapt, config.seed)
            metrics |= log_test_evaluation(test_proba, test, dataset, None, beats.majority)
            flag_if_learned_nothing(metrics)
        alias = CURRENT_ALIAS if config.init == "pretrained" else SCRATCH_ALIAS
        name = crossval_model_name(config.data.dataset, config.backbone)
        sample = beats.subset(np.arange(min(8, len(beats.y))))
        model_uri, version = log_classifier(
            averaged, sample, dataset.class_names, name, alias, register, run.info.run_id, config.adapt
        )
        describe_run(
            f"{config.folds}-fold patient-wise cross-validation of the {config.backbone} classifier ("
            f"init={config.init}, context={config.context}, adapt={config.adapt}, class_weight={config.class_weight}): "
            f"{cv_headline(cv.summary)}. The {config.folds} fold models averaged, "
            + (f"tested once: {headline(metrics)}." if "test_accuracy" in metrics else "compared, so not tested.")
        )
        return StepResult(run_id=run.info.run_id, metrics=metrics, model_uri=model_uri, registered_version=version)


def upstream_tag(run_id: str, tag: str) -> str:
    return MlflowClient().get_run(run_id).data.tags.get(tag, "")
