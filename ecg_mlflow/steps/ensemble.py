"""The `ensemble` step: average the transfer classifiers' outputs, then train the whole again.

Members come by run ID or, by default, from the registry aliases
models:/ecg-<dataset>-<backbone>@current. Every member must be a FINISHED transfer
run on the same dataset and the same split, so the ensemble's test split is one
that no member trained or selected on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import keras
import mlflow
from mlflow.tracking import MlflowClient

from ecg_mlflow.config import EnsembleConfig
from ecg_mlflow.data.dataset import load_dataset
from ecg_mlflow.models.classifier import build_ensemble, compile_classifier
from ecg_mlflow.params import flatten_config
from ecg_mlflow.steps.result import StepResult
from ecg_mlflow.steps.supervised import (
    LEARNED_NOTHING_TAG,
    FitSettings,
    evaluate_and_log,
    fit_classifier,
    headline,
    log_classifier,
    split_beats,
)
from ecg_mlflow.steps.training import STEPS_PER_EXECUTION, seed_everything
from ecg_mlflow.tracking.classifiers import load_classifier
from ecg_mlflow.tracking.datasets import log_dataset_inputs
from ecg_mlflow.tracking.registry import CURRENT_ALIAS, alias_uri, classifier_model_name, ensemble_model_name
from ecg_mlflow.tracking.runs import describe_run, experiment_name, step_run
from ecg_mlflow.tracking.upstream import UpstreamRun, resolve_upstream_run

log = logging.getLogger(__name__)

STEP = "ensemble"
MEMBER_PARAMS = ("dataset", "source", "split", "split_seed", "test_fraction", "val_fraction", "context", "adapt")


def resolve_members(config: EnsembleConfig) -> list[UpstreamRun]:
    """One checked transfer run per member backbone."""
    members = []
    params = flatten_config(config)
    for index, backbone in enumerate(config.members):
        expect = {"backbone": backbone} | {name: str(params[name]) for name in MEMBER_PARAMS}
        run_id = config.run_ids[index] if config.run_ids else ""
        model_uri = "" if run_id else alias_uri(classifier_model_name(config.data.dataset, backbone), CURRENT_ALIAS)
        members.append(resolve_upstream_run(step="transfer", run_id=run_id, model_uri=model_uri, expect_params=expect))
    return members


def warn_about_members_that_learned_nothing(backbones: Sequence[str], members: list[UpstreamRun]) -> list[str]:
    """Averaging in a member that always answers the majority class drags the ensemble down: say so loudly."""
    client = MlflowClient()
    weak = [
        b
        for b, m in zip(backbones, members, strict=True)
        if client.get_run(m.run_id).data.tags.get(LEARNED_NOTHING_TAG) == "true"
    ]
    if weak:
        mlflow.set_tag("ecg_mlflow.members_learned_nothing", ",".join(weak))
        log.warning(
            "ENSEMBLE MEMBER(S) %s LEARNED NOTHING (their runs are tagged %s=true): averaging them in pulls the "
            "ensemble towards always answering the majority class; retrain them or leave them out of members=",
            ", ".join(weak),
            LEARNED_NOTHING_TAG,
        )
    return weak


def run_ensemble(
    config: EnsembleConfig,
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    register: bool = True,
    verbose: int = 2,
) -> StepResult:
    params = flatten_config(config)
    run_name = f"ensemble-{'+'.join(config.members)}"
    with step_run(STEP, params, run_name=run_name, experiment=experiment_name(config.data.dataset)) as run:
        run_id = run.info.run_id
        members = resolve_members(config)
        for backbone, member in zip(config.members, members, strict=True):
            mlflow.set_tag(f"ecg_mlflow.member.{backbone}", member.run_id)
        mlflow.log_param("member_run_ids", ",".join(m.run_id for m in members))
        warn_about_members_that_learned_nothing(config.members, members)
        seed_everything(config.seed)
        dataset = load_dataset(config.data, progress=verbose > 0)
        log_dataset_inputs(dataset)
        n_classes = len(dataset.class_names)
        models = [load_classifier(member.model_uri) for member in members]
        model = compile_classifier(
            build_ensemble(models, n_classes), n_classes, config.learning_rate, STEPS_PER_EXECUTION
        )

        train, val, test = (split_beats(dataset, s, config.context, config.adapt) for s in ("train", "val", "test"))
        settings = FitSettings(
            config.epochs, config.batch_size, config.patience, config.class_weight, config.min_epochs, seed=config.seed
        )
        history = fit_classifier(model, train, val, n_classes, settings, callbacks, verbose)
        adapt = (config.adapt, config.seed)
        metrics = evaluate_and_log(model, val, test, dataset, history, majority=train.majority, adapt=adapt)
        name = ensemble_model_name(config.data.dataset)
        model_uri, version = log_classifier(
            model, val, dataset.class_names, name, CURRENT_ALIAS, register, run_id, config.adapt
        )
        describe_run(
            f"Average of {', '.join(f'{b} (run {m.run_id})' for b, m in zip(config.members, members, strict=True))}, "
            f"trained again on {config.data.dataset} ({config.data.split} split). {headline(metrics)}."
        )
        return StepResult(run_id=run_id, metrics=metrics, model_uri=model_uri, registered_version=version)
