"""Which process did this, and is it still alive (psutil): for the cache, downloads, step runs and tuning workers.

An identity is "host:pid:start" with start in clock ticks since boot, as already stored in runs and trials (psutil's
create_time() moves when the clock is set). Dead means known dead: on this host, gone, a zombie or a reused pid.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
from collections.abc import Iterator

import psutil


def _start_ticks(process: psutil.Process) -> str:
    return str(round((process.create_time() - psutil.boot_time()) * os.sysconf("SC_CLK_TCK")))


def process_identity(pid: int | None = None) -> str:
    """'host:pid:start' of this process (or of `pid` on this host); start is '?' when it cannot be read."""
    try:
        start = _start_ticks(psutil.Process(pid))  # None: this process
    except psutil.Error:
        start = "?"
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}:{start}"


def pid_is_dead(pid: int) -> bool:
    """True when no live process on this host has this pid (a zombie counts as dead)."""
    return process_is_dead(f"{socket.gethostname()}:{pid}:?")


def process_is_dead(identity: str) -> bool:
    """True only when we can tell: the process ran on this host and is gone, a zombie, or its pid was reused."""
    try:
        host, pid, start = identity.rsplit(":", 2)
        if host != socket.gethostname():
            return False
        process = psutil.Process(int(pid))
        return process.status() == psutil.STATUS_ZOMBIE or start not in ("?", _start_ticks(process))
    except psutil.NoSuchProcess:  # ZombieProcess is one too
        return True
    except (psutil.AccessDenied, ValueError):  # someone else's live process; not an identity
        return False


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt while inside, so cleanup runs as for Ctrl-C (main thread only)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    with contextlib.ExitStack() as restore:
        with contextlib.suppress(ValueError):  # not the main thread: signals cannot be handled here
            previous = signal.signal(signal.SIGTERM, interrupt)
            restore.callback(signal.signal, signal.SIGTERM, previous or signal.SIG_DFL)  # None: set outside Python
        yield


def run_copies(command: list[str], copies: int) -> int:
    """Run `copies` of `command` side by side; the worst exit code (a signal: 128 + it, as a shell says). Ctrl-C
    reaches each (same process group, SIGINT reset even in a background job); a SIGTERM here goes on as SIGINT."""
    default_sigint = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    processes = [subprocess.Popen(command, preexec_fn=default_sigint) for _ in range(copies)]
    try:
        with terminate_as_interrupt():
            codes = [process.wait() for process in processes]
    except KeyboardInterrupt as interrupt:
        if interrupt.args:  # SIGTERM (terminate_as_interrupt); a Ctrl-C already reached the copies
            for process in processes:
                process.send_signal(signal.SIGINT)  # skips one that has ended
        codes = [process.wait() for process in processes]
    return max((128 - code if code < 0 else code for code in codes), default=0)
