"""Waiting out a server's outage (tracking/outages.py): real refused connections (a closed port), no mocks."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

import mlflow
import pytest
import sqlalchemy
from mlflow.exceptions import MlflowException

from ecg_mlflow.errors import UserError
from ecg_mlflow.tracking import server
from ecg_mlflow.tracking.outages import (
    MAX_OUTAGE_LIMIT,
    MLFLOW_MAX_RETRIES,
    URLLIB3_BACKOFF_MAX,
    ServerLost,
    ServerWatch,
    budget_mlflow_retries,
    is_server_away,
    mlflow_retry_budget,
    outage_limit,
    server_lost,
)


@pytest.fixture
def outage_lines() -> Iterator[list[str]]:
    """The lines the outages logger prints (it does not propagate to the root, so caplog cannot see them)."""
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("ecg_mlflow.outages")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


@pytest.fixture
def closed_port_engine() -> sqlalchemy.Engine:
    """An engine whose every connection is refused: nothing listens on the port."""
    return sqlalchemy.create_engine(f"postgresql+psycopg://u:p@127.0.0.1:{server.free_port()}/db")


def _failing(engine: sqlalchemy.Engine, times: int) -> tuple[list[int], object]:
    attempts: list[int] = []

    def query() -> str:
        attempts.append(1)
        if len(attempts) <= times:
            with engine.connect():
                pass
        return "answer"

    return attempts, query


def test_an_outage_is_waited_out_in_one_line(closed_port_engine, outage_lines) -> None:
    attempts, query = _failing(closed_port_engine, times=3)
    watch = ServerWatch("the test database", limit=60)
    assert watch.call(query) == "answer" and len(attempts) == 4
    assert len(outage_lines) == 1 and outage_lines[0].startswith("the test database is away (OperationalError: ")
    assert len(watch.outages) == 1 and watch.away_within(60) and not watch.away_within(0)


def test_other_errors_are_raised_at_once(outage_lines) -> None:
    calls: list[int] = []

    def refused_by_the_database() -> None:
        calls.append(1)
        raise sqlalchemy.exc.IntegrityError("INSERT ...", {}, Exception("duplicate key"))

    with pytest.raises(sqlalchemy.exc.IntegrityError):
        ServerWatch("the test database", limit=60).call(refused_by_the_database)
    assert calls == [1] and outage_lines == []


def test_past_the_limit_one_server_lost_names_the_server_and_later_calls_do_not_wait(closed_port_engine) -> None:
    _, query = _failing(closed_port_engine, times=10**6)
    watch = ServerWatch("the test database", limit=1.5, resume="run it again")
    started = time.monotonic()
    with pytest.raises(ServerLost, match=r"^lost the test database: away for more than 1.5 s \(OperationalError: "):
        watch.call(query)
    assert 1.5 <= time.monotonic() - started < 15
    started = time.monotonic()
    with pytest.raises(ServerLost, match=r"when it is back, run it again$"):
        watch.call(lambda: "never called")
    assert time.monotonic() - started < 0.5


def test_the_limit_counts_from_the_outages_start_and_only_the_workers_own_calls_decide(closed_port_engine) -> None:
    _, query = _failing(closed_port_engine, times=10**6)
    watch = ServerWatch("the test database", limit=1.5)
    assert watch.call_patiently(query) is None and not watch.lost  # Optuna's heartbeat thread: it beats again later
    started = time.monotonic()
    with pytest.raises(ServerLost):  # the same outage, already 1.5 s long: no second full wait
        watch.call(query)
    assert time.monotonic() - started < 1.0 and watch.lost


def test_a_strict_block_is_not_retried_call_by_call(closed_port_engine) -> None:
    attempts, query = _failing(closed_port_engine, times=1)
    watch = ServerWatch("the test database", limit=60)
    with watch.strict(), pytest.raises(sqlalchemy.exc.OperationalError):
        watch.call(query)
    assert len(attempts) == 1 and watch.call(query) == "answer"


def test_away_means_a_connection_problem_anywhere_in_the_chain(closed_port_engine) -> None:
    try:
        with closed_port_engine.connect():
            pass
    except sqlalchemy.exc.OperationalError as error:
        refused = error
    try:
        raise RuntimeError("Optuna's wrapper") from refused
    except RuntimeError as error:
        wrapped = error
    assert is_server_away(refused) and is_server_away(wrapped)
    assert not is_server_away(ValueError("connection")) and not is_server_away(sqlalchemy.exc.ArgumentError("x"))
    wrong_password = sqlalchemy.exc.OperationalError("connect", {}, Exception('password authentication failed for "u"'))
    assert not is_server_away(wrong_password)  # waiting would not mend it
    try:
        raise MlflowException("API request failed") from refused
    except MlflowException as error:
        assert not is_server_away(error)  # MLflow's client retried it already


def _waits(retries: int, factor: int) -> float:
    """urllib3's own schedule (Retry.get_backoff_time, jitter aside), written out here to check the budget."""
    return sum(0.0 if n == 1 else min(URLLIB3_BACKOFF_MAX, factor * 2 ** (n - 1)) for n in range(1, retries + 1))


@pytest.mark.parametrize("limit", [1, 6, 20, 300, 900, MAX_OUTAGE_LIMIT])
def test_mlflows_retry_budget_covers_the_limit_with_the_fewest_retries(limit) -> None:
    retries, factor = mlflow_retry_budget(limit)
    assert retries <= MLFLOW_MAX_RETRIES and _waits(retries, factor) >= limit
    assert factor == 1 or _waits(MLFLOW_MAX_RETRIES, factor - 1) < limit  # no smaller factor would do
    assert _waits(retries - 1, factor) < limit


def test_a_limit_mlflow_cannot_wait_is_refused_in_one_line() -> None:
    with pytest.raises(UserError, match=f"at most {MAX_OUTAGE_LIMIT:g} s"):
        outage_limit(MAX_OUTAGE_LIMIT + 1)


def test_the_limit_comes_from_the_option_the_environment_or_the_default(monkeypatch) -> None:
    monkeypatch.delenv("ECG_OUTAGE_LIMIT", raising=False)
    assert outage_limit() == 300 and outage_limit(12) == 12
    monkeypatch.setenv("ECG_OUTAGE_LIMIT", "45")
    assert outage_limit() == 45
    with pytest.raises(UserError, match="must be > 0"):
        outage_limit(0)


@pytest.fixture
def mlflow_retry_settings(monkeypatch) -> Iterator[None]:
    """budget_mlflow_retries sets MLflow's variables and a urllib3 log filter: both restored after the test."""
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(name, raising=False)
    pool_log = logging.getLogger("urllib3.connectionpool")
    filters = list(pool_log.filters)
    yield
    pool_log.filters[:] = filters


def test_mlflow_away_is_one_line_then_one_server_lost(outage_lines, mlflow_retry_settings) -> None:
    budget_mlflow_retries(3)
    uri = f"http://127.0.0.1:{server.free_port()}"
    mlflow.set_tracking_uri(uri)
    try:
        started = time.monotonic()
        with pytest.raises(MlflowException) as raised:
            mlflow.MlflowClient().get_experiment("0")
        assert 3 <= time.monotonic() - started < 60
    finally:
        mlflow.set_tracking_uri(None)
    assert outage_lines == [f"the MLflow tracking server {uri} is away; waiting up to 3 s for it"]
    lost = server_lost(raised.value, 3, "resume")
    assert str(lost) == f"lost the MLflow tracking server {uri}: away for more than 3 s; when it is back, resume"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"  # the stopping worker's last calls are tried once
    assert server_lost(MlflowException("RESOURCE_DOES_NOT_EXIST"), 3, "resume") is None
