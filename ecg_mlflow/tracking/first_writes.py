"""First writes that several workers make at once: the second one is the "already there" it is, not an error.

MLflow writes a tag, a dataset input or an alias by looking for the row and then inserting it. Two workers that
both look before either inserts both insert, and the database refuses the second with a duplicate key: on SQLite
(`UNIQUE constraint failed`), on PostgreSQL directly (`UniqueViolation`), and through a tracking server as a
`RestException: BAD_REQUEST` carrying the same words. That happened to the experiment-kind tag on a fresh team
server (issue 29). Run again, MLflow's look finds the row the other worker wrote and updates it (to the same
value): the write is idempotent once retried, which is what `write_once` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from mlflow.exceptions import MlflowException
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

DUPLICATE_WORDS = ("UniqueViolation", "duplicate key", "IntegrityError", "UNIQUE constraint")
ATTEMPTS = 4  # the row is there after the first collision; more attempts only cover a slow replica or proxy

P = ParamSpec("P")
R = TypeVar("R")


def is_duplicate_key(error: BaseException) -> bool:
    """An MLflow error whose cause is a unique constraint: another writer inserted the same row first."""
    return isinstance(error, MlflowException) and any(word in str(error) for word in DUPLICATE_WORDS)


def write_once(write: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`write(*args, **kwargs)`, retried (short random waits, so two colliding workers do not collide again) while
    it fails on a duplicate key; any other error, or the last collision, is raised."""
    retrying = Retrying(
        stop=stop_after_attempt(ATTEMPTS),
        wait=wait_random_exponential(multiplier=0.1, max=1.0),
        retry=retry_if_exception(is_duplicate_key),
        reraise=True,
    )
    return retrying(write, *args, **kwargs)
