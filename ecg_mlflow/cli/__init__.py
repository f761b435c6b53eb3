"""The `ecg-mlflow` command: data, training steps and tuning under one typer app."""

from __future__ import annotations

import typer

from ecg_mlflow import logs
from ecg_mlflow.cli import steps
from ecg_mlflow.cli.data import app as data_app
from ecg_mlflow.cli.server import app as server_app
from ecg_mlflow.cli.tune import app as tune_app
from ecg_mlflow.entry_points import ENTRY_POINTS

app = typer.Typer(
    name="ecg-mlflow",
    help="Self-supervised ECG heartbeat classification: data, training steps and Optuna tuning, tracked in MLflow.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(data_app, name="data")
steps.register(app)
app.add_typer(tune_app, name="tune")
app.add_typer(server_app, name="server")

# Commands that load TensorFlow: it is imported up front, quietly, unless --verbose.
TENSORFLOW_COMMANDS = frozenset({entry.command for entry in ENTRY_POINTS} | {"tune"})


@app.callback()
def _options(
    ctx: typer.Context,
    verbose: bool = typer.Option(
        False, "--verbose", help="Show TensorFlow's C++ log and library warnings (quiet by default; ECG_VERBOSE=1)."
    ),
) -> None:
    """Self-supervised ECG heartbeat classification: data, training steps and Optuna tuning, tracked in MLflow."""
    logs.configure(verbose or logs.is_verbose(), preload_tensorflow=ctx.invoked_subcommand in TENSORFLOW_COMMANDS)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
