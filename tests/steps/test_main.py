"""The `main` entry point runs the whole chain through `mlflow run`, then reuses every finished child."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"dataset": "mit", "profile": "quick", "backbones": "mlp", "max_beats": "100"}


def _main(env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "mlflow"), "run", str(ROOT), "-e", "main", "--env-manager", "local"]
    command += ["--experiment-name", "study"]
    for key, value in PARAMS.items():
        command += ["-P", f"{key}={value}"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_main_chain_runs_then_reuses(tracked, tmp_path, committed_package) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    first = _main(env)
    assert first.returncode == 0, first.stderr[-4000:]
    second = _main(env)
    assert second.returncode == 0, second.stderr[-4000:]
    assert second.stderr.count("reusing FINISHED") == 4, second.stderr[-4000:]

    client = MlflowClient()
    experiment = client.get_experiment_by_name("study")
    mains = client.search_runs([experiment.experiment_id], "tags.`mlflow.project.entryPoint` = 'main'")
    assert len(mains) == 2 and all(r.info.status == "FINISHED" for r in mains)
    results = []
    for run in mains:
        dst = str(tmp_path / run.info.run_id)
        local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="results", dst_path=dst)
        results.append(json.loads((Path(local) / "results.json").read_text()))
        table = (Path(local) / "results.md").read_text()
        assert "| mlp | scratch |" in table and "| mlp | pretrained |" in table and "| ensemble | pretrained |" in table
        assert "90.38%" in table  # the paper's MLP-from-scratch MIT accuracy beside ours
    older, newer = sorted(results, key=lambda r: all(r["reused"].values()))
    # Each step's wall time is on the parent that trained it; the second chain trained nothing.
    walls = sorted(({k for k in r.data.metrics if k.endswith("_wall_s")} for r in mains), key=len)
    steps = {"pretrain_mlp", "pretrained_mlp", "scratch_mlp", "pretrained_ensemble"}
    assert walls == [set(), {f"{step}_wall_s" for step in steps}]
    assert not any(older["reused"].values()) and all(newer["reused"].values())
    assert older["run_ids"] == newer["run_ids"]
    children = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'")
    by_entry = [r.data.tags.get("mlflow.project.entryPoint") for r in children]
    assert by_entry.count("pretrain") == 1 and by_entry.count("transfer") == 1
    assert by_entry.count("baseline") == 1 and by_entry.count("ensemble") == 1
    transfer = client.get_run(older["run_ids"]["pretrained/mlp"])
    assert transfer.data.tags["ecg_mlflow.upstream_run_id"] == older["run_ids"]["pretrain/mlp"]
    assert transfer.data.tags["mlflow.parentRunId"] in {r.info.run_id for r in mains}
