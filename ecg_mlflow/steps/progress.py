"""Progress of a multi-run command (the `main` chain, a label-efficiency study): step k of n, time left.

As each child run starts, one line goes to stderr: on a terminal the package's bar (ecg_mlflow/progress.py) drawn
once, not live, as the child is another process writing its own logs and bars to the same terminal; elsewhere (CI,
`mlflow run` logs) a plain line. Time left: the mean of the children that trained so far (reused ones took none).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from ecg_mlflow.progress import bars


def clock(seconds: float) -> str:
    """h:mm:ss or m:ss."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class Progress:
    """Counts the children of one command and says where it stands."""

    total: int
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    done: int = 0
    trained: int = 0
    started: float = field(default_factory=time.monotonic)
    trained_seconds: float = 0.0
    _current: float = 0.0

    def __post_init__(self) -> None:
        self._bars = bars(self.stream)
        self._task = self._bars.add_task("", total=self.total)

    def begin(self, label: str) -> None:
        """Announce step done+1 of total."""
        self._current = time.monotonic()
        left = self.trained_seconds / self.trained * (self.total - self.done) if self.trained else None
        if not self._bars.disable:
            self._bars.update(self._task, description=label, completed=self.done, left=left)
            self._bars.console.print(self._bars)
            return
        eta = "" if left is None else f", about {clock(left)} left"
        elapsed = clock(self._current - self.started)
        print(f"[{self.done + 1}/{self.total}] {label} (elapsed {elapsed}{eta})", file=self.stream, flush=True)

    def end(self, reused: bool) -> float:
        """The current step finished (reused: it took no training); its wall seconds, 0 when reused."""
        self.done += 1
        if reused:
            return 0.0
        seconds = time.monotonic() - self._current
        self.trained += 1
        self.trained_seconds += seconds
        return seconds

    def summary(self) -> str:
        """The closing line the command logs: how many steps, how many reused, how long."""
        return f"{self.done} steps ({self.done - self.trained} reused) in {clock(time.monotonic() - self.started)}"
