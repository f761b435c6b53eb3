"""Child runs of a multi-run command (the `main` chains, a label-efficiency study): each an `mlflow run` of this
project's own entry point in the current environment, reused when a FINISHED run with the same entry point,
parameters, code and data exists (tracking/provenance.py), as in MLflow's multistep workflow example.
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
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_PROJECT_ENTRY_POINT

from ecg_mlflow.config import PRETRAIN_DATASET, MainConfig
from ecg_mlflow.data.dataset import load_dataset
from ecg_mlflow.data.spec import resolve_cache_dir, resolve_data_dir
from ecg_mlflow.data.unlabelled import unlabelled_digest
from ecg_mlflow.entry_points import ENTRY_POINTS
from ecg_mlflow.errors import UserError
from ecg_mlflow.params import config_from_params
from ecg_mlflow.steps.progress import Progress
from ecg_mlflow.steps.supervised import LEARNED_NOTHING_TAG
from ecg_mlflow.tracking.provenance import (
    CODE_DIGEST_TAG,
    DATA_DIGEST_TAG,
    UNCOMMITTED_TAG,
    code_state,
    data_digest,
)

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


def expected_data_digest(entry_point: str, parameters: Mapping[str, str]) -> str:
    """The data digest (tracking/provenance.py) a run of `entry_point` with these parameters would record:
    its dataset built (or read from the cache) here, plus its unlabelled records; "" for a step that reads
    no dataset of its own."""
    declared = next(e for e in ENTRY_POINTS if e.name == entry_point)
    config = config_from_params(declared.config, {**parameters, **declared.fixed})
    data = getattr(config, "data", None)
    if data is None:
        return ""
    data_dir, cache_dir = resolve_data_dir(data.data_dir or None), resolve_cache_dir(data.cache_dir or None)
    unlabelled = unlabelled_digest(tuple(getattr(config, "unlabelled", ())), data_dir, cache_dir, data.input)
    return data_digest(load_dataset(data).digest, unlabelled)


def find_finished_run(
    experiment_id: str, entry_point: str, parameters: Mapping[str, Any], code: str, data: str
) -> Run | None:
    """A FINISHED run of `entry_point` with exactly these parameters, made by this code (CODE_DIGEST_TAG, from
    a committed state) from this data (DATA_DIGEST_TAG; not compared when `data` is "")."""
    conditions = [
        f"tags.`{MLFLOW_PROJECT_ENTRY_POINT}` = '{entry_point}'",
        "attributes.status = 'FINISHED'",
        f"tags.`{CODE_DIGEST_TAG}` = '{code}'",
        f"tags.`{UNCOMMITTED_TAG}` = 'false'",
        *([f"tags.`{DATA_DIGEST_TAG}` = '{data}'"] if data else []),
    ]
    runs = MlflowClient().search_runs(
        [experiment_id], filter_string=" and ".join(conditions), order_by=["attributes.start_time DESC"]
    )
    for run in runs:
        if all(run.data.params.get(key) == str(value) for key, value in parameters.items()):
            return run
    return None


def run_entry_point(
    entry_point: str, parameters: Mapping[str, Any], *, experiment_id: str, parent_run_id: str, reuse: bool = True
) -> tuple[Run, bool]:
    """Run (or reuse) one child step; returns (the FINISHED run, whether it was reused).

    Reused only what is provably the same: entry point, parameters, the package's code digest and the
    data's content digest; never while the package has uncommitted changes (tracking/provenance.py).
    """
    root = project_root()
    # Empty values are left to the entry point's default: MLflow logs them shell-quoted ("''").
    params = {key: str(value) for key, value in parameters.items() if str(value) != ""}
    code = code_state()
    if reuse and code.uncommitted:
        log.warning("not reusing %s runs: the package has uncommitted changes (commit to reuse)", entry_point)
    elif reuse:
        found = find_finished_run(experiment_id, entry_point, params, code.digest, "")
        if found is not None:  # only a candidate is worth the data digest (it loads the dataset)
            data = expected_data_digest(entry_point, params)
            found = find_finished_run(experiment_id, entry_point, params, code.digest, data) if data else found
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


def chain_parameters(config: MainConfig, backbone: str = "") -> dict[str, dict[str, Any]]:
    """The parameters of each kind of child, from the chain config and its profile (epochs and
    learning rate for `backbone`)."""
    profile = config.settings
    data = {"data_dir": config.data_dir, "cache_dir": config.cache_dir, "max_beats": profile.max_beats}
    supervised = {
        "dataset": config.dataset,
        "split": config.split,
        "context": config.chosen("context"),
        "class_weight": config.chosen("class_weight"),
        "batch_size": profile.batch_size,
        "patience": profile.patience,
        "min_epochs": profile.min_epochs,
        "seed": config.seed,
        **data,
    }
    return {
        # Pretraining always reads MIT; on MIT it must use the same split so it never sees the test beats.
        "pretrain": {
            "epochs": profile.epochs("pretrain", backbone),
            "batch_size": profile.batch_size,
            "seed": config.seed,
            "split": config.split if config.dataset == PRETRAIN_DATASET else "intra",
            **data,
        },
        "transfer": {"epochs": profile.epochs("transfer", backbone), **profile.optimiser(backbone), **supervised},
        "ensemble": {"epochs": profile.ensemble_epochs, **supervised},
    }
