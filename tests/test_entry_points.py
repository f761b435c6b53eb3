"""Adding an entry point is one declaration: its config and step are its own module, the rest follows."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import Field
from typer.testing import CliRunner

from ecg_mlflow.checks import validated
from ecg_mlflow.cli.steps import register
from ecg_mlflow.entry_points import ENTRY_POINTS, EntryPoint
from ecg_mlflow.mlproject import render_mlproject
from ecg_mlflow.steps.result import StepResult


@validated
class EchoConfig:
    """A toy step's parameters: the configs are all written like this."""

    word: str = "beat"
    times: Annotated[int, Field(ge=1)] = 2


def run_echo(config: EchoConfig) -> StepResult:
    return StepResult(run_id="", text=" ".join([config.word] * config.times))


ECHO = EntryPoint("echo", "echo", EchoConfig, f"{__name__}:run_echo", "Say a word several times.")


def test_a_declared_entry_point_is_in_mlproject_and_the_cli() -> None:
    mlproject = render_mlproject((*ENTRY_POINTS, ECHO))
    assert "  echo:\n" in mlproject
    assert "      times: {type: float, default: 2}" in mlproject
    assert 'command: "python -m ecg_mlflow echo --word {word} --times {times}"' in mlproject

    app = typer.Typer()
    register(app, (ECHO,))
    result = CliRunner().invoke(app, ["--word", "qrs", "--times", "3"])
    assert result.exit_code == 0 and result.output.strip() == "qrs qrs qrs"
    bad = CliRunner().invoke(app, ["--times", "0"])
    assert bad.exit_code == 2 and "times=0: should be greater than or equal to 1" in bad.output
