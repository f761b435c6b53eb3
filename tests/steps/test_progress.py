"""Step k of n and time left, for the multi-run commands."""

from __future__ import annotations

import io

from ecg_mlflow.steps.progress import Progress, clock


def test_progress_counts_steps_and_estimates_from_trained_ones_only() -> None:
    stream = io.StringIO()
    progress = Progress(total=3, stream=stream)
    progress.begin("pretrain cnn")
    assert progress.end(reused=True) == 0.0  # reused: no time, not in the average
    progress.begin("transfer cnn")
    progress.trained_seconds, progress.trained = 0.0, 0
    progress.end(reused=False)
    progress.trained_seconds = 120.0  # as if the one trained step took two minutes
    progress.begin("baseline cnn")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[1/3] pretrain cnn (elapsed 0:00)") and "left" not in lines[1]
    assert lines[2].startswith("[3/3] baseline cnn") and "about 2:00 left" in lines[2]
    progress.end(reused=False)
    assert progress.summary().startswith("3 steps (1 reused) in ")


def test_clock_reads_like_a_clock() -> None:
    assert clock(59.6) == "1:00" and clock(3725) == "1:02:05"
