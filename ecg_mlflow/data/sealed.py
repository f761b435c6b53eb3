"""The test split, sealed while models are compared.

A figure on the test split is only honest if nothing was chosen on it. Code that compares models (an Optuna
trial, a cross-validation fold, anything a sweep ranks) runs inside `sealed_test_split(...)`; while the seal
holds, `BeatDataset` refuses to hand out its test split, so a comparison cannot compute a test figure even by
mistake. Only a final model (a plain transfer/baseline/ensemble run, `tune best --apply`, the averaged model of
a cross-validation, each point of a label-efficiency sweep) runs outside it.

A context variable, not a global: the seal follows the code that set it (an Optuna trial running in a worker
thread seals that trial only) and is undone on exit even when the comparison fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

TEST_SPLIT = "test"
TEST_SPLIT_TAG = "ecg_mlflow.test_split"  # "sealed (<who>)" on a compared run, "evaluated" on a final model

_sealed_by: ContextVar[str] = ContextVar("ecg_mlflow_test_split_sealed_by", default="")


class SealedTestSplitError(RuntimeError):
    """Code that compares models asked for the test split: a bug in the project, never a user's mistake."""


@contextmanager
def sealed_test_split(who: str) -> Iterator[None]:
    """Seal the test split for the code inside (`who`: what compares, e.g. "an Optuna trial")."""
    token = _sealed_by.set(who)
    try:
        yield
    finally:
        _sealed_by.reset(token)


def sealed_by() -> str:
    """Who sealed the test split here ("" when it is open: a final model)."""
    return _sealed_by.get()


def check_split_open(split: str) -> None:
    """Raise SealedTestSplitError when `split` is the test split and it is sealed."""
    if split == TEST_SPLIT and (who := sealed_by()):
        raise SealedTestSplitError(
            f"the test split is sealed while {who} runs: only a final model is tested (see ecg_mlflow/data/sealed.py)"
        )


def open_splits(splits: tuple[str, ...]) -> tuple[str, ...]:
    """The splits of `splits` this code may read: all of them, or all but the test split under a seal."""
    return tuple(s for s in splits if not (s == TEST_SPLIT and sealed_by()))


def seal_tag() -> str:
    """The value of TEST_SPLIT_TAG for the run being made here."""
    who = sealed_by()
    return f"sealed ({who})" if who else "evaluated"
