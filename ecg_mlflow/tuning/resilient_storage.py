"""The Optuna storage of a team server, waited for while the database is away (tracking/outages.py).

Optuna's RDBStorage raises on the first refused or dropped connection: in the trial loop that fails the trial or
stops the worker, and in Optuna's heartbeat thread it kills the thread with a traceback, after which the trial looks
dead to the other workers. `ResilientStorage` wraps the storage Optuna would use (its `_CachedStorage` over the
RDBStorage) and passes every call through a `ServerWatch`: the heartbeat thread, the trial loop and our own calls
wait out the same outage, and a trial goes on where it was.

One Optuna rule needed changing: a RUNNING trial whose heartbeat is older than the grace period is failed as
abandoned. After an outage every trial's last heartbeat is as old as the outage, though its worker is alive and
about to beat again; failing it would throw away its work and later crash its worker ("Cannot tell a FAIL trial").
So no trial is found stale while this worker saw the database away within the grace period, or while the database
itself started less than a grace period ago (PostgreSQL's pg_postmaster_start_time): by then every live worker has
recorded a heartbeat again, and a dead one is found a grace period later than it would have been.
"""

from __future__ import annotations

import abc
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from optuna.storages import BaseStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import TrialState

from ecg_mlflow.tracking.outages import ServerWatch, says_away


class ResilientStorage(BaseStorage, BaseHeartbeat):
    """Every method of `inner` (a BaseStorage with Optuna's heartbeat) through `watch`; see the module doc."""

    def __init__(self, inner: Any, watch: ServerWatch, grace_period: float) -> None:
        self.inner, self.watch, self.grace_period = inner, watch, grace_period

    def record_heartbeat(self, trial_id: int) -> None:
        """In Optuna's heartbeat thread: waits like every call, but never decides the server is lost (the worker's
        own calls do, and report it in one line; a thread's exception would print a traceback and tell nobody). It
        beats again at the next interval."""
        self.watch.call_patiently(self.inner.record_heartbeat, trial_id)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        """Telling a trial's end, again after the connection dropped: if the first attempt was written before the
        drop, the trial already holds this state and these values, and that is success, not Optuna's
        UpdateFinishedTrialError. (Taking a WAITING trial, state RUNNING, cannot be told apart from another worker
        taking it, and is left to Optuna: it then takes the next one.)"""
        attempts = 0

        def tell() -> bool:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and state.is_finished():
                stored = self.inner._backend.get_trial(trial_id) if hasattr(self.inner, "_backend") else None
                if stored is not None and stored.state == state and (values is None or stored.values == list(values)):
                    return True
            return self.inner.set_trial_state_values(trial_id, state, values)

        return self.watch.call(tell)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        if self.watch.away_within(self.grace_period) or self._database_started_within(self.grace_period):
            return []
        return self.watch.call(self.inner._get_stale_trial_ids, study_id)

    def _database_started_within(self, seconds: float) -> bool:
        """PostgreSQL restarted less than `seconds` ago (other databases: not known, False)."""
        engine = getattr(getattr(self.inner, "_backend", self.inner), "engine", None)
        if engine is None or engine.dialect.name != "postgresql":
            return False
        import sqlalchemy

        query = sqlalchemy.text("SELECT EXTRACT(EPOCH FROM now() - pg_postmaster_start_time())")

        def uptime() -> float:
            with engine.connect() as connection:
                return float(connection.execute(query).scalar_one())

        return self.watch.call(uptime) < seconds


def _without_fallback_notice(record: logging.LogRecord) -> bool:
    """Optuna's RDBStorage warns, with the whole SQL statement, that it falls back to a slower query when the first
    one failed; when the database went away the slower one fails too, and the outage has its one line already."""
    message = str(record.msg)
    return not (
        message.startswith("Caught an error from sqlalchemy") and ("AdminShutdown" in message or says_away(message))
    )


logging.getLogger("optuna.storages._rdb.storage").addFilter(_without_fallback_notice)


def _through_watch(name: str) -> Callable[..., Any]:
    def method(self: ResilientStorage, *args: Any, **kwargs: Any) -> Any:
        return self.watch.call(getattr(self.inner, name), *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"`{name}` of the wrapped storage, waited for while the database is away."
    return method


def _delegated(name: str) -> Callable[..., Any]:
    def method(self: ResilientStorage, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.inner, name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"`{name}` of the wrapped storage (it does not reach the database)."
    return method


# Methods that never reach the database: a call of theirs that works says nothing about the server.
LOCAL_METHODS = {
    "check_trial_is_updatable",
    "get_failed_trial_callback",
    "get_heartbeat_interval",
    "get_heartbeat_stale_trial_callback",
    "remove_session",
}
# Every public method of Optuna's storage and heartbeat interfaces (abstract or not: the wrapped storage's own
# versions are used, e.g. _CachedStorage's cached reads), unless defined above.
for _name, _member in [*inspect.getmembers(BaseStorage), *inspect.getmembers(BaseHeartbeat)]:
    if callable(_member) and not _name.startswith("_") and _name not in vars(ResilientStorage):
        setattr(ResilientStorage, _name, (_delegated if _name in LOCAL_METHODS else _through_watch)(_name))
abc.update_abstractmethods(ResilientStorage)
