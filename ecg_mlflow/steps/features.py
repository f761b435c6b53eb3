"""The `features` step: a scikit-learn model on the context numbers alone, run like every other classifier.

A row in every patient-wise table (models/features.py says why). It has the same runs as a network:
- `folds=K` with split=inter: a nested run per fold (steps/crossval.cross_validate) with the same
  cv_* figures a network's cross-validation logs. The final model is then fitted on every training
  record. A features model has no epochs to stop early, so it needs no held-out records, and a refit
  on all of them is the usual scikit-learn practice.
- `folds=0`: fitted on the training part and selected on the validation part.
Either way it is tested once, logged as the same served model (beats and rhythm in, labels and
probabilities out: `evaluate`, `classify` and `mlflow models serve` take it as they take a network),
and registered as ecg-<dataset>-features-<estimator>.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np

from ecg_mlflow.config import FeaturesConfig
from ecg_mlflow.data.dataset import BeatDataset, load_dataset
from ecg_mlflow.data.splits import patient_folds
from ecg_mlflow.models.features import build_features_model
from ecg_mlflow.models.served import features_probabilities
from ecg_mlflow.params import flatten_config
from ecg_mlflow.steps.folds import (
    cross_validate,
    cv_headline,
    development_beats,
    fold_table,
    log_fold_table,
)
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
from ecg_mlflow.tracking.datasets import log_dataset_inputs
from ecg_mlflow.tracking.registry import CURRENT_ALIAS, features_model_name
from ecg_mlflow.tracking.runs import describe_run, experiment_name, step_run

STEP = "features"


def fit_features(config: FeaturesConfig, train: LabelledBeats) -> Any:
    """The features model of `config` fitted on the training beats' context numbers."""
    model = build_features_model(config.estimator, config.class_weight, config.seed)
    return model.fit(train.context, train.y)


def probabilities(model: Any, beats: LabelledBeats, dataset: BeatDataset) -> np.ndarray:
    return features_probabilities(model, beats.context, len(dataset.class_names))


def run_features(config: FeaturesConfig, *, register: bool = True, verbose: int = 1) -> StepResult:
    params = flatten_config(config)
    adapted = [config.adapt] if config.adapt != "none" else []
    split = [] if config.folds else [config.data.split]
    run_name = "-".join(["features", config.estimator, config.context, *adapted, *split])
    with step_run(STEP, params, run_name=run_name, experiment=experiment_name(config.data.dataset)) as run:
        mlflow.set_tag("backbone", f"features-{config.estimator}")  # the runs table groups it beside the networks
        dataset = load_dataset(config.data, progress=verbose > 0)
        log_dataset_inputs(dataset)
        if config.folds:
            beats, records = development_beats(dataset, config.context, config.adapt)
            fold_of = patient_folds(records, beats.y, config.folds, config.data.split_seed)
            log_fold_table(fold_table(records, beats.y, fold_of, dataset.class_names))

            def fit_fold(train: LabelledBeats, val: LabelledBeats, fold: int) -> tuple[Any, np.ndarray, None]:
                model = fit_features(config, train)
                return model, probabilities(model, val, dataset), None

            selection = cross_validate(params, (beats, records), fold_of, dataset, fit_fold).summary
            model = fit_features(config, beats)
        else:
            beats, val = (split_beats(dataset, split, config.context, config.adapt) for split in ("train", "val"))
            model = fit_features(config, beats)
            selection = log_selection(probabilities(model, val, dataset), val, dataset, None, beats.majority)
        mlflow.log_param("train_beats", len(beats.y))
        test = split_beats(dataset, "test", config.context, config.adapt)
        test_figures = log_test_evaluation(probabilities(model, test, dataset), test, dataset, None, beats.majority)
        metrics = {**selection, **test_figures}
        flag_if_learned_nothing(metrics)
        name = features_model_name(config.data.dataset, config.estimator)
        sample = beats.subset(np.arange(min(8, len(beats.y))))
        model_uri, version = log_classifier(
            model, sample, dataset.class_names, name, CURRENT_ALIAS, register, run.info.run_id
        )
        chosen_on = cv_headline(selection) if config.folds else "selected on the validation records"
        describe_run(
            f"{config.estimator} on the {config.context} context numbers alone (no beat samples), "
            f"adapt={config.adapt}, "
            f"class_weight={config.class_weight}, {config.data.split} split: {chosen_on}. Tested once: "
            f"{headline(metrics)}."
        )
        return StepResult(run_id=run.info.run_id, metrics=metrics, model_uri=model_uri, registered_version=version)
