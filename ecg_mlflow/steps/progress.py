"""Step k of n and time left for a multi-run command (the `main` chain, a label-efficiency study), on stderr.

At each child's start: on a terminal the package's rich bar drawn once, not live (the child draws its own), else a
plain line. Time left is the mean of the children that trained: reused ones took none, which rich cannot know.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from ecg_mlflow.progress import bars


def clock(seconds: float) -> str:
    """h:mm:ss or m:ss."""
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


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
        if self._bars.disable:
            line = f"[{self.done + 1}/{self.total}] {label} (elapsed {clock(self._current - self.started)}"
            print(line + ("" if left is None else f", about {clock(left)} left") + ")", file=self.stream, flush=True)
        else:
            self._bars.update(self._task, description=label, completed=self.done, left=left)
            self._bars.console.print(self._bars)

    def end(self, reused: bool) -> float:
        """The current step finished (reused: it took no training); its wall seconds, 0 when reused."""
        self.done += 1
        seconds = 0.0 if reused else time.monotonic() - self._current
        self.trained += 0 if reused else 1
        self.trained_seconds += seconds
        return seconds

    def summary(self) -> str:
        """The closing line the command logs: how many steps, how many reused, how long."""
        return f"{self.done} steps ({self.done - self.trained} reused) in {clock(time.monotonic() - self.started)}"
