"""The features step on synthetic DS1/DS2 records: cross-validated like a network, tested once, registered,
then taken by `evaluate` (another database) and `mlflow models serve` as any classifier is."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ecg_mlflow.config import DataConfig, EvaluateConfig, FeaturesConfig
from ecg_mlflow.data.context import CONTEXT_KINDS
from ecg_mlflow.errors import ConfigError
from ecg_mlflow.models.features import FEATURE_MODELS
from ecg_mlflow.steps.evaluate import run_evaluate
from ecg_mlflow.steps.features import run_features


@pytest.fixture(scope="module")
def store(tmp_path_factory, synthetic_patientwise_mitdb, tracking_store):
    folder = tmp_path_factory.mktemp("features_tracking")
    with tracking_store(folder, synthetic_patientwise_mitdb, "features") as uri:
        yield uri, folder


@pytest.fixture(scope="module")
def cross_validated(store):
    config = FeaturesConfig(estimator="logistic", context="rr_template", folds=3, data=DataConfig(split="inter"))
    return run_features(config, verbose=0)


def test_features_folds_are_nested_runs_without_test_figures(cross_validated) -> None:
    client = MlflowClient()
    parent = client.get_run(cross_validated.run_id)
    folds = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{cross_validated.run_id}'"
    )
    assert len(folds) == 3 and {f.data.tags["ecg_mlflow.step"] for f in folds} == {"crossval_fold"}
    for fold in folds:
        assert "val_macro_f1_nsv_selected" in fold.data.metrics
        assert not [name for name in fold.data.metrics if name.startswith("test_")]
    scores = [f.data.metrics["val_macro_f1_nsv_selected"] for f in folds]
    assert parent.data.metrics["cv_macro_f1_nsv_mean"] == pytest.approx(np.mean(scores))
    assert "test_macro_f1_nsv" in parent.data.metrics and parent.data.tags["backbone"] == "features-logistic"


def test_the_features_model_is_registered_and_serves_like_a_network(cross_validated) -> None:
    version = MlflowClient().get_model_version_by_alias("ecg-mit-features-logistic", "current")
    assert version.run_id == cross_validated.run_id
    served = mlflow.pyfunc.load_model("models:/ecg-mit-features-logistic@current")
    rhythm = np.abs(np.random.default_rng(0).normal(1.0, 0.2, size=(5, len(CONTEXT_KINDS["rr_template"]))))
    table = served.predict({"beat": np.zeros((5, 187), np.float32), "rhythm": rhythm.astype(np.float32)})
    assert list(table.columns) == ["label", "p_N", "p_S", "p_V", "p_F", "p_Q"]
    assert np.allclose(table.filter(like="p_").sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(MlflowException, match=r"missing inputs \['beat', 'rhythm'\]"):  # the signature says
        served.predict(np.zeros((5, 187), np.float32))


def test_evaluate_takes_a_features_model_to_another_database(
    cross_validated, synthetic_other_databases, monkeypatch
) -> None:
    monkeypatch.setenv("ECG_DATA_DIR", str(synthetic_other_databases))
    result = run_evaluate(
        EvaluateConfig(model_uri="models:/ecg-mit-features-logistic@current", database="svdb", download=False),
        verbose=0,
    )
    run = MlflowClient().get_run(result.run_id)
    assert run.data.params["upstream_run_id"] == cross_validated.run_id
    assert 0.0 <= run.data.metrics["test_macro_f1_nsv"] <= 1.0


def test_without_folds_it_selects_on_the_validation_records(store) -> None:
    for estimator in FEATURE_MODELS:
        result = run_features(FeaturesConfig(estimator=estimator, context="rr", data=DataConfig(split="inter")))
        metrics = MlflowClient().get_run(result.run_id).data.metrics
        assert "val_macro_f1_nsv_selected" in metrics and "cv_macro_f1_nsv_mean" not in metrics


def test_folds_need_the_patient_wise_split_and_a_context() -> None:
    with pytest.raises(ConfigError, match="split='inter'"):
        FeaturesConfig(folds=5)
    with pytest.raises(ConfigError, match="context='none'"):
        FeaturesConfig(context="none")


@pytest.mark.slow
def test_mlflow_models_serve_answers_with_labels_for_beats_and_rhythm(
    cross_validated, store, model_server, post_json
) -> None:
    uri, folder = store
    rhythm = np.abs(np.random.default_rng(1).normal(1.0, 0.2, size=(4, len(CONTEXT_KINDS["rr_template"]))))
    expected = mlflow.pyfunc.load_model(cross_validated.model_uri).predict(
        {"beat": np.zeros((4, 187), np.float32), "rhythm": rhythm.astype(np.float32)}
    )
    with model_server(cross_validated.model_uri, uri, folder) as (url, _):
        status, answer = post_json(url, {"inputs": {"beat": np.zeros((4, 187)).tolist(), "rhythm": rhythm.tolist()}})
    assert status == 200, answer
    assert [row["label"] for row in answer["predictions"]] == expected["label"].tolist()
