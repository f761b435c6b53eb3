"""The transfer step in-process on a tiny dataset: first-use pretraining, freeze, label fraction, PTB."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from ecg_mlflow.config import DataConfig, TransferConfig
from ecg_mlflow.data.sealed import sealed_test_split
from ecg_mlflow.steps.transfer import run_transfer
from ecg_mlflow.tracking.classifiers import load_classifier

TINY = DataConfig(max_beats=80)


@pytest.fixture(scope="module")
def first_use(tracked):
    """Nothing registered yet: the default models:/ecg-ssl-mlp@current is pretrained on the way."""
    mlflow.set_experiment("transfer")
    return run_transfer(TransferConfig(backbone="mlp", epochs=1, batch_size=32, freeze=True, data=TINY), verbose=0)


def test_first_transfer_pretrains_the_default_upstream(first_use) -> None:
    client = MlflowClient()
    transfer = client.get_run(first_use.run_id)
    upstream_id = transfer.data.tags["ecg_mlflow.upstream_run_id"]
    upstream = client.get_run(upstream_id)
    assert upstream.data.tags["ecg_mlflow.step"] == "pretrain" and upstream.info.status == "FINISHED"
    assert upstream.data.tags["mlflow.parentRunId"] == first_use.run_id  # nested: the lineage shows in the UI
    assert str(client.get_model_version_by_alias("ecg-ssl-mlp", "current").run_id) == upstream_id
    assert str(client.get_model_version_by_alias("ecg-mit-mlp", "current").run_id) == first_use.run_id


def test_frozen_encoder_keeps_its_pretrained_weights(first_use) -> None:
    from ecg_mlflow.models.classifier import encoder_of
    from ecg_mlflow.tracking.encoder import weights_digest

    model = load_classifier(first_use.model_uri)
    tags = MlflowClient().get_run(first_use.run_id).data.tags
    assert weights_digest(encoder_of(model)) == tags["ecg_mlflow.init_encoder_digest"]


def test_label_fraction_uses_a_stratified_share_of_the_training_labels(first_use) -> None:
    full = MlflowClient().get_run(first_use.run_id).data.params["train_beats"]
    half = run_transfer(
        TransferConfig(backbone="mlp", epochs=1, batch_size=32, label_fraction=0.5, data=TINY), verbose=0
    )
    params = MlflowClient().get_run(half.run_id).data.params
    assert abs(int(params["train_beats"]) - int(full) / 2) <= 5  # rounding per class


def test_scratch_baseline_on_ptb(tracked, synthetic_ptbdb, monkeypatch) -> None:
    monkeypatch.setenv("ECG_DATA_DIR", str(synthetic_ptbdb))
    mlflow.set_experiment("transfer")
    result = run_transfer(
        TransferConfig(backbone="cnn", init="scratch", epochs=1, batch_size=16, data=DataConfig(dataset="ptb")),
        verbose=0,
    )
    run = MlflowClient().get_run(result.run_id)
    assert 0.0 <= run.data.metrics["test_roc_auc"] <= 1.0
    assert {"test_f1_normal", "test_f1_mi", "test_macro_f1"} <= set(run.data.metrics)
    assert "ecg_mlflow.upstream_run_id" not in run.data.tags
    assert str(MlflowClient().get_model_version_by_alias("ecg-ptb-cnn", "scratch").run_id) == result.run_id


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_the_learning_rate_of_every_epoch_is_logged_and_follows_the_schedule(tracked, schedule) -> None:
    mlflow.set_experiment("transfer")
    config = TransferConfig(
        backbone="mlp",
        init="scratch",
        epochs=3,
        batch_size=16,
        patience=0,
        min_epochs=0,
        lr_schedule=schedule,
        data=TINY,
    )
    result = run_transfer(config, verbose=0)
    rates = [
        m.value for m in sorted(MlflowClient().get_metric_history(result.run_id, "learning_rate"), key=lambda m: m.step)
    ]
    assert len(rates) == 3
    if schedule == "constant":
        assert rates == pytest.approx([1e-3] * 3)
    else:  # cosine over 3 epochs: 1/4, 3/4 of the way down after epochs 1, 2; 0 after the last
        assert rates == pytest.approx([0.75e-3, 0.25e-3, 0.0], abs=1e-6)


def test_a_transfer_under_the_seal_computes_no_test_figure_and_says_so(tracked) -> None:
    """What a trial or a fold runs: validation figures only, no test input, the seal named in a tag."""
    mlflow.set_experiment("sealed")
    config = TransferConfig(backbone="mlp", init="scratch", epochs=1, batch_size=32, data=TINY)
    with sealed_test_split("a test of the seal"):
        sealed = run_transfer(config, register=False, verbose=0)
    final = run_transfer(config, register=False, verbose=0)
    client = MlflowClient()
    sealed_run, final_run = client.get_run(sealed.run_id), client.get_run(final.run_id)
    assert not [name for name in sealed_run.data.metrics if name.startswith("test")]
    assert "val_macro_f1_selected" in sealed_run.data.metrics and "test_macro_f1" in final_run.data.metrics
    assert sealed_run.data.tags["ecg_mlflow.test_split"] == "sealed (a test of the seal)"
    assert final_run.data.tags["ecg_mlflow.test_split"] == "evaluated"
    splits = {t.value for i in sealed_run.inputs.dataset_inputs for t in i.tags if t.key == "ecg_mlflow.split"}
    assert splits == {"train", "val"}
    assert sealed_run.data.tags["mlflow.note.content"].split(". ")[-1].startswith("validation accuracy")
