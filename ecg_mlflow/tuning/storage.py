"""Optuna storages: the default SQLite file, any RDB URL, and a journal file for several workers.

  sqlite:///optuna.db           the default (its own file, never mlflow.db); one worker at a time
  journal:///abs/path/study.log  JournalStorage + JournalFileBackend: several workers on one machine
  journal://relative/study.log
  postgresql://user:pw@host/db   any SQLAlchemy URL (mysql+pymysql://, ...): a team, several machines

SQLite serialises writers with a database lock; two workers on one SQLite file hit
"database is locked" sooner or later. Use the journal file (one machine) or PostgreSQL/MySQL.

Crash detection. Every trial records its worker (host, pid, process start time) and a heartbeat
timestamp in user attributes; a RUNNING trial whose worker process is gone (same host) or whose
heartbeat is older than the grace period is failed by the next worker that starts or asks for a
trial. RDB storages additionally get Optuna's own heartbeat (heartbeat_interval/grace_period).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ecg_mlflow.errors import UserError
from ecg_mlflow.processes import process_identity, process_is_dead

ENV_STORAGE = "ECG_OPTUNA_STORAGE"
DEFAULT_STORAGE = "sqlite:///optuna.db"
DEFAULT_HEARTBEAT_INTERVAL = 30
WORKER_ATTR = "worker"
HEARTBEAT_ATTR = "heartbeat"

SQLITE_WARNING = (
    "SQLite storage locks the whole database on every write: several workers on one SQLite file "
    "will fail with 'database is locked'. For parallel workers use a journal file "
    "(--storage journal:///path/study.log) on one machine, or PostgreSQL/MySQL for a team."
)


class StorageError(UserError, RuntimeError):
    """A storage URL that cannot be opened; the message says why and what to use instead."""


@dataclass
class StorageHandle:
    url: str
    kind: str  # sqlite | rdb | journal
    storage: Any  # what optuna.create_study/load_study get
    path: Path | None  # the file behind sqlite/journal storages
    heartbeat_interval: int
    grace_period: int

    @property
    def display(self) -> str:
        return redact(self.url)

    @property
    def lock_path(self) -> Path:
        """A file lock that serialises 'count the trials, then ask for one' across local workers."""
        if self.path is not None:
            return self.path.with_name(self.path.name + ".tune.lock")
        digest = hashlib.sha1(self.url.encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"ecg-mlflow-tune-{digest}.lock"

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """PostgreSQL: an advisory lock in the database itself, so N is exact for workers on any machine.
        Otherwise a file lock, exact for the workers of one machine."""
        if urlsplit(self.url).scheme.split("+")[0] == "postgresql":
            return postgres_lock(self.storage.engine)
        return file_lock(self.lock_path)

    def record_heartbeat(self, trial: Any) -> None:
        if self.kind in ("sqlite", "rdb"):
            self.storage.record_heartbeat(trial._trial_id)
        trial.set_user_attr(HEARTBEAT_ATTR, time.time())


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) held for the block; released if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# pg_advisory_lock key of "count the trials, then ask for one" (any 64-bit number of our own).
TUNE_LOCK_KEY = int.from_bytes(hashlib.sha1(b"ecg-mlflow tune").digest()[:8], "big", signed=True)


@contextlib.contextmanager
def postgres_lock(engine: Any) -> Iterator[None]:
    """A transaction-level advisory lock held for the block: released when the block's transaction
    ends, or by PostgreSQL when the worker's connection dies."""
    from sqlalchemy import text

    with engine.connect() as connection, connection.begin():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": TUNE_LOCK_KEY})
        yield


def _creation_lock(url: str) -> contextlib.AbstractContextManager[None]:
    """PostgreSQL: the advisory lock, on an engine of its own (Optuna's does not exist yet)."""
    if urlsplit(url).scheme.split("+")[0] != "postgresql":
        return contextlib.nullcontext()
    import sqlalchemy

    return postgres_lock(sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool))


def resolve_storage_url(url: str | None = None) -> str:
    """--storage wins, then $ECG_OPTUNA_STORAGE, then sqlite:///optuna.db."""
    return url or os.environ.get(ENV_STORAGE) or DEFAULT_STORAGE


def redact(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:***@host/db (for logs and MLflow)."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def storage_kind(url: str) -> str:
    if url.startswith("journal:"):
        return "journal"
    if url.startswith("sqlite:"):
        return "sqlite"
    scheme = urlsplit(url).scheme
    if not scheme or "/" in scheme:
        raise StorageError(
            f"storage {url!r} is not a URL; use sqlite:///FILE.db, journal:///FILE.log or postgresql://..."
        )
    return "rdb"


def _journal_path(url: str) -> Path:
    rest = url[len("journal:") :]
    rest = rest[2:] if rest.startswith("//") else rest
    if not rest:
        raise StorageError(f"storage {url!r} names no file; use journal:///path/to/study.log")
    return Path(rest).expanduser()


def _sqlite_path(url: str) -> Path | None:
    rest = url[len("sqlite:") :]
    if not rest.startswith("///"):
        return None
    path = rest[3:].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def open_storage(
    url: str | None = None, *, heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL, grace_period: int | None = None
) -> StorageHandle:
    """URL -> an Optuna storage, creating the file's folder; StorageError with advice on failure."""
    import optuna
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    url = resolve_storage_url(url)
    kind = storage_kind(url)
    if heartbeat_interval < 1:
        raise StorageError(f"heartbeat interval {heartbeat_interval} must be >= 1 second")
    grace = grace_period if grace_period is not None else 4 * heartbeat_interval
    if grace <= heartbeat_interval:
        raise StorageError(f"grace period {grace}s must be longer than the heartbeat interval {heartbeat_interval}s")
    if kind == "journal":
        path = _journal_path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            storage = JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise StorageError(f"cannot open journal file {path}: {exc}") from None
        return StorageHandle(url, kind, storage, path, heartbeat_interval, grace)

    path = _sqlite_path(url) if kind == "sqlite" else None
    if path is not None:
        if path.name == "mlflow.db":
            raise StorageError("the Optuna storage must be a file of its own, not MLflow's mlflow.db")
        path.parent.mkdir(parents=True, exist_ok=True)
    engine_kwargs: dict[str, Any] = {}
    if kind == "sqlite":
        # Wait for a lock rather than failing at once; it does not make SQLite fit for many workers.
        engine_kwargs = {"connect_args": {"timeout": 30}}
    # Two workers creating a fresh database at once race on its tables: create them under a lock.
    try:
        lock = file_lock(path.with_name(path.name + ".tune.lock")) if path is not None else _creation_lock(url)
        with lock, warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval, grace_period=grace
            )
    except ImportError as exc:
        raise StorageError(f"no database driver for {redact(url)}: {exc}") from None
    except Exception as exc:  # SQLAlchemy errors: bad URL, unreachable server, bad credentials
        raise StorageError(f"cannot open storage {redact(url)}: {type(exc).__name__}: {exc}") from None
    return StorageHandle(url, kind, storage, path, heartbeat_interval, grace)


# --------------------------------------------------------------------------- worker identity


def worker_id() -> str:
    """This worker's identity (host:pid:start-time), recorded on every trial it runs."""
    return process_identity()


def worker_is_dead(worker: str) -> bool:
    """True only when we can tell: the worker ran on this host and its process is gone."""
    return process_is_dead(worker)


def stale_reason(trial: Any, *, grace_period: float, now: float | None = None) -> str | None:
    """Why a RUNNING trial is abandoned, or None while it may still be alive."""
    now = time.time() if now is None else now
    worker = trial.user_attrs.get(WORKER_ATTR)
    if worker and worker_is_dead(str(worker)):
        return f"its worker {worker} is no longer running"
    beat = trial.user_attrs.get(HEARTBEAT_ATTR)
    if beat is None and trial.datetime_start is not None:
        beat = trial.datetime_start.timestamp()
    if beat is not None and now - float(beat) > grace_period:
        return f"no heartbeat for {now - float(beat):.0f}s (grace period {grace_period}s)"
    return None


class Heartbeat:
    """Records a trial's heartbeat every interval seconds in a daemon thread."""

    def __init__(self, handle: StorageHandle, trial: Any) -> None:
        self._handle = handle
        self._trial = trial
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial.number}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._handle.heartbeat_interval):
            with contextlib.suppress(Exception):  # a missed beat is retried; the grace period covers it
                self._handle.record_heartbeat(self._trial)

    def __enter__(self) -> Heartbeat:
        self._trial.set_user_attr(WORKER_ATTR, worker_id())
        self._handle.record_heartbeat(self._trial)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
