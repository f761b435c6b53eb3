"""The step commands (`ecg-mlflow main | pretrain | transfer | ...`), one per declared entry point.

Each command is made from its EntryPoint (entry_points.py): options from the config, the step
imported when the command runs. It prints the run ID, the model URI and version, the headline
metrics and the step's text (a table, a summary); a UserError is one line and its exit code.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import typer

from ecg_mlflow.cli.errors import reported_errors
from ecg_mlflow.cli.options import config_command
from ecg_mlflow.entry_points import ENTRY_POINTS, EntryPoint
from ecg_mlflow.progress import Update, bar

HEADLINE_METRICS = (
    "test_accuracy",
    "test_macro_f1",
    "test_se_S",
    "test_ppv_S",
    "test_se_V",
    "test_ppv_V",
    "best_val",
    "val_mean",
    "val_acc_",
    "cv_macro_f1_nsv",
    "cv_oof_macro_f1_nsv",
)


def print_result(result: Any) -> None:
    """What a step returned: run ID, model URI and version, headline metrics, then its text."""
    for name in ("run_id", "model_uri", "registered_version"):
        value = getattr(result, name, "")
        if value:
            typer.echo(f"{name}: {value}")
    metrics = getattr(result, "metrics", {})
    for key in sorted(metrics):
        if key.startswith(HEADLINE_METRICS) and isinstance(metrics[key], float | int):
            typer.echo(f"{key}: {metrics[key]:.4f}")
    if getattr(result, "text", ""):
        typer.echo(result.text.rstrip("\n"))


def progress_bar(label: str, stack: contextlib.ExitStack) -> Callable[[int, int], None]:
    """on_progress(done, total) drawing the package's bar on stderr (ecg_mlflow/progress.py).

    Opened at the first call, not before: the step's setup logs would tear a live bar. Closed when the work is
    done, or with `stack` when the step fails half-way, so the error is not printed under a dead bar.
    """
    updates: list[Update] = []

    def update(done: int, total: int) -> None:
        if not updates:
            updates.append(stack.enter_context(bar(label, total)))
        updates[0](completed=done)
        if done >= total:
            stack.close()

    return update


def step_command(entry: EntryPoint) -> Callable[..., None]:
    """The typer command of one entry point."""

    def run(config: Any) -> None:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        step = entry.load_step()
        with reported_errors(), contextlib.ExitStack() as bars:
            extra = {"on_progress": progress_bar(f"{entry.command}: beats", bars)} if entry.progress else {}
            result = step(config, **extra)
        print_result(result)

    return config_command(entry.config, run, entry.help, fixed=dict(entry.fixed))


def register(app: typer.Typer, entries: Sequence[EntryPoint] = ENTRY_POINTS) -> None:
    """One `ecg-mlflow COMMAND` per declared entry point."""
    for entry in entries:
        app.command(entry.command)(step_command(entry))
