"""`mlflow run . -e main -P split=inter` on synthetic records: the patient-wise chain as a user runs it, ending
in ecg-mit-patientwise@current, which `mlflow models serve` serves and `classify` takes to a new record."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from ecg_mlflow.config import ClassifyConfig, MainConfig
from ecg_mlflow.profiles import PATIENTWISE
from ecg_mlflow.steps.classify import classify_record
from ecg_mlflow.steps.main_patientwise import chain_steps
from ecg_mlflow.tracking.classifiers import load_served

pytestmark = pytest.mark.slow  # `mlflow run` of the whole patient-wise chain

ROOT = Path(__file__).resolve().parents[2]
MODEL = "models:/ecg-mit-patientwise@current"


@pytest.fixture(scope="module")
def chain(tmp_path_factory, synthetic_patientwise_mitdb, synthetic_other_databases):
    tmp = tmp_path_factory.mktemp("main_patientwise")
    data_dir = tmp / "data"
    data_dir.mkdir()
    (data_dir / "mitdb").symlink_to(synthetic_patientwise_mitdb / "mitdb")
    (data_dir / "svdb").symlink_to(synthetic_other_databases / "svdb")
    uri = f"sqlite:///{tmp}/mlflow.db"
    env = dict(os.environ)
    env.update(
        MLFLOW_TRACKING_URI=uri,
        ECG_DATA_DIR=str(data_dir),
        ECG_CACHE_DIR=str(tmp / "cache"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):  # nothing from other tests
        env.pop(name, None)
    command = [str(Path(sys.executable).parent / "mlflow"), "run", str(ROOT), "-e", "main", "--env-manager", "local"]
    command += ["--experiment-name", "ecg-mit"]
    for key, value in {
        "dataset": "mit",
        "split": "inter",
        "backbones": "mlp",
        "profile": "quick",
        "epochs": "1",
    }.items():
        command += ["-P", f"{key}={value}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        yield uri, tmp
        mlflow.set_tracking_uri(None)


def test_the_chain_cross_validates_chooses_and_registers_the_model_for_new_patients(chain) -> None:
    client = MlflowClient()
    experiment = client.get_experiment_by_name("ecg-mit")
    (main,) = client.search_runs([experiment.experiment_id], "tags.`mlflow.project.entryPoint` = 'main'")
    assert main.info.status == "FINISHED" and main.data.tags["mlflow.runName"] == "main-mit-quick-inter"
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{main.info.run_id}'")
    steps = sorted(run.data.tags["ecg_mlflow.step"] for run in children)
    assert len(children) == chain_steps(MainConfig(split="inter", backbones=("mlp",)))
    assert steps.count("crossval") == 1 and steps.count("features") == len(PATIENTWISE.features)
    assert "patientwise" in steps
    version = client.get_model_version_by_alias("ecg-mit-patientwise", "current")
    chosen = client.get_run(version.run_id)
    assert chosen.data.params["candidates"].count(",") == len(children) - 2  # every crossval and features run
    assert "test_macro_f1_nsv" in chosen.data.metrics and "svdb_macro_f1_nsv" in chosen.data.metrics
    table = mlflow.artifacts.load_text(f"runs:/{main.info.run_id}/results/results.md")
    assert "chosen for new patients" in table


def test_the_registered_model_serves_and_classifies_a_new_record(chain, model_server, post_json, record_writer) -> None:
    uri, tmp = chain
    served = load_served(MODEL)
    record_writer(tmp, "newpatient", ["MLII", "V1"], seconds=30.0, seed=11)
    table = classify_record(ClassifyConfig(record=str(tmp / "newpatient"), model=MODEL), served).table
    assert len(table) > 20
    width = len(served.context_names)
    rhythm = np.abs(np.random.default_rng(0).normal(0.8, 0.1, size=(3, width))).tolist()
    with model_server(MODEL, uri, tmp) as (url, _):
        status, answer = post_json(url, {"inputs": {"beat": np.zeros((3, 187)).tolist(), "rhythm": rhythm}})
    assert status == 200, answer
    assert len(answer["predictions"]) == 3
