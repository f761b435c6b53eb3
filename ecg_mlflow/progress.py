"""One progress look for the whole package: a rich bar on stderr for long work, nothing off a terminal.

Building a dataset, downloading, classifying a record and a chain of runs all show the same columns
(what, bar, done/total, elapsed, remaining), on stderr so stdout stays for results. Off an interactive
terminal (CI, `mlflow run` logs, TERM=dumb) nothing is drawn: a repainted bar is only escape codes in a
log file. rich decides what a terminal is, so TTY_COMPATIBLE=0|1 and FORCE_COLOR override it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

Update = Callable[..., None]  # rich's Progress.update for one task: advance=, completed=, total=, description=


class Remaining(TimeRemainingColumn):
    """rich's estimate of the time left, unless the work knows better and sets the task field `left` (seconds or
    None): rich averages over every step done, a chain knows its reused steps took no time."""

    def render(self, task: Task) -> Text:
        if "left" not in task.fields:
            return super().render(task)
        left = task.fields["left"]
        return Text("-:--:--" if left is None else str(timedelta(seconds=int(left))), style="progress.remaining")


def bars(file: TextIO | None = None, *, quiet: bool = False) -> Progress:
    """The package's columns in a rich Progress on `file` (stderr), disabled unless it is an interactive terminal.

    Transient: a finished bar leaves no trace, the logs and results around it read as if it never was.
    """
    console = Console(file=file, stderr=True)
    columns = TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), Remaining()
    return Progress(*columns, console=console, transient=True, disable=quiet or not console.is_interactive)


@contextlib.contextmanager
def bar(description: str, total: float | None = None, *, enabled: bool = True) -> Iterator[Update]:
    """One bar for one piece of long work; yields update(advance=1, description=...) and friends (a no-op display
    when not enabled or not on a terminal, so callers never branch). total None: a pulsing bar, counted as k/?."""
    with bars(quiet=not enabled) as progress:
        yield functools.partial(progress.update, progress.add_task(description, total=total))
