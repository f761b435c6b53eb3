"""The user's command exactly as typed: `mlflow run . -e transfer -P dataset=mit`, no --env-manager.

MLflow then builds the project's virtualenv from python_env.yaml (pyenv's Python 3.11.7 and the
package index; about 70 s the first time, reused after) and runs the step in it. Only the data
and the tracking store come from the environment (ECG_DATA_DIR: a tiny synthetic MIT-BIH).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("pyenv") is None, reason="MLflow's virtualenv manager needs pyenv"),
]


def test_mlflow_run_as_typed_builds_the_environment_and_trains(tmp_path, synthetic_mitdb, monkeypatch) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "ECG_DATA_DIR": str(synthetic_mitdb)}
    env.update(ECG_CACHE_DIR=str(tmp_path / "cache"), PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}")
    env.pop("MLFLOW_RUN_ID", None)
    done = subprocess.run(
        ["mlflow", "run", ".", "-e", "transfer", "-P", "dataset=mit"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(uri)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`mlflow.project.entryPoint` = 'transfer'"
    )
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.project.env"] == "virtualenv"  # not conda, not local
    assert run.info.run_name == "transfer-cnn-pretrained"
    assert client.get_model_version_by_alias("ecg-mit-cnn", "current").run_id == run.info.run_id
