"""A real pretrain run on a tiny dataset: logged params, metrics, artifacts, registry, and repeatability."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from ecg_mlflow.config import TRANSFORM_NAMES, DataConfig, PretrainConfig, TransformConfig
from ecg_mlflow.steps.pretrain import run_pretrain, split_beats

TINY = DataConfig(max_beats=80)


@pytest.fixture(scope="module")
def two_runs(tracked):
    mlflow.set_experiment("pretrain")
    config = PretrainConfig(backbone="mlp", epochs=2, batch_size=32, seed=7, data=TINY)
    return run_pretrain(config, verbose=0), run_pretrain(config, verbose=0)


def test_same_seed_same_metrics(two_runs) -> None:
    first, second = two_runs
    assert first.run_id != second.run_id
    assert first.metrics == pytest.approx(second.metrics, abs=1e-6)
    history = MlflowClient().get_metric_history(first.run_id, "val_acc_negation")
    assert [m.step for m in history] == [1, 2]


def test_params_metrics_artifacts_and_registry(two_runs) -> None:
    first, second = two_runs
    client = MlflowClient()
    run = client.get_run(first.run_id)
    params = run.data.params
    assert params["backbone"] == "mlp" and params["epochs"] == "2" and params["seed"] == "7"
    assert params["stretch_factor"] == "2.0" and params["squeeze_factor"] == "0.5" and params["scale_factor"] == "0.1"
    assert params["encoder_depth"] == "7"
    assert int(params["rep_train_beats"]) == 4 * int(params["rep_val_beats"])
    for name in TRANSFORM_NAMES:
        assert f"acc_{name}" in run.data.metrics and f"val_acc_{name}" in run.data.metrics
    assert 0 < run.data.metrics["val_mean_task_accuracy"] <= 1
    assert run.data.tags["ecg_mlflow.step"] == "pretrain"
    paths = {a.path for a in client.list_artifacts(first.run_id, "encoder")}
    assert paths == {"encoder/encoder.weights.h5", "encoder/encoder.json"}
    model = mlflow.keras.load_model(first.model_uri)
    assert [o.name.split("/")[0] for o in model.outputs] == list(TRANSFORM_NAMES) or len(model.outputs) == 8
    assert (first.registered_version, second.registered_version) == ("1", "2")
    assert str(client.get_model_version_by_alias("ecg-ssl-mlp", "current").version) == "2"


def test_a_different_seed_changes_the_numbers(tracked, two_runs) -> None:
    mlflow.set_experiment("pretrain")
    other = run_pretrain(PretrainConfig(backbone="mlp", epochs=2, batch_size=32, seed=8, data=TINY), verbose=0)
    assert other.metrics["loss"] != pytest.approx(two_runs[0].metrics["loss"], abs=1e-6)


def test_representation_split_keeps_beats_apart() -> None:
    import numpy as np

    beats = np.arange(50 * 187, dtype=np.float32).reshape(50, 187)
    train, val = split_beats(beats, 0.2, seed=0)
    assert len(train) == 40 and len(val) == 10
    assert not set(train[:, 0]) & set(val[:, 0])


def test_bad_magnitude_is_rejected_before_any_run(tracked) -> None:
    from ecg_mlflow.config import ConfigError

    with pytest.raises(ConfigError, match="squeeze_factor"):
        TransformConfig(squeeze_factor=1.5)


def test_unlabelled_records_join_and_held_out_records_leave_the_pretraining_set(
    two_runs, synthetic_other_databases
) -> None:
    """Two 128 Hz SVDB-like records and test record 100 (labels never read) added, training record 101 left out:
    transductive, since the encoder saw the signal of a patient it is to classify."""
    plain = MlflowClient().get_run(two_runs[0].run_id)
    assert plain.data.tags["ecg_mlflow.pretraining_protocol"] == "inductive"
    assert "101" in plain.data.params["pretrain_records"].split(",")
    config = PretrainConfig(
        backbone="mlp",
        epochs=1,
        batch_size=32,
        unlabelled=(str(synthetic_other_databases / "svdb"), "mitdb:100"),
        exclude_records=("101",),
        data=TINY,
    )
    run = MlflowClient().get_run(run_pretrain(config, register=False, verbose=0).run_id)
    params = run.data.params
    assert "101" not in params["pretrain_records"].split(",") and params["unlabelled_records"] == "3"
    assert int(params["unlabelled_beats"]) > 50
    labelled = int(params["rep_train_beats"]) + int(params["rep_val_beats"]) - int(params["unlabelled_beats"])
    assert 0 < labelled < int(plain.data.params["rep_train_beats"]) + int(plain.data.params["rep_val_beats"])
    assert run.data.tags["ecg_mlflow.pretraining_protocol"] == "transductive"
    listed = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/pretraining/records.txt").split()
    assert "svdb/800" in listed and "mitdb/100" in listed and "101" not in listed
