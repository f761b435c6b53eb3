"""Which process did this, and is it still alive: shared by the cache, downloads, step runs and tuning workers.

An identity is "host:pid:start", start being the clock tick since boot at which the process started: it tells a
live process from a reused pid (ticks, as in the identities already stored in runs and trials, rather than
psutil's create_time() epoch, which moves when the clock is set). A process is only ever declared dead when that
can be known: on this host, its pid gone, a zombie, or another process now behind the same pid. Processes on
other hosts are never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Iterator

import psutil


def _start_ticks(process: psutil.Process) -> str:
    """Clock ticks since boot at its start: create_time() less the boot time, both on the same system clock."""
    return str(round((process.create_time() - psutil.boot_time()) * os.sysconf("SC_CLK_TCK")))


def process_identity(pid: int | None = None) -> str:
    """'host:pid:start' of this process (or of `pid` on this host); start is '?' when it cannot be read."""
    pid = os.getpid() if pid is None else pid
    try:
        start = _start_ticks(psutil.Process(pid))
    except psutil.Error:
        start = "?"
    return f"{socket.gethostname()}:{pid}:{start}"


def pid_is_dead(pid: int) -> bool:
    """True when no live process on this host has this pid (a zombie counts as dead)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # ZombieProcess is one too
        return True
    except psutil.AccessDenied:  # someone else's live process
        return False


def process_is_dead(identity: str) -> bool:
    """True only when we can tell: the process ran on this host and is gone, a zombie, or its pid was reused."""
    try:
        host, pid, start = identity.rsplit(":", 2)
        if host != socket.gethostname():
            return False
        process = psutil.Process(int(pid))
        return process.status() == psutil.STATUS_ZOMBIE or start not in ("?", _start_ticks(process))
    except psutil.NoSuchProcess:
        return True
    except (psutil.AccessDenied, ValueError):  # someone else's live process; not an identity
        return False


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
