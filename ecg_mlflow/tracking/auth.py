"""MLflow's own basic authentication for the team server (`mlflow server --app-name basic-auth`).

A server bound beyond loopback would otherwise let anyone on the network write runs, delete
experiments or move registry aliases, so there it always asks for a user name and password
(on loopback too with `server start --auth`; and once a folder has users, every later start keeps
asking, so a restart can never quietly open it again). Everything lives in DIR/auth/ (0700):

  credentials (0600)  JSON: the Flask secret key and every user's password, the admin's first
  basic_auth.ini      MLflow's auth settings (MLFLOW_AUTH_CONFIG_PATH); holds no secret
  users.db            MLflow's user and permission database (SQLite)

Permissions: default_permission is READ, so every signed-in user sees every experiment, run and
model (a team server is there to share results); an unauthenticated request gets 401. Writing
needs a grant: `server user add NAME` gives members EDIT on every experiment and registered model,
so they can log into a colleague's experiment and move a shared model's alias; `--read-only`
gives nothing more than READ. MLflow lets any signed-in user create an experiment or a model of
their own (which they then manage); a read-only user can change nothing anyone else made.

User passwords are kept in `credentials`, not only printed once: `server env --user NAME` can hand
them over again, and whoever can read that file is the server's admin anyway.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import ipaddress
import json
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from ecg_mlflow.data.cache import write_atomically
from ecg_mlflow.errors import UsageError, UserError

AUTH_DIR = "auth"
CREDENTIALS = "credentials"
CONFIG = "basic_auth.ini"
USERS_DB = "users.db"
ADMIN = "admin"
DEFAULT_PERMISSION = "READ"
MEMBER_GRANTS = (("experiment", "EDIT"), ("registered_model", "EDIT"))  # on "*": every one, present and future


class RunningServer(Protocol):
    """What adding a user needs of the running server (server.ServerState has it; this module does not import
    server.py, which imports this one)."""

    @property
    def tracking_uri(self) -> str: ...

    @property
    def auth(self) -> bool: ...


CREATE_USER = "/api/2.0/mlflow/users/create"  # MLflow's auth REST API (mlflow/server/auth/routes.py)
GRANT_PERMISSION = "/api/3.0/mlflow/users/permissions/grant"
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class AuthError(UserError, RuntimeError):
    """A user or the auth setup cannot be used; the message says what to do."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`: reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def wanted(folder: Path, host: str, requested: bool) -> bool:
    """Auth is on when asked for, beyond loopback, or when the folder already has users."""
    return requested or not is_loopback(host) or (folder / AUTH_DIR / CREDENTIALS).is_file()


def read_credentials(folder: Path) -> dict:
    """DIR/auth/credentials: {"secret_key": ..., "users": {name: {"password": ..., "read_only": ...}}}."""
    path = folder / AUTH_DIR / CREDENTIALS
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise AuthError(f"{path} is missing; start the server with --auth to create it") from None
    except (OSError, ValueError) as error:
        raise AuthError(f"{path} cannot be read ({error}); restore it from a backup") from None


def prepare(folder: Path) -> dict[str, str]:
    """Create the auth folder, credentials and config once (kept on later starts); return the
    environment `mlflow server --app-name basic-auth` needs. The admin password goes there, not
    into the ini: one copy of it on disk, in `credentials`; MLflow creates the admin from it at
    the first start and ignores it once the admin exists."""
    auth = folder / AUTH_DIR
    auth.mkdir(mode=0o700, exist_ok=True)
    auth.chmod(0o700)
    credentials = auth / CREDENTIALS
    if not credentials.is_file():
        if (auth / USERS_DB).exists():
            raise AuthError(
                f"{credentials} is missing but {auth / USERS_DB} exists: the admin password is lost; "
                f"delete {auth} to start over with new users (the runs stay)"
            )
        admin = {"password": secrets.token_urlsafe(24), "read_only": False}
        write_atomically(credentials, json.dumps({"secret_key": secrets.token_urlsafe(32), "users": {ADMIN: admin}}))
    stored = read_credentials(folder)
    database = str(auth.resolve() / USERS_DB).replace("%", "%%")  # configparser's interpolation
    write_atomically(
        auth / CONFIG,
        f"[mlflow]\ndefault_permission = {DEFAULT_PERMISSION}\ndatabase_uri = sqlite:///{database}\n"
        f"admin_username = {ADMIN}\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
    )
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(auth / CONFIG),
        "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN,
        "MLFLOW_AUTH_ADMIN_PASSWORD": stored["users"][ADMIN]["password"],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": stored["secret_key"],
    }


def login(folder: Path, name: str | None = None) -> tuple[str, str, bool]:
    """(user name, password, read-only) of `name`, or of the admin."""
    name = name or ADMIN
    users = read_credentials(folder)["users"]
    if name not in users:
        raise AuthError(
            f"no user {name!r} in {folder / AUTH_DIR / CREDENTIALS}; add one: ecg-mlflow server user add {name} "
            f"--dir {folder}"
        )
    return name, users[name]["password"], bool(users[name]["read_only"])


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One `user add` at a time: each rewrites the whole credentials file."""
    with open(folder / AUTH_DIR / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _post(folder: Path, url: str, payload: dict) -> str | None:
    """POST to MLflow's auth REST API as the admin; None when it succeeded, else the server's message."""
    _, password, _ = login(folder)
    token = base64.b64encode(f"{ADMIN}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, json.dumps(payload).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60):
            return None
    except urllib.error.HTTPError as error:
        body = error.read().decode(errors="replace")
        with contextlib.suppress(ValueError, AttributeError):
            body = json.loads(body).get("message", body)
        return f"HTTP {error.code}: {body.strip()}"
    except OSError as error:
        return f"unreachable ({error})"


def add_user(folder: Path, state: RunningServer | None, name: str, read_only: bool) -> str:
    """Create `name` on the running server `state` (as the admin), grant a member EDIT, keep the password;
    return it. The password is stored before the user is created, so a crash in between never leaves a
    user whose password nobody has; a refused creation takes it out again.
    """
    if not USER_NAME.fullmatch(name) or name == ADMIN:
        raise UsageError(f"user name {name!r} cannot be used: 1-64 letters, digits, '.', '_', '-', '@' (not {ADMIN!r})")
    if state is None or not state.auth:
        why = "no server is running" if state is None else "the server runs without authentication"
        raise AuthError(f"{why} in {folder}; start it with: ecg-mlflow server start --auth --dir {folder}")
    with _locked(folder):
        stored = read_credentials(folder)
        if name in stored["users"]:
            raise AuthError(
                f"user {name!r} already exists; its exports: ecg-mlflow server env --dir {folder} --user {name}"
            )
        password = secrets.token_urlsafe(18)
        stored["users"][name] = {"password": password, "read_only": read_only}
        write_atomically(folder / AUTH_DIR / CREDENTIALS, json.dumps(stored))
        refused = _post(folder, state.tracking_uri + CREATE_USER, {"username": name, "password": password})
        if refused:
            del stored["users"][name]
            write_atomically(folder / AUTH_DIR / CREDENTIALS, json.dumps(stored))
            raise AuthError(f"the server at {state.tracking_uri} refused user {name!r}: {refused}")
        for resource_type, permission in () if read_only else MEMBER_GRANTS:
            grant = {"username": name, "resource_type": resource_type, "resource_id": "*", "permission": permission}
            refused = _post(folder, state.tracking_uri + GRANT_PERMISSION, grant)
            if refused:
                raise AuthError(
                    f"user {name!r} was created but may only read: granting {permission} on every {resource_type} "
                    f"failed ({refused}); see {folder / 'mlflow.log'}"
                )
    return password
