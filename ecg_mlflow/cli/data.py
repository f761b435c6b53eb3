"""`ecg-mlflow data ...` (filled in by the data layer)."""

import typer

app = typer.Typer(help="Build, inspect, download and plot the beat datasets.", no_args_is_help=True)
