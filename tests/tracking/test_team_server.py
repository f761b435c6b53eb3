"""`ecg-mlflow server start/stop`: PostgreSQL + an MLflow tracking server serving artefacts, for real.

The `main` chain runs against it (pretrain -> transfer by run ID through the served artefact
store, registry aliases, reuse of finished runs); tuning workers on its PostgreSQL are in
tests/tuning/test_workers.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from ecg_mlflow.tracking import server

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "ecg_mlflow", "server"]


def _exports(text: str) -> dict[str, str]:
    return dict(line.removeprefix("export ").split("=", 1) for line in text.splitlines() if line.startswith("export "))


@pytest.mark.slow
def test_start_prints_exports_and_the_data_survives_a_restart(tmp_path) -> None:
    try:
        server.postgres_bin()
    except server.ServerError as error:
        pytest.skip(str(error))
    folder = Path(tempfile.mkdtemp(prefix="ecg-team-restart-"))  # reachable by PostgreSQL's own user
    started = subprocess.run([*CLI, "start", "--dir", str(folder)], capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    exports = _exports(started.stdout)
    assert exports["MLFLOW_TRACKING_URI"].startswith("http://127.0.0.1:")
    assert exports["ECG_OPTUNA_STORAGE"].startswith("postgresql+psycopg://postgres:")
    try:
        mlflow.set_tracking_uri(exports["MLFLOW_TRACKING_URI"])
        mlflow.set_experiment("restart")
        (tmp_path / "note.txt").write_text("kept")
        with mlflow.start_run() as run:
            mlflow.log_metric("x", 1.0)
            mlflow.log_artifact(str(tmp_path / "note.txt"))
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # served, not a local path

        stopped = subprocess.run([*CLI, "stop", "--dir", str(folder)], capture_output=True, text=True, timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        assert server.running_state(folder) is None and not (folder / "pgdata" / "postmaster.pid").exists()
        again = subprocess.run([*CLI, "start", "--dir", str(folder)], capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        assert _exports(again.stdout) == exports  # same ports, same password

        kept = MlflowClient().get_run(run.info.run_id)
        assert kept.data.metrics["x"] == 1.0
        local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / "dl"))
        assert (Path(local) / "note.txt").read_text() == "kept"

        # A crash (both killed, stale postmaster.pid and server.json left), then a start with a relative --dir.
        postmaster = int((folder / "pgdata" / "postmaster.pid").read_text().split()[0])
        os.killpg(server.read_state(folder).mlflow_pid, signal.SIGKILL)
        os.kill(postmaster, signal.SIGKILL)
        time.sleep(1)
        assert server.running_state(folder) is None and (folder / "pgdata" / "postmaster.pid").exists()
        relative = [*CLI, "start", "--dir", folder.name]
        again = subprocess.run(relative, capture_output=True, text=True, timeout=300, cwd=folder.parent)
        assert again.returncode == 0, again.stderr
        assert _exports(again.stdout) == exports
        assert MlflowClient().get_run(run.info.run_id).data.metrics["x"] == 1.0
    finally:
        mlflow.set_tracking_uri(None)
        subprocess.run([*CLI, "stop", "--dir", str(folder)], capture_output=True, timeout=120)
    assert subprocess.run(["pgrep", "-f", str(folder)], capture_output=True).stdout == b""  # nothing left running
    shutil.rmtree(folder)


@pytest.mark.slow
def test_main_chain_runs_and_reuses_against_the_server(
    team_server, synthetic_mitdb, tmp_path, committed_package
) -> None:
    env = {**os.environ, **team_server, "ECG_DATA_DIR": str(synthetic_mitdb), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = [str(Path(sys.executable).parent / "mlflow"), "run", str(ROOT), "-e", "main", "--env-manager", "local"]
    command += ["--experiment-name", "team", "-P", "profile=quick", "-P", "backbones=mlp", "-P", "max_beats=100"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-4000:]
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-4000:]
    assert second.stderr.count("reusing FINISHED") == 4, second.stderr[-4000:]

    mlflow.set_tracking_uri(team_server["MLFLOW_TRACKING_URI"])
    try:
        client = MlflowClient()
        experiment = client.get_experiment_by_name("team")
        runs = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'")
        by_entry = {r.data.tags.get("mlflow.project.entryPoint"): r for r in runs}
        pretrain, transfer = by_entry["pretrain"], by_entry["transfer"]
        assert transfer.data.tags["ecg_mlflow.upstream_run_id"] == pretrain.info.run_id  # weights by run ID
        assert all(r.info.artifact_uri.startswith("mlflow-artifacts:") for r in runs)  # through the server
        alias = client.get_model_version_by_alias("ecg-ssl-mlp", "current")  # the registry on PostgreSQL
        assert alias.run_id == pretrain.info.run_id
        assert {r.info.status for r in client.search_runs([experiment.experiment_id])} == {"FINISHED"}
    finally:
        mlflow.set_tracking_uri(None)


def test_missing_postgresql_is_one_clear_line(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ECG_PG_BIN", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(server, "SYSTEM_PG_GLOB", str(tmp_path / "none" / "*" / "bin"))
    with pytest.raises(server.ServerError, match=r"PostgreSQL is not installed: install it \(Debian/Ubuntu"):
        server.postgres_bin()


def test_env_without_a_running_server_says_how_to_start_one(tmp_path) -> None:
    result = subprocess.run([*CLI, "env", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert f"no server is running in {tmp_path}; start one with: ecg-mlflow server start --dir" in result.stderr
    stopped = subprocess.run([*CLI, "stop", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0 and "no server was running" in stopped.stderr


def test_a_stale_postmaster_pid_is_removed_not_stopped(tmp_path) -> None:
    """A crash's postmaster.pid names a pid now gone, or another program's (here: this Python): no pg_ctl is run."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for pid in (int(gone.stdout), os.getpid()):
        (tmp_path / "pgdata").mkdir(exist_ok=True)
        (tmp_path / "pgdata" / "postmaster.pid").write_text(f"{pid}\n")
        (tmp_path / "pgdata" / ".s.PGSQL.5432.lock").write_text("")
        server.stop_postgres(tmp_path, None)
        assert list((tmp_path / "pgdata").iterdir()) == []


def test_stopping_a_process_group_ends_it_and_kills_what_ignores_sigterm() -> None:
    ignoring = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    leader = subprocess.Popen([sys.executable, "-c", ignoring], start_new_session=True)
    time.sleep(0.5)  # its handler is set
    start = time.monotonic()
    server._stop_process_group(leader.pid, timeout=1.0)
    assert leader.wait(timeout=5) == -signal.SIGKILL and time.monotonic() - start < 5
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    start = time.monotonic()
    server._stop_process_group(polite.pid)
    assert server.pid_is_dead(polite.pid) and time.monotonic() - start < 5  # ended by SIGTERM (maybe reaped too)
    polite.wait(timeout=5)
