"""A team setup in one folder (eval "$(ecg-mlflow server start --dir DIR)"): PostgreSQL, and an MLflow tracking
server on it serving the artefacts, so runs, models and studies survive a restart. DIR holds pgdata/ (databases
`mlflow` and `optuna`), artifacts/, server.json (ports, host, the tracking server's process), credentials (0600),
auth/ (MLflow's users, auth.py) and the logs. PostgreSQL is the system's ($ECG_PG_BIN, PATH, /usr/lib/postgresql),
asks for a password over TCP and, as it refuses root, runs under root as the user `ecg-mlflow`. Both bind
127.0.0.1 unless --host says otherwise; beyond loopback (or with --auth) MLflow asks for a password too.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import psutil

from ecg_mlflow.data.cache import write_atomically
from ecg_mlflow.errors import UserError
from ecg_mlflow.processes import pid_is_dead, process_identity, process_is_dead
from ecg_mlflow.tracking import auth

ENV_PG_BIN = "ECG_PG_BIN"
SERVICE_USER = "ecg-mlflow"  # runs PostgreSQL when we are root
DATABASES = ("mlflow", "optuna")
STATE_FILE = "server.json"
PROGRAMS = ("initdb", "pg_ctl", "psql", "createdb")
SYSTEM_PG_GLOB = "/usr/lib/postgresql/*/bin"  # Debian/Ubuntu's postgresql packages
HEALTH_TIMEOUT = 120.0  # s for `mlflow server` to answer /health
SOCKET_DIR_LIMIT = 87  # a Unix socket path has 107 bytes; PostgreSQL adds /.s.PGSQL.<port>


class ServerError(UserError, RuntimeError):
    """The team server cannot start or stop; the message says what to do."""


@dataclass(frozen=True)
class ServerState:
    """What `start` wrote and `stop` and the export lines read."""

    host: str
    pg_port: int
    mlflow_port: int
    mlflow_pid: int
    mlflow_process: str = ""  # host:pid:start-time, so a pid reused after a reboot is not taken for it
    auth: bool = False  # MLflow's basic authentication is on

    @property
    def tracking_uri(self) -> str:
        return f"http://{self._client_host}:{self.mlflow_port}"

    def database_uri(self, database: str, password: str) -> str:
        return f"postgresql+psycopg://postgres:{password}@{self._client_host}:{self.pg_port}/{database}"

    @property
    def _client_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host


def postgres_bin() -> Path:
    """The folder with PROGRAMS: $ECG_PG_BIN, PATH, then the newest /usr/lib/postgresql/*/bin."""
    candidates = [os.environ.get(ENV_PG_BIN, ""), os.path.dirname(shutil.which("pg_ctl") or "")]
    candidates += sorted(glob.glob(SYSTEM_PG_GLOB), key=lambda p: Path(p).parent.name.zfill(4), reverse=True)
    for folder in filter(None, candidates):
        if all((Path(folder) / program).is_file() for program in PROGRAMS):
            return Path(folder)
    raise ServerError(
        "PostgreSQL is not installed: install it (Debian/Ubuntu: apt-get install postgresql) "
        f"or set ${ENV_PG_BIN} to the folder holding {', '.join(PROGRAMS)}"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.create_server((host, 0)) as sock:
        return int(sock.getsockname()[1])


def service_user() -> pwd.struct_passwd | None:
    """None when we are not root; else the unprivileged user PostgreSQL runs as (created if missing)."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SERVICE_USER)
    subprocess.run(["useradd", "--system", "--no-create-home", SERVICE_USER], check=True, capture_output=True)
    return pwd.getpwnam(SERVICE_USER)


def _pg(command: list[str], user: pwd.struct_passwd | None) -> subprocess.CompletedProcess:
    """Run a program of postgres_bin() (under root as the service user, in a folder it may enter); stderr: the error."""
    ids = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "cwd": "/"} if user else {}
    result = subprocess.run([str(postgres_bin() / command[0]), *command[1:]], capture_output=True, text=True, **ids)
    if result.returncode != 0:
        raise ServerError(f"{command[0]} failed: {(result.stderr or result.stdout).strip()}")
    return result


def _give_to(path: Path, user: pwd.struct_passwd | None) -> None:
    """Under root: the service user owns `path` and can reach it (parents get o+x, as PostgreSQL needs)."""
    if user is None:
        return
    for item in [path, *(Path(top) / entry for top, dirs, files in os.walk(path) for entry in dirs + files)]:
        os.chown(item, user.pw_uid, user.pw_gid)
    for parent in path.resolve().parents:
        parent.chmod(parent.stat().st_mode | 0o001)


def init_cluster(folder: Path, user: pwd.struct_passwd | None) -> str:
    """Create the PostgreSQL cluster once (password auth over TCP); return the password."""
    credentials, pgdata = folder / "credentials", folder / "pgdata"
    if (pgdata / "PG_VERSION").is_file():
        if not credentials.is_file():
            raise ServerError(f"{credentials} is missing: the cluster's password is lost; start with a new --dir")
        return credentials.read_text().strip()
    shutil.rmtree(pgdata, ignore_errors=True)  # a half-made cluster from an interrupted start
    password = secrets.token_urlsafe(18)
    # Written (0600) before initdb, which reads it: an interrupted start never leaves a cluster without it.
    write_atomically(credentials, password + "\n")
    pgdata.mkdir(mode=0o700)
    _give_to(folder, user)
    _pg(
        ["initdb", "-D", str(pgdata), "-U", "postgres", "-E", "UTF8", f"--pwfile={credentials}",
         "--auth-local=trust", "--auth-host=scram-sha-256"],
        user,
    )  # fmt: skip
    return password


def start_postgres(folder: Path, host: str, port: int, user: pwd.struct_passwd | None) -> None:
    """pg_ctl start on host:port, its socket in pgdata (no system folder needed); waits until it accepts."""
    pgdata, log = folder / "pgdata", folder / "postgres.log"
    log.touch()
    _give_to(log, user)
    if len(str(pgdata)) > SOCKET_DIR_LIMIT:
        raise ServerError(f"{folder} is too long a path for PostgreSQL's socket; use a --dir of under 80 characters")
    options = f"-h {shlex.quote(host)} -p {port} -k {shlex.quote(str(pgdata))}"
    _pg(["pg_ctl", "-D", str(pgdata), "-l", str(log), "-o", options, "-w", "start"], user)
    local = ["-h", str(pgdata), "-p", str(port), "-U", "postgres"]
    existing = _pg(["psql", *local, "-tAc", "SELECT datname FROM pg_database"], user).stdout.split()
    for database in (name for name in DATABASES if name not in existing):
        _pg(["createdb", *local, database], user)


def stop_postgres(folder: Path, user: pwd.struct_passwd | None) -> None:
    """Stop the cluster when it runs. A postmaster.pid left by a crash or reboot (its process gone, a zombie, or
    the pid now another program's) is removed instead, with its socket's lock file, so the next start is clean."""
    pid_file = folder / "pgdata" / "postmaster.pid"
    if not pid_file.is_file():
        return
    with contextlib.suppress(psutil.Error):  # gone, or not ours to read: stale
        process = psutil.Process(int(pid_file.read_text().split()[0]))
        if process.status() != psutil.STATUS_ZOMBIE and "postgres" in " ".join(process.cmdline()):
            _pg(["pg_ctl", "-D", str(pid_file.parent), "-m", "fast", "-w", "stop"], user)
            return
    for stale in (pid_file, *pid_file.parent.glob(".s.PGSQL.*")):
        stale.unlink(missing_ok=True)


def start_mlflow(folder: Path, state: ServerState, backend_uri: str, auth_env: dict[str, str]) -> int:
    """`mlflow server` for `state` with --serve-artifacts, detached; waits for /health. The backend URI (with the
    password) and `auth_env` (auth.prepare, when state.auth) go in the environment, where `ps` cannot see."""
    (folder / "artifacts").mkdir(exist_ok=True)
    command = [sys.executable, "-m", "mlflow", "server", "--host", state.host, "--port", str(state.mlflow_port)]
    command += ["--workers", "2", "--serve-artifacts", "--artifacts-destination", str((folder / "artifacts").resolve())]
    command += ["--app-name", "basic-auth"] if state.auth else []
    # The server's job runner (GenAI scorers, several polling processes) is not used by this suite.
    environ = {**os.environ, **auth_env, "MLFLOW_BACKEND_STORE_URI": backend_uri}
    environ["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    log = folder / "mlflow.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=environ)
    url, deadline = f"{state.tracking_uri}/health", time.monotonic() + HEALTH_TIMEOUT
    try:
        while process.poll() is None:
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2):  # an error status raises
                return process.pid
            if time.monotonic() > deadline:
                raise ServerError(f"the MLflow server did not answer {url} within {HEALTH_TIMEOUT:.0f} s; see {log}")
            time.sleep(0.5)
        raise ServerError(f"the MLflow server exited with {process.returncode}; see {log}")
    except BaseException:  # a timeout, a crash, Ctrl-C: no server left behind
        _stop_process_group(process.pid)
        raise


def _stop_process_group(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM to the group, up to `timeout` s for its leader to end (a zombie has), then SIGKILL to what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not pid_is_dead(pid):  # psutil's wait misses a zombie no one reaps
        with contextlib.suppress(psutil.Error):  # reaps the leader when it is our child; TimeoutExpired: not yet
            psutil.Process(pid).wait(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def read_state(folder: Path) -> ServerState | None:
    """The last start's host and ports (kept across a stop, so a restart reuses them)."""
    path = folder / STATE_FILE
    return ServerState(**json.loads(path.read_text())) if path.is_file() else None


def running_state(folder: Path) -> ServerState | None:
    """The state when the tracking server it names is alive, else None."""
    state = read_state(folder)
    return state if state and state.mlflow_process and not process_is_dead(state.mlflow_process) else None


def start(
    folder: Path, host: str = "127.0.0.1", mlflow_port: int = 0, pg_port: int = 0, with_auth: bool = False
) -> ServerState:
    """Bring up PostgreSQL and the tracking server in `folder` (or find them running); port 0: a free port, or the
    last start's. Authentication is on with `with_auth`, beyond loopback, or when the folder has users."""
    folder = folder.resolve()  # PostgreSQL takes a relative socket folder for a host name
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    use_auth = auth.wanted(folder, host, with_auth)
    if (running := running_state(folder)) is not None:
        if use_auth and not running.auth:
            raise ServerError(
                f"the server in {folder} runs without authentication; stop it (ecg-mlflow server stop --dir "
                f"{folder}) and start it again with --auth"
            )
        return running
    previous = read_state(folder) or ServerState(host, 0, 0, 0)
    user = service_user()
    password = init_cluster(folder, user)
    auth_env = auth.prepare(folder) if use_auth else {}
    pg_port = pg_port or previous.pg_port or free_port(host)
    state = ServerState(host, pg_port, mlflow_port or previous.mlflow_port or free_port(host), 0, auth=use_auth)
    stop_postgres(folder, user)  # a cluster left running by a crashed start is restarted cleanly
    try:
        start_postgres(folder, host, pg_port, user)
        pid = start_mlflow(folder, state, state.database_uri("mlflow", password), auth_env)
    except BaseException:
        stop_postgres(folder, user)
        raise
    state = replace(state, mlflow_pid=pid, mlflow_process=process_identity(pid))
    write_atomically(folder / STATE_FILE, json.dumps(asdict(state)))  # atomic: `env` never reads half a file
    return state


def stop(folder: Path) -> bool:
    """Stop the tracking server and PostgreSQL; the data stays. False when nothing was running."""
    folder = folder.resolve()
    if (state := running_state(folder)) is not None:
        _stop_process_group(state.mlflow_pid)
        kept = ServerState(state.host, state.pg_port, state.mlflow_port, 0)  # the ports, for the next start
        write_atomically(folder / STATE_FILE, json.dumps(asdict(kept)))
    elif not (folder / "pgdata" / "postmaster.pid").is_file():
        return False
    stop_postgres(folder, service_user())
    return True


def export_lines(folder: Path, user: str | None = None) -> str:
    """The shell lines that point MLflow and `ecg-mlflow tune` at the running servers: as the admin, or as
    `user`. A read-only user gets no Optuna storage: its URL holds the database's own password."""
    folder = folder.resolve()
    state = running_state(folder)
    if state is None:
        raise ServerError(f"no server is running in {folder}; start one with: ecg-mlflow server start --dir {folder}")
    if user is not None and not state.auth:
        raise ServerError(
            f"the server in {folder} runs without authentication, so has no users; restart it with --auth"
        )
    exports, read_only = {"MLFLOW_TRACKING_URI": state.tracking_uri}, False
    if state.auth:
        name, secret, read_only = auth.login(folder, user)
        exports |= {"MLFLOW_TRACKING_USERNAME": name, "MLFLOW_TRACKING_PASSWORD": secret}
    if not read_only:
        password = (folder / "credentials").read_text().strip()
        exports["ECG_OPTUNA_STORAGE"] = state.database_uri("optuna", password)
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in exports.items())
