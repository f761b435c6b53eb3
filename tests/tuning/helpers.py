"""Shared bits of the tuning tests: a toy study file and MLflow queries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import yaml

TOY_STUDY: dict[str, Any] = {
    "steps": ["transfer"],
    "objective": {"metric": "best_val_macro_f1", "monitor": "val_macro_f1", "direction": "maximize"},
    "sampler": {"type": "tpe", "seed": 3, "n_startup_trials": 2},
    "pruner": {"type": "none"},
    "fixed": {"backbone": "cnn", "epochs": 1},
    "search_space": {
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
    },
}


def write_study(directory: Path, name: str, **changes: Any) -> Path:
    raw = {**TOY_STUDY, "name": name, **changes}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def runs_of(study_name: str, kind: str | None = None) -> list[mlflow.entities.Run]:
    client = mlflow.MlflowClient()
    ids = [e.experiment_id for e in client.search_experiments()]
    query = f"tags.`optuna.study_name` = '{study_name}'"
    if kind:
        query += f" and tags.`ecg_mlflow.kind` = '{kind}'"
    return client.search_runs(ids, filter_string=query, max_results=1000)
