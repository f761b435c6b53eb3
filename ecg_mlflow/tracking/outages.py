"""A server that goes away for a while (a restart, an upgrade, an out-of-memory kill) is waited for, not a crash.

A worker talks to two servers: the Optuna storage (PostgreSQL) and the MLflow tracking server. While either is away
the worker waits with exponential backoff up to a limit (--outage-limit, $ECG_OUTAGE_LIMIT, 300 s by default), says
so in one line per outage, and goes on where it was when the server is back. Past the limit it stops with one line
(`ServerLost`) naming the server and how to resume.

- The Optuna storage: every call goes through `ServerWatch.call`, a tenacity retry on the errors that mean "the
  database is not there" (a refused or dropped connection, an administrator shutdown), never on the others
  (a constraint, a bad query): those are raised at once.
- The MLflow tracking server: MLflow's REST client already retries every request with exponential backoff (urllib3's
  Retry, `MLFLOW_HTTP_REQUEST_MAX_RETRIES` / `_BACKOFF_FACTOR`). Wrapping each MLflow call of every step in a
  second retry would multiply the waits, so `budget_mlflow_retries` sets MLflow's own budget from the same limit,
  and `OneLinePerOutage` turns urllib3's warning per retry into one line per outage.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from ecg_mlflow.errors import UserError

ENV_OUTAGE_LIMIT = "ECG_OUTAGE_LIMIT"
DEFAULT_OUTAGE_LIMIT = 300.0  # s: a server restart or an upgrade, not a lost machine
MAX_WAIT = 10.0  # s between two attempts at most: a server that is back is found within this
# MLflow's own retry (urllib3): the waits are factor * 2**(n-1) s, at most 120 s each; MLflow allows 10 retries.
MLFLOW_MAX_RETRIES, URLLIB3_BACKOFF_MAX = 10, 120.0

log = logging.getLogger("ecg_mlflow.outages")  # one line per outage, on stderr, whatever else is configured
if not log.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log.addHandler(_handler)
    log.propagate = False
P = ParamSpec("P")
R = TypeVar("R")


class ServerLost(UserError, RuntimeError):
    """A server stayed away longer than the outage limit: the worker stops and says how to resume."""


def outage_limit(limit: float | None = None) -> float:
    """--outage-limit wins, then $ECG_OUTAGE_LIMIT, then DEFAULT_OUTAGE_LIMIT (seconds)."""
    given = os.environ.get(ENV_OUTAGE_LIMIT) or DEFAULT_OUTAGE_LIMIT
    try:
        value = limit if limit is not None else float(given)
    except ValueError:
        raise UserError(f"${ENV_OUTAGE_LIMIT}={given!r} is not a number of seconds") from None
    if not 0 < value <= MAX_OUTAGE_LIMIT:
        raise UserError(
            f"outage limit {value:g} s must be > 0 and at most {MAX_OUTAGE_LIMIT:g} s, what MLflow's client can wait "
            f"(--outage-limit or ${ENV_OUTAGE_LIMIT})"
        )
    return value


# What a refused, dropped or shut-down connection says (libpq, psycopg, MySQL clients); a wrong password, a deadlock
# or a statement timeout is an OperationalError too, but waiting would not mend it.
AWAY_WORDS = (
    "connection refused",
    "connection failed",
    "could not connect",
    "can't connect",
    "server closed the connection",
    "terminating connection",
    "the database system is",
    "connection timed out",
    "connection reset",
    "no route to host",
    "lost connection",
    "server has gone away",
    "consuming input failed",
)


def error_chain(error: BaseException) -> Iterator[BaseException]:
    """`error`, then its cause or context, and so on (each once: a chain made by hand can loop)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_server_away(error: BaseException) -> bool:
    """The database is not there: a connection refused, dropped or shut down by an administrator, anywhere in the
    error's chain (Optuna wraps SQLAlchemy's errors in its own). An MLflow error is not: MLflow's client retries
    its own requests (`budget_mlflow_retries`), and its give-up is `mlflow_server_lost`'s to name."""
    import sqlalchemy.exc
    from mlflow.exceptions import MlflowException

    for seen in error_chain(error):
        if isinstance(seen, MlflowException):
            return False
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, ConnectionError) or type(seen).__name__ == "AdminShutdown":
            return True
        if isinstance(seen, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError) or (
            type(seen).__module__.startswith("psycopg") and type(seen).__name__ == "OperationalError"
        ):
            return says_away(str(seen))
    return False


def says_away(message: str) -> bool:
    """The words of a refused, dropped or shut-down connection are in `message`."""
    return any(word in message.lower() for word in AWAY_WORDS)


@dataclass
class ServerWatch:
    """Calls to one server, waited out while it is away; one line per outage, whichever thread meets it first."""

    name: str  # what the lines call it: "the Optuna storage postgresql://postgres:***@host/optuna"
    limit: float
    resume: str = "run the same command again"
    outages: list[float] = field(default_factory=list)  # seconds each past outage lasted
    lost: str = ""  # the ServerLost message, once an outage outlasted the limit
    _away_since: float | None = None
    _back_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _strict: threading.local = field(default_factory=threading.local)

    def call(self, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """function(*args, **kwargs), tried again while the server is away, until it has been away for `limit` s
        (counted from the outage's start, whichever call met it first). Then ServerLost, and every later call
        raises it at once: the worker is stopping, and must not wait again per call."""
        return self._call(function, args, kwargs, decisive=True)

    def call_patiently(self, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R | None:
        """As `call`, for a background thread (Optuna's heartbeat): past the limit it returns None instead of
        deciding the server is lost, which is the worker's own calls' to decide (the thread beats again later)."""
        try:
            return self._call(function, args, kwargs, decisive=False)
        except ServerLost:
            return None

    def _call(self, function: Callable[..., R], args: tuple, kwargs: dict, decisive: bool) -> R:
        if self.lost:
            raise ServerLost(self.lost)
        if getattr(self._strict, "on", False):
            return function(*args, **kwargs)
        retrying = Retrying(
            retry=retry_if_exception(is_server_away),
            wait=wait_exponential_jitter(initial=0.5, max=MAX_WAIT),
            stop=self._outage_outlasted_the_limit,
            before_sleep=self._away,
            retry_error_callback=self._lost if decisive else self._not_yet,
        )
        result = retrying(function, *args, **kwargs)
        if self._away_since is not None:
            self._back()
        return result

    @contextmanager
    def strict(self) -> Iterator[None]:
        """Calls in this thread raise at once while the server is away: for a block that must be retried whole
        (a count under a lock that died with its connection must be taken again under a new one)."""
        self._strict.on = True
        try:
            yield
        finally:
            self._strict.on = False

    def _outage_outlasted_the_limit(self, state: RetryCallState) -> bool:
        started = self._away_since if self._away_since is not None else time.monotonic() - state.seconds_since_start
        return time.monotonic() - started >= self.limit

    def _away(self, state: RetryCallState) -> None:
        with self._lock:
            if self._away_since is not None:
                return
            self._away_since = time.monotonic() - state.seconds_since_start
        error = state.outcome.exception() if state.outcome else None
        log.warning(f"{self.name} is away ({_first_line(error)}); waiting up to {self.limit:g} s for it")

    def _back(self) -> None:
        with self._lock:
            if self._away_since is not None:
                self._back_at = time.monotonic()
                self.outages.append(self._back_at - self._away_since)
                self._away_since = None

    def _lost(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        self.lost = (
            f"lost {self.name}: away for more than {self.limit:g} s ({_first_line(error)}); "
            f"when it is back, {self.resume}"
        )
        raise ServerLost(self.lost) from error

    def _not_yet(self, state: RetryCallState) -> None:
        raise ServerLost(f"{self.name} is still away")

    def away_within(self, seconds: float) -> bool:
        """True while the server is away, and for `seconds` after it came back."""
        with self._lock:
            return self._away_since is not None or (bool(self.outages) and time.monotonic() - self._back_at < seconds)


def _first_line(error: BaseException | None) -> str:
    if error is None:
        return "no answer"
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    return f"{type(root).__name__}: {str(root).strip().splitlines()[0] if str(root).strip() else ''}"[:200]


def mlflow_retry_budget(limit: float) -> tuple[int, int]:
    """(max_retries, backoff_factor) for MLflow's REST client so that its waits add up to at least `limit` s: the
    smallest integer factor, then the fewest retries (urllib3 waits 0, 2f, 4f, ... s, each at most 120 s)."""
    for factor in range(1, math.ceil(URLLIB3_BACKOFF_MAX / 2) + 1):  # from 60 on, every wait is the 120 s cap
        waits = mlflow_waits(MLFLOW_MAX_RETRIES, factor)
        for retries in range(1, MLFLOW_MAX_RETRIES + 1):
            if sum(waits[:retries]) >= limit:
                return retries, factor
    raise UserError(
        f"outage limit {limit:g} s is longer than MLflow's client can wait ({MAX_OUTAGE_LIMIT:g} s: "
        f"{MLFLOW_MAX_RETRIES} retries, {URLLIB3_BACKOFF_MAX:g} s apart at most); use a shorter --outage-limit"
    )


def mlflow_waits(retries: int, factor: int) -> list[float]:
    """The seconds urllib3 sleeps before each of `retries` retries (the first at once)."""
    return [0.0 if n == 1 else min(URLLIB3_BACKOFF_MAX, factor * 2.0 ** (n - 1)) for n in range(1, retries + 1)]


MAX_OUTAGE_LIMIT = (MLFLOW_MAX_RETRIES - 1) * URLLIB3_BACKOFF_MAX


def budget_mlflow_retries(limit: float) -> None:
    """Give MLflow's REST client (in this process and the step processes it starts) a retry budget of `limit` s,
    and collapse urllib3's retry warnings into one line per outage."""
    retries, factor = mlflow_retry_budget(limit)
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(retries)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = str(factor)
    pool_log = logging.getLogger("urllib3.connectionpool")
    for old in [item for item in pool_log.filters if isinstance(item, OneLinePerOutage)]:
        pool_log.removeFilter(old)
    pool_log.addFilter(OneLinePerOutage(limit, gap=max(mlflow_waits(retries, factor)) + MAX_WAIT))


MLFLOW_GAVE_UP = "Max retries exceeded"  # in MLflow's error once its REST client's retries are spent


def mlflow_gave_up(error: BaseException) -> str | None:
    """The tracking server MLflow's client gave up on (its retries spent), if that is what `error` (or an error in
    its chain) says; else None."""
    from mlflow.exceptions import MlflowException

    for seen in error_chain(error):
        if isinstance(seen, MlflowException) and MLFLOW_GAVE_UP in str(seen):
            import mlflow

            asked = re.search(r"API request to (\S+?)/api/", str(seen))
            return asked[1] if asked else mlflow.get_tracking_uri()
    return None


def server_lost(error: BaseException, limit: float, resume: str) -> ServerLost | None:
    """The ServerLost that `error` (or an error in its chain) means: a watch's own, or MLflow's client giving up on
    the tracking server. For the latter, this process's MLflow calls are tried once from then on (the worker is
    stopping: its last calls must not wait the limit again each)."""
    if lost := next((seen for seen in error_chain(error) if isinstance(seen, ServerLost)), None):
        return lost
    if (server := mlflow_gave_up(error)) is None:
        return None
    stop_waiting_for_mlflow()
    return ServerLost(
        f"lost the MLflow tracking server {server}: away for more than {limit:g} s; when it is back, {resume}"
    )


def stop_waiting_for_mlflow() -> None:
    """MLflow calls from now on are tried once: a worker that lost a server ends its runs if it can, without
    waiting the whole limit again per call (MLflow reads this setting at every request)."""
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"


class OneLinePerOutage(logging.Filter):
    """urllib3 warns once per retry ("Retrying (Retry(total=6, ...)) after connection broken by ..."), to a logger
    nobody prints. The first warning of an outage becomes one line naming the tracking server; warnings less than
    `gap` s apart (the longest wait between two retries) belong to the same outage."""

    def __init__(self, limit: float, gap: float) -> None:
        super().__init__()
        self.limit, self.gap = limit, gap
        self._last = -math.inf
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Retrying"):
            return True
        with self._lock:
            now, last = time.monotonic(), self._last
            self._last = now
        if now - last >= self.gap:  # a new outage
            import mlflow

            server = mlflow.get_tracking_uri()
            log.warning(f"the MLflow tracking server {server} is away; waiting up to {self.limit:g} s for it")
        return False
