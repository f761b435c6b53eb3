"""Quiet by default: a step's stderr carries the error a user can act on, not TensorFlow's start-up chatter."""

from __future__ import annotations

import os
import subprocess
import sys

TF_NOISE = ("absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard")


def _run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    for name in ("TF_CPP_MIN_LOG_LEVEL", "ECG_VERBOSE"):
        env.pop(name, None)
    command = [sys.executable, "-m", "ecg_mlflow", *args, "evaluate", "models:/nope@current", "--database", "svdb"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_a_step_is_quiet_by_default_and_verbose_on_request(tmp_path) -> None:
    quiet = _run(tmp_path)
    assert quiet.returncode != 0
    assert "error: models:/nope@current is not in the Model Registry" in quiet.stderr
    assert not any(noise in quiet.stderr for noise in TF_NOISE), quiet.stderr
    verbose = _run(tmp_path, "--verbose")
    assert verbose.returncode != 0 and "is not in the Model Registry" in verbose.stderr
    assert any(noise in verbose.stderr for noise in TF_NOISE), verbose.stderr  # TensorFlow's own lines are back


def test_mlflow_advice_inside_its_own_catch_warnings_is_dropped_when_quiet() -> None:
    script = """
import warnings, mlflow
from ecg_mlflow import logs
logs.configure(verbose=False)
class Untyped(mlflow.pyfunc.PythonModel):  # MLflow advises type hints, inside catch_warnings("once")
    def predict(self, context, model_input, params=None):
        return model_input
warnings.warn("a warning a user can act on", UserWarning)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Add type hints" not in done.stderr and "a warning a user can act on" in done.stderr
