"""A temporary sqlite tracking store per test module, pointed at the synthetic MIT-BIH records."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, synthetic_mitdb):
    """Real MLflow on a temporary sqlite file; ECG_DATA_DIR at the synthetic records."""
    tmp = tmp_path_factory.mktemp("tracking")
    uri = f"sqlite:///{tmp}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("ECG_DATA_DIR", str(synthetic_mitdb))
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        mlflow.set_tracking_uri(uri)
        yield uri
        mlflow.set_tracking_uri(None)


@contextlib.contextmanager
def _tracking_store(folder: Path, data_dir: Path, experiment: str) -> Iterator[str]:
    uri = f"sqlite:///{folder}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("ECG_DATA_DIR", str(data_dir))
        patch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)  # a module fixture runs before the per-test reset
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(experiment)
        yield uri
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="session")
def tracking_store():
    """`with tracking_store(folder, data_dir, experiment) as uri:` real MLflow on a sqlite file in `folder`,
    ECG_DATA_DIR at `data_dir`, runs going to `experiment`: for module fixtures that run steps."""
    return _tracking_store
