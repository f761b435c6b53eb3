"""What one trial computes: pretrain (when the study tunes it) + transfer, objective = validation macro-F1.

The runner hands an evaluate function a TrialContext; `evaluate_steps` is the real one (the
pretrain/transfer steps, register=False); tests may pass a small function of their own to
exercise storage and parallel workers without training.
"""

from __future__ import annotations

import importlib
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from ecg_mlflow.config import PretrainConfig
from ecg_mlflow.data.sealed import sealed_test_split
from ecg_mlflow.errors import UserError
from ecg_mlflow.params import config_from_params
from ecg_mlflow.tuning.names import STEP_CONFIGS, STEP_RUNNERS
from ecg_mlflow.tuning.spec import StudySpec


class ObjectiveError(UserError, RuntimeError):
    """The steps ran but gave no usable objective value."""


class PruningReporter:
    """Reports the monitored validation metric per epoch to Optuna (and to the trial's MLflow run);
    raises optuna.TrialPruned when the pruner says so."""

    def __init__(self, trial: optuna.Trial, monitor: str, mlflow_run_id: str | None = None) -> None:
        self.trial = trial
        self.monitor = monitor
        self.mlflow_run_id = mlflow_run_id
        self.reported: dict[int, float] = {}
        self._warned = False

    def report(self, epoch: int, logs: dict[str, Any] | None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            if not self._warned:
                warnings.warn(
                    f"'{self.monitor}' is not in the epoch logs; trial {self.trial.number} is not pruned", stacklevel=2
                )
                self._warned = True
            return
        value = float(value)
        self.reported[epoch] = value
        self.trial.report(value, step=epoch)
        if self.mlflow_run_id is not None:
            from mlflow import MlflowClient

            # The active run during fit is the step's; the intermediate values belong to the trial's run.
            MlflowClient().log_metric(self.mlflow_run_id, self.monitor, value, step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch}: {self.monitor}={value:.4f}")

    def fold_callback(self) -> Any:
        """For a cross-validation trial: after each fold, the running mean of the folds' monitored figure so far
        (step = folds done), so the pruner compares trials after the same folds and can stop a poor one early."""
        done: list[float] = []

        def on_fold(fold: int, figures: dict[str, float]) -> None:
            if self.monitor in figures:
                done.append(float(figures[self.monitor]))
            self.report(fold + 1, {self.monitor: float(sum(done) / len(done))} if done else {})

        return on_fold

    def keras_callback(self) -> Any:
        """A Keras callback around report(), appended to the transfer step's callbacks."""
        import keras

        reporter = self

        class OptunaPruningCallback(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                reporter.report(epoch, logs)

        return OptunaPruningCallback()


@dataclass
class TrialContext:
    trial: optuna.Trial
    spec: StudySpec
    values: dict[str, Any]  # fixed + sampled, as written in the study file
    reporter: PruningReporter
    mlflow_run_id: str | None = None
    info: dict[str, Any] = field(default_factory=dict)  # run IDs etc., stored as trial user attributes

    @property
    def step_params(self) -> dict[str, dict[str, Any]]:
        return self.spec.step_params(self.values)


Evaluate = Callable[[TrialContext], float]


def needs_pretraining(spec: StudySpec, transfer_params: dict[str, Any]) -> bool:
    """Pretrain in the trial unless the study has no pretrain step, the transfer is from scratch,
    or a pretrain run/model was fixed (--set pretrain_run_id=...)."""
    return (
        "pretrain" in spec.steps
        and str(transfer_params.get("init", "pretrained")) != "scratch"
        and not transfer_params.get("pretrain_run_id")
        and not transfer_params.get("pretrain_model")
    )


def run_steps(
    spec: StudySpec,
    values: dict[str, Any],
    *,
    reporter: PruningReporter | None = None,
    register: bool,
    info: dict[str, Any] | None = None,
) -> Any:
    """Pretrain (if needed), then the supervised step (transfer, or a cross-validation) from it; returns the
    supervised step's StepResult. The reporter hears each epoch of a transfer, each fold of a cross-validation."""
    info = {} if info is None else info
    params = spec.step_params(values)
    supervised = spec.steps[-1]
    own = dict(params[supervised])
    if needs_pretraining(spec, own):
        pretrained = step_runner("pretrain")(config_from_params(PretrainConfig, params["pretrain"]), register=register)
        info["pretrain_run_id"] = pretrained.run_id
        own["pretrain_run_id"] = pretrained.run_id
    listens: dict[str, Any] = {}
    if reporter is not None and supervised == "crossval":
        listens = {"on_fold": reporter.fold_callback()}
    elif reporter is not None:
        listens = {"callbacks": (reporter.keras_callback(),)}
    config = config_from_params(STEP_CONFIGS[supervised], own)
    result = step_runner(supervised)(config, register=register, **listens)
    info[f"{supervised}_run_id"] = result.run_id
    info[f"{supervised}_model_uri"] = result.model_uri
    return result


def step_runner(step: str) -> Callable[..., Any]:
    """The function that runs `step` (names.STEP_RUNNERS), imported now: a study file loads without Keras."""
    module, _, function = STEP_RUNNERS[step].partition(":")
    return getattr(importlib.import_module(module), function)


def evaluate_steps(ctx: TrialContext) -> float:
    """The real objective: the supervised step's validation or cross-validation figure (never a test metric)."""
    with sealed_test_split("an Optuna trial"):  # a trial is compared: it never computes a test figure
        result = run_steps(ctx.spec, ctx.values, reporter=ctx.reporter, register=False, info=ctx.info)
    metrics = dict(result.metrics)
    if ctx.spec.metric not in metrics:
        raise ObjectiveError(
            f"the {ctx.spec.steps[-1]} step reported no '{ctx.spec.metric}' "
            f"(it reported: {', '.join(sorted(metrics)) or 'nothing'})"
        )
    value = float(metrics[ctx.spec.metric])
    if not math.isfinite(value):
        raise ObjectiveError(f"{ctx.spec.metric}={value} is not a finite number")
    chosen_on = ("val_", "best_val_", "cv_")
    ctx.info["validation_metrics"] = {k: float(v) for k, v in metrics.items() if k.startswith(chosen_on)}
    return value
