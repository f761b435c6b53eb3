"""The `transfer` step: a supervised classifier from pretrained encoder weights, or from scratch.

init=pretrained takes the encoder of a pretrain run (by run ID, a models:/ URI, or
by default models:/ecg-ssl-<backbone>@current) and fine-tunes it (freeze=False, the
paper) or keeps it fixed (freeze=True). init=scratch is the paper's Table 1 baseline.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import keras
import mlflow

from ecg_mlflow.config import BACKBONE_DEFAULTS, PRETRAIN_DATASET, BackboneConfig, PretrainConfig, TransferConfig
from ecg_mlflow.data.dataset import SPLIT_NAMES, BeatDataset, load_dataset
from ecg_mlflow.data.sealed import open_splits
from ecg_mlflow.data.splits import stratified_subset
from ecg_mlflow.models.backbones import build_encoder, transfer_encoder_weights
from ecg_mlflow.models.classifier import ContextSpec, build_classifier, compile_classifier
from ecg_mlflow.models.schedules import learning_rate
from ecg_mlflow.params import flatten_config
from ecg_mlflow.steps.pretrain import run_pretrain
from ecg_mlflow.steps.result import StepResult
from ecg_mlflow.steps.supervised import (
    FitSettings,
    LabelledBeats,
    evaluate_and_log,
    fit_classifier,
    headline,
    log_classifier,
    split_beats,
)
from ecg_mlflow.steps.training import STEPS_PER_EXECUTION, seed_everything
from ecg_mlflow.tracking.datasets import log_dataset_inputs
from ecg_mlflow.tracking.encoder import download_encoder, encoder_params, weights_digest
from ecg_mlflow.tracking.registry import CURRENT_ALIAS, SCRATCH_ALIAS, alias_uri, classifier_model_name, ssl_model_name
from ecg_mlflow.tracking.runs import describe_run, experiment_name, log_new_params, step_run
from ecg_mlflow.tracking.upstream import UpstreamError, UpstreamRun, resolve_upstream_run, run_id_from_model_uri

log = logging.getLogger(__name__)

STEP = "transfer"
UPSTREAM_RUN_TAG = "ecg_mlflow.upstream_run_id"
UPSTREAM_URI_TAG = "ecg_mlflow.upstream_model_uri"
SPLIT_PARAMS = ("source", "split", "split_seed", "test_fraction", "input")  # input: the encoder saw such beats


def resolve_pretrain_run(config: TransferConfig) -> UpstreamRun:
    """The pretrain run to transfer from, checked: FINISHED, a pretrain run, same backbone.

    For MIT the pretraining must have used the same split, so it never saw this test split.
    With no run ID or URI given and nothing registered yet, a default pretraining runs first.
    """
    expect = {"backbone": config.backbone}
    if config.data.dataset == PRETRAIN_DATASET:  # same beats: the pretraining must not have seen this test split
        expect |= {name: str(getattr(config.data, name)) for name in SPLIT_PARAMS}
    model_uri = config.pretrain_model
    if not config.pretrain_run_id and not model_uri:
        model_uri = alias_uri(ssl_model_name(config.backbone), CURRENT_ALIAS)
        try:
            run_id_from_model_uri(model_uri)
        except UpstreamError:
            log.warning("%s is not registered yet: pretraining one first with default parameters", model_uri)
            pretrain_data = replace(
                config.data,
                dataset=PRETRAIN_DATASET,
                split=config.data.split if config.data.dataset == PRETRAIN_DATASET else "intra",
            )
            result = run_pretrain(PretrainConfig(backbone=config.backbone, seed=config.seed, data=pretrain_data))
            return resolve_upstream_run(step="pretrain", run_id=result.run_id, expect_params=expect)
    return resolve_upstream_run(
        step="pretrain", run_id=config.pretrain_run_id, model_uri=model_uri, expect_params=expect
    )


def build_transfer_encoder(config: TransferConfig, upstream: UpstreamRun | None) -> tuple[keras.Model, BackboneConfig]:
    """The encoder the classifier starts from: the upstream weights, or fresh ones for init=scratch."""
    if upstream is None:
        model_config = config.model or BACKBONE_DEFAULTS[config.backbone]
        return build_encoder(config.backbone, model_config), model_config
    with tempfile.TemporaryDirectory() as tmp:
        spec, weights = download_encoder(upstream.run_id, Path(tmp))
        if spec["backbone"] != config.backbone:
            raise UpstreamError(
                f"run {upstream.run_id} holds a {spec['backbone']} encoder, not {config.backbone}; "
                f"pass a pretrain run with backbone={config.backbone}"
            )
        source_config = BackboneConfig(**spec["model"])
        source = build_encoder(config.backbone, source_config)
        source.load_weights(weights)
    model_config = config.model or source_config
    encoder = build_encoder(config.backbone, model_config)
    try:
        transfer_encoder_weights(source, encoder)
    except ValueError as error:
        raise UpstreamError(
            f"the encoder of run {upstream.run_id} does not fit backbone {config.backbone} "
            f"with {model_config}: {error}. "
            "Leave the size parameters unset to inherit the pretrained sizes."
        ) from None
    return encoder, model_config


def label_subset(train: LabelledBeats, fraction: float, seed: int) -> LabelledBeats:
    """A stratified fraction of the training labels (label-efficiency curves)."""
    if fraction >= 1.0:
        return train
    return train.subset(stratified_subset(train.y, fraction, seed))


def context_spec(train: LabelledBeats, join: str) -> ContextSpec | None:
    """The context inputs of the classifier, normalised with the training beats' statistics, joined as `join`."""
    return None if train.context is None else ContextSpec.fit(train.context_names, train.context, join)


def train_classifier(
    config: TransferConfig,
    upstream: UpstreamRun | None,
    train: LabelledBeats,
    val: LabelledBeats,
    n_classes: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 2,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Build the classifier of `config` on its starting encoder and fit it, selecting on `val` alone.

    Logs the encoder's sizes and its starting weights' digest to the active run. Shared by `transfer`
    and by every fold of a cross-validation, so a fold trains exactly as a transfer run does.
    """
    encoder, model_config = build_transfer_encoder(config, upstream)
    log_new_params(encoder_params(model_config))
    mlflow.set_tag("ecg_mlflow.init_encoder_digest", weights_digest(encoder))
    spec = context_spec(train, config.context_join)
    classifier = build_classifier(encoder, n_classes, freeze=config.freeze, context=spec)
    steps_per_epoch = math.ceil(len(train.y) / config.batch_size)
    rate = learning_rate(config.lr_schedule, config.learning_rate, config.epochs, steps_per_epoch)
    model = compile_classifier(classifier, n_classes, rate, STEPS_PER_EXECUTION)
    settings = FitSettings(
        config.epochs, config.batch_size, config.patience, config.class_weight, config.min_epochs, seed=config.seed
    )
    return model, fit_classifier(model, train, val, n_classes, settings, callbacks, verbose)


def start_supervised_run(config: TransferConfig, upstream: UpstreamRun | None, verbose: int) -> BeatDataset:
    """The lineage (upstream tags and params), the seed and the dataset of a run that trains a classifier."""
    if upstream is not None:
        mlflow.set_tags({UPSTREAM_RUN_TAG: upstream.run_id, UPSTREAM_URI_TAG: upstream.model_uri})
        mlflow.log_params({"upstream_run_id": upstream.run_id, "upstream_model_uri": upstream.model_uri})
    seed_everything(config.seed)
    dataset = load_dataset(config.data, progress=verbose > 0)
    log_dataset_inputs(dataset)
    return dataset


def run_transfer(
    config: TransferConfig,
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    register: bool = True,
    verbose: int = 2,
) -> StepResult:
    params = flatten_config(config)
    with step_run(
        STEP, params, run_name=transfer_run_name(config), experiment=experiment_name(config.data.dataset)
    ) as run:
        run_id = run.info.run_id
        upstream = resolve_pretrain_run(config) if config.init == "pretrained" else None
        dataset = start_supervised_run(config, upstream, verbose)
        train, val, *test = (split_beats(dataset, s, config.context, config.adapt) for s in open_splits(SPLIT_NAMES))
        train = label_subset(train, config.label_fraction, config.seed)
        mlflow.log_param("train_beats", len(train.y))
        if config.data.split == "inter":  # validation by whole records: which patients chose the model
            mlflow.log_param("val_records", ",".join(sorted(set(dataset.val.records))))

        model, history = train_classifier(config, upstream, train, val, len(dataset.class_names), callbacks, verbose)
        final = test[0] if test else None
        adapt = (config.adapt, config.seed)
        metrics = evaluate_and_log(model, val, final, dataset, history, majority=train.majority, adapt=adapt)
        alias = CURRENT_ALIAS if config.init == "pretrained" else SCRATCH_ALIAS
        name = classifier_model_name(config.data.dataset, config.backbone)
        model_uri, version = log_classifier(
            model, val, dataset.class_names, name, alias, register, run_id, config.adapt
        )
        origin = f"fine-tuned from pretrain run {upstream.run_id}" if upstream else "from scratch"
        if upstream and config.freeze:
            origin = f"frozen encoder of pretrain run {upstream.run_id}"
        describe_run(
            f"{config.backbone} classifier for {config.data.dataset} ({config.data.split} split, context="
            f"{config.context}, class_weight={config.class_weight}), {origin}. {headline(metrics)}."
        )
        return StepResult(run_id=run_id, metrics=metrics, model_uri=model_uri, registered_version=version)


def transfer_run_name(config: TransferConfig) -> str:
    """transfer-cnn-pretrained, baseline-lstm, baseline-cnn-rr_template-inter: what the runs table shows."""
    parts = [f"transfer-{config.backbone}-pretrained" if config.init == "pretrained" else f"baseline-{config.backbone}"]
    parts += [config.context] if config.context != "none" else []
    parts += [config.adapt] if config.adapt != "none" else []
    parts += [config.data.split] if config.data.split != "intra" else []
    return "-".join(parts)
