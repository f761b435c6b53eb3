"""One list of dependencies: pyproject, conda.yaml and python_env.yaml must agree."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_dependencies() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def test_conda_yaml_lists_the_pyproject_dependencies() -> None:
    conda = yaml.safe_load((ROOT / "conda.yaml").read_text())
    pip_lists = [item["pip"] for item in conda["dependencies"] if isinstance(item, dict)]
    assert pip_lists == [_pyproject_dependencies()]
    assert "python=3.11" in conda["dependencies"]


def test_python_env_lists_the_pyproject_dependencies() -> None:
    env = yaml.safe_load((ROOT / "python_env.yaml").read_text())
    assert env["dependencies"] == _pyproject_dependencies()
    assert str(env["python"]).startswith("3.11")


def test_pins_that_matter() -> None:
    deps = _pyproject_dependencies()
    assert "mlflow==3.17.2" in deps
    assert any(d.startswith("tensorflow-cpu==2.21") for d in deps)
    assert any(d.startswith("optuna>=5") for d in deps)
