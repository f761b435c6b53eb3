"""resolve_upstream_run on a real (temporary sqlite) tracking store: every way an upstream can be wrong."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from ecg_mlflow.tracking.registry import register_with_alias
from ecg_mlflow.tracking.runs import STEP_TAG, step_run
from ecg_mlflow.tracking.upstream import UpstreamError, resolve_upstream_run, run_id_from_model_uri


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> str:
    """One sqlite store per module: creating its tables takes seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('upstream')}/mlflow.db"


@pytest.fixture
def tracking(tracking_uri, request, monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(request.node.name)
    yield MlflowClient()
    mlflow.set_tracking_uri(None)


class _Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input


def _run(step: str, params: dict, status: str = "FINISHED") -> str:
    with mlflow.start_run() as run:
        mlflow.set_tag(STEP_TAG, step)
        mlflow.log_params(params)
    if status != "FINISHED":
        MlflowClient().set_terminated(run.info.run_id, status)
    return run.info.run_id


def test_a_finished_run_of_the_right_kind_resolves(tracking) -> None:
    run_id = _run("pretrain", {"backbone": "cnn", "split_seed": "42"})
    upstream = resolve_upstream_run(
        step="pretrain", run_id=run_id, expect_params={"backbone": "cnn", "split_seed": "42.0"}
    )
    assert upstream.run_id == run_id and upstream.params["backbone"] == "cnn"


def test_unknown_run_id(tracking) -> None:
    with pytest.raises(UpstreamError, match="'deadbeef' does not exist"):
        resolve_upstream_run(step="pretrain", run_id="deadbeef")


def test_run_of_the_wrong_kind(tracking) -> None:
    run_id = _run("transfer", {"backbone": "cnn"})
    with pytest.raises(UpstreamError, match="is a 'transfer' run; expected a 'pretrain' run"):
        resolve_upstream_run(step="pretrain", run_id=run_id)


def test_run_that_did_not_finish(tracking) -> None:
    run_id = _run("pretrain", {"backbone": "cnn"}, status="FAILED")
    with pytest.raises(UpstreamError, match="FAILED, not FINISHED"):
        resolve_upstream_run(step="pretrain", run_id=run_id)


def test_backbone_mismatch(tracking) -> None:
    run_id = _run("pretrain", {"backbone": "lstm"})
    with pytest.raises(UpstreamError, match=r"backbone=lstm.*needs backbone=cnn"):
        resolve_upstream_run(step="pretrain", run_id=run_id, expect_params={"backbone": "cnn"})


def test_registry_alias_resolves_to_its_run(tracking) -> None:
    with mlflow.start_run() as run:
        mlflow.set_tag(STEP_TAG, "pretrain")
        info = mlflow.pyfunc.log_model(name="model", python_model=_Constant())
    version = register_with_alias(info.model_uri, "ecg-ssl-test", "current")
    assert run_id_from_model_uri("models:/ecg-ssl-test@current") == run.info.run_id
    assert run_id_from_model_uri(f"models:/ecg-ssl-test/{version.version}") == run.info.run_id
    with pytest.raises(UpstreamError, match="not in the Model Registry"):
        run_id_from_model_uri("models:/ecg-ssl-test@nope")
    with pytest.raises(UpstreamError, match="not a models:/ or runs:/ URI"):
        run_id_from_model_uri("s3://bucket/model")


def test_step_run_marks_failures_failed_and_pruning_killed(tracking) -> None:
    class TrialPruned(Exception):
        pass

    with pytest.raises(RuntimeError), step_run("pretrain", {"a": 1}) as run:
        failed_id = run.info.run_id
        raise RuntimeError("boom")
    with pytest.raises(TrialPruned), step_run("transfer", {"a": 1}) as run:
        pruned_id = run.info.run_id
        raise TrialPruned()
    failed = tracking.get_run(failed_id)
    assert failed.info.status == "FAILED" and "boom" in failed.data.tags["ecg_mlflow.error"]
    assert tracking.get_run(pruned_id).info.status == "KILLED"
