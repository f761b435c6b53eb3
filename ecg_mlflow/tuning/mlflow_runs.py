"""The MLflow side of a study: the tags of tuning runs, and ending the runs a worker left open.

MLflow has no heartbeat, so a worker that died leaves its runs RUNNING; Optuna knows which of its trials
ended, and the processes module which workers on this host are gone.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import mlflow
import optuna
from mlflow import MlflowClient
from mlflow.entities import Experiment
from optuna.trial import TrialState

from ecg_mlflow.processes import process_identity, process_is_dead
from ecg_mlflow.tracking.outages import stop_waiting_for_mlflow
from ecg_mlflow.tracking.runs import mark_classic_ml
from ecg_mlflow.tuning.report import log_study_report
from ecg_mlflow.tuning.spec import StudySpec
from ecg_mlflow.tuning.storage import StorageHandle

TAG_KIND, TAG_STUDY, TAG_TRIAL = "ecg_mlflow.kind", "optuna.study_name", "optuna.trial_number"
TAG_STATE, TAG_STORAGE, TAG_WORKER = "optuna.state", "optuna.storage", "ecg_mlflow.worker"
TAG_FAIL_REASON = "ecg_mlflow.fail_reason"
_logger = optuna.logging.get_logger("optuna.ecg_mlflow.tuning")
RUN_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}


@dataclass
class TrialOutcome:
    number: int
    state: str
    value: float | None
    mlflow_run_id: str
    error: str = ""


@dataclass
class RunSummary:
    study_name: str
    storage: str
    experiment_id: str
    parent_run_id: str
    n_trials: int
    trials: list[TrialOutcome] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    total: int = 0
    best_value: float | None = None
    best_trial: int | None = None
    stopped: str = ""


def _end_running_children(client: MlflowClient, run_id: str, status: str) -> None:
    query = f"tags.`mlflow.parentRunId` = '{run_id}' and attributes.status = 'RUNNING'"
    for child in mlflow.search_runs(filter_string=query, search_all_experiments=True, output_format="list"):
        _end_running_children(client, child.info.run_id, status)
        client.set_terminated(child.info.run_id, status=status)


def close_orphaned_runs(study: optuna.Study) -> None:
    """End MLflow runs left RUNNING by a dead worker: trial runs whose Optuna trial is finished (with the
    matching status), the parent run of a dead worker on this host, and the step runs under either."""
    client = MlflowClient()
    name = study.study_name.replace("'", "\\'")
    query = f"tags.`{TAG_STUDY}` = '{name}' and attributes.status = 'RUNNING'"
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    for run in mlflow.search_runs(filter_string=query, search_all_experiments=True, output_format="list"):
        tags = run.data.tags
        trial = trials.get(int(tags.get(TAG_TRIAL, -1))) if tags.get(TAG_KIND) == "trial" else None
        own_run = trial.user_attrs.get("mlflow_run_id", run.info.run_id) if trial is not None else None
        if trial is not None and trial.state.is_finished() and run.info.run_id != own_run:
            # A second run for the trial: a create-run request retried after its answer was lost.
            status = "KILLED"
            client.set_tag(run.info.run_id, TAG_FAIL_REASON, f"a duplicate of run {own_run}")
        elif trial is not None and trial.state.is_finished():
            status = RUN_STATUS[trial.state]
            client.set_tag(run.info.run_id, TAG_STATE, trial.state.name)
            if trial.state == TrialState.FAIL:
                reason = trial.user_attrs.get("fail_reason", "abandoned: no heartbeat within the grace period")
                client.set_tag(run.info.run_id, TAG_FAIL_REASON, str(reason)[:5000])
        elif tags.get(TAG_KIND) == "tune" and process_is_dead(tags.get(TAG_WORKER, "")):
            status = "FAILED"
        else:
            continue
        _end_running_children(client, run.info.run_id, "FAILED" if status != "FINISHED" else status)
        client.set_terminated(run.info.run_id, status=status)


def end_runs_above(run_id: str, status: str) -> None:
    """End the active runs started under run_id (step runs left open by an exception)."""
    while (active := mlflow.active_run()) is not None and active.info.run_id != run_id:
        mlflow.end_run(status=status)


def start_parent_run(spec: StudySpec, handle: StorageHandle, n_trials: int, timeout: float | None) -> mlflow.ActiveRun:
    """This worker's parent run: the study's settings as params, the spec as study.yaml."""
    tags = {TAG_KIND: "tune", TAG_STUDY: spec.name, TAG_STORAGE: handle.display, TAG_WORKER: process_identity()}
    parent = mlflow.start_run(run_name=f"tune-{spec.name}", nested=mlflow.active_run() is not None, tags=tags)
    settings = {"study_name": spec.name, "n_trials": n_trials, "timeout": timeout or "", "storage": handle.display}
    settings |= {"steps": ",".join(spec.steps), "metric": spec.metric, "direction": spec.direction}
    mlflow.log_params({**settings, "study_file": spec.path or ""})
    with contextlib.suppress(Exception):
        mlflow.log_dict(spec.to_dict(), "study.yaml")
    return parent


def finish_parent_run(study: optuna.Study, summary: RunSummary, status: str) -> None:
    """The study's counts and best value on the parent run, the study report, then end the run."""
    with contextlib.suppress(Exception):
        trials = study.get_trials(deepcopy=False)
        summary.total = len(trials)
        counts = {s: sum(t.state == s for t in trials) for s in (*RUN_STATUS, TrialState.RUNNING)}
        mlflow.log_metrics({f"trials_{s.name.lower()}": n for s, n in counts.items()})
        mlflow.log_metric("trials_this_worker", len(summary.trials))
        best = study.best_trial  # ValueError (suppressed) without a COMPLETE trial
        summary.best_value, summary.best_trial = best.value, best.number
        mlflow.log_metric("best_value", best.value)
        mlflow.set_tag("optuna.best_trial", str(best.number))
    try:
        log_study_report(study)
    except Exception as error:  # a report that cannot be drawn must not fail the study
        _logger.warning(f"no study report on the parent run: {type(error).__name__}: {error}")
    with contextlib.suppress(Exception):
        mlflow.end_run(status=status)


def abandon_runs() -> None:
    """A server was lost: end this worker's MLflow runs FAILED if the tracking server answers at once, else leave
    them to the next worker, which ends them by the trials' states (close_orphaned_runs)."""
    stop_waiting_for_mlflow()
    while mlflow.active_run() is not None:
        with contextlib.suppress(Exception):  # end_run forgets the run before it tells the server
            mlflow.end_run(status="FAILED")


def tagged_experiment(name: str, handle: StorageHandle) -> Experiment:
    """The experiment and its first writes, once, under the study's lock: not raced by every worker."""
    with handle.lock():
        experiment = mlflow.set_experiment(name)
        mark_classic_ml(experiment.experiment_id)
    return experiment
