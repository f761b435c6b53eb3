"""The patientwise step on synthetic records: candidates scored on out-of-fold beats alone, the winner tested
once, registered as ecg-mit-patientwise@current and evaluated on an external (SVDB-like) database."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from ecg_mlflow.config import CrossValConfig, DataConfig, EvaluateConfig, FeaturesConfig, PatientwiseConfig
from ecg_mlflow.steps.crossval import run_crossval
from ecg_mlflow.steps.evaluate import run_evaluate
from ecg_mlflow.steps.features import run_features
from ecg_mlflow.steps.folds import load_out_of_fold
from ecg_mlflow.steps.patientwise import ENSEMBLE, run_patientwise
from ecg_mlflow.tracking.upstream import UpstreamError

INTER = DataConfig(split="inter")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, synthetic_patientwise_mitdb, synthetic_other_databases):
    """mitdb/ (6 DS1 + 2 DS2 records) and svdb/ (2 records at 128 Hz) side by side, as in a DATA_DIR."""
    folder = tmp_path_factory.mktemp("patientwise_data_dir")
    (folder / "mitdb").symlink_to(synthetic_patientwise_mitdb / "mitdb")
    (folder / "svdb").symlink_to(synthetic_other_databases / "svdb")
    return folder


@pytest.fixture(scope="module")
def candidates(tmp_path_factory, data_dir, tracking_store):
    with tracking_store(tmp_path_factory.mktemp("patientwise_tracking"), data_dir, "patientwise"):
        common = {"init": "scratch", "epochs": 2, "min_epochs": 0, "batch_size": 16, "context": "rr", "folds": 3}
        runs = {
            backbone: run_crossval(CrossValConfig(backbone=backbone, **common, data=INTER), register=False, verbose=0)
            for backbone in ("mlp", "cnn")
        }
        runs["features"] = run_features(FeaturesConfig(context="rr", folds=3, data=INTER), register=False, verbose=0)
        yield {name: result.run_id for name, result in runs.items()}


@pytest.fixture(scope="module")
def chosen(candidates):
    return run_patientwise(PatientwiseConfig(candidates=tuple(candidates.values())), verbose=0)


def test_the_winner_has_the_best_cv_score_of_every_candidate_and_the_average(chosen, candidates) -> None:
    run = MlflowClient().get_run(chosen.run_id)
    table = mlflow.artifacts.load_text(f"runs:/{chosen.run_id}/patientwise/candidates.md")
    assert ENSEMBLE in table and "features logistic" in table and "mlp (scratch)" in table
    scores = {}
    for name, run_id in candidates.items():
        oof = load_out_of_fold(run_id)
        scores[name] = float(np.mean(oof.fold_scores(("N", "S", "V", "F", "Q"), ("N", "S", "V"))))
    assert run.data.metrics["cv_macro_f1_nsv_mean"] >= max(scores.values()) - 1e-9


def test_the_winner_is_tested_once_registered_and_evaluated_outside(chosen) -> None:
    run = MlflowClient().get_run(chosen.run_id)
    assert "test_macro_f1_nsv" in run.data.metrics and "svdb_macro_f1_nsv" in run.data.metrics
    evaluation = MlflowClient().get_run(run.data.tags["ecg_mlflow.external.svdb"])
    assert evaluation.data.tags["mlflow.parentRunId"] == chosen.run_id
    version = MlflowClient().get_model_version_by_alias("ecg-mit-patientwise", "current")
    assert version.run_id == chosen.run_id
    served = mlflow.pyfunc.load_model("models:/ecg-mit-patientwise@current")
    rhythm = np.abs(np.random.default_rng(0).normal(0.8, 0.1, size=(3, 8))).astype(np.float32)
    table = served.predict({"beat": np.zeros((3, 187), np.float32), "rhythm": rhythm})
    assert len(table) == 3 and "label" in table


def test_the_model_for_new_patients_is_evaluated_by_its_registered_name_recording_by_recording(
    chosen, data_dir
) -> None:
    run = MlflowClient().get_run(chosen.run_id)
    for prefix in ("test_", "svdb_"):  # DS2 and the external database: every recording beside the average
        assert {f"{prefix}records_n_se_below_80", f"{prefix}records_n_se_median", f"{prefix}records_n_se_worst"} <= set(
            run.data.metrics
        )
    table = mlflow.artifacts.load_text(f"runs:/{chosen.run_id}/evaluation/per_record.csv")
    assert sorted(line.split(",")[0] for line in table.splitlines()[1:]) == ["100", "103"]  # the DS2 records
    result = run_evaluate(
        EvaluateConfig(model_uri="models:/ecg-mit-patientwise@current", database="svdb", data_dir=str(data_dir)),
        verbose=0,
    )
    evaluated = MlflowClient().get_run(result.run_id)
    assert evaluated.data.tags["ecg_mlflow.upstream_run_id"] == chosen.run_id
    assert evaluated.data.metrics["test_records"] == 2 and "test_records_n_se_worst" in evaluated.data.metrics


def test_candidates_must_share_their_inputs(candidates, data_dir) -> None:
    other = run_features(FeaturesConfig(context="rr_template", folds=3, data=INTER), register=False, verbose=0)
    with pytest.raises(UpstreamError, match="differ in context"):
        run_patientwise(PatientwiseConfig(candidates=(candidates["mlp"], other.run_id)), verbose=0)
    unfolded = run_features(FeaturesConfig(context="rr", data=INTER), register=False, verbose=0)
    with pytest.raises(UpstreamError, match="was not cross-validated"):
        run_patientwise(PatientwiseConfig(candidates=(unfolded.run_id,)), verbose=0)
