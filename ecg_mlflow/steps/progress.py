"""Progress of a multi-run command (the `main` chain, a label-efficiency study): step k of n, time left.

Each line goes to stderr when a child run starts: which step, how long the command has run,
and an estimate of the time left from the average of the children that trained so far (reused
runs take no time and are left out of the average).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO


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

    def begin(self, label: str) -> None:
        """Announce step done+1 of total."""
        self._current = time.monotonic()
        elapsed = self._current - self.started
        left = ""
        if self.trained:
            per_step = self.trained_seconds / self.trained
            left = f", about {clock(per_step * (self.total - self.done))} left"
        print(f"[{self.done + 1}/{self.total}] {label} (elapsed {clock(elapsed)}{left})", file=self.stream, flush=True)

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
        return f"{self.done} steps ({self.done - self.trained} reused) in {clock(time.monotonic() - self.started)}"
