"""Optuna storages: the default SQLite file, any RDB URL, and a journal file for several workers.

  sqlite:///optuna.db           the default (its own file, never mlflow.db); one worker at a time
  journal:///abs/path/study.log  JournalStorage + JournalFileBackend: several workers on one machine
  journal://relative/study.log
  postgresql://user:pw@host/db   any SQLAlchemy URL (mysql+pymysql://, ...): a team, several machines

Crash detection is Optuna's heartbeat on RDB storages: while `Study.optimize` runs a trial it
records a heartbeat every heartbeat_interval seconds, and before each new trial it fails the
RUNNING trials whose heartbeat is older than grace_period (`optuna.storages.fail_stale_trials`);
that covers a dead worker on any machine. What Optuna cannot do is `fail_abandoned_trials`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from ecg_mlflow.errors import UserError
from ecg_mlflow.processes import process_is_dead
from ecg_mlflow.tracking.outages import ServerWatch

if TYPE_CHECKING:  # optuna is imported when a storage is opened, not by `ecg-mlflow --help`
    import optuna

T = TypeVar("T")
ENV_STORAGE = "ECG_OPTUNA_STORAGE"
DEFAULT_STORAGE = "sqlite:///optuna.db"
DEFAULT_HEARTBEAT_INTERVAL = 30
WORKER_ATTR = "worker"  # a trial's worker: ecg_mlflow.processes.process_identity()

SQLITE_WARNING = (
    "SQLite storage locks the whole database on every write: several workers on one SQLite file "
    "will fail with 'database is locked'. For parallel workers use a journal file "
    "(--storage journal:///path/study.log) on one machine, or PostgreSQL/MySQL for a team."
)


RESUME = "start the same `ecg-mlflow tune run` command again: the study resumes where it stopped"


class StorageError(UserError, RuntimeError):
    """A storage URL that cannot be opened; the message says why and what to use instead."""


@dataclass
class StorageHandle:
    url: str
    kind: str  # sqlite | rdb | journal
    storage: Any  # what optuna.create_study/load_study get
    path: Path | None  # the file behind sqlite/journal storages
    # Numbers of the trials failed because their worker died (by Optuna's heartbeat or by us).
    abandoned: list[int] = field(default_factory=list)
    # A database server's outages, waited out (opened with an outage limit; tuning/resilient_storage.py).
    watch: ServerWatch | None = None

    @property
    def display(self) -> str:
        return redact(self.url)

    def call(self, function: Callable[[], T]) -> T:
        """function(), waited for while the database is away when the storage has a watch (as its calls are)."""
        return self.watch.call(function) if self.watch is not None else function()

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """The exact-N lock (see runner's `_TrialLoop.reserve`). PostgreSQL: an advisory lock in the
        database itself, so N is exact for workers on any machine. Otherwise a file lock next to the
        file (or in the temp folder for a server), exact for the workers of one machine."""
        if urlsplit(self.url).scheme.split("+")[0] == "postgresql":
            return postgres_lock(self.url)
        if self.path is not None:
            return file_lock(self.path.with_name(self.path.name + ".tune.lock"))
        digest = hashlib.sha1(self.url.encode()).hexdigest()[:12]
        return file_lock(Path(tempfile.gettempdir()) / f"ecg-mlflow-tune-{digest}.lock")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) held for the block: closing the file (or the process dying) releases it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# pg_advisory_lock key of "count the trials, then ask for one" (any 64-bit number of our own).
TUNE_LOCK_KEY = int.from_bytes(hashlib.sha1(b"ecg-mlflow tune").digest()[:8], "big", signed=True)


@contextlib.contextmanager
def postgres_lock(url: str) -> Iterator[None]:
    """A transaction-level advisory lock held for the block: released when the block's transaction
    ends, or by PostgreSQL when the worker's connection dies. On a connection of its own (no pool):
    the lock also guards the creation of Optuna's tables, before Optuna's engine exists."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool, connect_args=POSTGRES_CONNECT)
    try:
        with engine.connect() as connection, connection.begin():
            connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": TUNE_LOCK_KEY})
            yield
    finally:
        engine.dispose()  # one engine per lock: nothing of it outlives the block


# libpq's settings for a server that hangs rather than refuses: a connection attempt gives up after 10 s, and a
# connection whose peer went silent is found dead within about a minute (TCP keepalives), so the outage is waited out.
POSTGRES_CONNECT = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10}


def _engine_options(url: str, kind: str) -> dict[str, Any]:
    """SQLite: wait for a lock rather than failing at once (it does not make SQLite fit for many workers). A server:
    its pooled connections tested before use (after a restart the first call reconnects); PostgreSQL: timeouts."""
    if kind == "sqlite":
        return {"connect_args": {"timeout": 30}}
    is_postgres = urlsplit(url).scheme.split("+")[0] == "postgresql"
    return {"pool_pre_ping": True, **({"connect_args": POSTGRES_CONNECT} if is_postgres else {})}


def resolve_storage_url(url: str | None = None) -> str:
    """--storage wins, then $ECG_OPTUNA_STORAGE, then sqlite:///optuna.db."""
    return url or os.environ.get(ENV_STORAGE) or DEFAULT_STORAGE


def redact(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:***@host/db (for logs and MLflow)."""
    password = urlsplit(url).password
    return url.replace(f":{password}@", ":***@", 1) if password else url


def storage_kind(url: str) -> str:
    scheme = urlsplit(url).scheme
    if not scheme:
        raise StorageError(
            f"storage {url!r} is not a URL; use sqlite:///FILE.db, journal:///FILE.log or postgresql://..."
        )
    return scheme if scheme in ("journal", "sqlite") else "rdb"


def _file_path(url: str, kind: str) -> Path | None:
    """The file behind a journal or SQLite URL; None for a server or an in-memory database."""
    if kind == "journal":
        rest = url.removeprefix("journal:").removeprefix("//")
        if not rest:
            raise StorageError(f"storage {url!r} names no file; use journal:///path/to/study.log")
        return Path(rest).expanduser()
    path = url.removeprefix("sqlite:///").split("?", 1)[0] if url.startswith("sqlite:///") else ""
    return Path(path) if path and path != ":memory:" else None


def open_storage(
    url: str | None = None,
    *,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
    grace_period: int | None = None,
    outage_limit: float | None = None,
) -> StorageHandle:
    """URL -> an Optuna storage, creating the file's folder; StorageError with advice on failure.
    RDB storages get Optuna's heartbeat (grace period: 4 x the interval unless given). With `outage_limit`, a
    database server's storage waits out an outage of up to that many seconds (tuning/resilient_storage.py)."""
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
    path = _file_path(url, kind)
    if path is not None and path.name == "mlflow.db":
        raise StorageError("the Optuna storage must be a file of its own, not MLflow's mlflow.db")
    try:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "journal":
            return StorageHandle(url, kind, JournalStorage(JournalFileBackend(str(path))), path)
    except OSError as exc:
        raise StorageError(f"cannot open {kind} file {path}: {exc}") from None
    handle = StorageHandle(url, kind, None, path)
    # Two workers creating a fresh database at once race on its tables: create them under a lock.
    try:
        with handle.lock(), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            handle.storage = RDBStorage(
                url,
                engine_kwargs=_engine_options(url, kind),
                heartbeat_interval=heartbeat_interval,
                grace_period=grace,
                heartbeat_stale_trial_callback=lambda _, trial: handle.abandoned.append(trial.number),
            )
    except ImportError as exc:
        raise StorageError(f"no database driver for {redact(url)}: {exc}") from None
    except Exception as exc:  # SQLAlchemy errors: bad URL, unreachable server, bad credentials
        raise StorageError(f"cannot open storage {redact(url)}: {type(exc).__name__}: {exc}") from None
    if outage_limit is not None and kind == "rdb":
        from optuna.storages import _CachedStorage  # what Optuna itself wraps an RDBStorage in

        from ecg_mlflow.tuning.resilient_storage import ResilientStorage

        handle.watch = ServerWatch(f"the Optuna storage {handle.display}", outage_limit, RESUME)
        handle.storage = ResilientStorage(_CachedStorage(handle.storage), handle.watch, grace)
    return handle


def fail_abandoned_trials(study: optuna.Study, handle: StorageHandle, *, heartbeat: bool = True) -> None:
    """Fail the RUNNING trials whose worker died; their numbers are added to handle.abandoned.

    What Optuna cannot do: a trial whose worker process on this host is gone is failed at once. Optuna's
    heartbeat cannot tell a dead process from a slow one, so it waits out the grace period (minutes), and
    JournalStorage has no heartbeat at all in Optuna 5.1; the journal file serves one machine, where this
    check suffices."""
    import optuna
    from optuna.trial import TrialState

    if heartbeat:  # False inside Study.optimize, which runs this check before every trial
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # its callback appends to handle.abandoned
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(trial.user_attrs.get(WORKER_ATTR, ""))
        if not process_is_dead(worker):  # "" (no worker recorded) is not known dead
            continue
        reason = f"abandoned: its worker {worker} is no longer running"
        try:
            study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
            study.tell(trial.number, state=TrialState.FAIL)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            continue  # another worker got there first
        optuna.logging.get_logger("optuna.ecg_mlflow.tuning").warning(
            f"Trial {trial.number} of study '{study.study_name}' marked FAIL: {reason}"
        )
        handle.abandoned.append(trial.number)
