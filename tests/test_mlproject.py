"""MLproject is generated from the configs, and every entry point maps onto a CLI command."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from ecg_mlflow.cli import app
from ecg_mlflow.entry_points import ENTRY_POINTS, positional_parameters
from ecg_mlflow.mlproject import render_mlproject
from ecg_mlflow.params import parameter_defaults

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
    assert [e.name for e in ENTRY_POINTS] == list(project["entry_points"])
    for entry in ENTRY_POINTS:
        params = project["entry_points"][entry.name]["parameters"]
        expected = {k: v for k, v in parameter_defaults(entry.config).items() if k not in entry.fixed}
        assert set(params) == set(expected)


def test_every_entry_point_command_parses() -> None:
    """The CLI accepts exactly the options MLproject passes (checked through --help)."""
    runner = CliRunner()
    for entry in ENTRY_POINTS:
        command, config_cls, fixed = entry.command, entry.config, entry.fixed
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        positional = positional_parameters(config_cls)
        for name in parameter_defaults(config_cls):
            flag = f"--{name.replace('_', '-')}"
            if name in positional:  # an argument (`evaluate MODEL_URI`), passed by position in MLproject too
                assert flag not in result.output and name.upper() in result.output, (command, name)
                continue
            shown = re.search(rf"{flag}(?![\w-])", result.output) is not None  # --split, not --split-seed
            assert shown == (name not in fixed), (command, flag)
