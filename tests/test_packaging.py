"""A locked environment: requirements.lock pins and hashes every package, and everything installs from it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
LOCKED_EXTRAS = ("cpu", "dev")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _locked() -> dict[str, tuple[str, list[str]]]:
    """{package: (version, hashes)} of the lock's entries."""
    entries = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text()):
        pinned = re.match(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s\\]+)", block)
        if pinned:
            entries[canonicalize_name(pinned[1])] = (pinned[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return entries


def test_every_package_is_pinned_and_hashed() -> None:
    locked = _locked()
    assert len(locked) > 50, "the lock holds the transitive packages, not only the direct ones"
    assert [name for name, (_, hashes) in locked.items() if not hashes] == []
    assert "tensorflow-cpu" in locked and "tensorflow" not in locked, "the CPU build is the default"


def test_the_lock_satisfies_every_declared_requirement() -> None:
    project, locked = _project(), _locked()
    declared = project["dependencies"] + [r for extra in LOCKED_EXTRAS for r in project["optional-dependencies"][extra]]
    for line in declared:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is declared but not locked: run `make lock`"
        assert requirement.specifier.contains(locked[name][0], prereleases=True), f"{line} vs {locked[name][0]}"


def test_the_lock_is_made_by_the_make_lock_command() -> None:
    command = re.search(r"LOCK_COMMAND := (.+?)\n\S", (ROOT / "Makefile").read_text(), re.S)[1]
    header = LOCK.read_text().splitlines()[1].removeprefix("#").strip()
    assert header == " ".join(command.replace("\\\n", " ").split())


def test_python_env_and_conda_install_the_lock() -> None:
    env = yaml.safe_load((ROOT / "python_env.yaml").read_text())
    assert env["dependencies"] == ["-r requirements.lock"] and str(env["python"]).startswith("3.11")
    conda = yaml.safe_load((ROOT / "conda.yaml").read_text())
    assert [item["pip"] for item in conda["dependencies"] if isinstance(item, dict)] == [["-r requirements.lock"]]
    assert "python=3.11" in conda["dependencies"]
    assert "--require-hashes -r requirements.lock" in (ROOT / "Makefile").read_text()


def test_this_environment_is_the_locked_one() -> None:
    """What the tests run in is what the lock says (setuptools, pip's own, aside)."""
    from importlib.metadata import distributions

    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    locked = {name: version for name, (version, _) in _locked().items() if name != "setuptools"}
    differ = {name: (v, installed.get(name)) for name, v in locked.items() if installed.get(name) != v}
    assert differ == {}


@pytest.mark.slow
def test_the_gpu_extra_resolves() -> None:
    """`pip install --dry-run .[gpu]`: TensorFlow with its CUDA packages resolves beside the rest (not run on a GPU)."""
    report = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q", "--report", "-", ".[gpu]"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    names = {canonicalize_name(item["metadata"]["name"]) for item in json.loads(report.stdout)["install"]}
    assert "tensorflow" in names and "nvidia-cudnn-cu12" in names and "tensorflow-cpu" not in names
