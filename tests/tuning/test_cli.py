"""`ecg-mlflow tune`: --help everywhere, clear errors without tracebacks, list/show/best, the dashboard."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ecg_mlflow.cli.tune import app
from ecg_mlflow.tuning.runner import run_study
from ecg_mlflow.tuning.study_files import load_study_file

from .helpers import write_study
from .toy_objective import evaluate

REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("command", [[], ["run"], ["list"], ["show"], ["best"], ["dashboard"]])
def test_every_command_has_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_run_help_explains_n_trials_and_storage():
    text = " ".join(invoke("run", "--help").output.split())
    assert "TOTAL" in text and "journal" in text and "SQLite locks" in text
    assert "--outage-limit" in text and "ECG_OUTAGE_LIMIT" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "studies/nope.yaml", "--n-trials", "1"], "no such study file"),
        (["run", "studies/cnn.yaml", "--n-trials", "1", "--set", "nois_std=0.1"], "nois_std"),
        (["run", "studies/cnn.yaml", "--n-trials", "1", "--set", "dropout=2"], "dropout"),
        (["run", "studies/cnn.yaml", "--n-trials", "1", "--storage", "not-a-url"], "not a URL"),
        (["run", "studies/cnn.yaml", "--n-trials", "1", "--outage-limit", "5000"], "at most 1080 s"),
    ],
)
def test_errors_are_one_clear_line(args, message, monkeypatch):
    monkeypatch.chdir(REPO)
    result = invoke(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_study_file_names_the_key(tmp_path):
    path = write_study(tmp_path, "bad", search_space={"dropout": {"type": "float", "low": 0.6, "high": 0.1}})
    result = invoke("run", str(path), "--n-trials", "1", "--storage", f"journal:///{tmp_path}/j.log")
    assert result.exit_code == 2 and "search_space.dropout" in result.output


def test_list_show_best_on_a_toy_study(tmp_path, tracking):
    storage = f"journal:///{tmp_path}/j.log"
    run_study(load_study_file(write_study(tmp_path, "shown")), n_trials=4, storage=storage, evaluate=evaluate)
    listing = invoke("list", "--storage", storage)
    assert listing.exit_code == 0 and "shown" in listing.output
    shown = invoke("show", "shown", "--storage", storage)
    assert shown.exit_code == 0, shown.output
    assert "best: trial" in shown.output and "parameter importances" in shown.output
    assert "learning_rate" in shown.output
    best = invoke("best", "shown", "--storage", storage)
    assert best.exit_code == 0 and "--learning-rate" in best.output
    missing = invoke("show", "nope", "--storage", storage)
    assert missing.exit_code == 1 and "no study 'nope'" in missing.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_dashboard_serves_on_localhost(tmp_path, tracking):
    storage = f"journal:///{tmp_path}/j.log"
    run_study(load_study_file(write_study(tmp_path, "dash")), n_trials=1, storage=storage, evaluate=evaluate)
    port = free_port()
    code = (
        "import sys; from ecg_mlflow.cli.tune import app; "
        "app(['dashboard', '--storage', sys.argv[1], '--port', sys.argv[2]])"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", code, storage, str(port)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.stdout.read().decode()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the dashboard did not answer"
                time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10) as response:
            assert b"dash" in response.read()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_workers_refuse_a_sqlite_storage(tmp_path):
    result = invoke("run", str(REPO / "studies" / "cnn.yaml"), "--n-trials", "2", "--workers", "2",
                    "--storage", f"sqlite:///{tmp_path}/optuna.db")  # fmt: skip
    assert result.exit_code == 2 and "--workers 2 needs a storage several processes can share" in result.output


@pytest.mark.slow
def test_workers_share_one_study_on_postgresql(team_server, synthetic_mitdb, tmp_path):
    """`tune run --workers 2` against the team server: 4 trials in total, run by two processes."""
    import optuna

    from ecg_mlflow.tuning.storage import open_storage

    env = {**os.environ, **team_server, "ECG_DATA_DIR": str(synthetic_mitdb), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "ecg_mlflow", "tune", "run", str(REPO / "studies" / "mlp.yaml"), "--n-trials", "4",
               "--workers", "2", "--study-name", "cli-workers", "--set", "max_beats=100", "--set", "epochs=1",
               "--set", "init=scratch"]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.count("study 'cli-workers'") == 2  # each worker's summary (storage from the env)
    study = optuna.load_study(study_name="cli-workers", storage=open_storage(team_server["ECG_OPTUNA_STORAGE"]).storage)
    reasons = [t.user_attrs.get("fail_reason") for t in study.trials if t.state.name != "COMPLETE"]
    assert len(study.trials) == 4 and not reasons, (reasons, result.stdout[-3000:])
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2
