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
user_app = typer.Typer(help="Users of a tracking server that asks for a password (start --auth, or --host).")
app.add_typer(user_app, name="user")

DirOpt = Annotated[Path, typer.Option("--dir", help="Folder holding the database, artefacts and logs.")]
REMOTE_HINT = "# from another machine, put this machine's address in place of 127.0.0.1"


@app.command()
def start(
    folder: DirOpt,
    host: Annotated[
        str, typer.Option(help="Interface both servers bind (0.0.0.0: every one). Beyond loopback: --auth.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Tracking server port (0: a free one, kept across restarts).")] = 0,
    pg_port: Annotated[int, typer.Option(help="PostgreSQL port (0: a free one, kept across restarts).")] = 0,
    with_auth: Annotated[
        bool, typer.Option("--auth", help="Ask for a user and password on loopback too (always on beyond it).")
    ] = False,
) -> None:
    """Start (or find running) the servers; print the exports: eval "$(ecg-mlflow server start --dir DIR)"."""
    from ecg_mlflow.tracking import server

    with reported_errors():
        state = server.start(folder, host=host, mlflow_port=port, pg_port=pg_port, with_auth=with_auth)
        login = "admin login, " if state.auth else "no authentication, "
        typer.echo(
            f"# MLflow at {state.tracking_uri} ({login}pid {state.mlflow_pid}), PostgreSQL on port {state.pg_port}"
        )
        typer.echo(server.export_lines(folder))


@app.command()
def env(
    folder: DirOpt,
    user: Annotated[str | None, typer.Option(help="That user's login (default: the admin's, with --auth).")] = None,
) -> None:
    """Print the export lines for servers already running in DIR."""
    from ecg_mlflow.tracking import server

    with reported_errors():
        typer.echo(server.export_lines(folder, user))
        _hint_remote(folder, user)


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The new user's name (letters, digits, '.', '_', '-', '@').")],
    folder: DirOpt,
    read_only: Annotated[bool, typer.Option("--read-only", help="May read everything, change nothing.")] = False,
) -> None:
    """Create a user with a generated password and print their export lines (again: server env --user NAME)."""
    from ecg_mlflow.tracking import auth, server

    with reported_errors():
        folder = folder.resolve()
        auth.add_user(folder, server.running_state(folder), name, read_only)
        lines = server.export_lines(folder, name)
        rights = "reads everything" if read_only else "reads everything, writes every experiment and model"
        typer.echo(f"# user {name} created ({rights}); hand over these lines:", err=True)
        typer.echo(lines)
        _hint_remote(folder, name)


def _hint_remote(folder: Path, user: str | None) -> None:
    """A colleague's lines name 127.0.0.1 when the server binds every interface: say what to put there."""
    from ecg_mlflow.tracking import server

    state = server.read_state(folder.resolve())
    if user is not None and state is not None and state.host in ("0.0.0.0", ""):
        typer.echo(REMOTE_HINT, err=True)


@app.command()
def stop(folder: DirOpt) -> None:
    """Stop both servers; the runs, models, artefacts and studies stay in DIR for the next start."""
    from ecg_mlflow.tracking import server

    with reported_errors():
        stopped = server.stop(folder)
        typer.echo(f"stopped the servers in {folder}" if stopped else f"no server was running in {folder}", err=True)
