"""pretrain -> transfer -> ensemble through the real `mlflow run` command on a tiny synthetic dataset.

Asserts the lineage (run IDs), that the transferred encoder starts from exactly the
pretrain artifact's weights, the registry versions and aliases, and the clear
errors for an unknown run ID, a run of the wrong kind and a backbone mismatch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from ecg_mlflow.config import BackboneConfig, DataConfig, TransferConfig
from ecg_mlflow.models.backbones import build_encoder
from ecg_mlflow.tracking.encoder import download_encoder
from ecg_mlflow.tracking.upstream import UpstreamError

pytestmark = pytest.mark.slow  # six `mlflow run` subprocesses

ROOT = Path(__file__).resolve().parents[2]
TINY = {"epochs": "1", "batch_size": "32", "max_beats": "120"}
EXPERIMENT = "chain"


@pytest.fixture(scope="module")
def project_env(tmp_path_factory, synthetic_mitdb) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("chain")
    env = dict(os.environ)
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp}/mlflow.db",
        ECG_DATA_DIR=str(synthetic_mitdb),
        ECG_CACHE_DIR=str(tmp / "cache"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    env.pop("MLFLOW_RUN_ID", None)
    return env


def mlflow_run(env: dict[str, str], entry: str, **params: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "mlflow"), "run", str(ROOT), "-e", entry, "--env-manager", "local"]
    command += ["--experiment-name", EXPERIMENT]
    for key, value in params.items():
        command += ["-P", f"{key}={value}"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def latest_run_id(entry: str, **params: str) -> str:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    query = f"tags.`mlflow.project.entryPoint` = '{entry}'"
    query += "".join(f" and params.{k} = '{v}'" for k, v in params.items())
    return client.search_runs([experiment.experiment_id], query, order_by=["attributes.start_time DESC"])[0].info.run_id


@pytest.fixture(scope="module")
def chain(project_env, monkeypatch_module) -> dict[str, str]:
    monkeypatch_module.setenv("MLFLOW_TRACKING_URI", project_env["MLFLOW_TRACKING_URI"])
    monkeypatch_module.setenv("ECG_DATA_DIR", project_env["ECG_DATA_DIR"])
    monkeypatch_module.setenv("ECG_CACHE_DIR", project_env["ECG_CACHE_DIR"])
    monkeypatch_module.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(project_env["MLFLOW_TRACKING_URI"])
    ids: dict[str, str] = {}
    for backbone in ("cnn", "mlp"):
        done = mlflow_run(project_env, "pretrain", backbone=backbone, **TINY)
        assert done.returncode == 0, done.stderr[-3000:]
        ids[f"pretrain/{backbone}"] = latest_run_id("pretrain", backbone=backbone)
    # cnn: every parameter but the tiny ones at its default -> the registry alias ecg-ssl-cnn@current.
    done = mlflow_run(project_env, "transfer", dataset="mit", **TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    ids["transfer/cnn"] = latest_run_id("transfer", backbone="cnn")
    # mlp: by run ID.
    done = mlflow_run(project_env, "transfer", backbone="mlp", pretrain_run_id=ids["pretrain/mlp"], **TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    ids["transfer/mlp"] = latest_run_id("transfer", backbone="mlp")
    done = mlflow_run(project_env, "ensemble", members="mlp,cnn", **TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    ids["ensemble"] = latest_run_id("ensemble")
    return ids


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_lineage_is_recorded(chain) -> None:
    client = MlflowClient()
    for backbone in ("cnn", "mlp"):
        transfer = client.get_run(chain[f"transfer/{backbone}"])
        assert transfer.info.status == "FINISHED"
        assert transfer.data.tags["ecg_mlflow.step"] == "transfer"
        assert transfer.data.tags["ecg_mlflow.upstream_run_id"] == chain[f"pretrain/{backbone}"]
        assert transfer.data.params["upstream_run_id"] == chain[f"pretrain/{backbone}"]
    assert client.get_run(chain["transfer/cnn"]).data.params["upstream_model_uri"] == "models:/ecg-ssl-cnn@current"
    ensemble = client.get_run(chain["ensemble"])
    assert ensemble.data.params["member_run_ids"] == f"{chain['transfer/mlp']},{chain['transfer/cnn']}"
    assert ensemble.data.tags["ecg_mlflow.member.cnn"] == chain["transfer/cnn"]


def test_runs_log_params_metrics_and_artifacts(chain) -> None:
    client = MlflowClient()
    pretrain = client.get_run(chain["pretrain/cnn"])
    assert pretrain.data.params["epochs"] == "1" and pretrain.data.params["encoder_units"] == "16"
    for name in ("original", "negation", "inversion", "noise", "shuffle", "stretch", "squeeze", "scale"):
        assert 0.0 <= pretrain.data.metrics[f"val_acc_{name}"] <= 1.0
    artifacts = {a.path for a in client.list_artifacts(chain["pretrain/cnn"], "encoder")}
    assert artifacts == {"encoder/encoder.weights.h5", "encoder/encoder.json"}
    assert {a.path for a in client.list_artifacts(chain["pretrain/cnn"], "figures")} == {"figures/transforms.png"}
    assert pretrain.inputs.dataset_inputs, "the dataset is logged as an MLflow input"
    for key in ("transfer/cnn", "ensemble"):
        metrics = client.get_run(chain[key]).data.metrics
        for name in ("test_accuracy", "test_macro_f1", "test_weighted_f1", "test_f1_N", "best_val_macro_f1"):
            assert name in metrics, (key, name)
        evaluation = {a.path for a in client.list_artifacts(chain[key], "evaluation")}
        assert "evaluation/confusion_matrix.json" in evaluation and "evaluation/confusion_matrix.png" in evaluation


def test_transferred_encoder_starts_from_the_pretrain_artifact(chain) -> None:
    from ecg_mlflow.steps.transfer import build_transfer_encoder, resolve_pretrain_run

    client = MlflowClient()
    config = TransferConfig(backbone="cnn", pretrain_run_id=chain["pretrain/cnn"], data=DataConfig(max_beats=120))
    upstream = resolve_pretrain_run(config)
    encoder, _ = build_transfer_encoder(config, upstream)
    with tempfile.TemporaryDirectory() as tmp:
        spec, weights = download_encoder(chain["pretrain/cnn"], Path(tmp))
        pretrained = build_encoder("cnn", BackboneConfig(**spec["model"]))
        pretrained.load_weights(weights)
    for ours, theirs in zip(encoder.get_weights(), pretrained.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # The run itself recorded the same weights before fine-tuning.
    transfer = client.get_run(chain["transfer/cnn"])
    assert transfer.data.tags["ecg_mlflow.init_encoder_digest"] == spec["weights_digest"]


def test_registry_versions_and_aliases(chain) -> None:
    client = MlflowClient()
    expected = {
        "ecg-ssl-cnn": chain["pretrain/cnn"],
        "ecg-ssl-mlp": chain["pretrain/mlp"],
        "ecg-mit-cnn": chain["transfer/cnn"],
        "ecg-mit-mlp": chain["transfer/mlp"],
        "ecg-mit-ensemble": chain["ensemble"],
    }
    for name, run_id in expected.items():
        assert client.get_model_version_by_alias(name, "current").run_id == run_id, name
    # The registered ensemble is served like any classifier: beats as lists in, class names out.
    served = mlflow.pyfunc.load_model("models:/ecg-mit-ensemble@current")
    table = served.predict(np.random.default_rng(0).uniform(size=(3, 187)).astype(np.float32))
    assert list(table.columns) == ["label", "p_N", "p_S", "p_V", "p_F", "p_Q"] and len(table) == 3
    np.testing.assert_allclose(table.filter(like="p_").sum(axis=1), 1.0, atol=1e-5)


def test_unknown_run_id_fails_the_run(chain, project_env) -> None:
    done = mlflow_run(project_env, "transfer", pretrain_run_id="0123456789abcdef", **TINY)
    assert done.returncode != 0
    assert "'0123456789abcdef' does not exist" in done.stderr
    failed = MlflowClient().get_run(latest_run_id("transfer", pretrain_run_id="0123456789abcdef"))
    assert failed.info.status == "FAILED"


@pytest.mark.parametrize(
    ("backbone", "upstream_key", "message"),
    [
        ("cnn", "transfer/cnn", "is a 'transfer' run; expected a 'pretrain' run"),
        ("mlp", "pretrain/cnn", "backbone=cnn, but this step needs backbone=mlp"),
    ],
)
def test_wrong_upstream_fails_clearly(chain, backbone, upstream_key, message) -> None:
    from ecg_mlflow.steps.transfer import run_transfer

    mlflow.set_experiment(EXPERIMENT)
    config = TransferConfig(backbone=backbone, pretrain_run_id=chain[upstream_key], data=DataConfig(max_beats=120))
    with pytest.raises(UpstreamError, match=message):
        run_transfer(config, verbose=0)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    last = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])[0]
    assert last.data.params["pretrain_run_id"] == chain[upstream_key]
    assert last.info.status == "FAILED"


def test_patient_wise_transfer_with_context_through_mlflow_run(chain, project_env) -> None:
    """The issue's command: `mlflow run . -e transfer -P split=inter -P context=rr` (from scratch, tiny)."""
    params = {"split": "inter", "context": "rr", "init": "scratch", "backbone": "mlp", "class_weight": "balanced"}
    done = mlflow_run(project_env, "transfer", **params, **TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    run = MlflowClient().get_run(latest_run_id("transfer", split="inter", context="rr"))
    assert run.info.status == "FINISHED"
    for name in ("test_se_S", "test_ppv_S", "test_se_V", "test_ppv_V", "test_macro_f1_nsv"):
        assert 0.0 <= run.data.metrics[name] <= 1.0
    version = MlflowClient().get_model_version_by_alias("ecg-mit-mlp", "scratch")
    assert version.run_id == run.info.run_id
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "ecg-mlflow"),
            "evaluate",
            "models:/ecg-mit-mlp@scratch",
            "--database",
            "mitdb",
        ],
        env=project_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test_se_S:" in done.stdout
