"""Several `tune` worker processes on one study, and a worker killed with SIGKILL mid-trial.

The workers are real processes running the real study runner (tests/tuning/worker.py) with the
small toy objective, on a journal file and on an SQLite RDB storage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from ecg_mlflow.tuning.runner import run_study
from ecg_mlflow.tuning.storage import open_storage
from ecg_mlflow.tuning.study_files import load_study_file

from .helpers import runs_of, write_study
from .toy_objective import evaluate

WORKER = Path(__file__).with_name("worker.py")
REPO = Path(__file__).resolve().parents[2]


def start_worker(study_file: Path, storage: str, n_trials: int, tracking: str, **env: str) -> subprocess.Popen:
    environ = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(study_file), storage, str(n_trials), tracking],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


KINDS = ["journal", "sqlite", "postgresql"]


@pytest.fixture
def storage_for(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """kind -> a storage URL; postgresql is the team server's, whose MLflow server then tracks the runs too."""

    def storage(kind: str) -> tuple[str, str]:
        if kind != "postgresql":
            tracking = request.getfixturevalue("tracking")
            return {"journal": f"journal:///{tmp_path}/study.log", "sqlite": f"sqlite:///{tmp_path}/optuna.db"}[
                kind
            ], tracking
        exports = request.getfixturevalue("team_server")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", exports["MLFLOW_TRACKING_URI"])
        mlflow.set_tracking_uri(exports["MLFLOW_TRACKING_URI"])
        return exports["ECG_OPTUNA_STORAGE"], exports["MLFLOW_TRACKING_URI"]

    yield storage
    mlflow.set_tracking_uri(None)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_two_workers_finish_n_trials_between_them(tmp_path, storage_for, kind):
    storage, tracking = storage_for(kind)
    study_file = write_study(tmp_path, f"parallel-{kind}")
    n = 8
    workers = [start_worker(study_file, storage, n, tracking, TOY_SLEEP="0.4") for _ in range(2)]
    outputs = []
    for worker in workers:
        out, _ = worker.communicate(timeout=300)
        outputs.append(out)
        assert worker.returncode == 0, out
    done = [line for out in outputs for line in out.splitlines() if line.startswith("WORKER-DONE")]
    per_worker = [eval(line.split(" ", 1)[1]) for line in done]
    assert all(per_worker), f"both workers should have run trials: {per_worker}"

    study = optuna.load_study(study_name=f"parallel-{kind}", storage=open_storage(storage).storage)
    assert sorted(t.number for t in study.trials) == list(range(n))  # none lost, none extra
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert sorted(n for numbers in per_worker for n in numbers) == list(range(n))  # none run twice
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == n  # the workers did not sample the same points

    trial_runs = runs_of(f"parallel-{kind}", "trial")
    assert sorted(int(r.data.tags["optuna.trial_number"]) for r in trial_runs) == list(range(n))
    parents = {r.info.run_id for r in runs_of(f"parallel-{kind}", "tune")}
    assert len(parents) == 2 and {r.data.tags["mlflow.parentRunId"] for r in trial_runs} == parents


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_sigkilled_worker_leaves_a_failed_trial_and_the_study_resumes(tmp_path, storage_for, kind):
    storage, tracking = storage_for(kind)
    name = f"killed-{kind}"
    study_file = write_study(tmp_path, name)
    marker = tmp_path / "hang-2"
    worker = start_worker(study_file, storage, 4, tracking, TOY_HANG_TRIAL="2", TOY_MARKER_DIR=str(tmp_path))
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert worker.poll() is None, worker.communicate()[0]
        assert time.monotonic() < deadline, "the worker never reached trial 2"
        time.sleep(0.2)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)

    handle = open_storage(storage)
    study = optuna.load_study(study_name=name, storage=handle.storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.RUNNING]
    assert {r.info.status for r in runs_of(name)} == {"FINISHED", "RUNNING"}

    # Resume in this process: the broken trial is failed at once (its worker is gone), the rest kept.
    summary = run_study(load_study_file(study_file), n_trials=4, storage=storage, evaluate=evaluate)
    assert summary.recovered == [2]
    assert [t.number for t in summary.trials] == [3]
    study = optuna.load_study(study_name=name, storage=handle.storage)
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.COMPLETE,
    ]
    assert "no longer running" in study.trials[2].user_attrs["fail_reason"]

    runs = runs_of(name)
    assert "RUNNING" not in {r.info.status for r in runs}
    trial_runs = {int(r.data.tags["optuna.trial_number"]): r for r in runs if r.data.tags["ecg_mlflow.kind"] == "trial"}
    assert trial_runs[2].info.status == "FAILED" and trial_runs[2].data.tags["optuna.state"] == "FAIL"
    assert {trial_runs[i].info.status for i in (0, 1, 3)} == {"FINISHED"}
    killed_parent = trial_runs[2].data.tags["mlflow.parentRunId"]
    assert {r.info.status for r in runs if r.info.run_id == killed_parent} == {"FAILED"}
