"""The team server's authentication (ecg_mlflow/tracking/auth.py), against a real server with `--auth`.

No mocks for the server: PostgreSQL and `mlflow server --app-name basic-auth` run for real, and
the clients are MLflow's own, signed in through MLFLOW_TRACKING_USERNAME/PASSWORD as a colleague's
would be. The fast tests cover the credentials writer and the setup without a server.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ecg_mlflow.errors import UsageError
from ecg_mlflow.processes import process_identity
from ecg_mlflow.tracking import auth, server

CLI = [sys.executable, "-m", "ecg_mlflow", "server"]


def _exports(text: str) -> dict[str, str]:
    return dict(line.removeprefix("export ").split("=", 1) for line in text.splitlines() if line.startswith("export "))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_prepare_creates_the_admin_once_and_keeps_it(tmp_path) -> None:
    environment = auth.prepare(tmp_path)
    credentials = tmp_path / "auth" / "credentials"
    first = credentials.read_text()
    assert _mode(tmp_path / "auth") == 0o700 and _mode(credentials) == 0o600
    assert _mode(tmp_path / "auth" / "basic_auth.ini") == 0o600
    admin = json.loads(first)["users"]["admin"]
    assert environment["MLFLOW_AUTH_ADMIN_PASSWORD"] == admin["password"] and len(admin["password"]) >= 12
    assert environment["MLFLOW_AUTH_CONFIG_PATH"] == str(tmp_path / "auth" / "basic_auth.ini")
    ini = (tmp_path / "auth" / "basic_auth.ini").read_text()
    assert "default_permission = READ" in ini and "admin_username = admin" in ini
    assert f"database_uri = sqlite:///{tmp_path.resolve()}/auth/users.db" in ini
    assert admin["password"] not in ini  # the one copy is in credentials

    assert auth.prepare(tmp_path) == environment  # a second start: nothing regenerated
    assert credentials.read_text() == first
    assert auth.login(tmp_path) == ("admin", admin["password"], False)


def test_lost_credentials_with_existing_users_is_one_clear_line(tmp_path) -> None:
    (tmp_path / "auth").mkdir()
    (tmp_path / "auth" / "users.db").write_bytes(b"")
    with pytest.raises(
        auth.AuthError, match=r"credentials is missing but .*users.db exists: the admin password is lost"
    ):
        auth.prepare(tmp_path)


def test_auth_is_on_beyond_loopback_on_request_or_once_users_exist(tmp_path) -> None:
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1"):
        assert not auth.wanted(tmp_path, host, requested=False), host
    for host in ("0.0.0.0", "", "192.168.1.10", "ecg.example.org", "::"):
        assert auth.wanted(tmp_path, host, requested=False), host
    assert auth.wanted(tmp_path, "127.0.0.1", requested=True)
    auth.prepare(tmp_path)
    assert auth.wanted(tmp_path, "127.0.0.1", requested=False)  # a restart never quietly opens it again


def test_user_add_needs_a_good_name_and_an_authenticating_server(tmp_path) -> None:
    with pytest.raises(UsageError, match=r"user name 'a b' cannot be used: 1-64 letters"):
        auth.add_user(tmp_path, None, "a b", read_only=False)
    with pytest.raises(UsageError, match="user name 'admin' cannot be used"):
        auth.add_user(tmp_path, None, "admin", read_only=False)
    with pytest.raises(
        auth.AuthError, match=r"no server is running in .*; start it with: ecg-mlflow server start --auth"
    ):
        auth.add_user(tmp_path, None, "alice", read_only=False)
    open_server = server.ServerState("127.0.0.1", 1, 2, 3, auth=False)
    with pytest.raises(auth.AuthError, match="the server runs without authentication in"):
        auth.add_user(tmp_path, open_server, "alice", read_only=False)


def test_asking_a_running_open_server_for_auth_is_one_clear_line(tmp_path) -> None:
    # server.json naming a live process (this one) that serves without authentication
    state = server.ServerState("127.0.0.1", 1, 2, os.getpid(), process_identity(os.getpid()))
    (tmp_path / server.STATE_FILE).write_text(json.dumps(dataclasses.asdict(state)))
    with pytest.raises(server.ServerError, match=r"runs without authentication; stop it \(ecg-mlflow server stop"):
        server.start(tmp_path, with_auth=True)
    with pytest.raises(
        server.ServerError, match=r"runs without authentication, so has no users; restart it with --auth"
    ):
        server.export_lines(tmp_path, "alice")
    (tmp_path / "credentials").write_text("pw\n")  # the database's password
    assert set(_exports(server.export_lines(tmp_path))) == {"MLFLOW_TRACKING_URI", "ECG_OPTUNA_STORAGE"}  # as before


@pytest.fixture(scope="module")
def auth_server() -> Iterator[tuple[Path, dict[str, str]]]:
    """`ecg-mlflow server start --auth` in a fresh folder; yields it and the admin's exports."""
    try:
        server.postgres_bin()
    except server.ServerError as error:
        pytest.skip(str(error))
    folder = Path(tempfile.mkdtemp(prefix="ecg-team-auth-"))  # reachable by PostgreSQL's own user under root
    try:
        started = subprocess.run(
            [*CLI, "start", "--dir", str(folder), "--auth"], capture_output=True, text=True, timeout=300
        )
        assert started.returncode == 0, started.stderr
        yield folder, _exports(started.stdout)
    finally:
        subprocess.run([*CLI, "stop", "--dir", str(folder)], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def _status(url: str, user: str | None = None, password: str = "") -> int:
    request = urllib.request.Request(url)
    if user is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.slow
def test_no_one_gets_in_without_a_password(auth_server) -> None:
    folder, admin = auth_server
    uri = admin["MLFLOW_TRACKING_URI"]
    search = f"{uri}/api/2.0/mlflow/experiments/search?max_results=1"
    assert _status(search) == 401
    assert _status(search, "admin", "not-the-password") == 401
    assert _status(search, "admin", admin["MLFLOW_TRACKING_PASSWORD"]) == 200
    assert _status(f"{uri}/health") == 200  # only the health check is open

    credentials = folder / "auth" / "credentials"
    assert _mode(credentials) == 0o600 and _mode(folder / "auth") == 0o700
    assert json.loads(credentials.read_text())["users"]["admin"]["password"] == admin["MLFLOW_TRACKING_PASSWORD"]
    assert admin["MLFLOW_TRACKING_USERNAME"] == "admin" and admin["ECG_OPTUNA_STORAGE"].startswith("postgresql+")
    assert server.start(folder).auth  # started again without --auth: finds it running, with auth
    again = subprocess.run([*CLI, "env", "--dir", str(folder)], capture_output=True, text=True, timeout=120)
    assert _exports(again.stdout) == admin  # nothing regenerated


def _sign_in(monkeypatch, exports: dict[str, str]) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", exports["MLFLOW_TRACKING_USERNAME"])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", exports["MLFLOW_TRACKING_PASSWORD"])
    return MlflowClient(tracking_uri=exports["MLFLOW_TRACKING_URI"])


@pytest.mark.slow
def test_a_member_writes_and_a_read_only_user_only_reads(auth_server, monkeypatch, tmp_path) -> None:
    folder, admin = auth_server
    added = subprocess.run(
        [*CLI, "user", "add", "alice", "--dir", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert added.returncode == 0, added.stderr
    alice = _exports(added.stdout)
    assert alice["MLFLOW_TRACKING_USERNAME"] == "alice" and "ECG_OPTUNA_STORAGE" in alice
    added = subprocess.run(
        [*CLI, "user", "add", "viewer", "--read-only", "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr
    viewer = _exports(added.stdout)
    assert "ECG_OPTUNA_STORAGE" not in viewer  # its URL would carry the database's own password
    listed = subprocess.run([*CLI, "env", "--dir", str(folder), "--user", "viewer"], capture_output=True, text=True)
    assert _exports(listed.stdout) == viewer  # the same lines again, from credentials
    twice = subprocess.run([*CLI, "user", "add", "alice", "--dir", str(folder)], capture_output=True, text=True)
    assert twice.returncode == 1 and twice.stdout == ""
    assert twice.stderr.strip().splitlines() == [
        f"error: user 'alice' already exists; its exports: ecg-mlflow server env --dir {folder} --user alice"
    ]

    client = _sign_in(monkeypatch, admin)  # the admin's experiment and model
    experiment = client.create_experiment("shared")
    client.create_registered_model("shared-model")

    client = _sign_in(monkeypatch, alice)  # a member writes into them
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "f1", 0.5)
    (tmp_path / "note.txt").write_text("from alice")
    client.log_artifact(run.info.run_id, str(tmp_path / "note.txt"))
    client.set_terminated(run.info.run_id)
    client.set_registered_model_tag("shared-model", "owner", "alice")
    version = client.create_model_version("shared-model", run.info.artifact_uri, run_id=run.info.run_id)
    client.set_registered_model_alias("shared-model", "current", version.version)
    assert client.get_run(run.info.run_id).data.metrics == {"f1": 0.5}

    client = _sign_in(monkeypatch, viewer)  # a read-only user reads everything and changes nothing
    assert client.get_run(run.info.run_id).data.metrics == {"f1": 0.5}
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, dst_path=str(tmp_path / "dl"), tracking_uri=viewer["MLFLOW_TRACKING_URI"]
    )
    assert (Path(local) / "note.txt").read_text() == "from alice"
    assert client.get_registered_model("shared-model").tags == {"owner": "alice"}
    assert client.get_model_version_by_alias("shared-model", "current").run_id == run.info.run_id
    for write in (
        lambda: client.log_metric(run.info.run_id, "f1", 1.0),
        lambda: client.create_run(experiment),
        lambda: client.set_registered_model_tag("shared-model", "owner", "viewer"),
        lambda: client.set_registered_model_alias("shared-model", "viewed", version.version),
    ):
        with pytest.raises(MlflowException, match="403"):
            write()


@pytest.mark.slow
def test_a_restart_keeps_the_password_and_the_users(auth_server) -> None:
    folder, admin = auth_server
    stopped = subprocess.run([*CLI, "stop", "--dir", str(folder)], capture_output=True, text=True, timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    again = subprocess.run([*CLI, "start", "--dir", str(folder)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr  # no --auth: the folder has users, so it still asks
    assert _exports(again.stdout) == admin and "(admin login," in again.stdout
    search = f"{admin['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/experiments/search?max_results=1"
    assert _status(search) == 401
    assert _status(search, "admin", admin["MLFLOW_TRACKING_PASSWORD"]) == 200
    for name, login in json.loads((folder / "auth" / "credentials").read_text())["users"].items():
        assert _status(search, name, login["password"]) == 200, name
