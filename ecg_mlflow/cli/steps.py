"""`ecg-mlflow pretrain | transfer | baseline | ensemble | run-all`: thin wrappers over ecg_mlflow.steps."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import typer

from ecg_mlflow.cli.errors import reported_errors
from ecg_mlflow.cli.options import config_command
from ecg_mlflow.config import (
    PRETRAIN_DATASET,
    ChainConfig,
    ClassifyConfig,
    EnsembleConfig,
    EvaluateConfig,
    LabelEfficiencyConfig,
    PretrainConfig,
    TransferConfig,
)
from ecg_mlflow.steps.result import StepResult

HEADLINE_METRICS = (
    "test_accuracy",
    "test_macro_f1",
    "test_se_S",
    "test_ppv_S",
    "test_se_V",
    "test_ppv_V",
    "best_val",
    "val_mean",
    "val_acc_",
)


def report(step: Callable[[Any], StepResult]) -> Callable[[Any], None]:
    """Run a step; print its run ID and headline metrics, or a one-line error and exit 1."""

    def run(config: Any) -> None:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        with reported_errors():
            result = step(config)
        typer.echo(f"run_id: {result.run_id}")
        if result.model_uri:
            typer.echo(f"model_uri: {result.model_uri}")
        if result.registered_version:
            typer.echo(f"registered_version: {result.registered_version}")
        for key in sorted(result.metrics):
            if key.startswith(HEADLINE_METRICS):
                typer.echo(f"{key}: {result.metrics[key]:.4f}")

    return run


def _pretrain(config: PretrainConfig) -> StepResult:
    from ecg_mlflow.steps.pretrain import run_pretrain

    return run_pretrain(config)


def _transfer(config: TransferConfig) -> StepResult:
    from ecg_mlflow.steps.transfer import run_transfer

    return run_transfer(config)


def _evaluate(config: EvaluateConfig) -> StepResult:
    from ecg_mlflow.steps.evaluate import run_evaluate

    return run_evaluate(config)


def _ensemble(config: EnsembleConfig) -> StepResult:
    from ecg_mlflow.steps.ensemble import run_ensemble

    return run_ensemble(config)


PRETRAIN_FIXED = {"dataset": PRETRAIN_DATASET}
pretrain = config_command(
    PretrainConfig,
    report(_pretrain),
    "Self-supervised pretraining on the 8 transforms of MIT-BIH training beats; registers ecg-ssl-<backbone>.",
    fixed=PRETRAIN_FIXED,
)
transfer = config_command(
    TransferConfig,
    report(_transfer),
    "Supervised classifier from pretrained encoder weights (init=pretrained) or from scratch (init=scratch).",
)
ensemble = config_command(
    EnsembleConfig,
    report(_ensemble),
    "Average the transfer classifiers' outputs and train the ensemble again; registers ecg-<dataset>-ensemble.",
)


evaluate = config_command(
    EvaluateConfig,
    report(_evaluate),
    "Evaluate a trained classifier on every beat of a database (cross-database: svdb, incartdb, nstdb, a folder).",
)


def _classify(config: ClassifyConfig) -> None:
    from ecg_mlflow.steps.classify import run_classify

    bars: list[Any] = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(typer.progressbar(length=total, label="classifying beats", file=sys.stderr))
            bars[0].__enter__()
        bars[0].update(done - bars[0].pos)
        if done >= total:
            bars[0].__exit__(None, None, None)

    with reported_errors():
        run_classify(config, progress)


classify = config_command(
    ClassifyConfig,
    _classify,
    "Label every beat of a WFDB record with a trained classifier: WFDB annotations, a beats CSV and an ECG strip.",
)


def _run_all(config: ChainConfig) -> None:
    from ecg_mlflow.steps.main import run_chain

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with reported_errors():
        result = run_chain(config)
    typer.echo(result.table)


def _label_efficiency(config: LabelEfficiencyConfig) -> None:
    from ecg_mlflow.steps.label_efficiency import run_label_efficiency

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with reported_errors():
        result = run_label_efficiency(config)
    typer.echo(f"run_id: {result.run_id}")
    typer.echo(result.markdown)


label_efficiency = config_command(
    LabelEfficiencyConfig,
    _label_efficiency,
    "Test macro-F1 against the share of training labels, pretrained vs scratch, over seeds: a table and a plot.",
)


run_all = config_command(
    ChainConfig,
    _run_all,
    "The whole study for a dataset: pretrain -> transfer (+ scratch baselines) -> ensemble, reusing finished runs.",
)


BASELINE_FIXED = {"init": "scratch", "pretrain_run_id": "", "pretrain_model": ""}
baseline = config_command(
    TransferConfig,
    report(_transfer),
    "The supervised baseline (the paper's Table 1): `transfer` with init=scratch.",
    fixed=BASELINE_FIXED,
)


def register(app: typer.Typer) -> None:
    app.command("pretrain")(pretrain)
    app.command("transfer")(transfer)
    app.command("baseline")(baseline)
    app.command("ensemble")(ensemble)
    app.command("evaluate")(evaluate)
    app.command("classify")(classify)
    app.command("run-all")(run_all)
    app.command("label-efficiency")(label_efficiency)
