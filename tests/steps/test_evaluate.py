"""Rhythm context end to end: a two-input classifier trained patient-wise, registered, evaluated on other databases."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from ecg_mlflow.config import ConfigError, DataConfig, EnsembleConfig, EvaluateConfig, TransferConfig
from ecg_mlflow.data.dataset import load_dataset
from ecg_mlflow.data.errors import DataError
from ecg_mlflow.models.classifier import predict_proba
from ecg_mlflow.steps.evaluate import run_evaluate
from ecg_mlflow.steps.transfer import run_transfer
from ecg_mlflow.tracking.classifiers import load_classifier
from ecg_mlflow.tracking.upstream import UpstreamError

EC57 = ("test_se_S", "test_ppv_S", "test_se_V", "test_ppv_V", "test_macro_f1_nsv")


@pytest.fixture(scope="module")
def rr_model(tracked):
    """An MLP from scratch with R-R context on the inter-patient split of the synthetic records."""
    mlflow.set_experiment("context")
    config = TransferConfig(
        backbone="mlp",
        init="scratch",
        context="rr",
        class_weight="balanced",
        epochs=2,
        batch_size=32,
        data=DataConfig(split="inter"),
    )
    return run_transfer(config, verbose=0)


def test_context_model_logs_ec57_metrics_and_a_two_input_signature(rr_model) -> None:
    run = MlflowClient().get_run(rr_model.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["context"] == "rr" and run.data.params["class_weight"] == "balanced"
    for name in EC57:
        assert 0.0 <= run.data.metrics[name] <= 1.0
    assert run.data.metrics["test_se_S"] == run.data.metrics["test_recall_S"]
    artifacts = {a.path for a in MlflowClient().list_artifacts(rr_model.run_id, "evaluation")}
    assert "evaluation/confusion_dechazal.md" in artifacts
    signature = mlflow.models.get_model_info(rr_model.model_uri).signature
    assert sorted(signature.inputs.input_names()) == ["beat", "rhythm"]


def test_validation_patients_are_never_training_patients(rr_model, synthetic_mitdb) -> None:
    params = MlflowClient().get_run(rr_model.run_id).data.params
    ds = load_dataset(DataConfig(split="inter", data_dir=str(synthetic_mitdb)))
    val_records = set(params["val_records"].split(","))
    assert val_records == set(ds.val.records) and not val_records & set(ds.train.records)
    assert not (set(ds.train.records) | val_records) & {"100", "103"}  # DS2 only tests


def test_two_input_model_round_trips_through_the_registry(rr_model, synthetic_mitdb) -> None:
    version = MlflowClient().get_model_version_by_alias("ecg-mit-mlp", "scratch")
    assert version.run_id == rr_model.run_id
    ds = load_dataset(DataConfig(split="inter", data_dir=str(synthetic_mitdb)))
    logged = load_classifier(rr_model.model_uri)
    registered = load_classifier(f"models:/ecg-mit-mlp/{version.version}")
    rhythm = ds.context("test", "rr")
    expected = predict_proba(logged, ds.test.x, 5, context=rhythm)
    np.testing.assert_allclose(predict_proba(registered, ds.test.x, 5, context=rhythm), expected, atol=1e-6)
    with pytest.raises(ValueError, match="rhythm context"):
        predict_proba(registered, ds.test.x, 5)


def test_served_model_takes_beats_and_rhythm_and_names_the_classes(rr_model, synthetic_mitdb) -> None:
    ds = load_dataset(DataConfig(split="inter", data_dir=str(synthetic_mitdb)))
    rhythm = ds.context("test", "rr")
    served = mlflow.pyfunc.load_model("models:/ecg-mit-mlp@scratch")
    table = served.predict({"beat": ds.test.x.astype("float32"), "rhythm": rhythm})
    expected = predict_proba(load_classifier(rr_model.model_uri), ds.test.x, 5, context=rhythm)
    assert list(table.columns) == ["label", "p_N", "p_S", "p_V", "p_F", "p_Q"]
    np.testing.assert_allclose(table.filter(like="p_").to_numpy(), expected, atol=1e-6)
    assert table["label"].tolist() == [ds.class_names[i] for i in expected.argmax(axis=1)]
    with pytest.raises(Exception, match=r"missing inputs \[.rhythm.\]"):
        served.predict({"beat": ds.test.x.astype("float32")})


@pytest.mark.parametrize(("database", "records"), [("svdb", {"800", "801"}), ("incartdb", {"I01", "I02"})])
def test_evaluate_on_other_rates_and_leads(rr_model, synthetic_other_databases, database, records) -> None:
    result = run_evaluate(
        EvaluateConfig(
            model_uri="models:/ecg-mit-mlp@scratch", database=database, data_dir=str(synthetic_other_databases)
        ),
        verbose=0,
    )
    client = MlflowClient()
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["ecg_mlflow.step"] == "evaluate"
    assert run.data.tags["ecg_mlflow.upstream_run_id"] == rr_model.run_id
    for name in EC57:
        assert name in run.data.metrics
    path = client.download_artifacts(result.run_id, "evaluation/per_record.csv")
    table = pd.read_csv(path, dtype={"record": str})
    assert set(table["record"]) == records and (table["beats"] > 40).all()
    assert int(run.data.params["beats"]) == table["beats"].sum()


def test_evaluate_refuses_a_model_of_the_wrong_kind(rr_model, synthetic_other_databases) -> None:
    client = MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    evaluations = client.search_runs(experiments, "tags.`ecg_mlflow.step` = 'evaluate'")
    assert evaluations  # runs of another kind to misuse
    wrong = f"runs:/{evaluations[0].info.run_id}/model"
    with pytest.raises(
        UpstreamError,
        match="is a 'evaluate' run; expected a 'transfer', 'crossval', 'features', 'ensemble' or 'patientwise' run",
    ):
        run_evaluate(EvaluateConfig(model_uri=wrong, database="svdb", data_dir=str(synthetic_other_databases)))
    failed = client.search_runs(experiments, "attributes.status = 'FAILED'")
    assert any(r.data.tags.get("ecg_mlflow.step") == "evaluate" for r in failed)


def test_evaluate_with_no_records_and_no_download_names_the_folder(rr_model, tmp_path) -> None:
    with pytest.raises(DataError, match=r"svdb holds no WFDB records"):
        run_evaluate(
            EvaluateConfig(
                model_uri="models:/ecg-mit-mlp@scratch", database="svdb", data_dir=str(tmp_path), download=False
            )
        )


def test_context_is_refused_for_the_kaggle_csvs(tracked, kaggle_csv_dir) -> None:
    data = DataConfig(source="kaggle", data_dir=str(kaggle_csv_dir.parent))
    for init in ("scratch", "pretrained"):  # refused before anything runs, pretraining included
        with pytest.raises(ConfigError, match="needs beat timing, which source='kaggle' does not have"):
            TransferConfig(backbone="mlp", init=init, context="rr", data=data)
    with pytest.raises(ConfigError, match="needs beat timing"):
        EnsembleConfig(context="rr_template", data=data)
    dataset = load_dataset(data)  # and the dataset itself says why, if asked directly
    with pytest.raises(DataError, match=r"no rhythm context.*Kaggle"):
        dataset.context("train", "rr")


def test_the_runs_table_reads_as_the_study(rr_model) -> None:
    client = MlflowClient()
    run = client.get_run(rr_model.run_id)
    assert run.info.run_name == "baseline-mlp-rr-inter"
    tags = run.data.tags
    assert {k: tags[k] for k in ("dataset", "backbone", "init", "split", "context", "class_weight")} == {
        "dataset": "mit",
        "backbone": "mlp",
        "init": "scratch",
        "split": "inter",
        "context": "rr",
        "class_weight": "balanced",
    }
    note = tags["mlflow.note.content"]
    assert note.startswith("mlp classifier for mit (inter split, context=rr") and "S Se" in note
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_registered_models_and_versions_carry_descriptions(rr_model) -> None:
    client = MlflowClient()
    version = client.get_model_version_by_alias("ecg-mit-mlp", "scratch")
    note = client.get_run(rr_model.run_id).data.tags["mlflow.note.content"]
    assert version.description == note
    described = client.get_registered_model("ecg-mit-mlp").description
    assert "Alias current" in described and "alias scratch" in described
