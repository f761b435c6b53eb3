"""The `main` chain: the whole study for one dataset in one command.

pretrain (per backbone) -> transfer (per backbone, from that pretrain run) and the
scratch baselines -> ensemble of the transfer runs. Each child is an `mlflow run`
of this project's own entry point in the current environment (env_manager=local),
and a FINISHED run with the same entry point, parameters and git commit is reused
instead of run again, as in MLflow's multistep workflow example.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient
from mlflow.utils.git_utils import get_git_commit
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_PARENT_RUN_ID, MLFLOW_PROJECT_ENTRY_POINT

from ecg_mlflow.config import PRETRAIN_DATASET, MainConfig
from ecg_mlflow.errors import UserError
from ecg_mlflow.params import flatten_config
from ecg_mlflow.steps.progress import Progress
from ecg_mlflow.steps.supervised import LEARNED_NOTHING_TAG
from ecg_mlflow.tracking.runs import experiment_name, step_run

log = logging.getLogger(__name__)

STEP = "main"
# The paper's Tables 1 (supervised from scratch) and 2 (with representation learning), test accuracy.
PAPER_ACCURACY: dict[str, dict[str, dict[str, float]]] = {
    "mit": {
        "scratch": {"mlp": 0.9038, "cnn": 0.9228, "lstm": 0.8725},
        "pretrained": {"mlp": 0.8718, "cnn": 0.9269, "lstm": 0.9216, "ensemble": 0.9301},
    },
    "ptb": {
        "scratch": {"mlp": 0.9168, "cnn": 0.9746, "lstm": 0.8385},
        "pretrained": {"mlp": 0.8914, "cnn": 0.9801, "lstm": 0.9704, "ensemble": 0.9849},
    },
}


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


def chain_parameters(config: MainConfig, backbone: str = "") -> dict[str, dict[str, Any]]:
    """The parameters of each kind of child, from the chain config and its profile (epochs and
    learning rate for `backbone`)."""
    profile = config.settings
    data = {"data_dir": config.data_dir, "cache_dir": config.cache_dir, "max_beats": profile.max_beats}
    supervised = {
        "dataset": config.dataset,
        "split": config.split,
        "context": config.context,
        "class_weight": config.class_weight,
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


def parent_metric(child: str, name: str) -> str:
    """A child's figure as a parent metric: ("pretrained/cnn", "test_accuracy") -> pretrained_cnn_test_accuracy."""
    return f"{child.replace('/', '_')}_{name}"


def run_main(config: MainConfig, *, reuse: bool = True) -> MainResult:
    params = chain_parameters(config)
    result = MainResult()
    run_name = f"main-{config.dataset}-{config.profile}"
    with step_run(
        STEP, flatten_config(config), run_name=run_name, experiment=experiment_name(config.dataset)
    ) as parent:
        experiment_id, parent_id = parent.info.experiment_id, parent.info.run_id
        result.run_id = parent_id

        progress = Progress(total=3 * len(config.backbones) + 1)

        def child(key: str, entry_point: str, extra: dict[str, Any]) -> Run:
            progress.begin(f"{entry_point} {key.split('/')[-1]}" if entry_point != "ensemble" else "ensemble")
            run, reused = run_entry_point(
                entry_point, extra, experiment_id=experiment_id, parent_run_id=parent_id, reuse=reuse
            )
            seconds = progress.end(reused)
            if not reused:  # the parent shows where the time went, step by step
                mlflow.log_metric(parent_metric(key, "wall_s"), round(seconds, 1))
            result.run_ids[key], result.reused[key] = run.info.run_id, reused
            result.metrics[key] = dict(run.data.metrics)
            result.learned_nothing[key] = run.data.tags.get(LEARNED_NOTHING_TAG) == "true"
            return run

        transfer_ids = []
        for backbone in config.backbones:
            own = chain_parameters(config, backbone)
            pretrain = child(f"pretrain/{backbone}", "pretrain", {"backbone": backbone, **own["pretrain"]})
            transfer = child(
                f"pretrained/{backbone}",
                "transfer",
                {"backbone": backbone, "pretrain_run_id": pretrain.info.run_id, **own["transfer"]},
            )
            transfer_ids.append(transfer.info.run_id)
            child(f"scratch/{backbone}", "baseline", {"backbone": backbone, **own["transfer"]})
        child(
            "pretrained/ensemble",
            "ensemble",
            {"members": ",".join(config.backbones), "run_ids": ",".join(transfer_ids), **params["ensemble"]},
        )
        mlflow.set_tags({f"ecg_mlflow.child.{key}": run_id for key, run_id in result.run_ids.items()})
        result.table = results_table(config, result)
        log.info("main: %s", progress.summary())
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "results.md").write_text(result.table)
            (folder / "results.json").write_text(
                json.dumps({"run_ids": result.run_ids, "reused": result.reused, "metrics": result.metrics}, indent=2)
            )
            mlflow.log_artifacts(str(folder), "results")
        for key, metrics in result.metrics.items():
            for name in ("test_accuracy", "test_macro_f1"):
                if name in metrics:
                    mlflow.log_metric(parent_metric(key, name), metrics[name])
    return result


# AAMI EC57 columns, shown when the runs logged them (MIT-BIH): the figures patient-wise papers report.
EC57_COLUMNS: dict[str, str] = {
    "test_macro_f1_nsv": "macro-F1 (N,S,V)",
    "test_se_S": "S Se",
    "test_ppv_S": "S +P",
    "test_se_V": "V Se",
    "test_ppv_V": "V +P",
}


def results_table(config: MainConfig, result: MainResult) -> str:
    """Tables 1 and 2 of the paper in one: ours (accuracy, macro-F1, EC57) beside the paper's accuracy.

    A row whose run learned nothing (no better than always answering the majority class) says so.
    """
    paper = PAPER_ACCURACY[config.dataset]
    ec57 = [name for name in EC57_COLUMNS if any(name in m for m in result.metrics.values())]
    header = ["model", "init", "test accuracy", "test macro-F1", *(EC57_COLUMNS[n] for n in ec57), "paper accuracy"]
    lines = [
        f"## {config.dataset.upper()} ({config.split} split, context={config.context}, profile={config.profile})",
        "",
        "| " + " | ".join([*header, "run", "note"]) + " |",
        "| --- " * (len(header) + 2) + "|",
    ]
    for backbone in (*config.backbones, "ensemble"):
        for init in ("scratch", "pretrained"):
            key = f"{init}/{backbone}"
            if key not in result.metrics:
                continue
            metrics = result.metrics[key]
            cells = [backbone, init, *(_pct(metrics.get(n)) for n in ("test_accuracy", "test_macro_f1", *ec57))]
            note = "**learned nothing** (no better than the majority class)" if result.learned_nothing.get(key) else ""
            cells += [_pct(paper[init].get(backbone)), result.run_ids[key][:8], note]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"
