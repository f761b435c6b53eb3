"""One MLflow run per step, with the status a user expects to see in the UI.

`mlflow.start_run` as a context manager marks every exception FAILED; a trial
that Optuna prunes should read KILLED instead, and a step called inside another
run (a tuning trial, the `main` chain) should nest under it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

import mlflow
from mlflow.entities import RunStatus

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "ecg-mlflow"
STEP_TAG = "ecg_mlflow.step"
PRUNED_EXCEPTIONS = ("TrialPruned",)


def ensure_experiment(name: str | None = None) -> None:
    """Use `name`, unless `mlflow run` or the environment already chose an experiment."""
    if mlflow.active_run() or os.environ.get("MLFLOW_RUN_ID"):
        return
    if os.environ.get("MLFLOW_EXPERIMENT_ID") or os.environ.get("MLFLOW_EXPERIMENT_NAME"):
        return
    mlflow.set_experiment(name or DEFAULT_EXPERIMENT)


@contextlib.contextmanager
def step_run(step: str, params: Mapping[str, Any], run_name: str | None = None) -> Iterator[mlflow.ActiveRun]:
    """Start (or, under `mlflow run`, adopt) the step's run; log params and the step tag.

    A run opened by `mlflow run` is found through MLFLOW_RUN_ID. If another run
    is already active in this process the step's run nests under it.
    """
    ensure_experiment()
    nested = mlflow.active_run() is not None
    run = mlflow.start_run(run_name=None if os.environ.get("MLFLOW_RUN_ID") and not nested else run_name, nested=nested)
    status = RunStatus.to_string(RunStatus.FINISHED)
    try:
        mlflow.set_tag(STEP_TAG, step)
        log_new_params(params)
        yield run
    except BaseException as error:
        pruned = type(error).__name__ in PRUNED_EXCEPTIONS or isinstance(error, KeyboardInterrupt)
        status = RunStatus.to_string(RunStatus.KILLED if pruned else RunStatus.FAILED)
        with contextlib.suppress(Exception):
            mlflow.set_tag("ecg_mlflow.error", f"{type(error).__name__}: {error}"[:5000])
        raise
    finally:
        mlflow.end_run(status)


def log_new_params(params: Mapping[str, Any]) -> None:
    """Log params the run does not have yet.

    `mlflow run` logs the entry point's parameters as given ("5.0", "-1") before the
    step starts, and MLflow refuses to change a logged value; the step's own values
    for those keys are the same settings, so they are skipped, not re-logged.
    """
    run = mlflow.active_run()
    existing = mlflow.get_run(run.info.run_id).data.params if run else {}
    fresh = {k: _param_value(v) for k, v in params.items() if k not in existing}
    if fresh:
        mlflow.log_params(fresh)


def _param_value(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return value
