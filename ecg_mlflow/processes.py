"""Which process did this, and is it still alive: shared by the cache, downloads, step runs and tuning workers.

An identity is "host:pid:start-time" (the start time from /proc tells a live process from a
reused pid). A process is only ever declared dead when that can be known: on this host, its pid
gone, a zombie, or another process now behind the same pid. Runs and trials of processes on
other hosts are never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path


def _process_start(pid: int) -> str | None:
    """Start time of a process (Linux /proc), to tell a live process from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is dead, whatever its parent does
        return "zombie"
    return fields[19]


def process_identity(pid: int | None = None) -> str:
    """'host:pid:start-time' of this process (or of `pid` on this host)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_process_start(pid) or '?'}"


def pid_is_dead(pid: int) -> bool:
    """True when no live process on this host has this pid (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's live process
        return False
    return _process_start(pid) == "zombie"


def process_is_dead(identity: str) -> bool:
    """True only when we can tell: the process ran on this host and is gone (or its pid was reused)."""
    try:
        host, pid_text, start = identity.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    if pid_is_dead(pid):
        return True
    current = _process_start(pid)
    return start != "?" and current is not None and current != start


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt while inside, so cleanup runs as for Ctrl-C (main thread only)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_copies(command: list[str], copies: int) -> int:
    """Run `copies` instances of `command` side by side and wait for all: the worst exit code.

    The copies are in this process group, so Ctrl-C reaches each of them from the terminal; a
    SIGTERM to this process is passed on to them as SIGINT, which every step and worker turns
    into its own clean-up. No copy outlives the command that started it. A copy ended by a
    signal counts as 128 + the signal's number, as a shell reports it.
    """
    # SIGINT as the default in each copy, even when this command runs as a background job (which
    # starts with SIGINT ignored): Python then turns it into KeyboardInterrupt there.
    processes = [subprocess.Popen(command, preexec_fn=_default_sigint) for _ in range(copies)]
    try:
        with terminate_as_interrupt():
            codes = [process.wait() for process in processes]
    except KeyboardInterrupt as interrupt:
        if interrupt.args:  # SIGTERM (terminate_as_interrupt); a Ctrl-C already reached the copies
            for process in processes:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGINT)
        codes = [process.wait() for process in processes]
    return max((128 - code if code < 0 else code for code in codes), default=0)
