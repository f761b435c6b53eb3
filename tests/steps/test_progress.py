"""Step k of n and time left, for the multi-run commands."""

from __future__ import annotations

import io

import pytest

from ecg_mlflow.steps.progress import Progress, clock


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich lets TTY_COMPATIBLE, FORCE_COLOR and TERM=dumb override what a terminal is: none of them here."""
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_three_steps(stream: io.StringIO) -> Progress:
    """pretrain reused, transfer trained (as if in two minutes), baseline trained."""
    progress = Progress(total=3, stream=stream)
    progress.begin("pretrain cnn")
    assert progress.end(reused=True) == 0.0  # reused: no time, not in the average
    progress.begin("transfer cnn")
    progress.trained_seconds, progress.trained = 0.0, 0
    assert progress.end(reused=False) >= 0.0
    progress.trained_seconds = 120.0  # as if the one trained step took two minutes
    progress.begin("baseline cnn")
    progress.end(reused=False)
    return progress


def test_progress_counts_steps_and_estimates_from_trained_ones_only() -> None:
    stream = io.StringIO()  # not a terminal (CI, `mlflow run` logs): plain lines, no bar
    progress = run_three_steps(stream)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[1/3] pretrain cnn (elapsed 0:00)") and "left" not in lines[1]
    assert lines[2].startswith("[3/3] baseline cnn") and "about 2:00 left" in lines[2]
    assert "━" not in stream.getvalue() and "\x1b" not in stream.getvalue()
    assert progress.summary().startswith("3 steps (1 reused) in ")


def test_on_a_terminal_each_step_draws_the_package_bar_with_the_chain_estimate() -> None:
    stream = Terminal()
    progress = run_three_steps(stream)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and all("━" in line for line in lines)
    assert "pretrain cnn" in lines[0] and "0/3" in lines[0] and "-:--:--" in lines[0]
    assert "-:--:--" in lines[1]  # only a reused step so far: no estimate
    assert "baseline cnn" in lines[2] and "2/3" in lines[2] and "0:02:00" in lines[2]
    assert progress.summary().startswith("3 steps (1 reused) in ")


def test_clock_reads_like_a_clock() -> None:
    assert clock(59.6) == "1:00" and clock(3725) == "1:02:05"
