"""The MLflow side of a study: the tags of tuning runs, and ending the runs a worker left open.

MLflow has no heartbeat, so a worker that died leaves its runs RUNNING; Optuna knows which of its trials
ended, and the processes module which workers on this host are gone.
"""

from __future__ import annotations

import mlflow
import optuna
from mlflow import MlflowClient
from optuna.trial import TrialState

from ecg_mlflow.processes import process_is_dead

TAG_KIND, TAG_STUDY, TAG_TRIAL = "ecg_mlflow.kind", "optuna.study_name", "optuna.trial_number"
TAG_STATE, TAG_STORAGE, TAG_WORKER = "optuna.state", "optuna.storage", "ecg_mlflow.worker"
TAG_FAIL_REASON = "ecg_mlflow.fail_reason"
RUN_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}


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
        if trial is not None and trial.state.is_finished():
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
