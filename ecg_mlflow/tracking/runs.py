"""One MLflow run per step, with the status a user expects to see in the UI.

`mlflow.start_run` as a context manager marks every exception FAILED; a trial
that Optuna prunes should read KILLED instead, and a step called inside another
run (a tuning trial, the `main` chain) should nest under it.

No orphan runs: Ctrl-C and SIGTERM end the step's run as KILLED (and say so on stderr). A step
killed outright (SIGKILL, a lost machine) cannot say anything, so every run records the process
that runs it (`ecg_mlflow.process`, host:pid:start-time) and each step, before it starts, marks
KILLED the RUNNING runs of its experiment whose process is known to be gone. Runs of live
processes, and of processes on other hosts, are never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

import mlflow
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from ecg_mlflow.processes import process_identity, process_is_dead, terminate_as_interrupt
from ecg_mlflow.tracking.first_writes import write_once
from ecg_mlflow.tracking.provenance import tag_code_state

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "ecg-mlflow"
STEP_TAG = "ecg_mlflow.step"
# MLflow 3 opens an experiment on its runs table (classic ML), not on traces (GenAI), with this tag.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
CLASSIC_ML = "custom_model_development"
NOTE_TAG = "mlflow.note.content"  # the description the UI shows on a run or an experiment
# Params copied to plain tags, so the runs table can group and filter by them.
GROUPING_PARAMS = ("dataset", "backbone", "init", "split", "context", "class_weight", "adapt")
PROCESS_TAG = "ecg_mlflow.process"
REAPED_TAG = "ecg_mlflow.reaped"
PROJECT_ENV_TAG = "mlflow.project.env"  # set by `mlflow run` before it builds the environment
ENV_BUILD_GRACE_S = 3600.0  # a run without a step this much older was left by a failed environment build
PRUNED_EXCEPTIONS = ("TrialPruned",)


def experiment_name(dataset: str) -> str:
    """The experiment a dataset's steps go to: ecg-mit, ecg-ptb."""
    return f"ecg-{dataset}"


def ensure_experiment(name: str | None = None) -> None:
    """Use `name`, unless `mlflow run` or the environment already chose an experiment."""
    if mlflow.active_run() or os.environ.get("MLFLOW_RUN_ID"):
        return
    if os.environ.get("MLFLOW_EXPERIMENT_ID") or os.environ.get("MLFLOW_EXPERIMENT_NAME"):
        return
    mlflow.set_experiment(name or DEFAULT_EXPERIMENT)


def mark_classic_ml(experiment_id: str) -> None:
    """Tag the experiment so MLflow 3's UI opens it on the runs table, unless it already says what it is. Every
    worker's first run does this at once on a fresh experiment: the loser of that race finds the tag (write_once)."""
    client = MlflowClient()
    if EXPERIMENT_KIND_TAG not in client.get_experiment(experiment_id).tags:
        write_once(client.set_experiment_tag, experiment_id, EXPERIMENT_KIND_TAG, CLASSIC_ML)


REGISTERED_TAG = "ecg_mlflow.registered"  # "<registered model>/<version>" the run registered


def describe_run(text: str) -> None:
    """The run's description in the UI (what it is, its upstream, its headline figures), and the same
    text on the model version it registered."""
    mlflow.set_tag(NOTE_TAG, text)
    run = mlflow.active_run()
    registered = mlflow.get_run(run.info.run_id).data.tags.get(REGISTERED_TAG, "") if run else ""
    if "/" in registered:
        name, version = registered.rsplit("/", 1)
        MlflowClient().update_model_version(name, version, description=text)


@contextlib.contextmanager
def step_run(
    step: str, params: Mapping[str, Any], run_name: str | None = None, experiment: str | None = None
) -> Iterator[mlflow.ActiveRun]:
    """Start (or, under `mlflow run`, adopt) the step's run; log params, the step tag and the grouping tags.

    A run opened by `mlflow run` is found through MLFLOW_RUN_ID: it keeps its experiment but gets
    the readable `run_name` instead of MLflow's random one. If another run is already active in
    this process the step's run nests under it.
    """
    ensure_experiment(experiment)
    nested = mlflow.active_run() is not None
    adopted = bool(os.environ.get("MLFLOW_RUN_ID")) and not nested
    run = mlflow.start_run(run_name=None if adopted else run_name, nested=nested)
    status = RunStatus.to_string(RunStatus.FINISHED)
    try:
        with terminate_as_interrupt():
            grouping = {key: str(params[key]) for key in GROUPING_PARAMS if key in params}
            mlflow.set_tags({STEP_TAG: step, PROCESS_TAG: process_identity(), **grouping})
            tag_code_state()
            if adopted and run_name:
                mlflow.set_tag("mlflow.runName", run_name)
            mark_classic_ml(run.info.experiment_id)
            reap_orphaned_runs(run.info.experiment_id)
            log_new_params(params)
            yield run
    except BaseException as error:
        interrupted = isinstance(error, KeyboardInterrupt)
        pruned = type(error).__name__ in PRUNED_EXCEPTIONS or interrupted
        status = RunStatus.to_string(RunStatus.KILLED if pruned else RunStatus.FAILED)
        with contextlib.suppress(Exception):
            mlflow.set_tag("ecg_mlflow.error", f"{type(error).__name__}: {error}"[:5000])
        if interrupted:
            print(f"interrupted: {step} run {run.info.run_id} marked KILLED", file=sys.stderr, flush=True)
        raise
    finally:
        mlflow.end_run(status)


def reap_orphaned_runs(experiment_id: str) -> list[str]:
    """Mark the runs of the experiment that nothing will ever finish; returns their IDs.

    - KILLED: RUNNING runs whose recorded process (host:pid:start) is gone.
    - FAILED: RUNNING runs that `mlflow run` created and then never started a step in, because
      building the project's environment failed (MLflow creates the run first and leaves it
      RUNNING), once they are older than ENV_BUILD_GRACE_S.
    """
    client = MlflowClient()
    running = client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'")
    reaped = []
    for orphan in running:
        run_id, tags = orphan.info.run_id, orphan.data.tags
        identity = tags.get(PROCESS_TAG, "")
        if identity and process_is_dead(identity):
            reason, status = f"its process {identity} is gone (killed or crashed)", RunStatus.KILLED
        elif not identity and PROJECT_ENV_TAG in tags and _age_s(orphan.info.start_time) > ENV_BUILD_GRACE_S:
            reason = f"`mlflow run` never started its step: building the {tags[PROJECT_ENV_TAG]} environment failed"
            status = RunStatus.FAILED
        else:
            continue
        client.set_tag(run_id, REAPED_TAG, reason)
        client.set_terminated(run_id, status=RunStatus.to_string(status))
        log.warning("run %s was left RUNNING (%s): marked %s", run_id, reason, RunStatus.to_string(status))
        reaped.append(run_id)
    return reaped


def _age_s(start_time_ms: int | None) -> float:
    return time.time() - (start_time_ms or 0) / 1000


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
