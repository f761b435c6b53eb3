"""Child runs of a multi-run command (the `main` chains, a label-efficiency study): each an `mlflow run` of this
project's own entry point in the current environment, reused when a FINISHED run with the same entry point,
parameters and git commit exists, as in MLflow's multistep workflow example.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient
from mlflow.utils.git_utils import get_git_commit
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_PARENT_RUN_ID, MLFLOW_PROJECT_ENTRY_POINT

from ecg_mlflow.errors import UserError
from ecg_mlflow.steps.progress import Progress
from ecg_mlflow.steps.supervised import LEARNED_NOTHING_TAG

log = logging.getLogger(__name__)


class ChildRunError(UserError, RuntimeError):
    """A step the chain started did not finish; the message carries the step's own error."""


@dataclass
class MainResult:
    """The children's runs and figures, and the reproduction table (`text`, printed by the CLI)."""

    run_id: str = ""
    run_ids: dict[str, str] = field(default_factory=dict)
    reused: dict[str, bool] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    learned_nothing: dict[str, bool] = field(default_factory=dict)
    table: str = ""

    @property
    def text(self) -> str:
        return self.table


def project_root() -> Path:
    """The folder holding MLproject: the checkout this package was installed from, else the cwd."""
    candidate = Path(__file__).resolve().parents[2]
    return candidate if (candidate / "MLproject").exists() else Path.cwd()


def find_finished_run(
    experiment_id: str, entry_point: str, parameters: Mapping[str, Any], git_commit: str | None
) -> Run | None:
    """A FINISHED run of `entry_point` with exactly these parameters on this code version."""
    client = MlflowClient()
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{MLFLOW_PROJECT_ENTRY_POINT}` = '{entry_point}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
    for run in runs:
        if git_commit and run.data.tags.get(MLFLOW_GIT_COMMIT) != git_commit:
            continue
        if all(run.data.params.get(key) == str(value) for key, value in parameters.items()):
            return run
    return None


def run_entry_point(
    entry_point: str, parameters: Mapping[str, Any], *, experiment_id: str, parent_run_id: str, reuse: bool = True
) -> tuple[Run, bool]:
    """Run (or reuse) one child step; returns (the FINISHED run, whether it was reused)."""
    root = project_root()
    # Empty values are left to the entry point's default: MLflow logs them shell-quoted ("''").
    params = {key: str(value) for key, value in parameters.items() if str(value) != ""}
    git_commit = get_git_commit(str(root))
    if reuse:
        found = find_finished_run(experiment_id, entry_point, params, git_commit)
        if found is not None:
            log.info("reusing FINISHED %s run %s", entry_point, found.info.run_id)
            return found, True
    log.info("running %s %s", entry_point, params)
    submitted = mlflow.projects.run(
        str(root),
        entry_point=entry_point,
        parameters=params,
        experiment_id=experiment_id,
        env_manager="local",
        synchronous=False,
    )
    MlflowClient().set_tag(submitted.run_id, MLFLOW_PARENT_RUN_ID, parent_run_id)
    succeeded = submitted.wait()
    run = MlflowClient().get_run(submitted.run_id)
    if not succeeded or run.info.status != RunStatus.to_string(RunStatus.FINISHED):
        error = run.data.tags.get("ecg_mlflow.error", "see the run's logs")
        raise ChildRunError(f"{entry_point} run {submitted.run_id} ended {run.info.status}: {error}")
    return run, False


def parent_metric(child: str, name: str) -> str:
    """A child's figure as a parent metric: ("pretrained/cnn", "test_accuracy") -> pretrained_cnn_test_accuracy."""
    return f"{child.replace('/', '_')}_{name}"


@dataclass
class Chain:
    """The children of one parent run: starts (or reuses) each, counts progress, collects their figures."""

    experiment_id: str
    parent_id: str
    progress: Progress
    result: MainResult
    reuse: bool = True

    def child(self, key: str, entry_point: str, parameters: dict[str, Any]) -> Run:
        """Run (or reuse) `entry_point` as the child `key` ("pretrain/cnn"); its figures go to the result."""
        self.progress.begin(f"{entry_point} {key.split('/')[-1]}" if "/" in key else entry_point)
        run, reused = run_entry_point(
            entry_point, parameters, experiment_id=self.experiment_id, parent_run_id=self.parent_id, reuse=self.reuse
        )
        seconds = self.progress.end(reused)
        if not reused:  # the parent shows where the time went, step by step
            mlflow.log_metric(parent_metric(key, "wall_s"), round(seconds, 1))
        self.result.run_ids[key], self.result.reused[key] = run.info.run_id, reused
        self.result.metrics[key] = dict(run.data.metrics)
        self.result.learned_nothing[key] = run.data.tags.get(LEARNED_NOTHING_TAG) == "true"
        return run
