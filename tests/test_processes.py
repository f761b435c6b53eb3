"""Process identity and running copies of a command side by side."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from ecg_mlflow.processes import pid_is_dead, process_identity, process_is_dead, run_copies


def test_a_dead_process_is_known_dead_and_a_live_one_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = process_identity(child.pid)
    child.wait()
    assert process_is_dead(identity) and not process_is_dead(process_identity())


def _proc_stat(pid: str | int) -> list[str]:
    """The fields after the command name in /proc/<pid>/stat: what identities were read from before psutil."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def test_a_zombie_or_a_reused_pid_is_dead_another_host_never() -> None:
    """Start times are clock ticks since boot (as identities stored before psutil): another start is another process."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    host, pid, start = process_identity(child.pid).rsplit(":", 2)
    while _proc_stat(child.pid)[0] != "Z":  # exited, not yet reaped
        time.sleep(0.05)
    assert start.isdigit() and pid_is_dead(child.pid) and process_is_dead(f"{host}:{pid}:{start}")
    child.wait()
    host, pid, start = process_identity().rsplit(":", 2)
    assert start == _proc_stat(pid)[19]  # clock ticks since boot, as in older tags
    assert process_is_dead(f"{host}:{pid}:{int(start) + 1}") and not process_is_dead(f"{host}:{pid}:?")
    assert not process_is_dead(f"elsewhere:{child.pid}:1") and not process_is_dead("no identity")


def test_run_copies_returns_the_worst_code_and_a_signal_as_a_shell_does() -> None:
    assert run_copies([sys.executable, "-c", "import sys; sys.exit(3)"], 2) == 3
    killed = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    assert run_copies(killed, 2) == 128 + signal.SIGKILL


def test_sigterm_reaches_every_copy_as_an_interrupt(tmp_path) -> None:
    """SIGTERM to the parent becomes SIGINT (KeyboardInterrupt) in each copy, which cleans up."""
    copy = textwrap.dedent(f"""
        import os, sys, time
        open(os.path.join({str(tmp_path)!r}, f"started-{{os.getpid()}}"), "w").close()
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            open(os.path.join({str(tmp_path)!r}, f"cleaned-{{os.getpid()}}"), "w").close()
            sys.exit(130)
    """)
    parent = textwrap.dedent(f"""
        import sys
        from ecg_mlflow.processes import run_copies
        sys.exit(run_copies([sys.executable, "-c", {copy!r}], 2))
    """)
    process = subprocess.Popen(
        [sys.executable, "-c", parent],
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # as a background job starts
    )
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("started-*"))) < 2:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    assert len(list(tmp_path.glob("cleaned-*"))) == 2
