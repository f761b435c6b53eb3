"""`ecg-mlflow server ...`: PostgreSQL and an MLflow tracking server in one folder, for a team."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ecg_mlflow.cli.errors import reported_errors

app = typer.Typer(
    help="A team setup: PostgreSQL + an MLflow tracking server serving the artefacts, all in one folder.",
    no_args_is_help=True,
)

DirOpt = Annotated[Path, typer.Option("--dir", help="Folder holding the database, artefacts and logs.")]


@app.command()
def start(
    folder: DirOpt,
    host: Annotated[str, typer.Option(help="Interface both servers bind (0.0.0.0: every one).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Tracking server port (0: a free one, kept across restarts).")] = 0,
    pg_port: Annotated[int, typer.Option(help="PostgreSQL port (0: a free one, kept across restarts).")] = 0,
) -> None:
    """Start (or find running) the servers; print the exports: eval "$(ecg-mlflow server start --dir DIR)"."""
    from ecg_mlflow.tracking import server

    with reported_errors():
        state = server.start(folder, host=host, mlflow_port=port, pg_port=pg_port)
        typer.echo(f"# MLflow at {state.tracking_uri} (pid {state.mlflow_pid}), PostgreSQL on port {state.pg_port}")
        typer.echo(server.export_lines(folder))


@app.command()
def env(folder: DirOpt) -> None:
    """Print the export lines for servers already running in DIR."""
    from ecg_mlflow.tracking import server

    with reported_errors():
        typer.echo(server.export_lines(folder))


@app.command()
def stop(folder: DirOpt) -> None:
    """Stop both servers; the runs, models, artefacts and studies stay in DIR for the next start."""
    from ecg_mlflow.tracking import server

    with reported_errors():
        stopped = server.stop(folder)
        typer.echo(f"stopped the servers in {folder}" if stopped else f"no server was running in {folder}", err=True)
