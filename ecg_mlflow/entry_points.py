"""Every entry point declared once: `MLproject` and the `ecg-mlflow` commands are both made from ENTRY_POINTS.

To add one: write its config (config.py: the parameters, defaults and help) and its step
function (steps/: config -> a result with run_id), declare an EntryPoint below and run
`python -m ecg_mlflow.mlproject > MLproject`. The CLI command with its options and help, and the
MLproject entry point with its parameters, follow; tests/test_mlproject.py checks they agree.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ecg_mlflow.config import (
    PRETRAIN_DATASET,
    ClassifyConfig,
    CrossValConfig,
    EnsembleConfig,
    EvaluateConfig,
    FeaturesConfig,
    LabelEfficiencyConfig,
    MainConfig,
    PatientwiseConfig,
    PretrainConfig,
    TransferConfig,
)
from ecg_mlflow.params import parameter_defaults


@dataclass(frozen=True)
class EntryPoint:
    """One MLflow entry point and the CLI command that runs it."""

    name: str  # `mlflow run . -e NAME`
    command: str  # `ecg-mlflow COMMAND`
    config: type  # its parameters, defaults and help
    step: str  # "module:function" taking the config; imported only when the command runs (TensorFlow)
    help: str
    fixed: Mapping[str, Any] = field(default_factory=dict)  # parameters the command sets itself
    progress: bool = False  # the step takes on_progress(done, total): a progress bar on stderr

    def load_step(self) -> Callable[..., Any]:
        module, _, function = self.step.partition(":")
        return getattr(importlib.import_module(module), function)


BASELINE_FIXED = {"init": "scratch", "pretrain_run_id": "", "pretrain_model": ""}

ENTRY_POINTS: tuple[EntryPoint, ...] = (
    EntryPoint(
        "main",
        "main",
        MainConfig,
        "ecg_mlflow.steps.main:run_main",
        "The whole study for a dataset: pretrain -> transfer (+ scratch baselines) -> ensemble, reusing finished runs.",
    ),
    EntryPoint(
        "pretrain",
        "pretrain",
        PretrainConfig,
        "ecg_mlflow.steps.pretrain:run_pretrain",
        "Self-supervised pretraining on the 8 transforms of MIT-BIH training beats; registers ecg-ssl-<backbone>.",
        fixed={"dataset": PRETRAIN_DATASET},
    ),
    EntryPoint(
        "transfer",
        "transfer",
        TransferConfig,
        "ecg_mlflow.steps.transfer:run_transfer",
        "Supervised classifier from pretrained encoder weights (init=pretrained) or from scratch (init=scratch).",
    ),
    EntryPoint(
        "baseline",
        "baseline",
        TransferConfig,
        "ecg_mlflow.steps.transfer:run_transfer",
        "The supervised baseline (the paper's Table 1): `transfer` with init=scratch.",
        fixed=BASELINE_FIXED,
    ),
    EntryPoint(
        "crossval",
        "crossval",
        CrossValConfig,
        "ecg_mlflow.steps.crossval:run_crossval",
        "Patient-wise K-fold cross-validation over the training records (a nested run per fold, no test figures); "
        "the fold models averaged, tested once; registers ecg-<dataset>-<backbone>-cv.",
        fixed={"split": "inter"},
    ),
    EntryPoint(
        "features",
        "features",
        FeaturesConfig,
        "ecg_mlflow.steps.features:run_features",
        "The features baseline: a scikit-learn model on the context numbers alone (folds=K: patient-wise CV); "
        "registers ecg-<dataset>-features-<estimator>.",
    ),
    EntryPoint(
        "patientwise",
        "patientwise",
        PatientwiseConfig,
        "ecg_mlflow.steps.patientwise:run_patientwise",
        "Choose on patient-wise CV alone the model for new patients (a network, the features baseline or the networks "
        "averaged), test it once, register ecg-<dataset>-patientwise@current, evaluate it on external databases.",
    ),
    EntryPoint(
        "ensemble",
        "ensemble",
        EnsembleConfig,
        "ecg_mlflow.steps.ensemble:run_ensemble",
        "Average the transfer classifiers' outputs and train the ensemble again; registers ecg-<dataset>-ensemble.",
    ),
    EntryPoint(
        "evaluate",
        "evaluate",
        EvaluateConfig,
        "ecg_mlflow.steps.evaluate:run_evaluate",
        "Evaluate a trained classifier on every beat of a database (cross-database: svdb, incartdb, nstdb, a folder).",
    ),
    EntryPoint(
        "classify",
        "classify",
        ClassifyConfig,
        "ecg_mlflow.steps.classify:run_classify",
        "Label every beat of a WFDB record with a trained classifier: WFDB annotations, a beats CSV and an ECG strip.",
        progress=True,
    ),
    EntryPoint(
        "label_efficiency",
        "label-efficiency",
        LabelEfficiencyConfig,
        "ecg_mlflow.steps.label_efficiency:run_label_efficiency",
        "Test macro-F1 against the share of training labels, pretrained vs scratch, over seeds: a table and a plot.",
    ),
)


def positional_parameters(config_cls: type) -> tuple[str, ...]:
    """Parameters given as arguments rather than --options (`ecg-mlflow evaluate MODEL_URI`)."""
    return tuple(getattr(config_cls, "positional", ()))


def exposed_parameters(config_cls: type, fixed: Mapping[str, Any] | None = None) -> dict[str, tuple[str, Any]]:
    """The parameters a command or entry point shows: all of the config's, less the fixed ones."""
    return {k: v for k, v in parameter_defaults(config_cls).items() if k not in (fixed or {})}
