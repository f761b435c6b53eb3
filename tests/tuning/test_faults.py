"""A team server's faults mid-study (issue 29), on a real PostgreSQL and a real MLflow server of the test's own.

Three toy workers (tests/tuning/worker.py: the real runner, the toy objective) share a study of N trials while the
test kills the tracking server with SIGKILL and starts it again with `server start`, or stops PostgreSQL for longer
than the grace period and starts it again. The study must end with exactly N COMPLETE trials, each with one FINISHED
MLflow run, no run RUNNING, no traceback, and at most one line per server and outage in a worker's output. Past the
outage limit a worker stops with one line naming the lost server, its trial is FAIL, and the same command resumes.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from ecg_mlflow.tracking import server
from ecg_mlflow.tuning.storage import open_storage

from .helpers import runs_of, write_study
from .test_workers import start_worker

N_TRIALS, WORKERS = 9, 3
TOY = {"TOY_SLEEP": "1.5", "TOY_HEARTBEAT": "1", "TOY_GRACE": "5"}  # a trial: 3 epochs of 1.5 s
DOWNTIME = 16.0  # s: longer than the grace period, so a trial's heartbeat looks stale when the database is back
AWAY_LINE = " is away"


@pytest.fixture
def own_server(own_team_server) -> Iterator[tuple[Path, dict[str, str]]]:
    """A team server only this test kills and restarts (the session's shared one stays up for the others)."""
    mlflow.set_tracking_uri(own_team_server[1]["MLFLOW_TRACKING_URI"])
    yield own_team_server
    mlflow.set_tracking_uri(None)


def kill_tracking_server(folder: Path) -> None:
    """SIGKILL to the tracking server's process group: nothing of it can clean up."""
    os.killpg(server.read_state(folder).mlflow_pid, signal.SIGKILL)


def kill_and_restart_tracking_server(folder: Path) -> None:
    kill_tracking_server(folder)
    time.sleep(DOWNTIME)
    server.start(folder)  # what a user types; it restarts PostgreSQL too


def restart_postgresql(folder: Path) -> None:
    state, user = server.read_state(folder), server.service_user()
    server.stop_postgres(folder, user)
    time.sleep(DOWNTIME)
    server.start_postgres(folder, state.host, state.pg_port, user)


def _study(name: str, storage: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(storage).storage)


def _start_workers(tmp_path: Path, name: str, exports: dict[str, str], **env: str) -> list[subprocess.Popen]:
    study_file = write_study(tmp_path, name)
    storage, tracking = exports["ECG_OPTUNA_STORAGE"], exports["MLFLOW_TRACKING_URI"]
    return [start_worker(study_file, storage, N_TRIALS, tracking, **TOY, **env) for _ in range(WORKERS)]


def _wait_mid_study(name: str, storage: str, workers: list[subprocess.Popen]) -> None:
    """Until one trial is COMPLETE and another RUNNING: the fault then hits a trial at work."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert all(w.poll() is None for w in workers), [w.communicate()[0][-2000:] for w in workers]
        try:
            states = [t.state for t in _study(name, storage).trials]
        except KeyError:  # the study is not created yet
            states = []
        if TrialState.COMPLETE in states and TrialState.RUNNING in states:
            return
        time.sleep(0.5)
    pytest.fail("the workers never got mid-study")


def _outputs(workers: list[subprocess.Popen]) -> list[tuple[int, str]]:
    return [(w.wait(timeout=400), w.communicate()[0]) for w in workers]


def _assert_no_run_left_running(name: str) -> list[mlflow.entities.Run]:
    runs = runs_of(name)
    assert "RUNNING" not in {r.info.status for r in runs}, [(r.data.tags, r.info.status) for r in runs]
    return [r for r in runs if r.data.tags.get("ecg_mlflow.kind") == "trial"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault", [kill_and_restart_tracking_server, restart_postgresql], ids=["tracking-server-sigkill", "postgresql"]
)
def test_workers_wait_out_the_outage_and_finish_exactly_n_trials(
    fault: Callable[[Path], None], own_server, tmp_path
) -> None:
    folder, exports = own_server
    name = f"fault-{fault.__name__}"
    workers = _start_workers(tmp_path, name, exports)
    _wait_mid_study(name, exports["ECG_OPTUNA_STORAGE"], workers)
    fault(folder)
    outputs = _outputs(workers)

    for code, output in outputs:
        assert code == 0 and "Traceback" not in output, output[-4000:]
        assert output.count(AWAY_LINE) <= 2, output  # one line per server (Optuna storage, MLflow) and outage
    assert any(AWAY_LINE in output for _, output in outputs), [o[-1500:] for _, o in outputs]
    trials = _study(name, exports["ECG_OPTUNA_STORAGE"]).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * N_TRIALS, [t.user_attrs for t in trials]
    finished = collections.Counter(
        int(r.data.tags["optuna.trial_number"])
        for r in _assert_no_run_left_running(name)
        if r.info.status == "FINISHED"
    )
    assert finished == dict.fromkeys(range(N_TRIALS), 1)


@pytest.mark.slow
def test_past_the_outage_limit_a_worker_stops_in_one_line_and_the_same_command_resumes(own_server, tmp_path) -> None:
    folder, exports = own_server
    name, storage = "fault-past-the-limit", exports["ECG_OPTUNA_STORAGE"]
    workers = _start_workers(tmp_path, name, exports, TOY_OUTAGE_LIMIT="6")
    _wait_mid_study(name, storage, workers)
    kill_tracking_server(folder)  # and it stays away
    tracking = exports["MLFLOW_TRACKING_URI"]
    for code, output in _outputs(workers):
        assert code == 1 and "Traceback" not in output, output[-4000:]
        lost = [line for line in output.splitlines() if line.startswith("error: ")]
        assert lost == [
            f"error: lost the MLflow tracking server {tracking}: away for more than 6 s; when it is back, start the "
            "same `ecg-mlflow tune run` command again: the study resumes where it stopped"
        ], output[-3000:]
    assert TrialState.RUNNING not in {t.state for t in _study(name, storage).trials}  # failed, not left RUNNING

    server.start(folder)
    resumed = start_worker(write_study(tmp_path, name), storage, N_TRIALS, tracking, **TOY)
    code, output = _outputs([resumed])[0]
    assert code == 0 and "Traceback" not in output, output[-3000:]
    trials = _study(name, storage).trials
    assert len(trials) == N_TRIALS and TrialState.COMPLETE in {t.state for t in trials}
    trial_runs = _assert_no_run_left_running(name)
    for trial in trials:
        statuses = [r.info.status for r in trial_runs if r.data.tags["optuna.trial_number"] == str(trial.number)]
        # A trial the lost server cut off before its run was created has none (the server was away to create it).
        expected = [["FINISHED"]] if trial.state == TrialState.COMPLETE else [["FAILED"], []]
        assert statuses in expected, (trial.number, statuses)


@pytest.mark.slow
def test_a_lost_optuna_storage_stops_the_workers_in_one_line_and_the_next_worker_fails_their_trials(
    own_server, tmp_path
) -> None:
    folder, exports = own_server
    name, storage = "fault-storage-lost", exports["ECG_OPTUNA_STORAGE"]
    workers = _start_workers(tmp_path, name, exports, TOY_OUTAGE_LIMIT="6")
    _wait_mid_study(name, storage, workers)
    state, user = server.read_state(folder), server.service_user()
    server.stop_postgres(folder, user)  # and it stays away
    outputs = _outputs(workers)
    for code, output in outputs:
        assert code == 1 and "Traceback" not in output, output[-4000:]
        lost = [line for line in output.splitlines() if line.startswith("error: ")]
        assert len(lost) == 1 and lost[0].startswith(
            "error: lost the Optuna storage postgresql+psycopg://postgres:***@"
        )
        assert "away for more than 6 s" in lost[0] and lost[0].endswith("the study resumes where it stopped")

    server.start_postgres(folder, state.host, state.pg_port, user)
    resumed = start_worker(write_study(tmp_path, name), storage, N_TRIALS, exports["MLFLOW_TRACKING_URI"], **TOY)
    code, output = _outputs([resumed])[0]
    assert code == 0 and "Traceback" not in output, output[-3000:]
    trials = _study(name, storage).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(trials) == N_TRIALS and not {TrialState.RUNNING, TrialState.WAITING} & {t.state for t in trials}
    # The trials the workers were running when they stopped: failed by the next worker at once (their processes are
    # gone, or their heartbeats are older than the grace period), not left RUNNING.
    assert 1 <= len(failed) <= WORKERS
    _assert_no_run_left_running(name)
