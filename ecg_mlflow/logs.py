"""Quiet logs by default: what a user can act on, not TensorFlow's start-up chatter.

TensorFlow prints its C++ messages ("oneDNN custom operations are on", "All log messages before
absl::InitializeLog() ...") while its shared library loads, before any log level it reads from the
environment applies, so setting TF_CPP_MIN_LOG_LEVEL is not enough: the import itself runs with
the process's native stderr pointed at /dev/null. Python warnings that nobody running a step can
act on (MLflow guessing a dataset source, a Keras retracing notice) are filtered. `--verbose`
(or ECG_VERBOSE=1) keeps all of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from typing import Any

ENV_VERBOSE = "ECG_VERBOSE"

# (category, message regex) of warnings a user cannot act on.
UNACTIONABLE_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    (UserWarning, r"The specified dataset source can be interpreted in multiple ways"),
    (UserWarning, r".*Add type hints to the `predict` method"),
    (UserWarning, r".*Hint: Inferred schema contains integer column"),
)
NOISY_LOGGERS = ("tensorflow", "absl", "h5py")


def is_verbose() -> bool:
    return os.environ.get(ENV_VERBOSE, "").strip().lower() in {"1", "true", "yes"}


def configure(verbose: bool = False, preload_tensorflow: bool = False) -> None:
    """Quiet (default) or verbose logging for this process and the steps it starts (through the environment).

    preload_tensorflow imports TensorFlow now, with its load-time messages dropped; commands that
    never train leave it alone (it takes seconds to import).
    """
    if verbose:
        os.environ[ENV_VERBOSE] = "1"
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for category, message in UNACTIONABLE_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    if not getattr(warnings.showwarning, "drops_unactionable", False):
        warnings.showwarning = _dropping_unactionable(warnings.showwarning)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if preload_tensorflow:
        import_tensorflow_quietly()


def _dropping_unactionable(show: Any) -> Any:
    """warnings.showwarning that drops UNACTIONABLE_WARNINGS: MLflow shows some inside its own
    `catch_warnings(); simplefilter("once")`, which sets the filters above aside but not this."""
    patterns = [(category, re.compile(message)) for category, message in UNACTIONABLE_WARNINGS]

    def showwarning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if any(issubclass(category, c) and p.match(str(message)) for c, p in patterns):
            return
        show(message, category, *args, **kwargs)

    showwarning.drops_unactionable = True  # type: ignore[attr-defined]
    return showwarning


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null (what C++ libraries write to), then restore it."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (and Keras) with its load-time C++ messages dropped; errors still raise."""
    if "tensorflow" in sys.modules:
        return
    with native_stderr_silenced():
        import keras  # noqa: F401  (imports tensorflow, its backend)
