"""One way every command reports a problem the user can fix: one line on stderr, the error's exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from ecg_mlflow.errors import UserError


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(code=code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """UserError -> `error: <message>` and exit code error.exit_code (1 input, 2 usage); no traceback."""
    try:
        yield
    except UserError as error:
        fail(str(error), error.exit_code)
