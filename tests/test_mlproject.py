"""MLproject is generated from the configs, and every entry point maps onto a CLI command."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from ecg_mlflow.cli import app
from ecg_mlflow.cli.options import positional_parameters
from ecg_mlflow.config import parameter_defaults
from ecg_mlflow.mlproject import ENTRY_POINTS, render_mlproject

ROOT = Path(__file__).resolve().parents[1]


def test_committed_mlproject_matches_the_configs() -> None:
    assert (ROOT / "MLproject").read_text() == render_mlproject(), (
        "MLproject is stale: run `python -m ecg_mlflow.mlproject > MLproject`"
    )


def test_entry_points_and_defaults() -> None:
    project = yaml.safe_load((ROOT / "MLproject").read_text())
    assert project["python_env"] == "python_env.yaml" and "conda_env" not in project
    assert {"main", "pretrain", "transfer", "baseline", "ensemble"} <= set(project["entry_points"])
    transfer = project["entry_points"]["transfer"]["parameters"]
    assert transfer["dataset"]["default"] == "mit"
    assert transfer["epochs"]["default"] == 20
    assert transfer["batch_size"]["default"] == 64
    assert transfer["init"]["default"] == "pretrained"
    assert project["entry_points"]["pretrain"]["parameters"]["epochs"]["default"] == 5
    for entry, (_, config_cls, fixed) in ENTRY_POINTS.items():
        params = project["entry_points"][entry]["parameters"]
        expected = {k: v for k, v in parameter_defaults(config_cls).items() if k not in fixed}
        assert set(params) == set(expected)


def test_every_entry_point_command_parses() -> None:
    """The CLI accepts exactly the options MLproject passes (checked through --help)."""
    runner = CliRunner()
    for _, (command, config_cls, fixed) in ENTRY_POINTS.items():
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        positional = positional_parameters(config_cls)
        for name in parameter_defaults(config_cls):
            flag = f"--{name.replace('_', '-')}"
            if name in positional:  # an argument (`evaluate MODEL_URI`), passed by position in MLproject too
                assert flag not in result.output and name.upper() in result.output, (command, name)
                continue
            assert (flag in result.output) == (name not in fixed), (command, flag)
